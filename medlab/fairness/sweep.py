"""Training the bias lesson's models (through the model cache, so notebook 04 explains exactly
notebook 03's models), the lesson's one global threshold, and the sweep over minority shares and
seeds (:func:`run_sweep`, on :func:`medlab.run_grid`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from medlab.data import MedMNISTData, Split
from medlab.experiments import cached_model, run_grid
from medlab.experiments import summarize as _summarize
from medlab.fairness.lesson import MITIGATIONS, SHORT, THRESHOLD_METHOD
from medlab.fairness.metrics import composition, hcm_metrics
from medlab.fairness.mitigation import group_balanced_index, group_thresholds, group_weights
from medlab.metrics import youden_threshold
from medlab.models import SmallCNN
from medlab.scenario import Scenario, disease_scores, hcm
from medlab.train import History, fit

__all__ = ["train_scenario", "decision_threshold", "Sweep", "run_sweep", "METRICS", "sweep_table"]


def _mitigate(
    mitigation: str | None, train: Split, groups: np.ndarray, seed: int, fit_kwargs: dict
) -> tuple[Split, torch.Tensor | None]:
    """Apply a training-time mitigation: loss weights (``fit_kwargs["sample_weight"]``) or a
    resampled training split with proportionally fewer epochs. Returns (train, weights)."""
    weights = None
    if mitigation == "reweight":
        if "sample_weight" in fit_kwargs:
            raise ValueError("mitigation='reweight' sets sample_weight itself; do not pass one")
        weights = torch.from_numpy(group_weights(groups))
        fit_kwargs["sample_weight"] = weights
    elif mitigation == "resample":
        n = len(train)
        train = train.subset(group_balanced_index(groups, seed=seed))
        # same number of optimisation steps as the baseline (equal compute): fewer epochs
        fit_kwargs["epochs"] = max(1, round(fit_kwargs["epochs"] * n / len(train)))
    return train, weights


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
    train, weights = _mitigate(
        mitigation, scenario.train, scenario.groups["train"], seed, fit_kwargs
    )
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


def _points(
    shares: Iterable[float],
    seeds: Iterable[int],
    mitigations: Iterable[str],
    mitigate_at: Iterable[float] | None,
) -> list[dict[str, Any]]:
    """The sweep's grid points: every share's baseline, each mitigation at ``mitigate_at``."""
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
    points = [{"share": sh, "mitigation": "baseline"} for sh in shares]
    return points + [{"share": sh, "mitigation": m} for m in mitigations for sh in mitigate_at]


def _measure(
    sc: Scenario, method: str, s: np.ndarray, t: float, seed: int, group_threshold: bool
) -> list[dict[str, Any]]:
    """Per-group metrics of one model's test scores: at the global threshold ``t`` and, for a
    baseline model, with group-specific thresholds."""
    y, g = sc.test_y, sc.groups["test"]
    base = {**composition(sc.groups["train"]), "threshold": t}
    out = [{"method": method, **base, **hcm_metrics(y, s, g, threshold=t).row(SHORT)}]
    if method == "baseline" and group_threshold:
        pred = group_thresholds(y, s, g, seed=seed)
        out.append(
            {"method": THRESHOLD_METHOD, **base, **hcm_metrics(y, s, g, y_pred=pred).row(SHORT)}
        )
    return out


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
    points = _points(shares, seeds, mitigations, mitigate_at)
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
        return _measure(sc, method, s, t, seed, group_threshold)

    # "mitigation" is what was trained; "method" is how it was decided (group thresholds
    # post-process the baseline model)
    rows = run_grid(one, points, list(seeds), desc="sweep")
    first = next(iter(scenarios.values()))
    return Sweep(rows, models, scores, scenarios, float(first.info["strength"]), thresholds)


METRICS = ("auc_maj", "auc_min", "auc_gap", "tpr_maj", "tpr_min", "tpr_gap", "eod", "acc")


def sweep_table(rows: Any, metrics: Sequence[str] = METRICS) -> Any:
    """:func:`medlab.summarize` of a sweep per (share, method), sorted by share: ``<metric>``
    (mean), ``<metric>_sd`` (sample SD over seeds, ddof=1) and ``n_seeds``."""
    return (
        _summarize(rows, ["share", "method"], list(metrics))
        .sort_values(["share"], kind="stable")
        .reset_index(drop=True)
    )
