"""Faithfulness as a curve (Petsiuk et al. 2018, RISE): the deletion and insertion curves,
written out in notebook 04 (the cell below is its copy); their area (:func:`curve_auc`) and
random maps as the reference (:func:`random_maps`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from medlab.explain.common import (
    BLACK,
    Images,
    Target,
    as_input,
    check_baseline,
    model_logits,
    target_classes,
)
from medlab.utils import check_int

__all__ = ["random_maps", "curve_auc", "curve_inputs", "deletion_curve"]


def random_maps(shape: tuple[int, int, int], *, seed: int = 0) -> np.ndarray:
    """Attribution maps of pure noise, (N, H, W): the "random order" reference."""
    if not isinstance(shape, tuple | list) or len(shape) != 3:
        raise ValueError(f"shape must be (N, H, W), three positive integers, got {shape!r}")
    shape = tuple(check_int(f"shape[{i}]", v, 1) for i, v in enumerate(shape))
    return (
        np.random.default_rng(check_int("seed", seed, 0)).standard_normal(shape).astype(np.float32)
    )


def curve_auc(fractions: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Area under each curve by the trapezoid rule: (N, S) scores over (S,) fractions -> (N,)."""
    fractions = np.asarray(fractions, dtype=float)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if not (np.isfinite(fractions).all() and np.isfinite(scores).all()):
        raise ValueError(
            "fractions and scores must be finite: a NaN or inf score comes from the model's "
            "outputs (check them with torch.isfinite)"
        )
    if scores.shape[-1] != fractions.shape[0]:
        raise ValueError(
            f"scores have {scores.shape[-1]} columns but there are {fractions.shape[0]} fractions"
        )
    return np.trapezoid(scores, fractions, axis=-1)


def curve_inputs(
    model: nn.Module,
    images: Images,
    maps: Any,
    target: Target,
    mode: str,
    steps: int,
    baseline: Any,
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor, float]:
    """Checked inputs of :func:`deletion_curve`: (model-scale images, float64 maps (N, H, W),
    target classes (N,), the baseline value)."""
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    check_int("steps", steps, 1)
    baseline = check_baseline("baseline", baseline)
    x = as_input(images)
    n, c, h, w = x.shape
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape != (n, h, w):
        raise ValueError(f"maps must have shape {(n, h, w)} (one map per image), got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values")
    return x, maps, target_classes(model, x, target), baseline


# fmt: off
# %% exported from notebooks/04_glass_box.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def deletion_curve(
    model: nn.Module,
    images: Images,
    maps: np.ndarray,
    target: Target = None,
    *,
    mode: str = "deletion",
    steps: int = 16,
    baseline: float = BLACK,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion / insertion curve (Petsiuk et al. 2018): the ``target`` class probability as the
    top pixels go (or come back). Returns fractions (steps + 1,), scores (N, steps + 1)."""
    x, maps, t, baseline = curve_inputs(model, images, maps, target, mode, steps, baseline)
    n, c, h, w = x.shape
    tiebreak = np.random.default_rng(seed).random((n, h * w))  # ties broken at random
    order = np.stack([np.lexsort((tiebreak[i], -maps[i].reshape(-1))) for i in range(n)])
    rank = order.argsort(axis=1).reshape(n, 1, h, w)  # each pixel's rank, 0 = most positive
    fractions = np.linspace(0.0, 1.0, steps + 1)
    top = torch.as_tensor(rank < np.round(fractions * h * w).reshape(-1, 1, 1, 1, 1))  # top pixels
    base = torch.full_like(x, baseline)  # the baseline image, black by default
    xs = torch.where(top, base, x) if mode == "deletion" else torch.where(top, x, base)
    p = torch.softmax(model_logits(model, xs.reshape(-1, c, h, w)), 1).view(steps + 1, n, -1)
    return fractions, p[:, torch.arange(n), t].T.double().numpy()
# %% end of export
# fmt: on
