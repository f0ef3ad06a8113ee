"""Lesson 09's figures: accuracy against size or latency per model variant, the reliability
diagram and the coverage-risk curves, in the house style (:mod:`medlab.plots`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from medlab import plots


def tradeoff_figure(table: pd.DataFrame, *, x: str = "size_mb", title: str) -> Any:
    """Accuracy against size (or latency) per model variant: ``table`` has columns ``variant``,
    ``test_acc``, ``test_acc_sd`` and ``x`` (mean over seeds)."""
    labels = {"size_mb": "size on disk (MB)", "latency_ms": "latency per image (ms, batch 1)"}
    fig = go.Figure()
    for i, r in enumerate(table.itertuples()):
        fig.add_trace(
            go.Scatter(
                x=[getattr(r, x)],
                y=[r.test_acc],
                error_y=dict(type="data", array=[r.test_acc_sd]),
                mode="markers+text",
                text=[r.variant],
                textposition="top center",
                name=r.variant,
                marker=dict(size=11, color=plots.COLORS[i % len(plots.COLORS)]),
            )
        )
    fig.update_xaxes(type="log")
    return plots.finish(fig, title=title, x=labels.get(x, x), y="test accuracy (0-1)")


def reliability_figure(tables: dict[str, pd.DataFrame], *, title: str) -> Any:
    """Reliability diagram: accuracy against confidence per bin, one line per table (from
    :func:`reliability`), with the diagonal of perfect calibration; marker size ~ bin size."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(dash="dash", color="grey")))  # fmt: skip
    for i, (name, t) in enumerate(tables.items()):
        fig.add_trace(
            go.Scatter(
                x=t.confidence,
                y=t.accuracy,
                mode="lines+markers",
                name=f"{name} (ECE {t.attrs['ece']:.3f})",
                marker=dict(size=4 + 16 * np.sqrt(t.n / t.n.max()), color=plots.COLORS[i]),
                line=dict(color=plots.COLORS[i]),
            )
        )
    return plots.finish(fig, title=title, x="confidence: max predicted probability (0-1)",
                        y="accuracy in the bin (0-1)")  # fmt: skip


def coverage_risk_figure(
    curves: dict[str, pd.DataFrame], *, title: str, at: float | None = None
) -> Any:
    """Coverage-risk curves (from :func:`coverage_risk`), one per name; ``at``: a vertical
    line at the chosen coverage."""
    fig = go.Figure()
    for i, (name, c) in enumerate(curves.items()):
        c = c[c.coverage >= 0.3]
        fig.add_trace(go.Scatter(x=c.coverage, y=c.risk, mode="lines", name=name,
                                 line=dict(color=plots.COLORS[i % len(plots.COLORS)])))  # fmt: skip
    if at is not None:
        fig.add_vline(x=at, line_dash="dot", annotation_text=f"operating point {at:.0%}")
    return plots.finish(fig, title=title, x="coverage: share of cases the model decides (0-1)",
                        y="error rate on the decided cases (0-1)")  # fmt: skip
