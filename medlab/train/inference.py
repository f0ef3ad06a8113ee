"""Inference, one batched helper: :func:`predict` (probabilities or logits), :func:`embeddings`
(penultimate features) and :func:`evaluate` (MedMNIST ACC and AUC). They run in
:func:`eval_mode` and restore the model's train/eval mode even when they raise, on
:func:`medlab.utils.device` (the model goes back to its device afterwards); they return NumPy
arrays, on the CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from medlab.data import Split
from medlab.metrics import medmnist_metrics
from medlab.train.inputs import as_model_input, check_model
from medlab.utils import check_int, on_device

__all__ = ["MULTILABEL", "eval_mode", "predict", "embeddings", "evaluate"]

MULTILABEL = "multi-label, binary-class"


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluation mode (no dropout, frozen norm statistics) inside the block; afterwards every
    submodule gets back its own previous mode (a frozen backbone stays frozen), also when the
    block raises."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, was_training in modes:
            m.training = was_training


def _images(images: Split | torch.Tensor | np.ndarray) -> torch.Tensor:
    x = images.images if isinstance(images, Split) else torch.as_tensor(images)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(x.shape)}")
    return x


@torch.no_grad()
def _batched(fn: Any, model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``fn`` (the model or one of its methods) over ``x`` in batches, in eval mode, on
    :func:`medlab.utils.device` (the model goes back where it was afterwards); the outputs are
    concatenated on the CPU."""
    batch_size = check_int("batch_size", batch_size, 1)
    with on_device(model) as dev, eval_mode(model):
        check_model(model, x[:0].to(dev))  # float32 weights, not on the meta device
        out = [
            fn(as_model_input(x[i : i + batch_size].to(dev))).cpu()  # uint8 moves, then floats
            for i in range(0, len(x), batch_size)
        ]
    return torch.cat(out) if out else torch.zeros(0)


def predict(
    model: nn.Module,
    images: Split | torch.Tensor | np.ndarray,
    *,
    batch_size: int = 256,
    task: str | None = None,
    logits: bool = False,
) -> np.ndarray:
    """Class probabilities, float32 (N, n_classes): softmax, or sigmoid for multi-label tasks
    (``logits=True``: the raw logits).

    ``images`` is a Split, or a tensor (N, C, H, W) of uint8 (0..255) or floats on the model's
    [-1, 1] scale (then give ``task`` for multi-label models)."""
    if isinstance(images, Split):
        task = images.task
    x = _images(images)
    out = _batched(model, model, x, batch_size)
    if len(x) == 0:
        raise ValueError("no images to predict: the split or tensor is empty")
    if not logits:
        out = torch.sigmoid(out) if task == MULTILABEL else torch.softmax(out, 1)
    return out.cpu().numpy()


def embeddings(
    model: nn.Module, images: Split | torch.Tensor | np.ndarray, *, batch_size: int = 256
) -> np.ndarray:
    """The model's penultimate features (``model.embed``), float32 (N, D)."""
    if not hasattr(model, "embed"):
        raise TypeError(f"{type(model).__name__} has no .embed(x) method (medlab's models do)")
    x = _images(images)
    if len(x) == 0:
        raise ValueError("no images to embed: the split or tensor is empty")
    return _batched(model.embed, model, x, batch_size).cpu().numpy()


def evaluate(
    model: nn.Module, split: Split, *, scores: np.ndarray | None = None
) -> dict[str, float]:
    """MedMNIST ACC and AUC of ``model`` on ``split`` (see :mod:`medlab.metrics`)."""
    if not isinstance(split, Split):
        raise TypeError(f"evaluate needs a medlab Split, got {type(split).__name__}")
    if len(split) == 0:
        raise ValueError(f"the {split.split} split of {split.name} is empty: nothing to evaluate")
    if scores is None:
        scores = predict(model, split)
        if scores.shape[1] != split.n_classes:
            raise ValueError(
                f"the model has {scores.shape[1]} outputs but {split.name} has "
                f"{split.n_classes} classes: build it with n_classes=data.n_classes"
            )
    return medmnist_metrics(split.numpy_labels(), scores, split.task, n_classes=split.n_classes)
