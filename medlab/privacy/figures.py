"""The privacy lesson's figures: attack ROC curves on log-log axes, and the privacy-utility
trade-off over the privacy settings, and the test AUC of several models over the same settings."""

from __future__ import annotations

from typing import Any

import numpy as np

from medlab.plots import COLORS, finish

__all__ = ["roc_figure", "tradeoff_figure", "utility_figure"]


def roc_figure(curves: dict[str, dict[str, Any]], *, title: str) -> Any:
    """Attack ROC curves on log-log axes (the low-FPR corner is what matters for one patient);
    ``curves[name]`` is an :func:`attack_metrics` result. The diagonal is chance."""
    import plotly.graph_objects as go

    fig = go.Figure()
    lo = 1.0 / max(max(c["n_nonmembers"] for c in curves.values()), 1)
    for i, (name, c) in enumerate(curves.items()):
        fpr, tpr = np.maximum(c["fpr"], lo / 2), np.maximum(c["tpr"], lo / 2)
        f = min(c.get("resolved", ()), default=None)  # the lowest FPR its non-members resolve
        at = f", TPR@{f:.1%} {c['tpr_at_fpr'][f]:.3f}" if f is not None else ""
        fig.add_trace(
            go.Scatter(
                x=fpr,
                y=tpr,
                mode="lines",
                name=f"{name} (AUC {c['auc']:.3f}{at})",
                line=dict(color=COLORS[i % len(COLORS)]),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[lo / 2, 1],
            y=[lo / 2, 1],
            mode="lines",
            name="chance",
            line=dict(color="grey", dash="dash"),
        )
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return finish(
        fig, title=title, x="false-positive rate (log scale)", y="true-positive rate (log scale)"
    )


def tradeoff_figure(summary: Any, metrics: dict[str, str], *, title: str, y: str) -> Any:
    """Mean +/- SD (over seeds) of ``metrics`` ({column: label}) per privacy setting, in the
    order of ``summary`` (rows from :func:`medlab.summarize` by ``setting``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (col, label) in enumerate(metrics.items()):
        fig.add_trace(
            go.Scatter(
                x=list(summary["setting"]),
                y=summary[col],
                error_y=dict(type="data", array=summary[f"{col}_sd"].fillna(0)),
                mode="lines+markers",
                name=label,
                line=dict(color=COLORS[i % len(COLORS)]),
            )
        )
    return finish(fig, title=title, x="privacy setting (target epsilon; nondp = no DP)", y=y)


def utility_figure(curves: dict[str, Any], *, title: str) -> Any:
    """Test AUC (mean +/- SD over seeds) per privacy setting for each model: ``curves[label]``
    is a :func:`medlab.summarize` table by ``setting`` with ``test_auc`` and ``test_auc_sd``."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (label, summary) in enumerate(curves.items()):
        fig.add_trace(
            go.Scatter(
                x=list(summary["setting"]),
                y=summary["test_auc"],
                error_y=dict(type="data", array=summary["test_auc_sd"].fillna(0)),
                mode="lines+markers",
                name=label,
                line=dict(color=COLORS[i % len(COLORS)]),
            )
        )
    return finish(
        fig, title=title, x="privacy setting (target epsilon; nondp = no DP)",
        y="test AUC (0-1; 0.5 = chance)",
    )  # fmt: skip
