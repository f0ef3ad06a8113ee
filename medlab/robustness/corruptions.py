"""MedMNIST-C-style acquisition corruptions: noise, blur, contrast, brightness and JPEG
compression at five severities, with MedMNIST-C's parameters for the modality."""

from __future__ import annotations

import dataclasses
import io
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medlab.data import MedMNISTData, Split
from medlab.utils import check_int

__all__ = ["CORRUPTIONS", "modality", "corruption_names", "corrupt", "corrupt_split"]

#: Parameters per modality, from MedMNIST-C (Di Salvo et al. 2024, medmnistc-api
#: ``corruptions/registry.py``): chest X-ray (``pneumoniamnist``/``chestmnist``) and breast
#: ultrasound (``breastmnist``). Five severities each. MedMNIST-C applies them to 224 px images;
#: here they act on the 28 px images in their own pixels, so a blur of the same width covers
#: more anatomy than in the benchmark.
CORRUPTIONS: dict[str, dict[str, tuple[str, tuple[Any, ...]]]] = {
    "xray": {
        "gaussian_noise": ("gaussian_noise", (0.04, 0.05, 0.06, 0.07, 0.08)),
        "gaussian_blur": ("gaussian_blur", (3, 5, 7, 9, 11)),
        "contrast_down": ("contrast", (0.9, 0.8, 0.7, 0.6, 0.4)),
        "brightness_up": ("brightness", (1.1, 1.2, 1.3, 1.4, 1.5)),
        "brightness_down": ("brightness", (0.9, 0.8, 0.7, 0.6, 0.5)),
        "jpeg_compression": ("jpeg", (50, 30, 15, 10, 7)),
    },
    "ultrasound": {
        "speckle_noise": ("speckle_noise", (0.10, 0.15, 0.20, 0.25, 0.30)),
        "motion_blur": ("motion_blur", ((5, 5), (9, 7), (9, 10), (13, 10), (17, 12))),
        "contrast_down": ("contrast", (0.9, 0.8, 0.7, 0.6, 0.4)),
        "brightness_up": ("brightness", (1.4, 1.5, 1.6, 1.8, 2.0)),
        "brightness_down": ("brightness", (0.55, 0.5, 0.45, 0.4, 0.3)),
        "jpeg_compression": ("jpeg", (50, 30, 15, 10, 7)),
    },
}
_MODALITY = {"pneumoniamnist": "xray", "chestmnist": "xray", "breastmnist": "ultrasound"}


def modality(data: MedMNISTData | str) -> str:
    """``"xray"`` or ``"ultrasound"`` for a dataset (or its name), for :data:`CORRUPTIONS`."""
    name = data.name if isinstance(data, MedMNISTData) else str(data)
    for prefix, mod in _MODALITY.items():
        if name.startswith(prefix):
            return mod
    raise ValueError(
        f"no MedMNIST-C corruption parameters for {name!r}; pass modality='xray' or "
        f"'ultrasound' explicitly ({sorted(CORRUPTIONS)})"
    )


def corruption_names(modality: str) -> list[str]:
    """The corruptions defined for ``modality``."""
    if modality not in CORRUPTIONS:
        raise ValueError(f"modality must be one of {sorted(CORRUPTIONS)}, got {modality!r}")
    return list(CORRUPTIONS[modality])


def _spec(modality: str, name: str) -> tuple[str, tuple[Any, ...]]:
    names = corruption_names(modality)
    if name not in names:
        raise ValueError(f"unknown corruption {name!r} for {modality}; choose one of {names}")
    return CORRUPTIONS[modality][name]


def _pil_each(u8: np.ndarray, fn: Any) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(u8)
    for i in range(u8.shape[0]):
        for c in range(u8.shape[1]):
            out[i, c] = np.asarray(fn(Image.fromarray(u8[i, c], mode="L")), dtype=np.uint8)
    return out


def _jpeg(img: Any, quality: int) -> Any:
    from PIL import Image

    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("L")


