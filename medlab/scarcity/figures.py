"""The learning-curve figure."""

from __future__ import annotations

from typing import Any

import pandas as pd

from medlab.plots import line_with_band

__all__ = ["curve_figure"]


def curve_figure(df: pd.DataFrame, *, metric: str = "test_auc", title: str | None = None) -> Any:
    """Learning curves: mean over seeds with a +/- 1 standard deviation band, log x-axis
    (labelled images per class). One line per variant (:func:`medlab.plots.line_with_band`)."""
    budgets = list(dict.fromkeys(df.sort_values("per_class")["budget"]))
    xs = [float(df[df["budget"] == b]["per_class"].mean()) for b in budgets]
    series = {}
    for v in dict.fromkeys(df["variant"]):
        part = df[df["variant"] == v].pivot_table(index="seed", columns="budget", values=metric)
        label = v if not (src := df[df["variant"] == v]["source"].iloc[0]) else f"{v} ({src})"
        series[label] = part[budgets].to_numpy()
    name = {"test_auc": "test AUC (0-1)", "test_acc": "test accuracy (0-1)"}.get(metric, metric)
    return line_with_band(
        xs,
        series,
        log_x=True,
        title=title or f"{df['dataset'].iloc[0]}: {name.split(' (')[0]} vs labelled examples",
        xlabel="labelled examples per class (log scale)",
        ylabel=name,
    )
