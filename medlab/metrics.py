"""One evaluation for the curriculum.

* ACC and AUC exactly as MedMNIST reports them (``medmnist.evaluator``): binary tasks score the
  positive class (column 1 of the softmax); multi-class and ordinal tasks average one-vs-rest
  AUCs; multi-label tasks average per-label AUCs and accuracies at 0.5.
* Per-group metrics for any number of groups on fairlearn's ``MetricFrame``
  (:func:`group_metrics`): by group, difference, ratio, bootstrap intervals.
* A global decision threshold (:func:`youden_threshold`) and calibration (:func:`calibration`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from medmnist.evaluator import getACC, getAUC

from medlab.utils import check_int, check_scalar

__all__ = [
    "medmnist_metrics",
    "majority_baseline",
    "metric_interval",
    "auc_se",
    "youden_threshold",
    "calibration",
    "GroupMetrics",
    "group_metrics",
]


#: The MedMNIST task names :func:`medmnist_metrics` scores.
TASKS = ("binary-class", "multi-class", "ordinal-regression", "multi-label, binary-class")
MULTILABEL = "multi-label, binary-class"


def medmnist_metrics(
    y_true: np.ndarray, y_score: np.ndarray, task: str, *, n_classes: int | None = None
) -> dict[str, float]:
    """ACC and AUC as in the MedMNIST v2 paper.

    Args:
        y_true: labels, (N,) / (N, 1) class indices or (N, L) 0/1 for multi-label.
        y_score: probabilities, (N, C) (softmax) or (N, L) (sigmoid); binary tasks also take
            the positive class's probability (N,) or (N, 1).
        task: ``medmnist.INFO[name]["task"]``.
        n_classes: the number of classes C (labels L for multi-label), checked against
            ``y_score`` when given.
    Returns ``{"acc": ..., "auc": ...}`` as floats in [0, 1]. Scores that are not
    probabilities (logits, rows of a softmax that do not sum to 1), a shape that does not fit
    the task, fewer than two samples, and labels that are empty, NaN or outside the classes
    raise a ValueError. With one class only in ``y_true`` the AUC is undefined: NaN, with
    scikit-learn's UndefinedMetricWarning.
    """
    y_true, y_score = _check_scores(y_true, y_score, task, n_classes)
    if len(y_true) < 2:
        raise ValueError(
            "one sample: ACC and AUC need at least two (AUC needs a positive and a negative); "
            "evaluate on the whole split"
        )
    return _medmnist(y_true, y_score, task)


def _medmnist(y_true: np.ndarray, y_score: np.ndarray, task: str) -> dict[str, float]:
    return {
        "acc": float(getACC(y_true, y_score, task)),
        "auc": float(getAUC(y_true, y_score, task)),
    }


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


def majority_baseline(
    train_labels: np.ndarray, test_labels: np.ndarray, task: str, *, n_classes: int | None = None
) -> dict[str, float]:
    """ACC/AUC of always predicting the training split's class frequencies (AUC is 0.5).
    ``n_classes`` defaults to 2 for binary tasks, else the largest label + 1."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if len(train_labels) == 0 or len(test_labels) == 0:
        raise ValueError(
            f"train_labels ({len(train_labels)}) and test_labels ({len(test_labels)}) must both "
            "be non-empty"
        )
    n = len(test_labels)
    if task == MULTILABEL:
        prior = _check_classes(train_labels, 2, binary=True).mean(0)
    else:
        if task not in TASKS:
            _check_scores(test_labels, np.zeros(n), task)  # raises: names the valid tasks
        if n_classes is None and task == "binary-class":
            n_classes = 2
        k = max(int(np.max(train_labels)), int(np.max(test_labels))) + 1
        k = max(k, 2) if n_classes is None else check_int("n_classes", n_classes, 2)
        y = _check_classes(train_labels.reshape(-1), k, binary=task == "binary-class")
        prior = np.bincount(y, minlength=k) / len(y)
    scores = np.tile(prior, (n, 1))
    return medmnist_metrics(test_labels, scores, task)


