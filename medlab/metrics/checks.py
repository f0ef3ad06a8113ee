"""Input checks shared by every metric: labels, probabilities, task shapes and group labels.
Each names the fix (pass probabilities, not logits; one group label per sample; ...)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from medlab.utils import check_int

#: The MedMNIST task names :func:`medmnist_metrics` scores.
TASKS = ("binary-class", "multi-class", "ordinal-regression", "multi-label, binary-class")
MULTILABEL = "multi-label, binary-class"


def _check_rows(y_true: np.ndarray, y_score: np.ndarray) -> None:
    """Matching, non-empty rows: the first check of every metric here."""
    if y_true.shape[:1] != y_score.shape[:1]:
        raise ValueError(
            f"y_true has {len(y_true)} rows but y_score has {len(y_score)}: pass one score row "
            "per label"
        )
    if len(y_true) == 0:
        raise ValueError("no samples: y_true and y_score are empty")


def _check_finite(y_score: np.ndarray) -> None:
    if not np.all(np.isfinite(y_score)):
        raise ValueError("y_score holds NaN or inf; pass probabilities in [0, 1]")


def _check_classes(y: np.ndarray, k: int, *, binary: bool = False) -> np.ndarray:
    """Class indices 0..k-1 (any numeric dtype holding whole numbers), as int."""
    y = np.asarray(y)
    ok = y.dtype.kind in "iub" or (
        y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))
    )
    if not ok or (y.size and (y.min() < 0 or y.max() > k - 1)):
        shown = np.unique(y)[:5] if y.dtype.kind in "iubf" else y[:5]
        if binary:
            raise ValueError(f"y_true must be 0/1 (1 = the positive class), got values {shown}")
        raise ValueError(
            f"y_true must be class indices 0..{k - 1} for {k} classes, got values {shown}; "
            "check the labels, or pass scores with one column per class"
        )
    return y.astype(int)


def _check_probabilities(y_score: np.ndarray, *, softmax: bool) -> None:
    """Values in [0, 1]; each row sums to 1 for a softmax."""
    tol = 1e-3
    logits = "pass probabilities (softmax(logits)), not logits"
    if y_score.min() < -tol or y_score.max() > 1 + tol:
        raise ValueError(
            f"y_score holds values in [{y_score.min():.3g}, {y_score.max():.3g}], outside "
            f"[0, 1]: {logits} (sigmoid(logits) for multi-label tasks)"
        )
    if softmax:
        sums = y_score.sum(1)
        bad = np.abs(sums - 1) > tol
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} rows of y_score do not sum to 1 (e.g. {sums[bad][0]:.4g}): "
                f"{logits}, one column per class"
            )


def _check_scores(
    y_true: Any, y_score: Any, task: str, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities whose shapes fit ``task``: (y_true, y_score float64)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; use one of {TASKS} (medmnist INFO's 'task')")
    if n_classes is not None:
        n_classes = check_int("n_classes", n_classes, 1 if task == MULTILABEL else 2)
    y_true = np.asarray(y_true)
    try:
        y_score = np.asarray(y_score, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            "y_score must be a numeric array of probabilities (N, n_classes)"
        ) from None
    _check_rows(y_true, y_score)
    _check_finite(y_score)
    n = len(y_true)
    if task == MULTILABEL:
        k = y_score.shape[1] if y_score.ndim == 2 else -1
        if y_score.ndim != 2 or y_true.shape != y_score.shape or k != (n_classes or k):
            want = f"(N, {n_classes})" if n_classes else "(N, L)"
            raise ValueError(
                f"a multi-label task needs y_true and y_score both of shape {want}, one column "
                f"per label; got {y_true.shape} and {y_score.shape}"
            )
        _check_classes(y_true, 2, binary=True)
        _check_probabilities(y_score, softmax=False)
        return y_true.astype(int), y_score
    if y_true.shape not in ((n,), (n, 1)):
        raise ValueError(
            f"y_true must be class indices of shape (N,) or (N, 1), got {y_true.shape}"
        )
    if task == "binary-class":
        if n_classes not in (None, 2):
            raise ValueError(f"a binary-class task has 2 classes, got n_classes={n_classes}")
        if y_score.shape not in ((n,), (n, 1), (n, 2)):
            raise ValueError(
                f"a binary-class task needs y_score of shape (N,) or (N, 1) (the positive "
                f"class's probability) or (N, 2) (softmax), got {y_score.shape}: for more "
                "classes use task='multi-class'"
            )
        y = _check_classes(y_true, 2, binary=True)
        _check_probabilities(y_score, softmax=y_score.shape == (n, 2))
        return y, y_score
    k = n_classes or (y_score.shape[1] if y_score.ndim == 2 else 0)
    if y_score.shape != (n, k) or k < 2:
        raise ValueError(
            f"a {task} task needs y_score of shape (N, n_classes) = ({n}, "
            f"{n_classes or 'C >= 2'}), one softmax column per class; got {y_score.shape}"
        )
    y = _check_classes(y_true, k)
    _check_probabilities(y_score, softmax=True)
    return y, y_score


def _binary(y_true: Any, y_score: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).reshape(-1)
    y_score = np.asarray(y_score, dtype=float).reshape(-1)
    if len(y_true) != len(y_score):
        raise ValueError(
            f"y_true and y_score must have the same length, got {len(y_true)} and {len(y_score)}"
        )
    _check_rows(y_true, y_score)
    y_true = _check_classes(y_true, 2, binary=True)
    _check_finite(y_score)
    _check_probabilities(y_score, softmax=False)
    return y_true, y_score


def _groups(groups: Any, n: int) -> np.ndarray:
    if isinstance(groups, str):
        raise ValueError("groups must be one group label per sample (an array), not a string")
    g = np.asarray(groups).reshape(-1)
    if len(g) != n:
        raise ValueError(f"groups has {len(g)} entries but there are {n} samples")
    missing = pd.isna(g)
    if missing.any():
        raise ValueError(
            f"groups holds {int(missing.sum())} missing labels (NaN/None), e.g. at row "
            f"{int(np.flatnonzero(missing)[0])}: give every sample a group (or drop those samples)"
        )
    is_text = [isinstance(v, str) for v in g.tolist()] if g.dtype == object else []
    if any(is_text) and not all(is_text):
        kinds = sorted({type(v).__name__ for v in g.tolist()})
        raise ValueError(
            f"groups mixes label types ({', '.join(kinds)}): use one type, e.g. all strings"
        )
    return g


def _group_labels(
    g: np.ndarray, names: dict[Any, str] | None, *, default_all: bool = False
) -> dict[Any, str]:
    values = np.unique(g).tolist()  # numeric order for numbers, text order for names
    if default_all:
        return {values[0]: "all"}
    if names is None:
        return {v: str(v) for v in values}
    missing = [v for v in values if v not in names]
    if missing:
        raise ValueError(f"groups holds {missing}, which names= does not name ({dict(names)})")
    return {v: names[v] for v in names if v in set(values)}
