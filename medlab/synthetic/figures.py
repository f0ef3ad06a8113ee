"""Notebook 07's figures."""

from __future__ import annotations

import plotly.graph_objects as go
import torch

from medlab.plots import image_grid

__all__ = ["pairs_figure"]


def pairs_figure(
    top: torch.Tensor, bottom: torch.Tensor, *, title: str, rows: tuple[str, str]
) -> go.Figure:
    """Two rows of uint8 images (N, C, H, W) one above the other, column j pairing ``top[j]``
    with ``bottom[j]`` (e.g. synthetic samples and their nearest training images)."""
    if top.shape != bottom.shape or top.dtype != torch.uint8 or top.ndim != 4:
        raise ValueError("top and bottom must be uint8 tensors (N, C, H, W) of the same shape")
    return image_grid([top, bottom], list(rows), title=title, x="pair", y="image")
