"""Lesson 03 (bias): what the bias lesson teaches on top of the HCM scenario.

The population (the simulated sex-imbalance scenario modelled on hypertrophic cardiomyopathy) is
:func:`medlab.scenario.hcm`; per-group metrics are :func:`medlab.metrics.group_metrics`. This
module holds what the lesson itself teaches:

* how every model of the lesson is trained (:func:`hcm_config`, :func:`train_scenario`, through
  the model cache, so notebook 04 explains exactly notebook 03's models) and where its one
  global threshold comes from (:func:`decision_threshold`: Youden's J on the validation split);
* training-time mitigations (:func:`group_weights`, :func:`group_balanced_index`) and a
  post-processing one (:func:`group_thresholds`, fairlearn's ``ThresholdOptimizer``);
* the diversity measures of a training set's make-up (Shannon, Gini-Simpson, Gini coefficient);
* the sweep over minority shares and seeds (:func:`run_sweep`, on :func:`medlab.run_grid`) and
  its figures and explorer.

>>> L = medlab.lesson(quick=True, seed=0)                                     # doctest: +SKIP
>>> sweep = run_sweep(data, [0.05, 0.5], L.seeds, config=hcm_config(data, L))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from medlab.data import MedMNISTData, Split
from medlab.diversity import gini_coefficient, gini_simpson, shannon_index
from medlab.experiments import Lesson, cached_model, run_grid
from medlab.experiments import summarize as _summarize
from medlab.metrics import GroupMetrics, calibration, group_metrics, youden_threshold
from medlab.models import SmallCNN
from medlab.scenario import GROUP_NAMES, Scenario, apply_shift, disease_scores, hcm
from medlab.train import History, fit

__all__ = [
    "GROUP_NAMES",
    "SHORT",
    "MITIGATIONS",
    "THRESHOLD_METHOD",
    "hcm_config",
    "hcm_metrics",
    "group_weights",
    "group_balanced_index",
    "train_scenario",
    "decision_threshold",
    "ScoreClassifier",
    "group_thresholds",
    "shannon_index",
    "gini_simpson",
    "gini_coefficient",
    "composition",
    "Sweep",
    "run_sweep",
    "summarize",
    "shift_examples",
    "score_distributions",
    "calibration_curves",
    "gap_vs_share",
    "explorer",
]

#: Training-time mitigations understood by :func:`train_scenario`.
MITIGATIONS: tuple[str | None, ...] = (None, "reweight", "resample")
#: Column suffixes of the two HCM groups in result tables (``tpr_maj``, ``tpr_min``).
SHORT: dict[str, str] = {GROUP_NAMES[0]: "maj", GROUP_NAMES[1]: "min"}
THRESHOLD_METHOD = "group thresholds (equalized odds)"


def hcm_config(data: MedMNISTData, lesson: Lesson) -> dict[str, Any]:
    """How every model of the bias lessons (03 and 04) is trained: a SmallCNN (width 8 quick,
    16 full), batch 64, lr 5e-3, epochs for ``lesson.images_seen`` images (at least 5 quick,
    8 full). One place, so that notebook 04 reuses notebook 03's models from the cache."""
    if not isinstance(lesson, Lesson):
        raise TypeError(f"lesson must come from medlab.lesson(quick, seed), got {lesson!r}")
    n = len(data.train)
    if lesson.quick:
        return dict(width=8, epochs=lesson.epochs(n, minimum=5), batch_size=64, lr=5e-3)
    return dict(width=16, epochs=lesson.epochs(n, minimum=8, scale=0.4), batch_size=64, lr=5e-3)


def hcm_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    threshold: float = 0.5,
    y_pred: np.ndarray | None = None,
    n_boot: int | None = None,
    seed: int = 0,
) -> GroupMetrics:
    """:func:`medlab.metrics.group_metrics` for the two HCM groups (majority = reference, so
    gaps are majority minus minority; ``row()`` columns end in ``_maj`` / ``_min``)."""
    return group_metrics(
        y_true,
        y_score,
        groups,
        threshold=threshold,
        y_pred=y_pred,
        names=GROUP_NAMES,
        reference=0,
        n_boot=n_boot,
        seed=seed,
    )


# --------------------------------------------------------------------------------------------
# training, with training-time mitigations


def group_weights(groups: np.ndarray) -> np.ndarray:
    """Per-image loss weights (N,) that give every group the same total weight:
    ``w_i = N / (K * n_{g_i})`` (mean weight 1)."""
    groups = np.asarray(groups)
    values, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return (len(groups) / (len(values) * counts[inverse])).astype(np.float32)


