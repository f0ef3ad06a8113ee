"""The simulated presentation shift of the HCM preset: how the minority group's disease
presents differently (smaller anatomy, a subtler average disease pattern), applied to uint8
images with seeds, and which class of a binary task means "disease"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from medlab.data import MedMNISTData, Split
from medlab.utils import check_int, check_scalar

__all__ = ["PresentationShift", "disease_pattern", "apply_shift", "disease_class"]

# Per-image zoom jitter, as a fraction of the zoom-out (0.8 -> zooms drawn from 0.75..0.85).
_ZOOM_JITTER = 0.25

ShiftFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class PresentationShift:
    """How the minority group's disease presents differently (the simulated mechanism).

    Attributes:
        zoom: anatomy scale of minority images (1 = unchanged, 0.8 = 20 % smaller, range
            [0.5, 1.5]). Each image gets a seeded jitter of +/- 25 % of the zoom-out.
        contrast: share of the average disease pattern a diseased minority image keeps
            (1 = unchanged, 0.5 = half as strong, 0 = none; range [0, 1]). The pattern is the
            pixel-wise mean diseased minus mean healthy training image.
    """

    zoom: float = 0.8
    contrast: float = 0.5

    def __post_init__(self) -> None:
        check_scalar("PresentationShift.zoom", self.zoom, kind=float, lo=0.5, hi=1.5,
                     fix="1 = no change, < 1 = smaller anatomy")  # fmt: skip
        check_scalar("PresentationShift.contrast", self.contrast, kind=float, lo=0, hi=1,
                     fix="1 = full disease signal, 0 = none")  # fmt: skip

    @classmethod
    def from_strength(cls, strength: float) -> PresentationShift:
        """One knob for sliders: ``strength`` in [0, 2]; 0 = no shift, 1 = zoom 0.8 and half
        the average disease pattern, 2 = zoom 0.6 and none of the average disease pattern."""
        strength = check_scalar("strength", strength, kind=float, lo=0, hi=2,
                                fix="0 = no shift, 1 = default")  # fmt: skip
        return cls(zoom=round(1.0 - 0.2 * strength, 6), contrast=round(1.0 - 0.5 * strength, 6))

    @property
    def is_identity(self) -> bool:
        return self.zoom == 1.0 and self.contrast == 1.0


def _zoom(x: torch.Tensor, zooms: torch.Tensor) -> torch.Tensor:
    """Scale each image (N, C, H, W float 0..255) about its centre by ``zooms`` (N,); the area
    uncovered by a zoom-out is filled with that image's border mean (its background)."""
    n = x.shape[0]
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)
    bg = border.mean(dim=(1, 2)).view(n, 1, 1, 1)
    inv = 1.0 / zooms
    zero = torch.zeros_like(inv)
    theta = torch.stack([torch.stack([inv, zero, zero], 1), torch.stack([zero, inv, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x - bg, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + bg


def disease_pattern(
    images: torch.Tensor, labels: torch.Tensor, *, positive: int = 1
) -> torch.Tensor:
    """The average disease pattern: mean diseased minus mean healthy image, float (C, H, W) in
    grey levels (-255..255)."""
    labels = torch.as_tensor(labels).reshape(-1)
    pos = labels == positive
    if not bool(pos.any()) or bool(pos.all()):
        raise ValueError(
            "disease_pattern needs both diseased and healthy images; pass "
            "pattern=<mean diseased - mean healthy image (C, H, W)> instead"
        )
    x = images.float()
    return x[pos].mean(0) - x[~pos].mean(0)


def apply_shift(
    images: torch.Tensor,
    labels: torch.Tensor,
    shift: PresentationShift,
    *,
    seed: int = 0,
    positive: int = 1,
    pattern: torch.Tensor | None = None,
) -> torch.Tensor:
    """Give images the minority group's presentation (the caller picks the minority's images).

    1. Subtler disease (diseased images only): ``x <- x - (1 - contrast) * pattern``, where
       ``pattern`` is the average disease pattern (:func:`disease_pattern`), so a diseased
       image keeps only ``contrast`` of the typical difference between disease and health
       (its individual variation is kept).
    2. Smaller anatomy (every image): zoom about the centre by ``shift.zoom`` (each image
       jittered by +/- 25 % of the zoom-out, seeded), the uncovered border filled with the
       image's own background (border mean).

    Args:
        images: uint8 (N, C, H, W); labels: int (N,) class indices.
        shift: the :class:`PresentationShift`; seed: seeds the per-image zoom jitter.
        positive: the class that is "disease".
        pattern: float (C, H, W); default: :func:`disease_pattern` of ``images`` (pass the
            training split's so every split uses the same pattern).
    Returns uint8 (N, C, H, W), a new tensor.
    """
    if not isinstance(shift, PresentationShift):
        raise TypeError(f"shift must be a PresentationShift, got {type(shift).__name__}")
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = (images.dtype, tuple(images.shape)) if isinstance(images, torch.Tensor) else images
        raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {got}")
    labels = torch.as_tensor(labels).reshape(-1)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries but images has {images.shape[0]}")
    seed = check_int("seed", seed, 0)
    x = images.float()
    if len(x) == 0 or shift.is_identity:
        return images.clone()
    pos = labels == positive
    if shift.contrast < 1.0 and bool(pos.any()):
        if pattern is None:
            pattern = disease_pattern(images, labels, positive=positive)
        pattern = torch.as_tensor(pattern).float()
        if pattern.shape != x.shape[1:]:
            raise ValueError(
                f"pattern must have shape {tuple(x.shape[1:])} (C, H, W), got "
                f"{tuple(pattern.shape)}"
            )
        x = subtler_disease(x, pos, pattern, shift.contrast)
    if shift.zoom != 1.0:
        gen = torch.Generator().manual_seed(seed)
        u = torch.rand(len(x), generator=gen) * 2.0 - 1.0
        zooms = shift.zoom + (1.0 - shift.zoom) * _ZOOM_JITTER * u
        x = _zoom(x, zooms)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def disease_class(data: MedMNISTData | Split) -> int:
    """The class index that means "disease" for a binary task: the one whose label name says
    malignant/pneumonia/abnormal/disease/positive, else 1 (BreastMNIST: 0 = malignant)."""
    names = {k: v.lower() for k, v in data.label_names.items()}
    for word in ("malignant", "pneumonia", "abnormal", "disease", "positive", "tumor"):
        hits = [k for k, v in names.items() if word in v]
        if len(hits) == 1:
            return hits[0]
    return 1


# fmt: off
# %% exported from notebooks/03_bias.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def subtler_disease(x, diseased, pattern, contrast):
    """Step 1 of the minority's presentation: each diseased image keeps only `contrast` of the
    average disease pattern, x <- x - (1 - contrast) * pattern (float (N, C, H, W), in place)."""
    x[diseased] = x[diseased] - (1.0 - contrast) * pattern
    return x
# %% end of export
# fmt: on
