"""Reading a MedMNIST-layout ``.npz`` file: what is wrong with a file that is not one (empty,
a ``.npy``, an HTML page, a damaged zip, pickled arrays) and with arrays that are not in the
layout (keys, shapes, dtypes), each reported with its fix. Nothing is ever unpickled."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from medlab.data.errors import DataError, DataLayoutError
from medlab.data.registry import SPLITS

_NPY_MAGIC = b"\x93NUMPY"


_HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<!--")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file, after checking that it is one (never unpickling)."""
    if os.path.isdir(path):
        raise DataLayoutError(f"{path} is a folder, not a .npz file: remove or rename it.")
    _check_head(path, _read_head(path))
    _check_members(path)
    return _load_arrays(path)


_AGAIN = "delete it and download (or copy) it again"
_CORRUPT = (
    f"The file is corrupt or truncated: {_AGAIN} (its md5 must match), or re-create it with "
    "numpy.savez."
)


def _read_head(path: Path) -> bytes:
    """The file's first 1024 bytes."""
    try:
        with path.open("rb") as fh:
            return fh.read(1024)
    except OSError as exc:
        raise DataError(
            f"cannot read {path} ({type(exc).__name__}: {exc.strerror or exc}); check that it "
            "is a readable file."
        ) from exc


def _check_head(path: Path, head: bytes) -> None:
    """Refuse a file that is empty, a ``.npy``, an HTML page or not a zip archive."""
    if not head:
        raise DataLayoutError(
            f"{path} is empty (0 bytes), probably an interrupted download or copy: {_AGAIN}."
        )
    if head.startswith(_NPY_MAGIC):
        raise DataLayoutError(
            f"{path} is a .npy array, not a .npz archive: a MedMNIST file holds six arrays. "
            "Re-save with numpy.savez(path, train_images=..., train_labels=..., "
            "val_images=..., val_labels=..., test_images=..., test_labels=...)."
        )
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(_HTML_STARTS) or b"<html" in text:
        raise DataLayoutError(
            f"{path} looks like an HTML page (a failed download?): delete it and download "
            "again. It is not a .npz archive but a web page (an error or login page) saved "
            "under the file name."
        )
    if not head.startswith(b"PK"):
        raise DataLayoutError(
            f"{path} is not a .npz archive (no zip signature; it starts with {head[:8]!r}). "
            f"The file is corrupt or not a MedMNIST file: {_AGAIN}."
        )


def _check_members(path: Path) -> None:
    """Refuse a damaged zip, or a zip that holds no ``.npy`` arrays."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataLayoutError(
            f"could not read {path} as a MedMNIST .npz ({type(exc).__name__}: {exc}). {_CORRUPT}"
        ) from exc
    if not any(m.endswith(".npy") for m in members):
        raise DataLayoutError(
            f"{path} is a zip archive but not a .npz: it holds no .npy arrays (it holds "
            f"{members[:6]}{' ...' if len(members) > 6 else ''}). Re-create it with numpy.savez."
        )


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The archive's arrays (``allow_pickle=False``: object arrays are refused)."""
    arrays: dict[str, np.ndarray] = {}
    key = None
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                value = npz[key]
                if isinstance(value, np.ndarray):  # a non-.npy member comes back as bytes
                    arrays[key] = value
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataLayoutError(
                f"{path}: array {key!r} holds object arrays (pickled): re-save with numeric "
                "arrays, e.g. numpy.asarray(x, dtype=numpy.uint8). medlab never unpickles a "
                "data file (unpickling can run code)."
            ) from exc
        raise DataLayoutError(
            f"could not read {path} as a MedMNIST .npz ({type(exc).__name__}: {exc}). {_CORRUPT}"
        ) from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise DataLayoutError(
            f"could not read {path} as a MedMNIST .npz ({type(exc).__name__}: {exc}). {_CORRUPT}"
        ) from exc
    return arrays


def _split_arrays(
    path: Path, arrays: dict[str, np.ndarray], n_channels: int | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for s in SPLITS:
        for kind in ("images", "labels"):
            if f"{s}_{kind}" not in arrays:
                raise DataLayoutError(
                    f"{path} is not in MedMNIST layout: key '{s}_{kind}' is missing (found "
                    f"{sorted(arrays)}). Expected keys train/val/test _images and _labels."
                )
        x, y = arrays[f"{s}_images"], arrays[f"{s}_labels"]
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 3) or x.shape[1] != x.shape[2]:
            hint = ""
            if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[2] == x.shape[3]:
                hint = " It looks channels-first (N, C, H, W): use x.transpose(0, 2, 3, 1)."
            raise DataLayoutError(
                f"{path}: '{s}_images' has shape {x.shape}; MedMNIST layout is (N, H, W) for "
                f"grayscale or (N, H, W, 3) for RGB, with H == W.{hint}"
            )
        if x.dtype != np.uint8:
            raise DataLayoutError(
                f"{path}: '{s}_images' has dtype {x.dtype}; expected uint8 (0..255). Convert "
                "with (x * 255).round().astype('uint8') for floats in 0..1, or "
                "x.astype('uint8') for integers in 0..255."
            )
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[0] != x.shape[0]:
            raise DataLayoutError(
                f"{path}: '{s}_labels' has shape {y.shape} but '{s}_images' has {x.shape[0]} "
                "images; expected labels of shape (N, 1), or (N, L) for multi-label tasks."
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise DataLayoutError(
                f"{path}: '{s}_labels' has dtype {y.dtype}; expected integer class indices. "
                "If they are whole numbers, convert with numpy.rint(y).astype('int64')."
            )
        channels = 1 if x.ndim == 3 else 3
        if n_channels is not None and channels != n_channels:
            raise DataLayoutError(
                f"{path}: '{s}_images' has {channels} channel(s) but this dataset has "
                f"{n_channels}; pass the matching like= / file."
            )
        out[s] = (x, y)
    sides = {out[s][0].shape[1] for s in SPLITS}
    if len(sides) != 1:
        raise DataLayoutError(
            f"{path}: splits have different image sizes {sorted(sides)}; all splits must have "
            "the same size (resize them to one)."
        )
    return out
