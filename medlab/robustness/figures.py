"""Notebook 08's figures: rows of images and the corruption heatmap."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from medlab.plots import finish, image_grid

__all__ = ["image_rows", "heatmap"]


def image_rows(
    rows: dict[str, Any], *, title: str, col_labels: list[str] | None = None
) -> go.Figure:
    """A grid of greyscale images: one row per entry of ``rows`` (float (N, 1, H, W) on [0, 1]
    or uint8), the same N per row. Returns a plotly figure (house style)."""
    arrs = []
    for name, v in rows.items():
        v = torch.as_tensor(v)
        v = v.float() / 255.0 if v.dtype == torch.uint8 else v.float()
        if v.ndim != 4 or v.shape[1] != 1:
            raise ValueError(f"row {name!r}: need greyscale images (N, 1, H, W), got {v.shape}")
        arrs.append((v.clamp(0, 1).cpu().numpy() * 255).astype(np.uint8))
    if len({a.shape for a in arrs}) != 1:
        raise ValueError("every row needs the same number and size of images")
    return image_grid(arrs, list(rows), title=title, x="image", y="row",
                      col_names=col_labels or None)  # fmt: skip


def heatmap(table: Any, *, clean: float, title: str) -> go.Figure:
    """Accuracy per corruption (rows) and severity (columns) as a plotly heatmap; ``clean`` is
    the clean accuracy, shown in the colour bar's title."""
    z = np.asarray(table, dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"severity {c}" for c in table.columns],
            y=list(table.index),
            zmin=0,
            zmax=1,
            colorscale="RdYlGn",
            text=np.round(z, 2),
            texttemplate="%{text}",
            colorbar=dict(title=f"accuracy (clean {clean:.2f})"),
        )
    )
    return finish(fig, title=title, x="MedMNIST-C severity (1 mild - 5 severe)", y="corruption")
