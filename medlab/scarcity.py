"""Data scarcity (notebook 02): label budgets, learning curves, augmentation and transfer.

The lesson: with a few dozen labelled images per class a model is much worse than with
thousands, and the field's remedies (augmentation, transfer from a large dataset,
self-supervised pretraining on unlabelled images) can be measured, not assumed.

>>> small = subsample_per_class(data.train, 10, seed=0)           # doctest: +SKIP
>>> df = learning_curve(data, budgets=(10, 50, "all"), seeds=(0, 1),
...                     variants=("scratch", "augment"))           # doctest: +SKIP

Every run uses :func:`medlab.train.fit` (the curriculum's one training loop) for the same
number of optimisation steps, whatever the label budget, so the curves compare data, not
compute. Every run and both pretrained backbones go through the model cache
(:func:`medlab.experiments.cached_model`: keyed by the dataset's MD5, the exact training images
and labels, the seed and the settings; read back with ``weights_only=True``); nothing is
downloaded from a model hub. Spreads are sample SDs over seeds (ddof=1).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from medlab.data import MedMNISTData, Split
from medlab.experiments import ModelCache, cached_model, fingerprint, run_grid, sd
from medlab.experiments import summarize as _summarize
from medlab.models import SmallCNN
from medlab.train import BatchAugment, evaluate, fit, predict
from medlab.utils import check_int, check_scalar, check_seeds

__all__ = [
    "VARIANTS",
    "Schedule",
    "Pretrained",
    "OnlineWeightsUnavailable",
    "check_budgets",
    "subsample_per_class",
    "epochs_for",
    "output_spread",
    "COLLAPSE_SPREAD",
    "RESTART_LR_DIVISOR",
    "rotation_split",
    "pretrain_supervised",
    "pretrain_rotation",
    "fresh_model",
    "load_features",
    "choose_source",
    "learning_curve",
    "summarize",
    "gain_at",
    "curve_figure",
    "imagenet_resnet18",
]

#: Training variants of :func:`learning_curve`.
#: scratch: random init, no augmentation; augment: random init + :class:`BatchAugment`;
#: transfer: backbone pretrained (supervised) on another dataset, no augmentation;
#: selfsup: backbone pretrained by rotation prediction on the target's own unlabelled training
#: images, no augmentation; transfer+augment: both; imagenet: torchvision ResNet-18 with
#: ImageNet weights (online only, see :func:`imagenet_resnet18`).
VARIANTS: tuple[str, ...] = (
    "scratch",
    "augment",
    "transfer",
    "selfsup",
    "transfer+augment",
    "imagenet",
)
_NEEDS_PRETRAINED = {"transfer": "transfer", "transfer+augment": "transfer", "selfsup": "selfsup"}
_AUGMENTED = {"augment", "transfer+augment"}


class OnlineWeightsUnavailable(RuntimeError):
    """ImageNet weights could not be fetched (no network): the optional variant cannot run."""


@dataclass(frozen=True)
class Schedule:
    """How every run is trained: the same rule for all budgets and variants.

    epochs: passes over the labelled images; min_steps: at least this many optimisation steps
    (mini-batches), so a run on 20 images is not over after 10 steps; batch_size: images per
    step (at most the training-set size); lr: peak AdamW learning rate; width: SmallCNN width
    (channels of its first stage).
    """

    epochs: int = 10
    min_steps: int = 150
    batch_size: int = 64
    lr: float = 3e-3
    width: int = 16

    def __post_init__(self) -> None:
        for name in ("epochs", "min_steps", "batch_size", "width"):
            object.__setattr__(self, name, check_int(f"Schedule.{name}", getattr(self, name), 1))
        if not 1e-6 <= self.lr <= 1.0:
            raise ValueError(f"Schedule.lr must be in [1e-6, 1], got {self.lr!r}")


@dataclass
class Pretrained:
    """A pretrained SmallCNN backbone: ``features`` weights plus where they came from.

    kind: "transfer" (supervised on another dataset) or "selfsup" (rotation prediction);
    source: dataset name; md5: MD5 of the source file; path: the cached ``.pt`` file;
    cached: True when read from the cache rather than trained in this call; info: settings
    and pretext/source validation metrics.
    """

    kind: str
    source: str
    md5: str
    state: dict[str, torch.Tensor]
    path: Path
    cached: bool
    info: dict[str, Any]


# --------------------------------------------------------------------------------------------
# label budgets


def check_budgets(budgets: Iterable[int | str]) -> list[int | str]:
    """Validate label budgets (labelled images per class): positive ints, or ``"all"``.

    Returns them sorted ascending with ``"all"`` last and duplicates removed."""
    out: list[int | str] = []
    for b in budgets:
        if isinstance(b, str):
            if b != "all":
                raise ValueError(
                    f"budget {b!r} is not understood; use a positive integer "
                    "(labelled images per class) or 'all'"
                )
        else:
            b = check_scalar("budget", b, lo=1, fix="labelled images per class, or 'all'")
        if b not in out:
            out.append(b if isinstance(b, str) else int(b))
    if not out:
        raise ValueError("give at least one budget, e.g. budgets=(10, 50, 'all')")
    return sorted(out, key=lambda b: math.inf if b == "all" else b)


def subsample_per_class(split: Split, per_class: int | str, *, seed: int = 0) -> Split:
    """At most ``per_class`` random images of each class (all of a class that has fewer).

    For a fixed ``seed`` the subsets are nested: the 10-per-class subset is contained in the
    50-per-class one, so a learning curve adds labels rather than redrawing them.
    ``per_class="all"`` returns the whole split. Single-label tasks only.
    Returns a new :class:`Split` with ``sum_c min(per_class, n_c)`` images (class order kept
    by original index).
    """
    check_budgets([per_class])
    if split.multilabel:
        raise ValueError(
            "subsample_per_class needs a single-label task; a multi-label split has "
            "no 'images per class' (subsample images instead)"
        )
    if per_class == "all":
        return split.subset(torch.arange(len(split)))
    gen = torch.Generator().manual_seed(int(seed))
    labels = split.labels
    keep = []
    for c in range(split.n_classes):
        idx = (labels == c).nonzero().flatten()
        perm = idx[torch.randperm(len(idx), generator=gen)]
        keep.append(perm[:per_class])
    index = torch.cat(keep).sort().values
    return split.subset(index)


#: A model whose predicted probabilities vary by less than this (SD over its own training
#: images) gives one constant answer whatever the image: its training collapsed.
COLLAPSE_SPREAD: float = 0.01
#: A collapsed run is trained once more from the same initialisation and seed at the learning
#: rate divided by this.
RESTART_LR_DIVISOR: float = 3.0


def output_spread(model: nn.Module, split: Split) -> float:
    """How much ``model``'s answer depends on the image: the largest, over classes, sample SD
    (ddof=1) of the predicted probability over ``split``'s images (unitless; 0 for a
    constant output, about 0.5 for confident answers split evenly between two classes).

    A healthy classifier scores its own training images differently (SD well above 0.1); one
    that has collapsed to a constant output (the class prior, whatever the image) scores
    below :data:`COLLAPSE_SPREAD`. Small from-scratch runs with strong augmentation can end
    there: the loss sits at chance level (ln 2 for two balanced classes) and the test AUC at
    0.5. A barely trained model (a few steps from initialisation) also scores below it."""
    if len(split) < 2:
        raise ValueError(f"output_spread needs at least 2 images, got {len(split)}")
    p = predict(model, split)
    return float(p.std(axis=0, ddof=1).max())


def epochs_for(n: int, schedule: Schedule) -> tuple[int, int, int]:
    """(epochs, batch size, steps) of one run on ``n`` labelled images under ``schedule``.

    batch = ``min(batch_size, n)``; epochs = ``max(schedule.epochs, ceil(min_steps / steps per
    epoch))``; steps = epochs * ceil(n / batch). Small budgets get many epochs, large ones at
    least ``schedule.epochs``."""
    if n < 1:
        raise ValueError(f"need at least one training image, got n={n}")
    bs = min(schedule.batch_size, n)
    per_epoch = math.ceil(n / bs)
    epochs = max(schedule.epochs, math.ceil(schedule.min_steps / per_epoch))
    return epochs, bs, epochs * per_epoch


# --------------------------------------------------------------------------------------------
# pretraining


def rotation_split(split: Split) -> Split:
    """The rotation-prediction pretext task (Gidaris et al., ICLR 2018) as a labelled Split.

    Every image appears four times, rotated by 0, 90, 180 and 270 degrees; the label is the
    rotation (0..3). The original labels are not used. Shape (4N, C, H, W), labels (4N,)."""
    if split.images.shape[-1] != split.images.shape[-2]:
        raise ValueError("rotation pretext needs square images")
    imgs = torch.cat([torch.rot90(split.images, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(len(split))
    names = {k: f"rotated {90 * k} deg" for k in range(4)}
    return Split(
        split.name, f"{split.split}-rotations", imgs.contiguous(), labels, "multi-class", names
    )


def _pretrain(
    kind: str,
    train_split: Split,
    val_split: Split | None,
    source: MedMNISTData,
    n_out: int,
    *,
    schedule: Schedule,
    seed: int,
    augment: bool,
    max_images: int,
    folder: str | os.PathLike[str] | None,
    force: bool,
) -> Pretrained:
    max_images = check_int("max_images", max_images, 1)
    settings = {
        "kind": kind,
        "model": "smallcnn",
        "in_channels": source.n_channels,
        "n_out": n_out,
        "train_images": len(train_split),
        **asdict(schedule),
        "augment": augment,
        "max_images": max_images,
    }
    md5 = str(source.provenance.get("md5", "nomd5"))
    if len(train_split) > max_images:  # a large source: a random subset keeps it cheap
        gen = torch.Generator().manual_seed(int(seed))
        keep = torch.randperm(len(train_split), generator=gen)[:max_images]
        train_split = train_split.subset(keep.sort().values)
    epochs, bs, _ = epochs_for(len(train_split), schedule)

    def run(model: nn.Module) -> dict[str, Any]:
        hist = fit(
            model,
            train_split,
            val_split,
            epochs=epochs,
            batch_size=bs,
            lr=schedule.lr,
            augment=augment,
            seed=seed,
            desc=f"pretraining ({kind}, {source.name})",
        )
        info: dict[str, Any] = {
            "settings": settings,
            "seed": seed,
            "epochs": epochs,
            "seconds": hist.seconds,
            "best_epoch": hist.best_epoch,
        }
        if val_split is not None and len(val_split):
            info["val"] = evaluate(model, val_split)
        return info

    store = ModelCache(folder) if folder is not None else None
    if force and store is None:
        store = ModelCache()
    if force:
        key = store.key(
            f"pretrain-{kind}",
            data=source,
            train=train_split,
            seed=seed,
            settings=settings,
            val=val_split,
        )
        store.path(key).unlink(missing_ok=True)
    model, info = cached_model(
        f"pretrain-{kind}",
        lambda: SmallCNN(source.n_channels, n_out, width=schedule.width),
        run,
        data=source,
        train_split=train_split,
        val_split=val_split,
        seed=seed,
        settings=settings,
        cache=store,
    )
    state = {k: v.detach().clone() for k, v in model.features.state_dict().items()}
    path = (store or ModelCache()).path(info["key"])
    return Pretrained(kind, source.name, md5, state, path, bool(info["cached"]), info)


def pretrain_supervised(
    source: MedMNISTData,
    *,
    schedule: Schedule = Schedule(),
    seed: int = 0,
    augment: bool = True,
    max_images: int = 20000,
    folder: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Pretrained:
    """Train a SmallCNN on ``source`` (its own labels; at most ``max_images`` random training
    images) and keep its ``features``; cached (:func:`medlab.experiments.cached_model`), ``force=True``
    retrains. ``info["val"]`` is the source validation ACC/AUC."""
    if source.train.multilabel:
        raise ValueError(f"{source.name} is multi-label; pick a single-label source dataset")
    return _pretrain(
        "transfer",
        source.train,
        source.val,
        source,
        source.n_classes,
        schedule=schedule,
        seed=seed,
        augment=augment,
        max_images=max_images,
        folder=folder,
        force=force,
    )


def pretrain_rotation(
    data: MedMNISTData,
    *,
    schedule: Schedule = Schedule(),
    seed: int = 0,
    augment: bool = False,
    max_images: int = 20000,
    folder: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Pretrained:
    """Self-supervised pretraining on the target's own *unlabelled* training images:
    predict which of four rotations was applied (:func:`rotation_split`). Labels are never
    read; at most ``max_images`` rotated images are used. ``info["val"]`` is the pretext
    accuracy on rotated validation images (chance 0.25).
    Augmentation is off by default (its flips and rotations would blur the pretext labels)."""
    return _pretrain(
        "selfsup",
        rotation_split(data.train),
        rotation_split(data.val),
        data,
        4,
        schedule=schedule,
        seed=seed,
        augment=augment,
        max_images=max_images,
        folder=folder,
        force=force,
    )


def load_features(model: SmallCNN, state: dict[str, torch.Tensor]) -> SmallCNN:
    """Copy pretrained ``features`` weights into ``model`` (its head stays new).

    If the channel counts differ (RGB source, grayscale target or the reverse) the first
    convolution is summed over, or spread evenly across, input channels."""
    state = dict(state)
    target = model.features.state_dict()
    key = "0.0.weight"
    if key in state and state[key].shape[1] != target[key].shape[1]:
        w = state[key]
        c_new = target[key].shape[1]
        state[key] = w.sum(1, keepdim=True).repeat(1, c_new, 1, 1) / c_new
    model.features.load_state_dict(state)
    return model


def fresh_model(
    data: MedMNISTData | Split,
    *,
    width: int = 16,
    pretrained: Pretrained | dict[str, torch.Tensor] | None = None,
) -> SmallCNN:
    """A fresh SmallCNN for ``data`` (new head), with pretrained ``features`` when given."""
    c = int(data.train.images.shape[1] if isinstance(data, MedMNISTData) else data.images.shape[1])
    model = SmallCNN(c, data.n_classes, width=width)
    if pretrained is not None:
        state = pretrained.state if isinstance(pretrained, Pretrained) else pretrained
        load_features(model, state)
    return model


def choose_source(
    wanted: str,
    target: MedMNISTData,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[MedMNISTData | None, str]:
    """The pretraining dataset: ``wanted`` if it loads, else the largest other single-label
    dataset available in ``data_dir`` (never the target). Returns (data or None, a plain
    sentence saying what happened)."""
    from medlab.data import DataNotFoundError, available, load

    if wanted == target.name:
        raise ValueError(
            f"source_dataset={wanted!r} is the target itself; pick another dataset "
            "(transfer means pretraining on different images)"
        )
    try:
        return load(wanted, data_dir=data_dir, download=download), (
            f"Pretraining source: {wanted} (as requested)."
        )
    except DataNotFoundError as exc:
        reason = str(exc).split(". ")[0]
    candidates = []
    for name in available(data_dir):
        if name == target.name:
            continue
        try:
            d = load(name, data_dir=data_dir, download=False)
        except (ValueError, OSError):
            continue
        if not d.train.multilabel:
            candidates.append(d)
    if not candidates:
        return None, (
            f"Requested source {wanted!r} is missing ({reason}) and no other "
            "single-label dataset is available: the transfer variant is skipped."
        )
    best = max(candidates, key=lambda d: len(d.train))
    return best, (
        f"Requested source {wanted!r} is missing ({reason}). Using {best.name} "
        f"({len(best.train)} training images) instead: the largest other dataset "
        "available here."
    )


# --------------------------------------------------------------------------------------------
# learning curves


def learning_curve(
    data: MedMNISTData,
    *,
    budgets: Sequence[int | str] = (10, 50, "all"),
    seeds: Sequence[int] = (0, 1),
    variants: Sequence[str] = ("scratch", "augment"),
    pretrained: dict[str, Pretrained] | None = None,
    schedule: Schedule = Schedule(),
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
    if data.train.multilabel:
        raise ValueError(
            f"{data.name} is multi-label; label budgets per class need a single-label task"
        )
    aug = augment if augment is not None else BatchAugment()

    def one(budget: int | str, variant: str, seed: int) -> dict[str, Any]:
        sub = subsample_per_class(data.train, budget, seed=seed)
        need = _NEEDS_PRETRAINED.get(variant)
        pre = pretrained[need] if need else None
        epochs, bs, steps = epochs_for(len(sub), schedule)
        variant_aug = aug if variant in _AUGMENTED else None
        settings = {
            "variant": variant,
            "schedule": asdict(schedule),
            "epochs": epochs,
            "augment": asdict(variant_aug) if variant_aug else None,
            "pretrained": fingerprint(*[pre.state[k] for k in sorted(pre.state)])
            if pre is not None
            else None,
        }

        def run(model: nn.Module) -> dict[str, Any]:
            t0 = time.perf_counter()
            start = {k: v.detach().clone() for k, v in model.state_dict().items()}
            restarted = False
            for lr in (schedule.lr, schedule.lr / RESTART_LR_DIVISOR):
                model.load_state_dict(start)
                fit(
                    model,
                    sub,
                    None,
                    epochs=epochs,
                    batch_size=bs,
                    lr=lr,
                    augment=variant_aug,
                    seed=seed,
                    desc=variant,
                )
                spread = output_spread(model, sub)
                if spread >= COLLAPSE_SPREAD or restarted:
                    break
                restarted = True
            return {
                "seconds": time.perf_counter() - t0,
                "restarted": restarted,
                "collapsed": spread < COLLAPSE_SPREAD,
            }

        model, info = cached_model(
            "smallcnn-budget",
            lambda: fresh_model(data, width=schedule.width, pretrained=pre),
            run,
            data=data,
            train_split=sub,
            seed=seed,
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

    grid = [{"budget": str(b), "variant": v} for b in budgets for v in variants]
    df = run_grid(
        lambda budget, variant, seed: one(_budget(budget), variant, seed), grid, seeds, desc=desc
    )
    cols = ["dataset", "variant", "source", "budget", "per_class", "n_train", "seed"]
    return df[cols + [c for c in df.columns if c not in cols]]


def _budget(b: str) -> int | str:
    return b if b == "all" else int(b)


def summarize(df: pd.DataFrame, metric: str = "test_auc") -> pd.DataFrame:
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


def curve_figure(df: pd.DataFrame, *, metric: str = "test_auc", title: str | None = None) -> Any:
    """Learning curves: mean over seeds with a +/- 1 standard deviation band, log x-axis
    (labelled images per class). One line per variant (:func:`medlab.plots.line_with_band`)."""
    from medlab.plots import line_with_band

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


# --------------------------------------------------------------------------------------------
# optional online variant


class _ImageNetResNet(nn.Module):
    """torchvision ResNet-18 for MedMNIST inputs: [-1, 1] grayscale/RGB (N, C, 28, 28) ->
    3 channels, ImageNet normalisation, resized to ``size`` px; ``features`` + new ``head``."""

    def __init__(self, backbone: nn.Module, n_classes: int, size: int) -> None:
        super().__init__()
        backbone.fc = nn.Identity()
        self.features = backbone
        self.head = nn.Linear(512, n_classes)
        self.size = size
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = (x + 1.0) / 2.0
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = nn.functional.interpolate(
            x, size=(self.size, self.size), mode="bilinear", align_corners=False
        )
        return self.features((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def imagenet_resnet18(n_classes: int, *, pretrained: bool = True, size: int = 64) -> nn.Module:
    """OPTIONAL, ONLINE ONLY: torchvision's ResNet-18 with ImageNet weights and a new head.

    The weights come from download.pytorch.org through torchvision (the only download in this
    lesson, off by default in the notebook); offline this raises
    :class:`OnlineWeightsUnavailable`. ``pretrained=False`` builds the same network with random
    weights (for tests). Natural photographs are far from X-rays, and 11 M parameters at 64 px
    are slow on a CPU: expect minutes per run.
    """
    from torchvision.models import ResNet18_Weights, resnet18

    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    try:
        backbone = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1 if pretrained else None)
    except Exception as exc:  # URLError, socket errors, hash mismatch ...
        raise OnlineWeightsUnavailable(
            "could not download torchvision's ImageNet ResNet-18 weights "
            f"({type(exc).__name__}: {exc}); this optional variant needs a network connection."
        ) from exc
    return _ImageNetResNet(backbone, n_classes, size)
