"""Is a map faithful to the model? Deletion and insertion curves of every method against random
orders (:func:`faithfulness`), and the model-randomisation sanity check of Adebayo et al. (2018):
:func:`randomize_model`, :func:`map_similarity`."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from medlab.explain.common import BLACK, as_input, check_baseline, target_classes
from medlab.explain.deletion import curve_auc, deletion_curve, random_maps
from medlab.utils import check_int, progress

__all__ = ["faithfulness", "randomize_model", "map_similarity"]

MODES = ("deletion", "insertion")


def faithfulness(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    maps: Mapping[str, np.ndarray],
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    steps: int = 16,
    n_random: int = 3,
    baseline: float = BLACK,
    seed: int = 0,
    curve: Callable[..., tuple[np.ndarray, np.ndarray]] = deletion_curve,
) -> tuple[Any, dict[str, dict[str, np.ndarray]]]:
    """Deletion and insertion curves for every method in ``maps`` and for ``n_random`` random
    orders (pooled under ``"random"``); ``curve`` computes one curve (default
    :func:`~medlab.explain.deletion.deletion_curve`; notebook 04 passes its own).

    Returns ``(table, curves)``: ``table`` a pandas DataFrame with one row per method and the
    mean deletion AUC (lower is more faithful), insertion AUC (higher is more faithful), their
    standard errors over images and the per-image win rate against random deletion;
    ``curves[method]["deletion" | "insertion"]`` the score arrays (N, steps + 1) and
    ``curves["fractions"]`` the x values.
    """
    check_int("n_random", n_random, 1)
    check_baseline("baseline", baseline)
    x = as_input(images)
    t = target_classes(model, x, target)
    n, _, h, w = x.shape
    curves: dict[str, Any] = {}
    every = dict(maps)
    for r in range(n_random):
        every[f"random {r}"] = random_maps((n, h, w), seed=seed + 1000 + r)
    fr = None
    for name, m in progress(every.items(), desc="deletion/insertion"):
        curves[name] = {}
        for mode in MODES:
            fr, s = curve(model, x, m, t, mode=mode, steps=steps, baseline=baseline, seed=seed)
            curves[name][mode] = s
    randoms = [curves.pop(f"random {r}") for r in range(n_random)]
    curves["random"] = {mode: np.mean([cv[mode] for cv in randoms], axis=0) for mode in MODES}
    table = _table(curves, fr, n)
    curves["fractions"] = fr
    return table, curves


def _table(curves: dict[str, dict[str, np.ndarray]], fr: np.ndarray, n: int) -> pd.DataFrame:
    """One row per method: mean deletion and insertion AUC, their standard errors over the
    ``n`` images, and the share of images whose deletion AUC is below random's."""
    rows = []
    rand_del = curve_auc(fr, curves["random"]["deletion"])
    for name, cv in curves.items():
        d, i = curve_auc(fr, cv["deletion"]), curve_auc(fr, cv["insertion"])
        rows.append(
            {
                "method": name,
                "deletion_auc": d.mean(),
                "deletion_sem": d.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0,
                "insertion_auc": i.mean(),
                "insertion_sem": i.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0,
                "beats_random": float(np.mean(d < rand_del)) if name != "random" else 0.5,
            }
        )
    return pd.DataFrame(rows).set_index("method")


def randomize_model(model: nn.Module, *, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every layer re-initialised (PyTorch's default initialisation,
    seeded): same architecture, nothing learned. The original is untouched."""
    rand = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        n_reset = 0
        for module in rand.modules():
            if hasattr(module, "reset_parameters") and callable(module.reset_parameters):
                module.reset_parameters()
                n_reset += 1
    if n_reset == 0:
        raise ValueError("the model has no layer with reset_parameters(); nothing to randomise")
    return rand


def map_similarity(a: np.ndarray, b: np.ndarray, *, metric: str = "spearman") -> np.ndarray:
    """Per-image similarity of two sets of maps (N, H, W), computed on absolute values (the
    sign of an attribution flips easily; Adebayo et al. 2018 compare magnitudes).

    ``"spearman"``: rank correlation (scipy), -1..1; NaN where a map is constant.
    ``"ssim"``: structural similarity (scikit-image) of the maps scaled to [0, 1] by their
    maximum, -1..1. Returns (N,).
    """
    from scipy.stats import spearmanr

    a, b = np.abs(np.asarray(a, dtype=np.float64)), np.abs(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"need two arrays of the same shape (N, H, W), got {a.shape}, {b.shape}")
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        if metric == "spearman":
            if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0:
                out[i] = spearmanr(a[i].ravel(), b[i].ravel()).statistic
        elif metric == "ssim":
            from skimage.metrics import structural_similarity

            ai = a[i] / a[i].max() if a[i].max() > 0 else a[i]
            bi = b[i] / b[i].max() if b[i].max() > 0 else b[i]
            out[i] = structural_similarity(ai, bi, data_range=1.0, win_size=7)
        else:
            raise ValueError(f"metric must be 'spearman' or 'ssim', got {metric!r}")
    return out
