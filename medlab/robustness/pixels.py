"""Pixel space [0, 1]: the wrapper that puts a medlab model's normalisation inside, so an
attack budget counts grey levels, and the conversions and checks of pixel images."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medlab.data import Split
from medlab.train import check_model, eval_mode
from medlab.utils import check_scalar

__all__ = ["MEAN", "STD", "PixelModel", "to_pixels", "predict_pixels"]

#: medlab's input scale as a normalisation of [0, 1] pixels: ``to_input(u8) = (u8/255 - MEAN)/STD``.
MEAN, STD = 0.5, 0.5


class PixelModel(nn.Module):
    """``model`` taking pixels on [0, 1]: ``forward(x) = model((x - mean) / std)``.

    x: float (N, C, H, W) on [0, 1]; output: the wrapped model's logits (N, n_classes). The
    wrapper holds no parameters of its own; it shares the model's (train/eval mode included).
    """

    def __init__(self, model: nn.Module, *, mean: float = MEAN, std: float = STD) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"PixelModel wraps a torch nn.Module, got {type(model).__name__}")
        std = check_scalar("std", std, kind=float, lo=0, lo_inclusive=False)
        mean = check_scalar("mean", mean, kind=float)
        self.model, self.mean, self.std = model, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def _pixel_model(model: nn.Module) -> PixelModel:
    return model if isinstance(model, PixelModel) else PixelModel(model)


def to_pixels(images: Any) -> torch.Tensor:
    """uint8 images (N, C, H, W) in 0..255 -> float32 on [0, 1] (a Split's images work too)."""
    x = images.images if isinstance(images, Split) else torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise TypeError(
            f"to_pixels expects uint8 images (N, C, H, W), got {x.dtype} {tuple(x.shape)}; "
            "floats on [-1, 1] map to pixels as (x + 1) / 2"
        )
    return x.float() / 255.0


def _check_xy(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4:
        raise TypeError(
            "x must be a float tensor (N, C, H, W) of pixels on [0, 1]; convert uint8 images "
            "with medlab.robustness.to_pixels"
        )
    if len(x) and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(
            f"x must hold pixels on [0, 1], got values in [{float(x.min()):.3g}, "
            f"{float(x.max()):.3g}]: the model's [-1, 1] input maps to pixels as (x + 1) / 2"
        )
    y = torch.as_tensor(y)
    if y.shape != (len(x),) or y.is_floating_point():
        raise ValueError(f"y must be integer class labels of shape ({len(x)},), got {y.shape}")
    return x.float(), y.long()


@torch.no_grad()
def _predict_pixels(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Softmax probabilities (N, K) of pixel images x on [0, 1]."""
    net = _pixel_model(model)
    check_model(net, x)
    with eval_mode(net):
        return torch.cat(
            [torch.softmax(net(x[i : i + batch_size]), 1) for i in range(0, len(x), batch_size)]
        )


def predict_pixels(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities (N, K) of ``model`` on pixel images x (N, C, H, W) on [0, 1]."""
    x, _ = _check_xy(x, torch.zeros(len(x), dtype=torch.long))
    return _predict_pixels(model, x)
