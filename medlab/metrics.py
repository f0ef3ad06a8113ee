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
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from medmnist.evaluator import getACC, getAUC

from medlab.utils import check_int

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


def medmnist_metrics(y_true: np.ndarray, y_score: np.ndarray, task: str) -> dict[str, float]:
    """ACC and AUC as in the MedMNIST v2 paper.

    Args:
        y_true: labels, (N,) / (N, 1) class indices or (N, L) 0/1 for multi-label.
        y_score: probabilities, (N, C) (softmax) or (N, L) (sigmoid).
        task: ``medmnist.INFO[name]["task"]``.
    Returns ``{"acc": ..., "auc": ...}`` as floats in [0, 1].
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape[0] != y_score.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} rows but y_score has {y_score.shape[0]}")
    return {
        "acc": float(getACC(y_true, y_score, task)),
        "auc": float(getAUC(y_true, y_score, task)),
    }


def majority_baseline(
    train_labels: np.ndarray, test_labels: np.ndarray, task: str
) -> dict[str, float]:
    """ACC/AUC of always predicting the training split's class frequencies (AUC is 0.5)."""
    train_labels = np.asarray(train_labels)
    n = len(test_labels)
    if task == "multi-label, binary-class":
        prior = train_labels.mean(0)
    else:
        y = train_labels.reshape(-1)
        prior = np.bincount(y, minlength=int(max(y.max(), np.asarray(test_labels).max()) + 1))
        prior = prior / prior.sum()
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
    if not (isinstance(level, numbers.Real) and 0 < level < 1):
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape[0] != y_score.shape[0] or y_true.shape[0] < 2:
        raise ValueError(f"need matching rows (at least 2): {y_true.shape} vs {y_score.shape}")
    rng = np.random.default_rng(seed)
    if task == "multi-label, binary-class":
        strata = [np.arange(len(y_true))]
    else:
        y = y_true.reshape(-1)
        strata = [np.flatnonzero(y == c) for c in np.unique(y)]
    values = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.concatenate([rng.choice(s, size=len(s), replace=True) for s in strata])
        values[b] = medmnist_metrics(y_true[idx], y_score[idx], task)[metric]
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------
# thresholds and calibration


def auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of a ROC AUC (Hanley & McNeil 1982) from ``n_pos`` positives and ``n_neg``
    negatives (for a multi-class macro AUC, pass the smallest class as ``n_pos``: conservative)."""
    n_pos, n_neg = check_int("n_pos", n_pos, 1), check_int("n_neg", n_neg, 1)
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
    if len(y_true) == 0:
        raise ValueError("no samples: y_true and y_score are empty")
    if not set(np.unique(y_true).tolist()) <= {0, 1}:
        raise ValueError(
            f"y_true must be 0/1 (1 = the positive class), got values {np.unique(y_true)[:5]}"
        )
    if not np.all(np.isfinite(y_score)):
        raise ValueError("y_score holds NaN or inf; pass probabilities in [0, 1]")
    return y_true.astype(int), y_score


def _groups(groups: Any, n: int) -> np.ndarray:
    if isinstance(groups, str):
        raise ValueError("groups must be one group label per sample (an array), not a string")
    g = np.asarray(groups).reshape(-1)
    if len(g) != n:
        raise ValueError(f"groups has {len(g)} entries but there are {n} samples")
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
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not (0.0 < threshold < 1.0)
    ):
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
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