def _gaussian_blur(x: torch.Tensor, k: int) -> torch.Tensor:
    """torchvision's ``gaussian_blur(img, k)``: sigma = 0.3 ((k - 1) / 2 - 1) + 0.8, reflect."""
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    r = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    w = torch.exp(-(r**2) / (2 * sigma**2))
    w = w / w.sum()
    c = x.shape[1]
    x = F.pad(x, (k // 2, k // 2, k // 2, k // 2), mode="reflect")
    x = F.conv2d(x, w.view(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, w.view(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)


def _motion_blur(
    x: torch.Tensor, radius: float, sigma: float, angles: torch.Tensor
) -> torch.Tensor:
    """ImageMagick's MotionBlurImage: a one-sided Gaussian-weighted streak of 2*radius+1 pixels
    along each image's angle (degrees), edge pixels repeated."""
    n, _, h, w = x.shape
    width = int(2 * math.ceil(radius) + 1)
    weights = torch.exp(-(torch.arange(width, dtype=torch.float32) ** 2) / (2 * sigma**2))
    weights = weights / weights.sum()
    a = torch.deg2rad(angles.float())
    dx, dy = torch.cos(a), torch.sin(a)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")  # fmt: skip
    out = torch.zeros_like(x)
    for i in range(width):
        gx = (xs + i * dx.view(n, 1, 1)) / (w - 1) * 2 - 1
        gy = (ys + i * dy.view(n, 1, 1)) / (h - 1) * 2 - 1
        grid = torch.stack([gx, gy], -1)
        out = out + weights[i] * F.grid_sample(
            x, grid, mode="bilinear", padding_mode="border", align_corners=True
        )
    return out


def corrupt(images: Any, name: str, severity: int, *, modality: str, seed: int = 0) -> torch.Tensor:
    """A MedMNIST-C corruption of uint8 images (N, C, H, W) -> uint8 (N, C, H, W).

    name: one of :func:`corruption_names` for ``modality``; severity: 1 (mild) to 5. Noise and
    the motion-blur angle (uniform in [-45, 45] degrees) are drawn from ``seed``. As in
    MedMNIST-C, noisy float images are truncated to uint8, PIL does brightness (a blend with
    black), contrast (a blend with the mean grey) and JPEG, and the Gaussian blur's sigma follows
    torchvision's rule for the kernel size.
    """
    kind, params = _spec(modality, name)
    severity = check_int("severity", severity, 1, 5)
    x = images.images if isinstance(images, Split) else torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise TypeError(
            f"corrupt expects uint8 images (N, C, H, W), got {x.dtype} {tuple(x.shape)}"
        )
    c = params[severity - 1]
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    f = x.float() / 255.0
    if kind == "gaussian_noise":
        f = (f + c * torch.randn(f.shape, generator=gen)).clamp(0, 1)
    elif kind == "speckle_noise":
        f = (f + f * c * torch.randn(f.shape, generator=gen)).clamp(0, 1)
    elif kind == "gaussian_blur":
        return (_gaussian_blur(x.float(), int(c))).round().clamp(0, 255).to(torch.uint8)
    elif kind == "motion_blur":
        angles = torch.rand(len(x), generator=gen) * 90 - 45
        f = _motion_blur(f, c[0], c[1], angles).clamp(0, 1)
    else:
        from PIL import ImageEnhance

        fn = {
            "brightness": lambda im: ImageEnhance.Brightness(im).enhance(c),
            "contrast": lambda im: ImageEnhance.Contrast(im).enhance(c),
            "jpeg": lambda im: _jpeg(im, c),
        }[kind]
        return torch.from_numpy(_pil_each(x.cpu().numpy(), fn))  # PIL: on the CPU
    return (f * 255).to(torch.uint8)  # truncation, as MedMNIST-C's astype(np.uint8)


def corrupt_split(split: Split, name: str, severity: int, *, modality: str, seed: int = 0) -> Split:
    """A copy of ``split`` with its images corrupted (labels unchanged)."""
    if not isinstance(split, Split):
        raise TypeError(f"corrupt_split needs a medlab Split, got {type(split).__name__}")
    imgs = corrupt(split.images, name, severity, modality=modality, seed=seed)
    return dataclasses.replace(split, images=imgs, labels=split.labels.clone())
