"""ACC and AUC exactly as MedMNIST reports them (``medmnist.evaluator``): binary tasks score the
positive class (column 1 of the softmax); multi-class and ordinal tasks average one-vs-rest AUCs;
multi-label tasks average per-label AUCs and accuracies at 0.5. Also the majority-class baseline,
a bootstrap interval of a test metric and the standard error of an AUC."""

from __future__ import annotations

import numpy as np
from medmnist.evaluator import getACC, getAUC

from medlab.metrics.checks import MULTILABEL, TASKS, _check_classes, _check_scores
from medlab.stats import hanley_mcneil_se
from medlab.utils import check_int, check_scalar


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


def auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of a ROC AUC (Hanley & McNeil 1982) from ``n_pos`` positives and ``n_neg``
    negatives (for a multi-class macro AUC, pass the smallest class as ``n_pos``: conservative)."""
    fix = "count the positive and negative test images"
    n_pos = check_scalar("n_pos", n_pos, lo=1, fix=fix)
    n_neg = check_scalar("n_neg", n_neg, lo=1, fix=fix)
    auc = check_scalar("auc", auc, kind=float, lo=0, hi=1, fix="pass a ROC AUC such as 0.85")
    return hanley_mcneil_se(auc, n_pos, n_neg)
