"""Per-group metrics for the two HCM groups and the group make-up of a training set."""

from __future__ import annotations

import numpy as np

from medlab.diversity import gini_coefficient, gini_simpson, shannon_index
from medlab.metrics import GroupMetrics, group_metrics
from medlab.scenario import GROUP_NAMES

__all__ = ["hcm_metrics", "composition"]


def hcm_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    threshold: float = 0.5,
    y_pred: np.ndarray | None = None,
    n_boot: int | None = None,
    ci: str | None = None,
    seed: int = 0,
) -> GroupMetrics:
    """:func:`medlab.metrics.group_metrics` for the two HCM groups (majority = reference, so
    gaps are majority minus minority; ``row()`` columns end in ``_maj`` / ``_min``)."""
    return group_metrics(
        y_true,
        y_score,
        groups,
        threshold=threshold,
        y_pred=y_pred,
        names=GROUP_NAMES,
        reference=0,
        n_boot=n_boot,
        ci=ci,
        seed=seed,
    )


def composition(groups: np.ndarray) -> dict[str, float]:
    """Group make-up of a set: counts, minority share and the diversity measures of
    :mod:`medlab.diversity` (Shannon, Gini-Simpson, Gini coefficient)."""
    groups = np.asarray(groups).reshape(-1)
    fix = f"pass one group id per image, 0..{len(GROUP_NAMES) - 1} ({GROUP_NAMES})"
    if len(groups) == 0:
        raise ValueError(f"groups is empty: {fix}")
    ok = groups.dtype.kind in "iu" or (groups.dtype.kind == "f" and np.isfinite(groups).all()
                                       and (groups == np.round(groups)).all())  # fmt: skip
    if not ok or groups.min() < 0 or groups.max() >= len(GROUP_NAMES):
        raise ValueError(f"groups holds {np.unique(groups)[:5].tolist()}: {fix}")
    counts = np.bincount(groups.astype(np.int64), minlength=len(GROUP_NAMES))
    return {
        "n_majority": int(counts[0]),
        "n_minority": int(counts[1]),
        "minority_share": float(counts[1] / counts.sum()),
        "shannon_H": shannon_index(counts),
        "shannon_evenness": shannon_index(counts, normalized=True),
        "gini_simpson": gini_simpson(counts),
        "gini_coefficient": gini_coefficient(counts),
    }
