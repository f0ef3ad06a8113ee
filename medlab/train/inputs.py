"""What a model takes: uint8 images to the models' [-1, 1] float scale (:func:`to_input`, the
one conversion, and :func:`as_model_input` for images that may already be floats), batch-wise
augmentation on that scale (:class:`BatchAugment`) and the check that a model can take them
(:func:`check_model`)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from medlab.utils import check_scalar

__all__ = ["MAX_INPUT", "to_input", "to_uint8", "as_model_input", "BatchAugment", "check_model"]


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) in 0..255 -> float32 in [-1, 1], the models' input scale."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(f"to_input expects a uint8 tensor (N, C, H, W), got {got}")
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_input`: floats on the models' [-1, 1] scale (N, C, H, W) ->
    uint8 images in 0..255 (rounded, clipped): a generator's samples, an augmented batch."""
    return ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def as_model_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> [-1, 1] floats; floats are taken as already on the model's scale."""
    x = torch.as_tensor(x)
    if x.dtype == torch.uint8:
        return to_input(x)
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 (0..255) or float on [-1, 1], got {x.dtype}")
    x = x.float()
    if x.numel() and float(x.abs().max()) > MAX_INPUT:  # pixels on 0..255, not [-1, 1]
        raise ValueError(
            f"float images must be on the models' [-1, 1] scale, but these reach "
            f"{float(x.abs().max()):.4g} (0..255 pixels?): pass the uint8 images, or "
            "medlab.train.to_input(uint8_images)"
        )
    return x


#: Float model inputs beyond this magnitude are refused as not on the [-1, 1] scale (room is
#: left for augmentation, corruptions and attacks that step a little outside it).
MAX_INPUT = 4.0


@dataclass
class BatchAugment:
    """Random augmentation of a whole float batch (N, C, H, W) in one call.

    flip: probability of a horizontal flip; rotate: max rotation in degrees; shift: max
    translation as a fraction of the image side; scale: max relative zoom (0.1 = 0.9..1.1);
    brightness/contrast: max additive/multiplicative jitter on the [-1, 1] scale.
    """

    flip: float = 0.5
    rotate: float = 10.0
    shift: float = 0.08
    scale: float = 0.08
    brightness: float = 0.1
    contrast: float = 0.1

    def __post_init__(self) -> None:
        for name in ("flip", "shift", "scale", "brightness", "contrast"):
            check_scalar(f"BatchAugment.{name}", getattr(self, name), kind=float, lo=0.0, hi=1.0)
        check_scalar("BatchAugment.rotate", self.rotate, kind=float, lo=0.0, hi=180.0,
                     fix="an angle in degrees")  # fmt: skip

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``x`` augmented, on x's device; the random draws come from ``generator`` (a CPU
        generator) and then move there, so a seed gives the same draws on any device."""
        n = x.shape[0]

        def u(lo: float, hi: float) -> torch.Tensor:
            return (torch.rand(n, generator=generator) * (hi - lo) + lo).to(x.device)

        angle = u(-self.rotate, self.rotate) * math.pi / 180.0
        zoom = u(1.0 - self.scale, 1.0 + self.scale)
        flip = torch.where(torch.rand(n, generator=generator) < self.flip, -1.0, 1.0).to(x.device)
        tx, ty = u(-self.shift, self.shift) * 2, u(-self.shift, self.shift) * 2
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # pad with the darkest value (-1): MedMNIST backgrounds are dark
        out = (
            F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            - 1.0
        )
        c = u(1.0 - self.contrast, 1.0 + self.contrast).view(n, 1, 1, 1)
        b = u(-self.brightness, self.brightness).view(n, 1, 1, 1)
        return (out * c + b).clamp(-1.0, 1.0)


def check_model(model: nn.Module, x: torch.Tensor | None = None) -> None:
    """One clear error where ``model`` cannot take medlab's inputs: weights that are not float32
    (``model.double()``: TypeError, call ``model.float()``), or weights on another device than
    the inputs ``x`` (CPU when not given) or on the ``meta`` device (no values)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    where = x.device if x is not None else torch.device("cpu")
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.device.type == "meta":
            raise ValueError(
                "the model's weights are on the 'meta' device (shapes only, no values): build "
                "or load it with real weights, then move the model with model.to('cpu')"
            )
        if t.device != where:
            raise ValueError(
                f"the model is on {t.device} but the images are on {where}: move the model "
                f"with model.to('{where}')"
            )
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if dtypes - {torch.float32}:
        got = ", ".join(sorted(str(d).replace("torch.", "") for d in dtypes))
        raise TypeError(
            f"the model's weights are {got} but medlab's images are float32: call "
            "model.float() first"
        )
