"""Diversity of a composition (group sizes, predicted classes): Shannon's index H (nats) and
Pielou's evenness H / ln K, the Gini-Simpson index and the Gini coefficient of the sizes.

One set of definitions for the curriculum: 03's training-set composition and 07's predicted-class
distribution of synthetic images both call these."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["shannon_index", "gini_simpson", "gini_coefficient"]


def _shares(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    try:
        c = np.asarray(counts, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"counts must be numbers, one per group, got {counts!r}") from None
    if c.size == 0 or not np.isfinite(c).all() or np.any(c < 0) or c.sum() <= 0:
        raise ValueError(
            f"counts must be finite, non-negative group sizes with a positive sum (no NaN), "
            f"got {c.tolist()}"
        )
    return c / c.sum()


def shannon_index(counts: Sequence[float] | np.ndarray, *, normalized: bool = False) -> float:
    """Shannon diversity ``H = -sum_i p_i ln p_i`` (nats) of group counts; ``normalized``
    divides by ``ln K`` (Pielou's evenness, 1 = perfectly even, 0 = one group only)."""
    p = _shares(counts)
    nz = p[p > 0]
    h = float(-(nz * np.log(nz)).sum())
    if normalized:
        return h / math.log(len(p)) if len(p) > 1 else 0.0
    return h


def gini_simpson(counts: Sequence[float] | np.ndarray) -> float:
    """Gini-Simpson diversity index ``1 - sum_i p_i^2``: the chance that two images drawn at
    random (with replacement) come from different groups. 0 = one group; max ``1 - 1/K``."""
    p = _shares(counts)
    return float(1.0 - (p**2).sum())


def gini_coefficient(counts: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of inequality of the group sizes (the Lorenz-curve Gini):
    ``G = sum_i sum_j |x_i - x_j| / (2 K^2 mean(x))``. 0 = equal sizes; max ``1 - 1/K``."""
    x = np.asarray(counts, dtype=float).reshape(-1)
    _shares(x)
    k = len(x)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * k * k * x.mean()))
