"""The conditions a class-conditional generator is asked for, and its samples as a Split."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from medlab.data import Split
from medlab.utils import check_int

__all__ = ["requested_labels", "synthetic_split", "group_conditions"]


def _labels(y: Any, n_classes: int) -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8) or y.ndim != 1:
        raise TypeError(f"labels must be integer class ids of shape (N,), got {y.dtype} {y.shape}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    return y.long()


def requested_labels(split: Split, n: int, *, n_classes: int | None = None) -> torch.Tensor:
    """``n`` class labels (N,) in the class proportions of ``split`` (largest remainders), in
    class order: what a conditional generator is asked to produce."""
    n = check_int("n", n, 1)
    k = split.n_classes if n_classes is None else n_classes
    counts = torch.bincount(split.labels, minlength=k).double()
    share = counts / counts.sum() * n
    take = share.floor().long()
    rest = n - int(take.sum())
    take[torch.argsort(share - take, descending=True)[:rest]] += 1
    return torch.repeat_interleave(torch.arange(k), take)


def synthetic_split(
    images: torch.Tensor, labels: Any, *, like: Split, name: str = "synthetic"
) -> Split:
    """Wrap generated uint8 images (N, C, H, W) and their labels as a :class:`Split` with the
    task and class names of ``like``, so every medlab tool takes them like real data."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError("images must be a uint8 tensor (N, C, H, W); use generate(...)")
    if not isinstance(like, Split):
        raise TypeError(f"like must be a medlab Split (e.g. data.train), got {type(like).__name__}")
    if images.shape[1:] != like.images.shape[1:]:
        raise ValueError(
            f"the images are {tuple(images.shape[1:])} (C, H, W) but {like.name}'s are "
            f"{tuple(like.images.shape[1:])}: generate with a generator built for "
            f"{like.images.shape[1]} channel(s) at {like.images.shape[-1]} px"
        )
    y = _labels(labels, like.n_classes)
    if len(y) != len(images):
        raise ValueError(f"{len(images)} images but {len(y)} labels: pass one label per image")
    return Split(like.name, name, images, y, like.task, dict(like.label_names))


def group_conditions(split: Split, groups: Any) -> Split:
    """The split relabelled with one condition per (group, class): ``group * K + class``
    (K classes), so a conditional generator can be asked for a class *of a group*."""
    g = np.asarray(groups).reshape(-1)
    if len(g) != len(split) or (len(g) and g.min() < 0):
        raise ValueError(f"groups must be (N,) non-negative ids for the {len(split)} images")
    k, n_groups = split.n_classes, int(g.max()) + 1 if len(g) else 1
    y = torch.from_numpy(g.astype(np.int64)) * k + split.labels
    names = {
        gi * k + c: f"group {gi}, {split.label_names[c]}"
        for gi in range(n_groups)
        for c in range(k)
    }
    return Split(split.name, split.split, split.images, y, split.task, names)
