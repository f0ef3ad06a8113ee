"""A batch source over an in-memory :class:`~medlab.data.Split`: seeded shuffling, batch-wise
augmentation, images kept uint8 until a batch needs floats, optional per-image weights."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from medlab.data import Split
from medlab.train.inputs import BatchAugment, to_input
from medlab.utils import check_int

__all__ = ["batches"]


def _check_weights(sample_weight: Any, n: int) -> torch.Tensor:
    w = torch.as_tensor(np.asarray(sample_weight, dtype=np.float32))
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight must have one weight per training image, shape ({n},), got "
            f"{tuple(w.shape)}"
        )
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(
            "sample_weight must be finite and non-negative (no NaN or inf); compute weights "
            "with medlab.fairness.group_weights or clip them"
        )
    if not bool((w > 0).any()):
        raise ValueError("sample_weight is all zero: at least one image must have a weight > 0")
    return w


def batches(
    split: Split,
    *,
    batch_size: int = 128,
    epochs: int | None = 1,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
    augment: BatchAugment | None = None,
    sample_weight: Any = None,
    shuffle: bool = True,
    device: torch.device | str | None = None,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Mini-batches of an in-memory split: ``(x, y)`` or ``(x, y, w)`` with ``sample_weight``.

    x: float (B, C, H, W) on [-1, 1] (converted from uint8 one batch at a time), augmented by
    ``augment`` when given; y: int64 (B,) or float (B, L) for multi-label tasks; w: float (B,).
    Each epoch is a new seeded permutation; ``epochs=None`` runs forever (for step-based
    training: take as many steps as you need). The random stream is ``generator`` if given,
    else one seeded by ``seed``. ``device``: where the batches are made (each batch's uint8
    images move there before conversion and augmentation; :func:`~medlab.train.fit` passes
    :func:`medlab.utils.device`); default the split's own device, the CPU.
    """
    if not isinstance(split, Split):
        raise TypeError(f"batches() needs a medlab Split, got {type(split).__name__}")
    n = len(split)
    if n == 0:
        raise ValueError(f"the {split.split} split of {split.name} is empty: nothing to train on")
    batch_size = check_int("batch_size", batch_size, 1)
    if epochs is not None:
        epochs = check_int("epochs", epochs, 1)
    w = _check_weights(sample_weight, n) if sample_weight is not None else None
    gen = generator if generator is not None else torch.Generator().manual_seed(seed or 0)
    dev = split.images.device if device is None else device
    dev = dev if isinstance(dev, torch.device) else torch.device(dev)
    return _batch_iter(split, batch_size, epochs, gen, augment, w, shuffle, dev)


def _batch_iter(
    split: Split,
    batch_size: int,
    epochs: int | None,
    gen: torch.Generator,
    augment: BatchAugment | None,
    w: torch.Tensor | None,
    shuffle: bool,
    dev: torch.device,
) -> Iterator[tuple[torch.Tensor, ...]]:
    n = len(split)
    epoch = 0
    while epochs is None or epoch < epochs:
        perm = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            x = to_input(split.images[idx].to(dev))
            if augment is not None:
                x = augment(x, gen)
            y = split.labels[idx].to(dev)
            yield (x, y) if w is None else (x, y, w[idx].to(dev))
        epoch += 1
