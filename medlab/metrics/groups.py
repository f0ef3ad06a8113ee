"""Per-group metrics for any number of groups on fairlearn's ``MetricFrame``
(:func:`group_metrics`: by group, difference, ratio, bootstrap intervals) and the one global
decision threshold that maximises Youden's J (:func:`youden_threshold`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medlab.metrics.checks import _binary, _group_labels, _groups
from medlab.stats import hanley_mcneil_interval, wilson_interval
from medlab.utils import check_int, check_scalar


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
        ci: {"lo": DataFrame, "hi": DataFrame} 95 % intervals per group (bootstrap or
            analytic, see :func:`group_metrics`), or None.
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
    ci: str | None = None,
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
        n_boot: bootstrap resamples for 95 % percentile intervals (fairlearn's ``n_boot``);
            a 95 % percentile interval rests on its 2.5 % most extreme resamples, so use 1000+.
        ci: ``"bootstrap"`` (the default when ``n_boot`` is given) or ``"analytic"``: Wilson
            intervals for the rates (TPR, FNR and the accuracy on each group's diseased /
            healthy / all patients; FPR and selection rate likewise) and Hanley & McNeil's for
            the AUC, exact to compute and instant, for when resampling 1000 times is too slow.
    """
    from fairlearn.metrics import equalized_odds_difference
    from sklearn.metrics import balanced_accuracy_score

    y_true, y_score = _binary(y_true, y_score)
    g = _groups(groups, len(y_true))
    labels = _group_labels(g, names)
    if len(labels) < 2:
        raise ValueError(f"groups must hold at least two groups, got {list(labels.values())}")
    if reference is not None and reference not in labels:
        raise ValueError(f"reference={reference!r} is not one of the groups {list(labels)}")
    y_pred = _decisions(y_true, y_score, y_pred, threshold)
    sensitive = pd.Categorical([labels[v] for v in g.tolist()], categories=list(labels.values()))
    mf = _metric_frame(y_true, y_pred, y_score, sensitive, n_boot, seed)
    overall = {m: float(v) for m, v in mf.overall.items()}
    overall["balanced_accuracy"] = float(balanced_accuracy_score(y_true, y_pred))
    overall["eod"] = float(
        equalized_odds_difference(y_true, y_pred, sensitive_features=np.asarray(sensitive))
    )
    ref = labels[reference] if reference is not None else None
    return GroupMetrics(mf, overall, _intervals(ci, n_boot, mf, y_true, sensitive), ref)


def _intervals(
    ci: str | None, n_boot: int | None, mf: Any, y_true: np.ndarray, sensitive: pd.Categorical
) -> dict[str, pd.DataFrame] | None:
    """{"lo", "hi"} 95 % intervals per group (rows) and metric (columns), or None."""
    ci = ci or ("bootstrap" if n_boot else None)
    if ci not in (None, "bootstrap", "analytic"):
        raise ValueError(f"ci must be 'bootstrap', 'analytic' or None, not {ci!r}")
    if ci == "bootstrap":
        if not n_boot:
            raise ValueError("ci='bootstrap' needs n_boot, e.g. n_boot=1000")
        return {"lo": mf.by_group_ci[0], "hi": mf.by_group_ci[1]}
    if ci is None:
        return None
    lo, hi = (
        pd.DataFrame(index=mf.by_group.index, columns=mf.by_group.columns, dtype=float)
        for _ in range(2)
    )
    for name in mf.by_group.index:
        m = np.asarray(sensitive == name)
        yt = y_true[m]
        n_pos, n_neg = int(yt.sum()), int((1 - yt).sum())
        counts = {
            "tpr": n_pos,
            "fnr": n_pos,
            "fpr": n_neg,
            "selection_rate": len(yt),
            "accuracy": len(yt),
        }
        for metric, n in counts.items():
            p = float(mf.by_group.loc[name, metric])
            lo.loc[name, metric], hi.loc[name, metric] = (
                wilson_interval(p, n) if n and math.isfinite(p) else (math.nan, math.nan)
            )
        auc = float(mf.by_group.loc[name, "auc"])
        lo.loc[name, "auc"], hi.loc[name, "auc"] = (
            hanley_mcneil_interval(auc, n_pos, n_neg) if math.isfinite(auc) else (math.nan,) * 2
        )
    return {"lo": lo, "hi": hi}


def _decisions(
    y_true: np.ndarray, y_score: np.ndarray, y_pred: np.ndarray | None, threshold: float
) -> np.ndarray:
    """0/1 decisions: ``y_pred`` as given, else ``y_score >= threshold``."""
    threshold = check_scalar(
        "threshold", threshold, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False
    )
    if y_pred is None:
        y_pred = (y_score >= threshold).astype(int)
    y_pred = np.asarray(y_pred).astype(int).reshape(-1)
    if len(y_pred) != len(y_true):
        raise ValueError(f"y_pred has {len(y_pred)} entries but there are {len(y_true)} samples")
    return y_pred


def _metric_frame(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray,
    sensitive: pd.Categorical,
    n_boot: int | None,
    seed: int,
) -> Any:
    """fairlearn's MetricFrame of the six per-group metrics (bootstrap intervals if ``n_boot``)."""
    from fairlearn.metrics import (
        MetricFrame,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score

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
    return MetricFrame(
        metrics=metrics,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=pd.Series(sensitive, name="group"),
        sample_params={"auc": {"y_score": y_score}},
        **kw,
    )
