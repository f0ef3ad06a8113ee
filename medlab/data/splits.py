"""Datasets in memory: :class:`Split` (uint8 images and labels of one split) and
:class:`MedMNISTData` (three splits, metadata and provenance)."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from medlab.data.errors import DataArgumentError, DataIndexError
from medlab.data.registry import SPLITS

__all__ = ["Split", "MedMNISTData"]


def _as_index(index: Any, n: int, *, where: str) -> torch.Tensor:
    """Row indices (int64, 1-D, each in 0..n-1) from a list, array, tensor, range or bool mask."""
    if isinstance(index, numbers.Number | str | bytes) or index is None:
        raise DataArgumentError(
            f"{where}.subset() takes a sequence of row numbers or a boolean mask, got "
            f"{type(index).__name__} {index!r}; e.g. subset([0, 5, 7])."
        )
    if isinstance(index, torch.Tensor):
        idx = index.detach().cpu()
    else:
        if isinstance(index, set | frozenset | Mapping):
            raise DataArgumentError(
                f"{where}.subset() got a {type(index).__name__}, which has no order; pass a "
                "sorted list, e.g. subset(sorted(rows))."
            )
        arr = np.asarray(index if hasattr(index, "__len__") else list(index))
        if arr.size == 0:
            arr = arr.astype(np.int64)
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise DataArgumentError(
                f"{where}.subset() got indices of dtype {arr.dtype}; pass integer row numbers "
                "or a boolean mask (a numpy array, list or torch tensor)."
            )
        idx = torch.from_numpy(np.ascontiguousarray(arr))
    if idx.ndim != 1:
        raise DataArgumentError(
            f"{where}.subset() needs a 1-D index, got shape {tuple(idx.shape)}; flatten it "
            "first (e.g. index.ravel())."
        )
    if idx.dtype == torch.bool:
        if len(idx) != n:
            raise DataIndexError(
                f"{where}.subset() got a boolean mask of length {len(idx)}; the split has {n} "
                "images, so the mask must have that length too."
            )
        return idx.nonzero().flatten()
    if idx.is_floating_point() or idx.is_complex():
        raise DataArgumentError(
            f"{where}.subset() got float indices ({idx.dtype}); pass integer row numbers, e.g. "
            "index.long() for a tensor or index.astype(int) for a numpy array."
        )
    idx = idx.long()
    bad = idx[(idx < 0) | (idx >= n)]
    if len(bad):
        valid = f"0..{n - 1}" if n else "none (the split is empty)"
        raise DataIndexError(
            f"{where}.subset() got row index {int(bad[0])}, outside the valid range {valid} "
            f"({n} images); negative indices are not allowed."
        )
    return idx


@dataclass
class Split:
    """One split of a dataset, held in memory.

    Attributes:
        images: uint8 tensor, shape (N, C, H, W), values 0..255.
        labels: int64 tensor (N,) for binary/multi-class/ordinal tasks, or float32 (N, L) of 0/1
            for multi-label tasks.
        name, split, task, label_names: what the data is.

    A split may be empty (N = 0, e.g. a custom file without validation images): it loads, and
    the training loop refuses to train on it.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    task: str
    label_names: dict[int, str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of output units a classifier needs (classes, or labels for multi-label)."""
        return len(self.label_names)

    @property
    def multilabel(self) -> bool:
        return self.task == "multi-label, binary-class"

    def subset(self, index: torch.Tensor | np.ndarray | Iterable[int]) -> Split:
        """A new Split holding the rows ``index`` (a copy; the original is untouched).

        ``index``: integer row numbers in ``0..len(self)-1`` (list, range, numpy array, torch
        tensor; repeats allowed) or a boolean mask of length ``len(self)``.
        """
        idx = _as_index(index, len(self), where=f"{self.name} {self.split}")
        return Split(
            self.name,
            self.split,
            self.images[idx].clone(),
            self.labels[idx].clone(),
            self.task,
            dict(self.label_names),
        )

    def class_counts(self) -> dict[str, int]:
        """Images per class (per label, positives, for multi-label tasks)."""
        if self.multilabel:
            counts = self.labels.sum(0).long().tolist()
        else:
            counts = torch.bincount(self.labels, minlength=self.n_classes).tolist()
        return {self.label_names[i]: int(c) for i, c in enumerate(counts)}

    def numpy_labels(self) -> np.ndarray:
        """Labels as MedMNIST stores them: (N, 1) or (N, L) integers (for medmnist's metrics)."""
        y = self.labels.numpy()
        return y.astype(np.int64) if self.multilabel else y.reshape(-1, 1)


@dataclass
class MedMNISTData:
    """A loaded dataset: three splits plus metadata and provenance."""

    name: str
    train: Split
    val: Split
    test: Split
    task: str
    label_names: dict[int, str]
    n_channels: int
    size: int
    license: str
    description: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, split: str) -> Split:
        if split not in SPLITS:
            raise KeyError(f"unknown split {split!r}; choose one of {SPLITS}")
        return getattr(self, split)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def official(self) -> bool:
        return bool(self.provenance.get("official"))

    def __repr__(self) -> str:
        sizes = "/".join(str(len(self[s])) for s in SPLITS)
        flag = "official file" if self.official else "UNOFFICIAL file"
        return (
            f"MedMNISTData({self.name!r}, {self.task}, {self.n_classes} classes, "
            f"{self.n_channels}x{self.size}x{self.size}, train/val/test={sizes}, {flag})"
        )
