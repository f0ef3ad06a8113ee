"""The cross-check of FGSM and PGD against adversarial-robustness-toolbox (ART)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from medlab.robustness.attacks import fgsm, pgd
from medlab.robustness.pixels import MEAN, STD, PixelModel, _check_xy

__all__ = ["art_max_abs_diff"]


def art_max_abs_diff(
    model: nn.Module,
    x: torch.Tensor,
    y: Any,
    *,
    eps: float,
    step: float,
    steps: int,
    fgsm_fn: Callable[..., torch.Tensor] = fgsm,
    pgd_fn: Callable[..., torch.Tensor] = pgd,
) -> dict[str, float]:
    """Largest |medlab - ART| (pixels, 0-1) for FGSM and PGD (``num_random_init=0``) on the same
    model, images and labels; ART's ``PyTorchClassifier`` gets ``clip_values=(0, 1)`` and the
    normalisation as ``preprocessing=(MEAN, STD)``. ``fgsm_fn`` and ``pgd_fn`` are the attacks
    checked (default medlab's; notebook 08 passes its own definitions, the same code)."""
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    x, y = _check_xy(x, y)
    inner = model.model if isinstance(model, PixelModel) else model
    n_classes = int(inner(torch.zeros(1, *x.shape[1:])).shape[1]) if len(x) else 2
    clf = PyTorchClassifier(
        inner,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=n_classes,
        clip_values=(0.0, 1.0),
        preprocessing=(MEAN, STD),
        # the CPU, where medlab's attacks run (ART's default "gpu" would move the model to a
        # GPU in place, and medlab's attacks below would then refuse it)
        device_type="cpu",
    )
    onehot = np.eye(n_classes, dtype=np.float32)[y.cpu().numpy()]
    xs = x.cpu().numpy()  # ART's attacks take and return NumPy arrays
    art_fgsm = FastGradientMethod(clf, eps=eps, batch_size=len(x)).generate(xs, y=onehot)
    art_pgd = ProjectedGradientDescent(
        clf, eps=eps, eps_step=step, max_iter=steps, batch_size=len(x), verbose=False
    ).generate(xs, y=onehot)
    ours_pgd = pgd_fn(model, x, y, eps=eps, step=step, steps=steps).cpu().numpy()
    return {
        "fgsm": float(np.abs(fgsm_fn(model, x, y, eps=eps).cpu().numpy() - art_fgsm).max()),
        "pgd": float(np.abs(ours_pgd - art_pgd).max()),
    }
