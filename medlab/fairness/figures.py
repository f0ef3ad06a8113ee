"""The bias lesson's figures: the simulated minority presentation, score distributions and
calibration per group, and a gap metric against the minority share."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from medlab.data import MedMNISTData
from medlab.experiments import summarize as _summarize
from medlab.metrics import calibration
from medlab.plots import COLORS, finish, image_grid
from medlab.scenario import GROUP_NAMES, Scenario, apply_shift

__all__ = ["shift_examples", "score_distributions", "calibration_curves", "gap_vs_share"]


def shift_examples(
    scenario: Scenario,
    data: MedMNISTData,
    *,
    n: int = 6,
    seed: int = 0,
) -> Any:
    """Real test images side by side: each healthy and diseased image as it is (majority
    presentation) and with the scenario minority's :class:`PresentationShift` (same pattern,
    same positive class as the scenario)."""
    shift, positive, pat = scenario.shift, scenario.positive, scenario.pattern
    rng = np.random.default_rng(seed)
    y = data.test.labels.numpy()
    rows, names = [], []
    for c in sorted(data.label_names, key=lambda c: c == positive):
        idx = rng.choice(np.flatnonzero(y == c), size=n, replace=False)
        x = data.test.images[idx]
        shifted = apply_shift(
            x, data.test.labels[idx], shift, seed=seed, positive=positive, pattern=pat
        )
        cname = data.label_names[c][:18]
        rows += [x.cpu().numpy(), shifted.cpu().numpy()]
        names += [f"{cname}: as is", f"{cname}: minority"]
    return image_grid(
        rows,
        names,
        title=f"{data.name}: the simulated minority presentation "
        f"(zoom {shift.zoom:g}, disease signal x{shift.contrast:g})",
        x="test image",
        y="class and presentation",
    )


def score_distributions(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    threshold: float = 0.5,
    class_names: tuple[str, str] = ("healthy", "diseased"),
    title: str = "Disease scores per group and true class",
) -> Any:
    """Violins of the disease score per true class, one colour per group, with the global
    threshold as a dashed line: diseased minority patients below it are the missed ones."""
    y_true, y_score, groups = (np.asarray(a).reshape(-1) for a in (y_true, y_score, groups))
    fig = go.Figure()
    for g, name in GROUP_NAMES.items():
        m = groups == g
        fig.add_trace(
            go.Violin(
                x=[class_names[int(v)] for v in y_true[m]],
                y=y_score[m],
                name=name,
                legendgroup=name,
                scalegroup=name,
                line_color=COLORS[g],
                box_visible=True,
                meanline_visible=True,
                points=False,
                spanmode="hard",
            )
        )
    fig.add_hline(
        y=threshold,
        line_dash="dash",
        line_color="black",
        annotation_text=f"global threshold {threshold:g}",
    )
    fig.update_layout(violinmode="group")
    fig.update_yaxes(range=[0, 1])
    return finish(fig, title=title, x="true class", y="predicted probability of disease (0-1)")


def calibration_curves(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    n_bins: int = 8,
    title: str = "Calibration per group",
) -> Any:
    """Reliability diagram per group (:func:`medlab.metrics.calibration`, quantile bins); the
    legend gives each group's expected calibration error (ECE)."""
    table = calibration(y_true, y_score, groups, n_bins=n_bins, names=GROUP_NAMES)
    fig = go.Figure(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line=dict(dash="dot", color="gray"),
        )
    )
    for i, name in enumerate(GROUP_NAMES.values()):
        d = table[table["group"] == name]
        fig.add_trace(
            go.Scatter(
                x=d["mean_predicted"],
                y=d["observed"],
                mode="lines+markers",
                name=f"{name} (ECE {table.attrs['ece'][name]:.3f})",
                line=dict(color=COLORS[i]),
            )
        )
    return finish(
        fig,
        title=title,
        x="mean predicted probability of disease in bin (0-1)",
        y="observed share diseased in bin (0-1)",
    )


_METRIC_LABELS = {
    "tpr_gap": "TPR gap, majority - minority (0-1)",
    "auc_gap": "AUC gap, majority - minority (0-1)",
    "eod": "equalized-odds difference (0-1)",
    "fnr_gap": "FNR gap, majority - minority (0-1)",
}


def gap_vs_share(rows: Any, metric: str = "tpr_gap", *, title: str | None = None) -> Any:
    """Mean +/- standard deviation over seeds of a gap metric against the minority share:
    a line for the baseline, markers for each mitigation."""
    if metric not in rows.columns:
        raise ValueError(f"unknown metric {metric!r}; choose one of {list(_METRIC_LABELS)}")
    summ = _summarize(rows, ["method", "share"], metric).rename(
        columns={metric: "mean", f"{metric}_sd": "std", "n_seeds": "count"}
    )
    fig = go.Figure()
    methods = ["baseline"] + [m for m in summ["method"].unique() if m != "baseline"]
    for i, m in enumerate(methods):
        d = summ[summ["method"] == m].sort_values("share")
        fig.add_trace(
            go.Scatter(
                x=d["share"] * 100,
                y=d["mean"],
                name=m,
                mode="lines+markers" if m == "baseline" else "markers",
                marker=dict(
                    size=9 if m == "baseline" else 11,
                    symbol="circle" if i == 0 else i + 1,
                    color=COLORS[i % len(COLORS)],
                ),
                error_y=dict(type="data", array=d["std"], visible=True),
                customdata=d["count"],
                hovertemplate="%{x:.0f} %%: %{y:.3f} (n=%{customdata})",
            )
        )
    fig.add_hline(y=0, line_color="gray", line_width=1)
    fig.update_xaxes(type="log", tickvals=sorted(rows["share"].unique() * 100))
    n = int(rows.groupby(["method", "share"]).size().max())
    return finish(
        fig,
        title=title or f"Gap between groups vs minority share (mean +/- SD over {n} seeds)",
        x="minority share of the training set (%, log scale)",
        y=_METRIC_LABELS.get(metric, metric),
    )
