"""The bias lesson's widget: per-group metrics of the sweep's models as the minority share and
the strength of the minority's presentation shift (on the test patients) change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from medlab.data import MedMNISTData, Split
from medlab.fairness.metrics import hcm_metrics
from medlab.fairness.sweep import Sweep
from medlab.plots import COLORS, finish
from medlab.scenario import GROUP_NAMES, disease_scores, hcm

__all__ = ["explorer"]


def _test_sets(
    data: MedMNISTData, share: float
) -> Callable[[float, int], tuple[np.ndarray, np.ndarray, Split]]:
    """``test_set(strength, seed)``: the seed's balanced test patients with the minority shifted
    at ``strength`` (labels, groups, split), computed once per (strength, seed)."""
    cache: dict[tuple[float, int], tuple[np.ndarray, np.ndarray, Split]] = {}

    def test_set(strength: float, seed: int) -> tuple[np.ndarray, np.ndarray, Split]:
        key = (round(float(strength), 3), seed)
        if key not in cache:
            sc = hcm(data, share, strength=float(strength), seed=seed)
            cache[key] = (sc.test_y, sc.groups["test"], sc.test)
        return cache[key]

    return test_set


def _bars(mean: pd.DataFrame, sd: pd.DataFrame, title: str) -> go.Figure:
    """Grouped bars of the per-group metrics, mean +/- SD over seeds."""
    fig = go.Figure()
    cols = ["auc", "tpr", "fpr", "selection_rate"]
    for i, g in enumerate(GROUP_NAMES.values()):
        fig.add_trace(
            go.Bar(
                x=cols,
                y=mean.loc[g, cols],
                name=g,
                marker_color=COLORS[i],
                error_y=dict(type="data", array=sd.loc[g, cols]),
            )
        )
    fig.update_yaxes(range=[0, 1.05])
    return finish(fig, title=title, x="metric", y="value (0-1)")


def _updater(
    sweep: Sweep, data: MedMNISTData, method: str, shares: list[float], seeds: list[int]
) -> Callable[[float, float], tuple[Any, Any]]:
    """``update(share, strength)`` -> (table, figure) for the sweep's ``method`` models."""
    test_set = _test_sets(data, shares[0])

    def update(share: float, strength: float) -> tuple[Any, Any]:
        share = min(shares, key=lambda s: abs(s - share))
        rows = []
        for sd in seeds:
            y, g, split = test_set(strength, sd)
            pos = sweep.scenarios[(shares[0], sd)].positive
            s = disease_scores(sweep.models[(share, sd, method)], split, positive=pos)
            t = sweep.thresholds[(share, sd, method)]
            rows.append(hcm_metrics(y, s, g, threshold=t).by_group)
        mean = pd.concat(rows).groupby(level=0, observed=True).mean()
        sd_ = pd.concat(rows).groupby(level=0, observed=True).std(ddof=1)
        title = (
            f"Per-group metrics: minority share {share:.0%}, shift strength "
            f"{strength:g} (mean +/- SD over {len(seeds)} seeds)"
        )
        return mean.round(3), _bars(mean, sd_, title)

    return update


def explorer(
    sweep: Sweep, data: MedMNISTData, *, method: str = "baseline"
) -> tuple[Any, Callable[[float, float], tuple[Any, Any]]]:
    """A slider widget: minority share (the sweep's trained models at that share) and the
    strength of the minority's presentation shift on the *test* patients
    (:meth:`PresentationShift.from_strength`). Nothing is trained on a slider move: the
    models are re-evaluated on re-shifted test images.

    Returns ``(widget, update)``; ``update(share, strength)`` returns ``(table, figure)`` (mean
    per-group metrics over the sweep's seeds) and can be called without a browser.
    """
    import ipywidgets as widgets
    from IPython.display import display

    shares = sorted({k[0] for k in sweep.models if k[2] == method})
    if not shares:
        raise ValueError(f"the sweep has no {method!r} models")
    seeds = sorted({k[1] for k in sweep.models if k[2] == method})
    update = _updater(sweep, data, method, shares, seeds)
    share_w = widgets.SelectionSlider(
        options=[(f"{s:.0%}", s) for s in shares], value=shares[0], description="minority share"
    )
    strength_w = widgets.FloatSlider(
        value=sweep.strength, min=0.0, max=2.0, step=0.25, description="shift strength"
    )
    out = widgets.Output()

    def on_change(_: Any = None) -> None:
        table, fig = update(share_w.value, strength_w.value)
        out.clear_output(wait=True)
        with out:
            display(table, fig)

    share_w.observe(on_change, names="value")
    strength_w.observe(on_change, names="value")
    return widgets.VBox([widgets.HBox([share_w, strength_w]), out]), update
