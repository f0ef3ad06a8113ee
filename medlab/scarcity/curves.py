"""Learning curves: one model per (label budget, seed, variant), tested on the whole test split."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from torch import nn

from medlab.data import MedMNISTData, Split
from medlab.experiments import cached_model, fingerprint, run_grid, sd
from medlab.experiments import summarize as _summarize
from medlab.scarcity.pretrain import Pretrained, fresh_model
from medlab.scarcity.schedule import (
    _AUGMENTED,
    _NEEDS_PRETRAINED,
    COLLAPSE_SPREAD,
    DEFAULT_SCHEDULE,
    RESTART_LR_DIVISOR,
    VARIANTS,
    Schedule,
    check_budgets,
    epochs_for,
    output_spread,
    subsample_per_class,
)
from medlab.train import BatchAugment, evaluate, fit
from medlab.utils import check_seeds

__all__ = ["learning_curve", "curve_table", "gain_at"]


def learning_curve(
    data: MedMNISTData,
    *,
    budgets: Sequence[int | str] = (10, 50, "all"),
    seeds: Sequence[int] = (0, 1),
    variants: Sequence[str] = ("scratch", "augment"),
    pretrained: dict[str, Pretrained] | None = None,
    schedule: Schedule = DEFAULT_SCHEDULE,
    augment: BatchAugment | None = None,
    desc: str = "learning curve",
    cache: Any = None,
) -> pd.DataFrame:
    """Train one model per (budget, seed, variant) and test it.

    Args:
        data: the target dataset (single-label task).
        budgets: labelled training images per class (ints) and/or ``"all"``.
        seeds: each seed draws its own labelled subset and its own initialisation/shuffling.
        variants: a subset of :data:`VARIANTS` ("imagenet" is not run here; see
            :func:`imagenet_resnet18`).
        pretrained: ``{"transfer": Pretrained, "selfsup": Pretrained}`` for the variants that
            need a backbone.
        schedule: steps, batch size, learning rate, width (the same for every run).
        augment: the augmentation of the augmented variants (default :class:`BatchAugment`).
        cache: the model cache (default :func:`medlab.experiments.cache_dir`), or False.

    Returns a tidy DataFrame, one row per run: dataset, variant, source, budget (str),
    per_class (x-axis: labelled images per class, n_train / n_classes), n_train, seed,
    test_auc, test_acc, epochs, steps, seconds (training wall time), restarted, collapsed.

    A run whose model ends with a constant output (:func:`output_spread` below
    :data:`COLLAPSE_SPREAD` on its own training images) is trained once more from the same
    initialisation and seed at ``schedule.lr / RESTART_LR_DIVISOR`` (``restarted``); if that
    collapses too, it is kept and flagged (``collapsed``). Report both: they are part of
    what small data does to training.
    """
    budgets = check_budgets(budgets)
    seeds = check_seeds(seeds)
    pretrained = pretrained or {}
    _check_variants(variants, pretrained)
    if data.train.multilabel:
        raise ValueError(
            f"{data.name} is multi-label; label budgets per class need a single-label task"
        )
    aug = augment if augment is not None else BatchAugment()

    def one(budget: str, variant: str, seed: int) -> dict[str, Any]:
        pre = pretrained[_NEEDS_PRETRAINED[variant]] if variant in _NEEDS_PRETRAINED else None
        variant_aug = aug if variant in _AUGMENTED else None
        run = _Budgeted(data, _budget(budget), variant, seed, schedule, variant_aug, pre)
        return run.row(cache)

    grid = [{"budget": str(b), "variant": v} for b in budgets for v in variants]
    df = run_grid(one, grid, seeds, desc=desc)
    cols = ["dataset", "variant", "source", "budget", "per_class", "n_train", "seed"]
    return df[cols + [c for c in df.columns if c not in cols]]


def _check_variants(variants: Sequence[str], pretrained: dict[str, Pretrained]) -> None:
    """Every variant known, runnable here, and given the backbone it needs."""
    if isinstance(variants, str):
        raise ValueError(
            f"variants must be a list such as ['scratch', 'augment'], got {variants!r}"
        )
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; choose from {VARIANTS}")
        if v == "imagenet":
            raise ValueError(
                "the 'imagenet' variant needs online weights; build it with "
                "imagenet_resnet18() and train it with medlab.train.fit yourself"
            )
        need = _NEEDS_PRETRAINED.get(v)
        if need and need not in pretrained:
            raise ValueError(
                f"variant {v!r} needs pretrained={{'{need}': Pretrained}} (from "
                f"pretrain_{'supervised' if need == 'transfer' else 'rotation'})"
            )


@dataclass(frozen=True)
class _Budgeted:
    """One run of the learning curve: ``variant`` on ``budget`` labelled images per class."""

    data: MedMNISTData
    budget: int | str
    variant: str
    seed: int
    schedule: Schedule
    aug: BatchAugment | None
    pre: Pretrained | None

    def row(self, cache: Any) -> dict[str, Any]:
        """Train (or read from the model cache) and test: the run's row of the curve."""
        data, pre = self.data, self.pre
        sub = subsample_per_class(data.train, self.budget, seed=self.seed)
        epochs, bs, steps = epochs_for(len(sub), self.schedule)
        settings = {
            "variant": self.variant,
            "schedule": asdict(self.schedule),
            "epochs": epochs,
            "augment": asdict(self.aug) if self.aug else None,
            "pretrained": fingerprint(*[pre.state[k] for k in sorted(pre.state)])
            if pre is not None
            else None,
        }
        model, info = cached_model(
            "smallcnn-budget",
            lambda: fresh_model(data, width=self.schedule.width, pretrained=pre),
            lambda model: self.train(model, sub, epochs, bs),
            data=data,
            train_split=sub,
            seed=self.seed,
            settings=settings,
            cache=cache,
        )
        m = evaluate(model, data.test)
        return {
            "dataset": data.name,
            "source": pre.source if pre is not None else "",
            "per_class": len(sub) / data.n_classes,
            "n_train": len(sub),
            "test_auc": m["auc"],
            "test_acc": m["acc"],
            "epochs": epochs,
            "steps": steps,
            "seconds": info["seconds"],
            "restarted": bool(info.get("restarted", False)),
            "collapsed": bool(info.get("collapsed", False)),
            "cached": info["cached"],
        }

    def train(self, model: nn.Module, sub: Split, epochs: int, bs: int) -> dict[str, Any]:
        """``fit`` on ``sub``; a run that collapsed to a constant output is trained once more
        from the same start at ``lr / RESTART_LR_DIVISOR``."""
        t0 = time.perf_counter()
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        restarted = False
        lr0 = self.schedule.lr
        for lr in (lr0, lr0 / RESTART_LR_DIVISOR):
            model.load_state_dict(start)
            fit(model, sub, None, epochs=epochs, batch_size=bs, lr=lr, augment=self.aug,
                seed=self.seed, desc=self.variant)  # fmt: skip
            spread = output_spread(model, sub)
            if spread >= COLLAPSE_SPREAD or restarted:
                break
            restarted = True
        return {
            "seconds": time.perf_counter() - t0,
            "restarted": restarted,
            "collapsed": spread < COLLAPSE_SPREAD,
        }


