"""Diagnosing a group difference: does the model encode the group in its features (PCA and a
linear probe on embeddings), and how much attribution does each group's image get?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from medlab.utils import check_scalar

__all__ = ["pca", "group_separability", "attribution_stats", "group_attribution_stats"]


@torch.no_grad()
def pca(
    features: np.ndarray, n_components: int = 2, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of (N, D) features (scikit-learn, features standardised first).
    Returns coordinates (N, n_components) and explained variance ratios (n_components,)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or not 1 <= n_components <= min(features.shape):
        raise ValueError(
            f"need features (N, D) and 1 <= n_components <= min(N, D), got "
            f"{features.shape} and {n_components}"
        )
    z = StandardScaler().fit_transform(features)
    p = PCA(n_components=n_components, random_state=seed)
    return p.fit_transform(z), p.explained_variance_ratio_


def group_separability(
    features: np.ndarray, groups: np.ndarray, *, folds: int = 5, seed: int = 0
) -> float:
    """How well a linear probe tells the groups apart from the features: cross-validated
    ROC AUC of a logistic regression (scikit-learn). 0.5 = not encoded, 1 = perfectly encoded."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    groups = np.asarray(groups).reshape(-1)
    features = np.asarray(features, dtype=np.float64)
    if len(groups) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(groups)} group labels")
    if len(np.unique(groups)) != 2 or np.bincount(groups.astype(int)).min() < folds:
        raise ValueError(f"need two groups with at least folds={folds} members each")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    p = cross_val_predict(probe, features, groups, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(groups, p))


def attribution_stats(maps: np.ndarray, *, center: float = 0.5) -> dict[str, np.ndarray]:
    """Per-image statistics of (N, H, W) maps, each (N,):

    ``evidence``: sum of the positive attribution (for IG/SHAP: logits of evidence for the
    target class); ``magnitude``: sum of |attribution|; ``center_share``: share of the positive
    attribution inside the central square covering ``center`` of each side (0..1).
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (N, H, W), got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values: drop those images")
    center = check_scalar("center", center, kind=float, lo=0, hi=1, lo_inclusive=False,
                          fix="the side share of the central square, e.g. 0.5")  # fmt: skip
    n, h, w = maps.shape
    pos = np.clip(maps, 0.0, None)
    dh, dw = round(h * (1 - center) / 2), round(w * (1 - center) / 2)
    inner = pos[:, dh : h - dh, dw : w - dw].sum((1, 2))
    total = pos.sum((1, 2))
    return {
        "evidence": total,
        "magnitude": np.abs(maps).sum((1, 2)),
        "center_share": np.divide(inner, total, out=np.zeros(n), where=total > 0),
    }


def group_attribution_stats(
    maps: np.ndarray,
    groups: np.ndarray,
    names: Mapping[int, str] | None = None,
    *,
    center: float = 0.5,
) -> Any:
    """:func:`attribution_stats` averaged per group: a pandas DataFrame indexed by group name
    with the mean and standard error of each statistic and the group size."""
    groups = np.asarray(groups).reshape(-1)
    if len(groups) != len(maps):
        raise ValueError(f"{len(maps)} maps but {len(groups)} group labels")
    stats = attribution_stats(maps, center=center)
    rows = []
    for g in np.unique(groups):
        sel = groups == g
        row: dict[str, Any] = {"group": (names or {}).get(int(g), str(g)), "n": int(sel.sum())}
        for k, v in stats.items():
            row[k] = float(v[sel].mean())
            row[f"{k}_sem"] = (
                float(v[sel].std(ddof=1) / np.sqrt(sel.sum())) if sel.sum() > 1 else 0.0
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")
