"""From a file on disk to a :class:`~medlab.data.MedMNISTData`: read and check its arrays,
turn them into tensors, compare with the expected split sizes and official MD5 (an unofficial
copy loads, with one warning), and record the provenance."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from medlab.data.digests import file_md5
from medlab.data.errors import DataLayoutError, UnofficialDataWarning
from medlab.data.npz import _read_npz, _split_arrays
from medlab.data.registry import SPLITS
from medlab.data.splits import MedMNISTData, Split

_warned_unofficial: set[str] = set()


def _to_split(
    name: str,
    split: str,
    x: np.ndarray,
    y: np.ndarray,
    task: str,
    label_names: dict[int, str],
    path: Path,
) -> Split:
    images = torch.from_numpy(np.ascontiguousarray(x))
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()
    n = len(label_names)
    if task == "multi-label, binary-class":
        if y.shape[1] != n:
            raise DataLayoutError(
                f"{path}: '{split}_labels' has {y.shape[1]} columns; this multi-label task has "
                f"{n} labels."
            )
        if y.size and not np.isin(y, (0, 1)).all():
            raise DataLayoutError(
                f"{path}: '{split}_labels' holds values other than 0 and 1; a multi-label task "
                "needs one 0/1 column per label."
            )
        labels = torch.from_numpy(y.astype(np.float32))
    else:
        if y.shape[1] != 1:
            raise DataLayoutError(
                f"{path}: '{split}_labels' has shape {y.shape}; a {task} task needs one label "
                "per image, shape (N, 1)."
            )
        labels = torch.from_numpy(y[:, 0].astype(np.int64))
        if len(labels) and (labels.min() < 0 or labels.max() >= n):
            raise DataLayoutError(
                f"{path}: '{split}_labels' holds values "
                f"{int(labels.min())}..{int(labels.max())}; {name} has classes 0..{n - 1} "
                f"({label_names}). Fix the labels, or describe the file with the like= / "
                "label_names= that match them."
            )
    return Split(name, split, images, labels, task, label_names)


def _build(
    name: str,
    path: Path,
    *,
    task: str,
    label_names: dict[int, str],
    n_channels: int | None,
    license: str,
    description: str,
    official_md5: str | None,
    expected_sizes: dict[str, int] | None,
    sizes_fix: str = "",
    kind: str,
) -> MedMNISTData:
    arrays = _split_arrays(path, _read_npz(path), n_channels)
    sizes = {s: int(arrays[s][0].shape[0]) for s in SPLITS}
    md5 = file_md5(path)
    official = official_md5 is not None and md5 == official_md5
    if expected_sizes is not None and sizes != expected_sizes:
        raise DataLayoutError(f"{path} has split sizes {sizes} but {sizes_fix}")
    if official_md5 is not None and not official and str(path) not in _warned_unofficial:
        _warned_unofficial.add(str(path))
        warnings.warn(
            f"{path} has md5 {md5}, not the official {official_md5}: it loads, but it is an "
            "unofficial copy and results on it are marked official=False.",
            UnofficialDataWarning,
            stacklevel=3,
        )
    splits = {s: _to_split(name, s, *arrays[s], task, label_names, path) for s in SPLITS}
    channels = int(splits["train"].images.shape[1])
    side = int(splits["train"].images.shape[-1])
    provenance = {
        "dataset": name,
        "kind": kind,
        "file": str(path.resolve()),
        "md5": md5,
        "official_md5": official_md5,
        "official": official,
        "split_sizes": sizes,
        "size": side,
    }
    return MedMNISTData(
        name,
        splits["train"],
        splits["val"],
        splits["test"],
        task,
        label_names,
        channels,
        side,
        license,
        description,
        provenance,
    )