def metric_interval(
    y_true: np.ndarray,
    y_score: np.ndarray,
    task: str,
    *,
    metric: str = "auc",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a test metric (:func:`medmnist_metrics`' ``"auc"`` or
    ``"acc"``): the test set is resampled ``n_boot`` times, stratified by class (single-label
    tasks keep each class's count, so every resample has both classes). It measures the
    test-set sampling error only, not the seed's. Returns ``(lo, hi)`` in [0, 1]."""
    if metric not in ("auc", "acc"):
        raise ValueError(f"metric must be 'auc' or 'acc', got {metric!r}")
    n_boot = check_int("n_boot", n_boot, 2)
    level = check_scalar(
        "level",
        level,
        kind=float,
        lo=0,
        hi=1,
        lo_inclusive=False,
        hi_inclusive=False,
        fix="e.g. 0.95",
    )
    y_true, y_score = _check_scores(y_true, y_score, task)
    if len(y_true) < 2:
        raise ValueError(f"need at least 2 test images for a bootstrap, got {len(y_true)}")
    rng = np.random.default_rng(check_int("seed", seed, 0))
    if task == "multi-label, binary-class":
        strata = [np.arange(len(y_true))]
    else:
        y = y_true.reshape(-1)
        strata = [np.flatnonzero(y == c) for c in np.unique(y)]
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata])
        values[b] = _medmnist(y_true[idx], y_score[idx], task)[metric]
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# thresholds and calibration


def auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of a ROC AUC (Hanley & McNeil 1982) from ``n_pos`` positives and ``n_neg``
    negatives (for a multi-class macro AUC, pass the smallest class as ``n_pos``: conservative)."""
    fix = "count the positive and negative test images"
    n_pos = check_scalar("n_pos", n_pos, lo=1, fix=fix)
    n_neg = check_scalar("n_neg", n_neg, lo=1, fix=fix)
    auc = check_scalar("auc", auc, kind=float, lo=0, hi=1, fix="pass a ROC AUC such as 0.85")
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)
    return float(math.sqrt(max(var, 0.0) / (n_pos * n_neg)))


def youden_threshold(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """The one global threshold that maximises Youden's J = TPR - FPR on ``(y_true, y_score)``
    (usually the validation split). y_true: 0/1 (N,); y_score: probability (N,). In (0, 1)."""
    from sklearn.metrics import roc_curve

    y_true, y_score = _binary(y_true, y_score)
    if len(np.unique(y_true)) != 2:
        raise ValueError(
            "youden_threshold needs both classes in y_true (diseased and healthy); use a split "
            "with both, or a fixed threshold such as 0.5"
        )
    fpr, tpr, thr = roc_curve(y_true, y_score)
    ok = np.isfinite(thr)
    best = np.argmax((tpr - fpr)[ok])
    return float(np.clip(thr[ok][best], 1e-6, 1 - 1e-6))


def calibration(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    n_bins: int = 8,
    names: dict[Any, str] | None = None,
) -> pd.DataFrame:
    """Reliability table (sklearn's ``calibration_curve``, quantile bins), per group if given.

    Returns a DataFrame with columns group, mean_predicted, observed (both 0-1) and n (images),
    one row per non-empty bin, and ``df.attrs["ece"]``: the expected calibration error per group (mean
    |observed - predicted| over bins, weighted by bin size).
    """
    n_bins = check_int("n_bins", n_bins, 2)
    y_true, y_score = _binary(y_true, y_score)
    g = np.zeros(len(y_true), dtype=int) if groups is None else _groups(groups, len(y_true))
    labels = _group_labels(g, names, default_all=groups is None)
    rows, ece = [], {}
    for key, label in labels.items():
        yt, ys = y_true[g == key], y_score[g == key]
        # quantile bins exactly as sklearn.calibration.calibration_curve(strategy="quantile")
        edges = np.percentile(ys, np.linspace(0, 1, n_bins + 1) * 100)
        ids = np.searchsorted(edges[1:-1], ys)
        count = np.bincount(ids, minlength=len(edges))
        pred = np.bincount(ids, weights=ys, minlength=len(edges))
        obs = np.bincount(ids, weights=yt, minlength=len(edges))
        nz = count > 0
        mean, frac = pred[nz] / count[nz], obs[nz] / count[nz]
        ece[label] = float((count[nz] / count.sum() * np.abs(frac - mean)).sum())
        rows += [
            {"group": label, "mean_predicted": float(a), "observed": float(b), "n": int(c)}
            for a, b, c in zip(mean, frac, count[nz], strict=True)
        ]
    out = pd.DataFrame(rows)
    out.attrs["ece"] = ece
    return out


# --------------------------------------------------------------------------------------------
# per-group metrics for K groups, on fairlearn's MetricFrame


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


def _auc_or_nan(y_true: Any, y_pred: Any, y_score: Any) -> float:
    from sklearn.metrics import roc_auc_score

    yt = np.asarray(y_true)
    return float(roc_auc_score(yt, np.asarray(y_score))) if len(np.unique(yt)) == 2 else math.nan


@dataclass
class GroupMetrics:
    """Per-group metrics of one set of decisions, from fairlearn's ``MetricFrame``.

    Attributes:
        frame: the MetricFrame (rows: group names; columns: auc, tpr, fnr, fpr, selection_rate,
            accuracy), with bootstrap intervals when ``n_boot`` was given.
        overall: each metric on all samples, plus balanced_accuracy and the
            equalized-odds difference ``eod`` (fairlearn: max(|TPR gap|, |FPR gap|)).
        ci: {"lo": DataFrame, "hi": DataFrame} 95 % bootstrap intervals per group, or None.
        reference: the name of the reference group (gaps are reference minus the others).
    """

    frame: Any
    overall: dict[str, float]
    ci: dict[str, Any] | None = None
    reference: str | None = None

    @property
    def by_group(self) -> pd.DataFrame:
        """Per-group metrics, indexed by group name."""
        return self.frame.by_group

    @property
    def groups(self) -> list[str]:
        return list(self.frame.by_group.index)

    def difference(self) -> pd.Series:
        """fairlearn's ``difference()``: max - min over groups, per metric."""
        return self.frame.difference()

    def ratio(self) -> pd.Series:
        """fairlearn's ``ratio()``: min / max over groups, per metric."""
        return self.frame.ratio()

    def gap(self, other: str | None = None) -> dict[str, float]:
        """``reference - other`` per metric (positive: the other group is lower). ``other``
        defaults to the only non-reference group (two groups)."""
        if self.reference is None:
            raise ValueError("no reference group: pass reference=<group> to group_metrics")
        others = [g for g in self.groups if g != self.reference]
        if other is None:
            if len(others) != 1:
                raise ValueError(f"{len(others) + 1} groups: say which to compare, one of {others}")
            other = others[0]
        if other not in others:
            raise ValueError(f"unknown group {other!r}; choose one of {others}")
        bg = self.by_group
        return {m: float(bg.loc[self.reference, m] - bg.loc[other, m]) for m in bg.columns}

    @property
    def equalized_odds_difference(self) -> float:
        return self.overall["eod"]

    def table(self) -> pd.DataFrame:
        """by_group plus rows 'difference (max - min)' and 'ratio (min / max)'."""
        t = self.by_group.copy()
        t.loc["difference (max - min)"] = self.difference()
        t.loc["ratio (min / max)"] = self.ratio()
        return pd.DataFrame(t)

    def row(self, short: dict[str, str] | None = None) -> dict[str, float]:
        """One flat dict for result tables: ``<metric>_<short group name>`` per group,
        ``<metric>_gap`` (reference minus the other group, two groups only) and ``<metric>_diff``
        (max - min), plus the overall ``auc``, ``acc``, ``balanced_acc`` and ``eod``.
        ``short`` maps group names to column suffixes (default: the names)."""
        bg = self.by_group
        short = short or {g: str(g) for g in bg.index}
        out: dict[str, float] = {}
        for m in bg.columns:
            for g in bg.index:
                out[f"{m}_{short[g]}"] = float(bg.loc[g, m])
            out[f"{m}_diff"] = float(self.difference()[m])
        if self.reference is not None and len(bg.index) == 2:
            out.update({f"{m}_gap": v for m, v in self.gap().items()})
        out.update(
            auc=self.overall["auc"],
            acc=self.overall["accuracy"],
            balanced_acc=self.overall["balanced_accuracy"],
            eod=self.overall["eod"],
        )
        return out


def group_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    threshold: float = 0.5,
    y_pred: np.ndarray | None = None,
    names: dict[Any, str] | None = None,
    reference: Any = None,
    n_boot: int | None = None,
    seed: int = 0,
) -> GroupMetrics:
    """Per-group AUC, TPR (sensitivity), FNR, FPR, selection rate and accuracy, for K groups.

    Args:
        y_true: 0/1 (N,), 1 = positive (disease); y_score: probability of the positive (N,).
        groups: group label per sample (N,), any hashable values (e.g. ints 0..K-1).
        threshold: one global decision threshold on ``y_score`` (ignored if ``y_pred`` given).
        y_pred: 0/1 decisions (N,) from elsewhere (e.g. group thresholds); AUC still uses
            ``y_score``.
        names: display name per group value (default: ``str(value)``), in display order.
        reference: group value whose metrics the gaps start from (e.g. the majority).
        n_boot: bootstrap resamples for 95 % intervals (fairlearn's ``n_boot``).
    """
    from fairlearn.metrics import (
        MetricFrame,
        equalized_odds_difference,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    y_true, y_score = _binary(y_true, y_score)
    g = _groups(groups, len(y_true))
    labels = _group_labels(g, names)
    if len(labels) < 2:
        raise ValueError(f"groups must hold at least two groups, got {list(labels.values())}")
    if reference is not None and reference not in labels:
        raise ValueError(f"reference={reference!r} is not one of the groups {list(labels)}")
    threshold = check_scalar(
        "threshold", threshold, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False
    )
    if y_pred is None:
        y_pred = (y_score >= threshold).astype(int)
    y_pred = np.asarray(y_pred).astype(int).reshape(-1)
    if len(y_pred) != len(y_true):
        raise ValueError(f"y_pred has {len(y_pred)} entries but there are {len(y_true)} samples")
    sensitive = pd.Categorical([labels[v] for v in g.tolist()], categories=list(labels.values()))
    metrics = {
        "auc": _auc_or_nan,
        "tpr": true_positive_rate,
        "fnr": false_negative_rate,
        "fpr": false_positive_rate,
        "selection_rate": selection_rate,
        "accuracy": accuracy_score,
    }
    kw: dict[str, Any] = {}
    if n_boot:
        kw = dict(
            n_boot=check_int("n_boot", n_boot, 2),
            ci_quantiles=[0.025, 0.975],
            random_state=check_int("seed", seed, 0),
        )
    mf = MetricFrame(
        metrics=metrics,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=pd.Series(sensitive, name="group"),
        sample_params={"auc": {"y_score": y_score}},
        **kw,
    )
    overall = {m: float(v) for m, v in mf.overall.items()}
    overall["balanced_accuracy"] = float(balanced_accuracy_score(y_true, y_pred))
    overall["eod"] = float(
        equalized_odds_difference(y_true, y_pred, sensitive_features=np.asarray(sensitive))
    )
    ci = {"lo": mf.by_group_ci[0], "hi": mf.by_group_ci[1]} if n_boot else None
    ref = labels[reference] if reference is not None else None
    return GroupMetrics(mf, overall, ci, ref)
