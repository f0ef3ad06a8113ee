"""Federated learning across simulated hospitals: harmonisation, FedAvg, FedProx, secure aggregation.

The lesson's algorithms are written plainly here; the rest (data, training loop, scenarios,
grids) comes from the medlab core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["harmonise"]

HARMONISE_METHODS = ("histogram", "zscore")


def _check_uint8_images(name: str, x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a uint8 tensor (N, C, H, W), got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise TypeError(
            f"{name} must be uint8 (N, C, H, W) as in Split.images, got {x.dtype}; "
            "pass the raw images, not model inputs from to_input"
        )
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, C, H, W) with N >= 1, got {tuple(x.shape)}")
    return x


def harmonise(
    images: torch.Tensor, reference: torch.Tensor, *, method: str = "histogram"
) -> torch.Tensor:
    """Map each image's intensities onto the reference set's, channel by channel.

    ``images`` (N, C, H, W) and ``reference`` (M, C, H', W') are uint8 tensors; returns uint8
    (N, C, H, W). ``method="histogram"`` matches each image's histogram to the reference set's
    pooled histogram (``skimage.exposure.match_histograms``); ``method="zscore"`` gives each
    image the reference set's pooled mean and standard deviation (intensity units 0-255).
    A site runs this on its own images with a reference histogram shared by the federation, so
    no image leaves the site.
    """
    x = _check_uint8_images("images", images)
    ref = _check_uint8_images("reference", reference)
    if x.shape[1] != ref.shape[1]:
        raise ValueError(
            f"images have {x.shape[1]} channels but reference has {ref.shape[1]}: "
            "use a reference set from the same modality"
        )
    if method not in HARMONISE_METHODS:
        raise ValueError(f"method must be one of {HARMONISE_METHODS}, got {method!r}")
    xs = x.numpy()
    rs = ref.numpy()
    out = np.empty(xs.shape, dtype=np.float64)
    if method == "histogram":
        from skimage.exposure import match_histograms

        for c in range(xs.shape[1]):
            # all reference images of channel c as one 2-D image: their pooled histogram
            pooled = rs[:, c].reshape(-1, rs.shape[-1])
            for i in range(xs.shape[0]):
                out[i, c] = match_histograms(xs[i, c], pooled)
    else:
        for c in range(xs.shape[1]):
            r = rs[:, c].astype(np.float64)
            mu, sigma = r.mean(), r.std()
            v = xs[:, c].astype(np.float64)
            m = v.mean(axis=(1, 2), keepdims=True)
            s = v.std(axis=(1, 2), keepdims=True)
            out[:, c] = (v - m) / np.where(s > 0, s, 1.0) * sigma + mu
    return torch.from_numpy(np.clip(np.rint(out), 0, 255).astype(np.uint8))
