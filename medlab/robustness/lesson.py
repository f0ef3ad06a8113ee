"""What notebook 08 needs around the algorithms: its settings, its model, its test sample."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from medlab.data import MedMNISTData, Split
from medlab.experiments import Settings
from medlab.models import build_model
from medlab.utils import check_int

__all__ = ["lesson_config", "build", "sample_split", "with_images"]


def lesson_config(data: MedMNISTData, lesson: Any) -> Settings:
    """Notebook 08's settings for ``lesson.quick``: a SmallCNN of width 8 (quick) or 16 (full),
    batch 64, lr 5e-3, epochs for the lesson's image budget; the teaching PGD's steps (5 / 10:
    a weak attack, no random start); the strong evaluation (``strong``: 50 steps from a random
    start with 2 / 5 restarts, at 2.5 eps / steps);
    adversarial fine-tuning of the standard model (``adv_train``: half its epochs, at least 2, at
    lr 2e-3: at 5e-3 BreastMNIST's fine-tuned model fell to answering one class on one seed in
    four) with FGSM + random start (quick) or 3-step PGD (full), eps ramped up over its first
    third;
    test images attacked (300 quick, all full)."""
    quick = bool(lesson.quick)
    epochs = lesson.epochs(len(data.train), minimum=5 if quick else 8, scale=1.0 if quick else 0.5)
    adv_epochs = max(2, epochs // 2)
    train = {"epochs": epochs, "batch_size": 64, "lr": 5e-3}
    return lesson.settings(
        width=8 if quick else 16,
        train=train,
        adv_train={**train, "epochs": adv_epochs, "lr": 2e-3},
        adv={
            "steps": 1 if quick else 3,
            "ramp": adv_epochs * math.ceil(len(data.train) / 64) // 3,
        },
        pgd_steps=5 if quick else 10,
        strong={"steps": 50, "restarts": 2 if quick else 5},
        n_test=300 if quick else None,
    )


def build(data: MedMNISTData, cfg: Mapping[str, Any]) -> nn.Module:
    """The untrained SmallCNN of :func:`lesson_config` for ``data``."""
    return build_model("smallcnn", data.n_channels, data.n_classes, width=cfg["width"])


def sample_split(split: Split, n: int | None, *, seed: int = 0) -> Split:
    """``n`` images of ``split`` drawn at random (seeded, without replacement; all if None or
    more than there are), in their original order."""
    if n is None or n >= len(split):
        return split
    n = check_int("n", n, 1)
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    return split.subset(torch.sort(idx).values)


def with_images(split: Split, images: torch.Tensor) -> Split:
    """A copy of ``split`` holding ``images`` (uint8, same shape) instead of its own."""
    images = torch.as_tensor(images)
    if images.shape != split.images.shape or images.dtype != torch.uint8:
        raise ValueError(
            f"images must be uint8 of shape {tuple(split.images.shape)}, got "
            f"{images.dtype} {tuple(images.shape)}"
        )
    return dataclasses.replace(split, images=images, labels=split.labels.clone())
