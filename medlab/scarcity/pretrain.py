"""Pretrained backbones: supervised on another dataset (transfer) or by the rotation pretext
task on the target's own unlabelled images (self-supervised), and how a model takes them.

The rotation pretext task is written in notebook 02 (the region at the end)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medlab.data import MedMNISTData, Split
from medlab.experiments import ModelCache, cached_model
from medlab.models import SmallCNN
from medlab.scarcity.schedule import DEFAULT_SCHEDULE, Schedule, epochs_for
from medlab.train import evaluate, fit
from medlab.utils import check_int

__all__ = [
    "Pretrained",
    "pretrain_supervised",
    "pretrain_rotation",
    "load_features",
    "fresh_model",
    "rotation_split",
]


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
    info = {"settings": settings, "seed": seed, "epochs": epochs}
    run = _pretrainer(train_split, val_split, info, batch_size=bs, lr=schedule.lr,
                      augment=augment, desc=f"pretraining ({kind}, {source.name})")  # fmt: skip
    store = _store(folder, force, f"pretrain-{kind}", source, train_split, val_split, info)
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


def _pretrainer(
    train_split: Split, val_split: Split | None, base: dict[str, Any], **fit_args: Any
) -> Callable[[nn.Module], dict[str, Any]]:
    """The pretraining run for :func:`medlab.experiments.cached_model`: ``fit`` for
    ``base["epochs"]`` epochs; returns ``base`` with the time, best epoch and validation
    metrics."""

    def run(model: nn.Module) -> dict[str, Any]:
        hist = fit(
            model,
            train_split,
            val_split,
            epochs=base["epochs"],
            seed=base["seed"],
            **fit_args,
        )
        info: dict[str, Any] = {
            **base,
            "seconds": hist.seconds,
            "best_epoch": hist.best_epoch,
        }
        if val_split is not None and len(val_split):
            info["val"] = evaluate(model, val_split)
        return info

    return run


def _store(
    folder: str | os.PathLike[str] | None,
    force: bool,
    name: str,
    source: MedMNISTData,
    train_split: Split,
    val_split: Split | None,
    info: dict[str, Any],
) -> ModelCache | None:
    """The model cache of a pretraining (None: the default one); ``force`` deletes its
    cached model first, so it is trained again."""
    store = ModelCache(folder) if folder is not None else None
    if force and store is None:
        store = ModelCache()
    if force:
        key = store.key(
            name,
            data=source,
            train=train_split,
            seed=info["seed"],
            settings=info["settings"],
            val=val_split,
        )
        store.path(key).unlink(missing_ok=True)
    return store


def pretrain_supervised(
    source: MedMNISTData,
    *,
    schedule: Schedule = DEFAULT_SCHEDULE,
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
    schedule: Schedule = DEFAULT_SCHEDULE,
    seed: int = 0,
    augment: bool = False,
    max_images: int = 20000,
    folder: str | os.PathLike[str] | None = None,
    force: bool = False,
    pretext: Callable[[Split], Split] | None = None,
) -> Pretrained:
    """Self-supervised pretraining on the target's own *unlabelled* training images:
    predict which of four rotations was applied (:func:`rotation_split`). Labels are never
    read; at most ``max_images`` rotated images are used. ``info["val"]`` is the pretext
    accuracy on rotated validation images (chance 0.25).
    Augmentation is off by default (its flips and rotations would blur the pretext labels).
    ``pretext``: the pretext task (default :func:`rotation_split`; notebook 02 passes its own)."""
    pretext = pretext or rotation_split
    return _pretrain(
        "selfsup",
        pretext(data.train),
        pretext(data.val),
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


# fmt: off
# %% exported from notebooks/02_data_scarcity.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def rotation_split(split: Split) -> Split:
    """The rotation-prediction pretext task (Gidaris et al., ICLR 2018) as a labelled Split.

    Every image appears four times, rotated by 0, 90, 180 and 270 degrees; the label is the
    rotation (0..3). The original labels are not used. Shape (4N, C, H, W), labels (4N,)."""
    if split.images.shape[-1] != split.images.shape[-2]:
        raise ValueError("rotation pretext needs square images")
    imgs = torch.cat([torch.rot90(split.images, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4).repeat_interleave(len(split))  # the rotation is the label
    names = {k: f"rotated {90 * k} deg" for k in range(4)}
    rotations = f"{split.split}-rotations"
    return Split(split.name, rotations, imgs.contiguous(), labels, "multi-class", names)
# %% end of export