def group_balanced_index(groups: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Indices that oversample every group (with replacement, after one full copy) up to the
    largest group's size; all original images are kept. Shape (K * n_max,)."""
    groups = np.asarray(groups)
    rng = np.random.default_rng(seed)
    values, counts = np.unique(groups, return_counts=True)
    n_max = int(counts.max())
    out = []
    for v, n in zip(values, counts, strict=True):
        idx = np.flatnonzero(groups == v)
        extra = rng.choice(idx, size=n_max - n, replace=True) if n < n_max else idx[:0]
        out.append(np.concatenate([idx, extra]))
    return np.sort(np.concatenate(out))


def train_scenario(
    scenario: Scenario,
    *,
    seed: int = 0,
    mitigation: str | None = None,
    width: int = 16,
    cache: Any = None,
    **fit_kwargs: Any,
) -> tuple[torch.nn.Module, History]:
    """Train a :class:`~medlab.models.SmallCNN` on ``scenario.train`` (val for model selection),
    through the model cache (:func:`medlab.experiments.cached_model`).

    Args:
        mitigation: ``None``; ``"reweight"`` (group-balanced loss weights, :func:`group_weights`,
            via ``fit(sample_weight=...)``); or ``"resample"`` (minority oversampled to the
            majority's size, :func:`group_balanced_index`, with proportionally fewer epochs).
        width: SmallCNN width. fit_kwargs: passed to :func:`medlab.train.fit` (default
            ``epochs=8``). cache: a ModelCache, a folder, or False.
    Returns (model in eval mode, history).
    """
    if mitigation not in MITIGATIONS:
        raise ValueError(f"mitigation must be one of {MITIGATIONS}, got {mitigation!r}")
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must come from medlab.scenario, got {type(scenario).__name__}")
    fit_kwargs.setdefault("epochs", 8)
    desc = f"{scenario.name} {scenario.info.get('share', '')} {mitigation or 'baseline'}"
    fit_kwargs.setdefault("desc", desc)
    train, g = scenario.train, scenario.groups["train"]
    weights = None
    if mitigation == "reweight":
        if "sample_weight" in fit_kwargs:
            raise ValueError("mitigation='reweight' sets sample_weight itself; do not pass one")
        weights = torch.from_numpy(group_weights(g))
        fit_kwargs["sample_weight"] = weights
    elif mitigation == "resample":
        n = len(train)
        train = train.subset(group_balanced_index(g, seed=seed))
        # same number of optimisation steps as the baseline (equal compute): fewer epochs
        fit_kwargs["epochs"] = max(1, round(fit_kwargs["epochs"] * n / len(train)))
    settings = {k: v for k, v in fit_kwargs.items() if k not in ("desc", "sample_weight")}
    settings.update(mitigation=mitigation, width=width)
    c = int(train.images.shape[1])

    def run(model: torch.nn.Module) -> dict[str, Any]:
        hist = fit(model, train, scenario.val, seed=seed, **fit_kwargs)
        hist.config.update(mitigation=mitigation, scenario=scenario.info, width=width)
        return hist.as_dict()

    model, info = cached_model(
        "smallcnn-hcm",
        lambda: SmallCNN(c, train.n_classes, width=width),
        run,
        data=scenario,
        train_split=train,
        val_split=scenario.val,
        weights=weights,
        seed=seed,
        settings=settings,
        cache=cache,
    )
    hist = History.from_dict(info)
    hist.config.update(cached=bool(info["cached"]), cache_key=info.get("key"))
    return model, hist


def decision_threshold(model: torch.nn.Module, scenario: Scenario) -> float:
    """The lesson's one global decision threshold: Youden's J maximal on the validation split
    (:func:`medlab.metrics.youden_threshold`). The validation split has the training set's
    skew, so the threshold is set mostly by the majority, like a fixed 15 mm cut-off."""
    return youden_threshold(scenario.y("val"), disease_scores(model, scenario, "val"))


# --------------------------------------------------------------------------------------------
# post-processing mitigation: group-specific thresholds (fairlearn's ThresholdOptimizer)


class ScoreClassifier(ClassifierMixin, BaseEstimator):
    """A minimal scikit-learn classifier whose input *is* a precomputed disease score:
    ``X`` (N, 1) -> ``predict_proba`` (N, 2) = [1 - s, s]. Lets fairlearn's ThresholdOptimizer
    (``prefit=True``) post-process any model's scores."""

    classes_ = np.array([0, 1])

    def fit(self, X: Any, y: Any = None) -> ScoreClassifier:
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        s = np.asarray(X, dtype=float).reshape(-1)
        return np.stack([1.0 - s, s], 1)

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def __sklearn_is_fitted__(self) -> bool:
        return True


def _folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id (N,) stratified by group x class."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for g in np.unique(groups):
        for c in np.unique(y):
            idx = np.flatnonzero((groups == g) & (y == c))
            idx = idx[rng.permutation(len(idx))]
            fold[idx] = np.arange(len(idx)) % k
    return fold


def group_thresholds(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    constraints: str = "equalized_odds",
    objective: str = "balanced_accuracy_score",
    folds: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Group-specific thresholds with fairlearn's ``ThresholdOptimizer`` (prefit, on scores),
    cross-fitted: the thresholds for one fold are fit on the other folds, so no image is
    decided by thresholds fit on its own label. Returns 0/1 decisions (N,).

    ``constraints``: ``"equalized_odds"`` (equal TPR and FPR, randomised between thresholds)
    or ``"true_positive_rate_parity"`` etc., see fairlearn. ``folds`` >= 2.
    """
    from fairlearn.postprocessing import ThresholdOptimizer

    if folds < 2:
        raise ValueError(f"folds must be >= 2 (cross-fitting), got {folds}")
    y_true = np.asarray(y_true).astype(int).reshape(-1)
    y_score = np.asarray(y_score, dtype=float).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    fold = _folds(y_true, groups, folds, seed)
    out = np.zeros(len(y_true), dtype=int)
    for f in range(folds):
        fit_rows, apply_rows = fold != f, fold == f
        to = ThresholdOptimizer(
            estimator=ScoreClassifier(),
            constraints=constraints,
            objective=objective,
            prefit=True,
            predict_method="predict_proba",
        )
        to.fit(y_score[fit_rows, None], y_true[fit_rows], sensitive_features=groups[fit_rows])
        out[apply_rows] = to.predict(
            y_score[apply_rows, None], sensitive_features=groups[apply_rows], random_state=seed + f
        )
    return out


# --------------------------------------------------------------------------------------------
# diversity of a training set's group composition (the seed paper's measures)


def composition(groups: np.ndarray) -> dict[str, float]:
    """Group make-up of a set: counts, minority share and the diversity measures above."""
    groups = np.asarray(groups).reshape(-1)
    fix = f"pass one group id per image, 0..{len(GROUP_NAMES) - 1} ({GROUP_NAMES})"
    if len(groups) == 0:
        raise ValueError(f"groups is empty: {fix}")
    ok = groups.dtype.kind in "iu" or (groups.dtype.kind == "f" and np.isfinite(groups).all()
                                       and (groups == np.round(groups)).all())  # fmt: skip
    if not ok or groups.min() < 0 or groups.max() >= len(GROUP_NAMES):
        raise ValueError(f"groups holds {np.unique(groups)[:5].tolist()}: {fix}")
    counts = np.bincount(groups.astype(np.int64), minlength=len(GROUP_NAMES))
    return {
        "n_majority": int(counts[0]),
        "n_minority": int(counts[1]),
        "minority_share": float(counts[1] / counts.sum()),
        "shannon_H": shannon_index(counts),
        "shannon_evenness": shannon_index(counts, normalized=True),
        "gini_simpson": gini_simpson(counts),
        "gini_coefficient": gini_coefficient(counts),
    }


# --------------------------------------------------------------------------------------------
# the sweep: minority share x seeds, with mitigations


@dataclass
class Sweep:
    """Everything a share sweep produced.

    rows: pandas DataFrame, one row per (share, seed, method) with :meth:`GroupMetrics.row`
    columns plus the training set's :func:`composition`. models / scores / thresholds: keyed by
    (share, seed, method); scenarios: keyed by (share, seed)."""

    rows: Any
    models: dict[tuple[float, int, str], torch.nn.Module]
    scores: dict[tuple[float, int, str], np.ndarray]
    scenarios: dict[tuple[float, int], Scenario]
    strength: float
    thresholds: dict[tuple[float, int, str], float] = field(default_factory=dict)


def run_sweep(
    data: MedMNISTData,
    shares: Iterable[float],
    seeds: Iterable[int],
    *,
    config: dict[str, Any],
    strength: float | None = None,
    mitigations: Iterable[str] = ("reweight", "resample"),
    mitigate_at: Iterable[float] | None = None,
    group_threshold: bool = True,
) -> Sweep:
    """Train one model per (share, seed) on :func:`medlab.scenario.hcm` and measure it per
    group on the balanced test set, through :func:`medlab.run_grid` and the model cache.

    ``config`` is :func:`hcm_config`; ``mitigations`` (training-time, see
    :func:`train_scenario`) are trained at the shares in ``mitigate_at`` (default: the smallest
    share); group-specific thresholds (:func:`group_thresholds`) post-process every baseline
    model. Seeds drive both the scenario and training. The global threshold is
    :func:`decision_threshold` (Youden's J on validation).
    """
    if isinstance(shares, str) or isinstance(seeds, str):
        raise ValueError("shares and seeds must be lists, e.g. [0.05, 0.5] and [0, 1]")
    shares = [float(s) for s in shares]
    if not shares:
        raise ValueError("give at least one share, e.g. [0.05, 0.5]")
    mitigate_at = [min(shares)] if mitigate_at is None else [float(s) for s in mitigate_at]
    mitigations = [mitigations] if isinstance(mitigations, str) else list(mitigations)
    for m in mitigations:
        if m not in MITIGATIONS or m is None:
            raise ValueError(f"mitigations must be among {MITIGATIONS[1:]}, got {m!r}")
    scenarios: dict[tuple[float, int], Scenario] = {}
    models, scores, thresholds = {}, {}, {}

    def one(share: float, mitigation: str, seed: int) -> list[dict[str, Any]]:
        if (share, seed) not in scenarios:
            scenarios[(share, seed)] = hcm(data, share, strength=strength, seed=seed)
        sc = scenarios[(share, seed)]
        method = mitigation
        model, _ = train_scenario(
            sc, seed=seed, mitigation=None if method == "baseline" else method, **config
        )
        s = disease_scores(model, sc)
        t = decision_threshold(model, sc)
        models[(share, seed, method)], scores[(share, seed, method)] = model, s
        thresholds[(share, seed, method)] = t
        y, g = sc.test_y, sc.groups["test"]
        base = {**composition(sc.groups["train"]), "threshold": t}
        out = [{"method": method, **base, **hcm_metrics(y, s, g, threshold=t).row(SHORT)}]
        if method == "baseline" and group_threshold:
            pred = group_thresholds(y, s, g, seed=seed)
            out.append(
                {"method": THRESHOLD_METHOD, **base, **hcm_metrics(y, s, g, y_pred=pred).row(SHORT)}
            )
        return out

    points = [{"share": sh, "mitigation": "baseline"} for sh in shares]
    points += [{"share": sh, "mitigation": m} for m in mitigations for sh in mitigate_at]
    # "mitigation" is what was trained; "method" is how it was decided (group thresholds
    # post-process the baseline model)
    rows = run_grid(one, points, list(seeds), desc="sweep")
    first = next(iter(scenarios.values()))
    return Sweep(rows, models, scores, scenarios, float(first.info["strength"]), thresholds)


METRICS = ("auc_maj", "auc_min", "auc_gap", "tpr_maj", "tpr_min", "tpr_gap", "eod", "acc")


def summarize(rows: Any, metrics: Sequence[str] = METRICS) -> Any:
    """:func:`medlab.summarize` of a sweep per (share, method): ``<metric>`` (mean),
    ``<metric>_sd`` (sample SD over seeds, ddof=1) and ``n_seeds``."""
    return (
        _summarize(rows, ["share", "method"], list(metrics))
        .sort_values(["share"], kind="stable")
        .reset_index(drop=True)
    )


# --------------------------------------------------------------------------------------------
# figures


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
    from medlab.plots import image_grid

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
        rows += [x.numpy(), shifted.numpy()]
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
    import plotly.graph_objects as go

    from medlab.plots import COLORS, finish

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
    import plotly.graph_objects as go

    from medlab.plots import COLORS, finish

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
    import plotly.graph_objects as go

    from medlab.plots import COLORS, finish

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


# --------------------------------------------------------------------------------------------
# the widget


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
    import pandas as pd
    import plotly.graph_objects as go
    from IPython.display import display

    from medlab.plots import COLORS, finish

    shares = sorted({k[0] for k in sweep.models if k[2] == method})
    if not shares:
        raise ValueError(f"the sweep has no {method!r} models")
    seeds = sorted({k[1] for k in sweep.models if k[2] == method})
    cache: dict[tuple[float, int], tuple[np.ndarray, np.ndarray, Split]] = {}

    def test_set(strength: float, seed: int) -> tuple[np.ndarray, np.ndarray, Split]:
        """The seed's balanced test patients with the minority shifted at ``strength``."""
        key = (round(float(strength), 3), seed)
        if key not in cache:
            sc = hcm(data, shares[0], strength=float(strength), seed=seed)
            cache[key] = (sc.test_y, sc.groups["test"], sc.test)
        return cache[key]

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
        fig = go.Figure()
        cols = ["auc", "tpr", "fpr", "selection_rate"]
        for i, g in enumerate(GROUP_NAMES.values()):
            fig.add_trace(
                go.Bar(
                    x=cols,
                    y=mean.loc[g, cols],
                    name=g,
                    marker_color=COLORS[i],
                    error_y=dict(type="data", array=sd_.loc[g, cols]),
                )
            )
        fig.update_yaxes(range=[0, 1.05])
        fig = finish(
            fig,
            title=f"Per-group metrics: minority share {share:.0%}, shift strength "
            f"{strength:g} (mean +/- SD over {len(seeds)} seeds)",
            x="metric",
            y="value (0-1)",
        )
        return mean.round(3), fig

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
