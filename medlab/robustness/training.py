"""Training on attacked or corrupted batches, through :func:`medlab.train.train_steps`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from medlab.data import Split
from medlab.robustness.attacks import check_eps, pgd
from medlab.robustness.corruptions import _spec, corrupt, corruption_names
from medlab.train import BatchAugment, batches, make_optimizer, to_input, to_uint8, train_steps
from medlab.utils import check_int, check_scalar, progress

__all__ = ["adversarial_batches", "corrupted_batches", "train_with"]


def adversarial_batches(
    model: nn.Module,
    source: Iterable[tuple[torch.Tensor, ...]],
    *,
    eps: float,
    steps: int = 1,
    step: float | None = None,
    random_start: bool = True,
    clean: bool = True,
    ramp: int = 0,
    seed: int = 0,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """The batches of ``source`` (x float on [-1, 1], y, [w]) attacked on the current ``model``.

    Each x is replaced by its PGD attack (``steps=1`` with ``random_start``: FGSM with a random
    start, step 1.25 eps, Wong et al. 2020); with ``clean`` the batch holds the clean images and
    their attacked copies (Goodfellow et al.'s 50/50 loss), which keeps clean accuracy. ``ramp``:
    the first ``ramp`` batches raise eps linearly from 0 (a warm-up that stops small models from
    collapsing to one class). Yields batches on the model's [-1, 1] scale, ready for
    :func:`medlab.train.train_steps`."""
    eps = check_eps("eps", eps)
    steps = check_int("steps", steps, 1)
    ramp = check_int("ramp", ramp, 0)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    for i, batch in enumerate(source):
        e = eps * min(1.0, (i + 1) / ramp) if ramp else eps
        a = step * e / eps if step is not None and eps > 0 else None
        a = a if a is not None else (1.25 * e if steps == 1 else 2.5 * e / steps)
        x01 = ((batch[0] + 1.0) / 2.0).clamp(0.0, 1.0)
        adv = pgd(model, x01, batch[1], eps=e, step=min(a, 1.0), steps=steps,
                  random_start=random_start, generator=gen) * 2.0 - 1.0  # fmt: skip
        if clean:
            yield (torch.cat([batch[0], adv]), *(torch.cat([t, t]) for t in batch[1:]))
        else:
            yield (adv, *batch[1:])


def corrupted_batches(
    source: Iterable[tuple[torch.Tensor, ...]],
    names: Iterable[str],
    *,
    modality: str,
    p: float = 0.5,
    severities: Iterable[int] = (1, 2, 3, 4, 5),
    seed: int = 0,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """The batches of ``source`` with a share ``p`` of the images corrupted by a random
    corruption of ``names`` at a random severity (augmentation with MedMNIST-C corruptions).
    Every corrupted image draws its corruption, severity and noise/blur seed from one generator
    seeded by ``seed``, so batches get fresh corruptions and a rerun gets the same ones."""
    names, sevs = list(names), [check_int("severity", s, 1, 5) for s in severities]
    for n in names:
        _spec(modality, n)
    if not names:
        raise ValueError(f"need at least one corruption name, e.g. {corruption_names(modality)}")
    p = check_scalar("p", p, kind=float, lo=0, hi=1, fix="the share of images to corrupt")
    rng = np.random.default_rng(check_int("seed", seed, 0))
    for batch in source:
        x = batch[0]
        u8 = to_uint8(x)
        pick = np.flatnonzero(rng.random(len(x)) < p)
        out = u8.clone()
        for i in pick:  # each corrupted image draws its own noise/blur seed: fresh every batch
            name, sev = names[rng.integers(len(names))], sevs[rng.integers(len(sevs))]
            draw = int(rng.integers(2**31))
            out[i] = corrupt(u8[i : i + 1], name, sev, modality=modality, seed=draw)[0]
        yield (to_input(out), *batch[1:])


def train_with(
    model: nn.Module,
    train: Split,
    *,
    wrap: Any = None,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 3e-3,
    augment: BatchAugment | None = None,
    seed: int = 0,
    desc: str = "training",
) -> dict[str, Any]:
    """Train ``model`` in place on ``train`` with :func:`medlab.train.make_optimizer`,
    :func:`medlab.train.batches` and :func:`medlab.train.train_steps`, each epoch's batches
    passed through ``wrap(source) -> source`` (e.g. ``lambda s: adversarial_batches(model, s,
    eps=8/255)``). No model selection. Returns ``{"epochs", "train_loss"}`` (JSON-able)."""
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    opt, sched = make_optimizer(model, total_steps=epochs * steps_per_epoch, lr=lr)
    source = batches(train, batch_size=batch_size, epochs=epochs, seed=seed, augment=augment)
    source = wrap(source) if wrap is not None else source
    losses = []
    for _ in progress(range(epochs), desc=desc):
        losses.append(train_steps(model, source, opt, steps_per_epoch, scheduler=sched).loss)
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"training diverged (loss {losses[-1]}); lower lr ({lr})")
    model.eval()
    return {"epochs": epochs, "train_loss": losses}
