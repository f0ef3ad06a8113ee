"""Attribution maps as a figure: one row per image, the image then each method's map.

Not :func:`medlab.plots.image_grid`: that draws uint8 pictures in one image trace, while maps
are signed values that need a diverging colour scale, one shared colour bar and a hover value
per pixel (one heatmap per cell)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from medlab.explain.common import as_input
from medlab.plots import finish

__all__ = ["plot_maps"]


def _check_maps(x: torch.Tensor, maps: Mapping[str, np.ndarray], n: int) -> None:
    if not maps:
        raise ValueError("maps is empty; pass {method name: (N, H, W) array}")
    for name, m in maps.items():
        if np.shape(m)[0] < n or np.shape(m)[1:] != tuple(x.shape[-2:]):
            raise ValueError(
                f"maps[{name!r}] has shape {np.shape(m)}, expected "
                f"({len(x)}, {x.shape[-2]}, {x.shape[-1]})"
            )


def _add_row(fig: go.Figure, i: int, image: torch.Tensor, maps: list[np.ndarray]) -> None:
    """Row ``i`` (0-based): the image as a picture, then each map scaled by its largest |value|."""
    img = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    fig.add_trace(go.Image(z=img, hoverinfo="skip"), row=i + 1, col=1)
    for j, m in enumerate(maps):
        m = np.asarray(m, dtype=np.float64)
        scale = np.abs(m).max()
        fig.add_trace(
            go.Heatmap(
                z=m / scale if scale > 0 else m,
                coloraxis="coloraxis",
                hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>",
            ),
            row=i + 1,
            col=j + 2,
        )


def _style(fig: go.Figure, n: int, cols: int) -> None:
    """One diverging colour bar; no ticks; every cell square and the right way up."""
    fig.update_layout(
        coloraxis=dict(
            colorscale="RdBu_r", cmin=-1, cmax=1, colorbar=dict(title="attribution<br>(normalised)")
        )
    )
    fig.update_xaxes(showticklabels=False, ticks="", showline=False)
    fig.update_yaxes(
        showticklabels=False,
        ticks="",
        showline=False,
        autorange="reversed",
        scaleanchor="x",
        constrain="domain",
    )
    for r in range(1, n + 1):
        for c in range(1, cols + 1):
            fig.update_yaxes(
                scaleanchor=fig.get_subplot(r, c).xaxis.plotly_name.replace("axis", ""),
                row=r,
                col=c,
            )


def plot_maps(
    images: torch.Tensor | np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    row_labels: Sequence[str] | None = None,
    title: str = "Attribution maps",
    max_rows: int = 8,
) -> Any:
    """One row per image: the image, then each method's map (normalised per map to [-1, 1] by
    its largest absolute value; red = evidence for the target class, blue = against).

    ``images``: uint8 (N, C, H, W) (or model-scale float); ``maps[name]``: (N, H, W).
    Returns a plotly Figure.
    """
    x = as_input(images)
    n = min(len(x), max_rows)
    _check_maps(x, maps, n)
    names = list(maps)
    cols = 1 + len(names)
    fig = make_subplots(
        rows=n,
        cols=cols,
        column_titles=["image", *names],
        row_titles=list(row_labels[:n]) if row_labels is not None else None,
        horizontal_spacing=0.01,
        vertical_spacing=0.01,
    )
    for i in range(n):
        _add_row(fig, i, x[i], [maps[name][i] for name in names])
    _style(fig, n, cols)
    h, w = x.shape[-2:]
    return finish(
        fig, title=title, x=f"{w} px per panel", y=f"{h} px per panel", height=140 * n + 120
    )
