"""What every attribution method of :mod:`medlab.explain` shares: its inputs (images on the
model's [-1, 1] scale, one target class per image), its output (float32 maps (N, H, W)) and the
black baseline."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeAlias

import numpy as np
import torch
from torch import nn

from medlab.train import eval_mode, predict, to_input
from medlab.utils import check_scalar

__all__ = [
    "BLACK",
    "Images",
    "Target",
    "as_input",
    "model_logits",
    "target_classes",
    "as_maps",
    "check_baseline",
    "conv_layer",
    "layer_output",
    "eval_mode",
]

#: The model's input value of a black pixel: the baseline of IG, occlusion, LIME and deletion.
BLACK = -1.0
#: Images to explain: uint8 (N, C, H, W) as stored in a Split, or float on the model's scale.
Images: TypeAlias = torch.Tensor | np.ndarray
#: The class explained: None (the model's prediction), one int, or one per image.
Target: TypeAlias = int | Sequence[int] | np.ndarray | torch.Tensor | None


def as_input(images: Images) -> torch.Tensor:
    """uint8 (N, C, H, W) -> [-1, 1] float; float input is taken as already on that scale."""
    x = torch.as_tensor(images)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("images is empty; pass at least one image")
    if x.dtype == torch.uint8:
        return to_input(x)
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 or float, got {x.dtype}")
    return x.float()


def model_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The model's logits (N, K) for model-scale images, in batches."""
    return torch.from_numpy(predict(model, x, logits=True, batch_size=batch_size))


def target_classes(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
    """Target class per image, int64 (N,): the model's prediction when ``target`` is None."""
    n = x.shape[0]
    if target is None:
        return model_logits(model, x).argmax(1)
    t = torch.as_tensor(np.asarray(target)).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.shape != (n,):
        raise ValueError(
            f"target must be None, an int or one class per image ({n}), got shape {tuple(t.shape)}"
        )
    k = model_logits(model, x[:1]).shape[1]
    if (t < 0).any() or (t >= k).any():
        raise ValueError(f"target classes must be in 0..{k - 1}, got {t.unique().tolist()}")
    return t


def as_maps(a: torch.Tensor | np.ndarray, h: int, w: int) -> np.ndarray:
    """Attributions -> maps: channels summed, float32 (N, H, W)."""
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if a.ndim == 4:
        a = a.sum(1)
    if a.shape[1:] != (h, w):
        raise RuntimeError(f"attribution has shape {a.shape}, expected (N, {h}, {w})")
    return a.astype(np.float32)


def check_baseline(name: str, value: Any) -> float:
    """A constant baseline image value on the model's [-1, 1] scale (finite, not NaN)."""
    return check_scalar(
        name,
        value,
        kind=float,
        fix=f"pass a pixel value on the model's scale, e.g. {BLACK} (black)",
    )


def conv_layer(model: nn.Module, layer: nn.Module | None = None) -> nn.Module:
    """The layer Grad-CAM explains: ``layer``, else the model's ``last_conv``."""
    layer = layer if layer is not None else getattr(model, "last_conv", None)
    if layer is None:
        raise ValueError("the model has no .last_conv; pass layer=<the conv module to explain>")
    return layer


@contextmanager
def layer_output(layer: nn.Module) -> Iterator[list[torch.Tensor]]:
    """A list that catches every output of ``layer`` inside the ``with`` block (a forward hook,
    removed on exit)."""
    caught: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _module, _inputs, out: caught.append(out))
    try:
        yield caught
    finally:
        hook.remove()
