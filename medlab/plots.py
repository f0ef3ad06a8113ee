"""One plotting style for the curriculum (plotly, template ``"medlab"``).

Every helper returns a ``plotly.graph_objects.Figure`` with a title, axis labels and units.
:func:`finish` enforces that for figures built elsewhere. Figures render in JupyterLab and in a
static HTML export (plotly.js is embedded once per notebook, so it works offline).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from medlab.data import Split

__all__ = [
    "finish",
    "line_with_band",
    "learning_curves",
    "confusion_matrix",
    "montage",
    "bar",
    "COLORS",
]

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]

pio.templates["medlab"] = go.layout.Template(
    layout=go.Layout(
        font=dict(family="Helvetica, Arial, sans-serif", size=13),
        colorway=COLORS,
        margin=dict(l=70, r=30, t=70, b=60),
        legend=dict(bgcolor="rgba(255,255,255,0.6)"),
    )
)
pio.templates.default = "simple_white+medlab"
try:  # inside a Jupyter kernel: interactive in Lab, embedded plotly.js for static exports
    from IPython import get_ipython

    if get_ipython() is not None and "IPKernelApp" in get_ipython().config:
        pio.renderers.default = "plotly_mimetype+notebook"
except ImportError:  # pragma: no cover
    pass


def finish(fig: go.Figure, *, title: str, x: str, y: str, height: int | None = None) -> go.Figure:
    """Apply the house style and require a title and both axis labels (with units)."""
    if not (title and x and y):
        raise ValueError("every figure needs a title and x/y axis labels (with units)")
    fig.update_layout(title=dict(text=title, x=0.02, xanchor="left"), height=height)
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def line_with_band(
    x: Sequence[float],
    series: dict[str, np.ndarray],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_x: bool = False,
    band: str = "std",
) -> go.Figure:
    """Mean line with a +/- band per series. ``series[name]`` has shape (n_repeats, len(x));
    band is ``"std"`` (+/- 1 sample SD over repeats, ddof=1, as everywhere in medlab; no band
    with one repeat) or ``"minmax"``."""
    if band not in ("std", "minmax"):
        raise ValueError(f"band must be 'std' or 'minmax', got {band!r}")
    fig = go.Figure()
    for i, (name, vals) in enumerate(series.items()):
        vals = np.atleast_2d(np.asarray(vals, dtype=float))
        mean = vals.mean(0)
        if band == "std":
            spread = vals.std(0, ddof=1) if len(vals) > 1 else np.zeros_like(mean)
            lo, hi = mean - spread, mean + spread
        else:
            lo, hi = vals.min(0), vals.max(0)
        color = COLORS[i % len(COLORS)]
        fig.add_trace(
            go.Scatter(
                x=list(x) + list(x)[::-1],
                y=list(hi) + list(lo)[::-1],
                fill="toself",
                line=dict(width=0),
                fillcolor=color,
                opacity=0.18,
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(x=list(x), y=mean, mode="lines+markers", name=name, line=dict(color=color))
        )
    if log_x:
        fig.update_xaxes(type="log")
    return finish(fig, title=title, x=xlabel, y=ylabel)


def learning_curves(
    histories: dict[str, Any], *, metric: str = "val_auc", title: str = "Learning curves"
) -> go.Figure:
    """Validation metric per epoch for several runs; ``histories[name]`` is a
    :class:`~medlab.train.History`."""
    fig = go.Figure()
    for name, h in histories.items():
        df = h.frame()
        fig.add_trace(
            go.Scatter(
                x=df["epoch"],
                y=df[metric],
                mode="lines+markers",
                name=name,
                customdata=df["seconds"],
                hovertemplate="epoch %{x}<br>%{y:.3f}<br>%{customdata:.1f} s",
            )
        )
    label = {
        "val_auc": "validation AUC (0-1)",
        "val_acc": "validation accuracy (0-1)",
        "train_loss": "training loss (cross-entropy, nats)",
    }.get(metric, metric)
    return finish(fig, title=title, x="epoch (passes over the training set)", y=label)


def confusion_matrix(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    labels: dict[int, str],
    *,
    title: str = "Confusion matrix",
    normalize: bool = True,
) -> go.Figure:
    """Heatmap of counts (and row-normalised shares) for single-label tasks."""
    k = len(labels)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)), 1)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    names = [f"{i}: {labels[i]}"[:28] for i in range(k)]
    text = [[f"{cm[i, j]}<br>({share[i, j]:.0%})" for j in range(k)] for i in range(k)]
    fig = go.Figure(
        go.Heatmap(
            z=share if normalize else cm,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            colorbar=dict(title="share of row" if normalize else "count"),
        )
    )
    fig.update_yaxes(autorange="reversed")
    return finish(fig, title=title, x="predicted class", y="true class")


def image_grid(
    rows: Sequence[Any],
    row_names: Sequence[str],
    *,
    title: str,
    x: str = "example",
    y: str = "row",
    col_names: Sequence[str] | None = None,
) -> go.Figure:
    """Rows of images as one labelled picture. ``rows``: one uint8 array or tensor per row,
    each (n, C, H, W) with C in {1, 3} (a shorter row is padded with black); ``row_names`` label
    the rows, ``col_names`` the columns (default 1..n). The axis titles get the image size."""
    arrays = [np.asarray(r, dtype=np.uint8) for r in rows]
    if not arrays or len(arrays) != len(row_names):
        raise ValueError(
            f"image_grid needs one name per row: {len(arrays)} rows, {len(row_names)} names"
        )
    if any(a.ndim != 4 for a in arrays):
        raise ValueError("each row must be an (n, C, H, W) uint8 array")
    c, h, w = arrays[0].shape[1:]
    n = max(len(a) for a in arrays)
    grid = np.zeros((c, h * len(arrays), w * n), dtype=np.uint8)
    for i, a in enumerate(arrays):
        for j, img in enumerate(a):
            grid[:, i * h : (i + 1) * h, j * w : (j + 1) * w] = img
    img = grid.transpose(1, 2, 0)
    fig = go.Figure(go.Image(z=np.repeat(img, 3, axis=2) if c == 1 else img))
    fig.update_yaxes(
        tickvals=[h * (i + 0.5) for i in range(len(arrays))],
        ticktext=list(row_names),
        showgrid=False,
    )
    fig.update_xaxes(
        tickvals=[w * (j + 0.5) for j in range(n)],
        ticktext=list(col_names) if col_names is not None else [str(j + 1) for j in range(n)],
        showgrid=False,
    )
    return finish(
        fig, title=title, x=f"{x} ({w} x {h} px each)", y=y, height=max(250, 60 * len(arrays) + 120)
    )


def montage(
    split: Split, *, per_class: int = 8, seed: int = 0, title: str | None = None
) -> go.Figure:
    """Random real images, one row per class (first label's positives for multi-label)."""
    rng = np.random.default_rng(seed)
    labels = split.labels.numpy()
    rows, names = [], []
    for k, name in split.label_names.items():
        idx = np.flatnonzero(labels[:, k] > 0 if split.multilabel else labels == k)
        take = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        rows.append(split.images[np.asarray(take, dtype=np.int64)].cpu().numpy())
        names.append(f"{k}: {name}"[:30])
    return image_grid(
        rows,
        names,
        title=title or f"{split.name}: random {split.split} images per class",
        x="example",
        y="class",
        col_names=[str(j + 1) for j in range(per_class)],
    )


def bar(
    names: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    errors: Sequence[float] | None = None,
    text_format: str = "{:.3f}",
) -> go.Figure:
    """A simple bar chart with optional error bars and value labels."""
    fig = go.Figure(
        go.Bar(
            x=list(names),
            y=list(values),
            error_y=dict(type="data", array=list(errors)) if errors is not None else None,
            text=[text_format.format(v) for v in values],
            textposition="outside",
            marker_color=[COLORS[i % len(COLORS)] for i in range(len(names))],
        )
    )
    return finish(fig, title=title, x=xlabel, y=ylabel)