def _budget(b: str) -> int | str:
    return b if b == "all" else int(b)


def curve_table(df: pd.DataFrame, metric: str = "test_auc") -> pd.DataFrame:
    """:func:`medlab.summarize` of one metric per (variant, budget), ordered by budget: columns
    variant, budget, per_class, mean, sd (sample SD over seeds, ddof=1), n_seeds."""
    if metric not in df:
        raise ValueError(f"metric {metric!r} is not a column; choose from {list(df.columns)}")
    out = _summarize(df, ["variant", "budget"], [metric, "per_class"])
    out = out.rename(columns={metric: "mean", f"{metric}_sd": "sd"})
    out = out[["variant", "budget", "per_class", "mean", "sd", "n_seeds"]]
    return out.sort_values(["per_class", "variant"], kind="stable").reset_index(drop=True)


def gain_at(
    df: pd.DataFrame,
    variant: str,
    budget: int | str,
    *,
    baseline: str = "scratch",
    metric: str = "test_auc",
) -> dict[str, float]:
    """How much ``variant`` beats ``baseline`` at one budget, over seeds.

    Returns ``gain`` (difference of the means), ``spread`` (the larger of the two seed SDs),
    ``paired_min`` (smallest per-seed difference; a seed's variants share its labelled subset),
    ``paired_sd`` (SD over seeds of the per-seed difference: the spread left once the luck of
    the labelled draw, shared by both variants of a seed, is taken out) and the two means.
    SDs are sample SDs (ddof=1)."""
    sel = df[df["budget"] == str(budget)]
    a = sel[sel["variant"] == variant].set_index("seed")[metric]
    b = sel[sel["variant"] == baseline].set_index("seed")[metric]
    if a.empty or b.empty:
        raise ValueError(f"no rows for {variant!r} and {baseline!r} at budget {budget!r}")
    common = a.index.intersection(b.index)
    diff = (a[common] - b[common]).to_numpy()
    return {
        "gain": float(a.mean() - b.mean()),
        "spread": float(max(sd(a), sd(b))),
        "paired_min": float(diff.min()),
        "paired_sd": sd(diff),
        variant: float(a.mean()),
        baseline: float(b.mean()),
    }
