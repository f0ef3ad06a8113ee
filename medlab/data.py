"""One data layer for the whole curriculum: MedMNIST files in, uint8 tensors with provenance out.

>>> data = load("breastmnist", data_dir="../shared/medmnist")      # doctest: +SKIP
>>> data.train.images.shape, data.train.images.dtype                # (546, 1, 28, 28) uint8
>>> data.provenance["official"]                                     # False for a re-saved copy

Metadata (task, label names, channels, licence, official MD5 and split sizes) is read from
``medmnist.INFO``, never retyped. Official files are downloaded with pooch and verified by MD5;
pooch writes to a temporary file and only moves it into place once the hash matches, so a failed
download never leaves a partial file behind (temporary files left by a killed download are
removed by the next download into the same folder). A file already on disk is never replaced:
:func:`download` refuses one whose MD5 is not the official one, while :func:`load` loads it and
marks it unofficial. Registered custom datasets (data cards with ``kind: custom``) are checked
against their card's sha256 and split sizes.

The data directory is, in order: the ``data_dir`` argument, the ``MEDLAB_DATA_DIR`` environment
variable, or ``~/.medmnist`` (the folder medmnist itself uses, so existing downloads are reused).
A relative path is relative to the current working directory. Only :func:`download` creates it.

Every problem is reported as a :class:`DataError` (a ``ValueError``) whose message names the fix.
"""

from __future__ import annotations

import hashlib
import numbers
import os
import re
import time
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from medmnist import INFO

from medlab import cards as _cards
from medlab.utils import check_scalar

__all__ = [
    "SPLITS",
    "SIZES",
    "OFFICIAL_2D",
    "DataError",
    "DataNotFoundError",
    "DataLayoutError",
    "DataChecksumError",
    "DataDirError",
    "DataArgumentError",
    "DataIndexError",
    "UnknownDatasetError",
    "UnofficialDataWarning",
    "Split",
    "MedMNISTData",
    "resolve_data_dir",
    "file_md5",
    "file_sha256",
    "check_names",
    "available",
    "load",
    "load_custom",
    "download",
    "MANIFEST",
    "read_manifest",
    "check_custom_name",
    "check_manifest",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")
SIZES: tuple[int, ...] = (28, 64, 128, 224)
#: Official 2D MedMNIST datasets (the 3D ones are out of scope for the curriculum).
OFFICIAL_2D: tuple[str, ...] = tuple(k for k in INFO if not k.endswith("3d"))
ENV_VAR = "MEDLAB_DATA_DIR"
#: An offline bundle's list of files and MD5s (``md5sum`` format), checked by :func:`load`.
MANIFEST = "MANIFEST.md5"
TASKS = ("binary-class", "multi-class", "ordinal-regression", "multi-label, binary-class")
_DIR_FIX = f"Set ${ENV_VAR} or pass data_dir= to a writable folder."


class DataError(ValueError):
    """Base class for every data problem medlab reports."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The file is not on disk and could not be downloaded."""


class DataLayoutError(DataError):
    """The file exists but is not a MedMNIST-layout npz (or contradicts the official one)."""


class DataChecksumError(DataError):
    """A file's md5/sha256 is not the one it must have (official md5, or its data card's sha256)."""


class DataDirError(DataError):
    """The data folder cannot be used: it is a file, or cannot be created or written."""


class DataArgumentError(DataError, TypeError):
    """An argument has the wrong type (``size=28.0``, ``name=None``, a bare string for a list)."""


class UnknownDatasetError(DataError):
    """The name is neither an official 2D MedMNIST dataset nor a registered custom one."""


class DataIndexError(DataError, IndexError):
    """:meth:`Split.subset` got a row index outside the split."""


class UnofficialDataWarning(UserWarning):
    """A file loaded under an official name whose MD5 is not the official one."""


_warned_unofficial: set[str] = set()
_digest_cache: dict[tuple[Any, ...], str] = {}
#: A digest is cached only for files whose status last changed this long ago, so a same-size
#: rewrite within one file-system timestamp tick can never hit a stale entry ("racy" files).
_RACY_NS = 2_000_000_000


# --------------------------------------------------------------------------------------------
# arguments


def _check_int(value: Any, *, param: str, example: int = 28) -> int:
    """``value`` as an int; any integral type (numpy ints too) but not bool or float."""
    return check_scalar(
        param,
        value,
        kind=int,
        error=DataArgumentError,
        fix=f"pass an integer, e.g. {param}={example}",
    )


def _check_size(size: Any) -> int:
    size = _check_int(size, param="size")
    if size not in SIZES:
        raise DataError(f"size={size!r} is not a MedMNIST size; choose one of {SIZES}.")
    return size


def _check_name_type(name: Any, *, func: str = "load") -> str:
    if isinstance(name, str):
        return name
    if isinstance(name, Iterable) and not isinstance(name, bytes | os.PathLike):
        raise DataArgumentError(
            f"{func}() takes one dataset name (a str), got a {type(name).__name__}: {name!r}. "
            f"To do several, loop: [medlab.{func}(n) for n in names]."
        )
    raise DataArgumentError(
        f"{func}() needs a dataset name such as 'breastmnist' (a str), got "
        f"{type(name).__name__} {name!r}."
    )


def check_custom_name(name: Any, *, func: str = "load_custom") -> str:
    """A custom dataset's name if it matches :data:`medlab.cards.NAME_RE` (lowercase letters,
    digits, ``_ . -``; it ends up in file names, record keys and the audit's HTML pages), else a
    :class:`DataError` naming the fix."""
    if not isinstance(name, str) or not name.strip():
        raise DataArgumentError(
            f"{func}() needs name= (a non-empty str), got {name!r}; e.g. name='my_subset'."
        )
    if not _cards.NAME_RE.fullmatch(name):
        safe = re.sub(r"[^a-z0-9_.-]+", "_", name.lower()).strip("_.-")[:64]
        safe = safe if _cards.NAME_RE.fullmatch(safe) else f"my_{safe}".strip("_")[:64]
        raise DataError(
            f"{func}(): dataset name {name!r} is not allowed: use lowercase letters, digits, "
            f"'_', '.' and '-' (at most 64 characters, starting with a letter or digit, at least "
            f"one letter), e.g. name={safe!r}."
        )
    return name


def check_names(names: Iterable[str], *, param: str = "names") -> list[str]:
    """Validate a list of dataset names (official 2D or registered custom); return them normalised.

    A bare string is refused: iterating it would give letters, not names.
    """
    if isinstance(names, str | bytes | os.PathLike):
        raise DataArgumentError(
            f"{param}={names!r} is a single string (it would be read letter by letter); pass a "
            f"list, e.g. ['breastmnist'], here {param}=[{names!r}]."
        )
    if not isinstance(names, Iterable):
        raise DataArgumentError(
            f"{param}={names!r} is a {type(names).__name__}; pass a list of dataset names, "
            "e.g. ['breastmnist']."
        )
    out = []
    for n in names:
        if not isinstance(n, str):
            raise DataArgumentError(
                f"{param} must hold dataset names (str); got {type(n).__name__} {n!r}. Pass "
                "a list of names, e.g. ['breastmnist', 'pneumoniamnist']."
            )
        key = n.lower().strip()
        out.append(key if key in _cards.custom_names() else _check_name(key))
    return out


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data directory: ``path``, else ``$MEDLAB_DATA_DIR``, else ``~/.medmnist``.

    Returns an absolute path (a relative one is taken from the current working directory);
    nothing is created.
    """
    if path is None:
        path = os.environ.get(ENV_VAR) or "~/.medmnist"
    elif not isinstance(path, str | os.PathLike):
        raise DataArgumentError(
            f"data_dir={path!r} is a {type(path).__name__}; pass a folder path (str or "
            f"pathlib.Path), or None to use ${ENV_VAR} / ~/.medmnist."
        )
    elif not str(os.fspath(path)).strip():
        raise DataArgumentError(
            f"data_dir={path!r} is empty; pass a folder path, or None to use ${ENV_VAR} / "
            "~/.medmnist."
        )
    return Path(path).expanduser().absolute()


def _check_folder(folder: Path) -> None:
    """Refuse a data folder that is a file, or lies under a file (nothing is created)."""
    p = folder
    while not os.path.lexists(p) and p.parent != p:
        p = p.parent
    if os.path.exists(p) and not os.path.isdir(p):
        where = "is a file" if p == folder else f"is inside {p}, which is a file"
        raise DataDirError(f"the data folder {folder} {where}, not a folder. {_DIR_FIX}")


# --------------------------------------------------------------------------------------------
# file digests


def _digest(path: str | os.PathLike[str], algo: str) -> str:
    p = Path(path)
    with p.open("rb") as fh:
        st = os.fstat(fh.fileno())
        key = (algo, str(p.resolve()), st.st_dev, st.st_ino)
        key += (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key in _digest_cache:
            return _digest_cache[key]
        h = hashlib.new(algo)
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
        after = os.fstat(fh.fileno())
    digest = h.hexdigest()
    unchanged = (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == key[4:]
    if unchanged and time.time_ns() - st.st_ctime_ns >= _RACY_NS:
        _digest_cache[key] = digest
    return digest


def file_md5(path: str | os.PathLike[str]) -> str:
    """MD5 hex digest of a file (cached by path, device, inode, size, mtime and ctime)."""
    return _digest(path, "md5")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file (cached like :func:`file_md5`)."""
    return _digest(path, "sha256")


# --------------------------------------------------------------------------------------------
# in-memory data


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


# --------------------------------------------------------------------------------------------
# official files


def _check_name(name: Any, *, func: str = "load") -> str:
    key = _check_name_type(name, func=func).lower().strip()
    if key in OFFICIAL_2D:
        return key
    if key in INFO:
        raise UnknownDatasetError(
            f"{name!r} is a 3D MedMNIST dataset; medlab covers the 2D ones: "
            f"{', '.join(OFFICIAL_2D)}."
        )
    custom = ", ".join(_cards.custom_names())
    hint = ""
    if key.endswith(".npy"):
        hint = " A .npy file is a single array; MedMNIST files are .npz archives."
    raise UnknownDatasetError(
        f"unknown dataset {name!r}. Official 2D MedMNIST names: "
        f"{', '.join(OFFICIAL_2D)}. Registered custom datasets: {custom or 'none'}. "
        f"For your own MedMNIST-layout file use medlab.data.load_custom(path, name=...).{hint}"
    )


def _official_file(name: str, size: int) -> tuple[str, str, str]:
    """(file name, url, md5) of an official file, from medmnist.INFO."""
    size = _check_size(size)
    info = INFO[name]
    url_key, md5_key = ("url", "MD5") if size == 28 else (f"url_{size}", f"MD5_{size}")
    suffix = "" if size == 28 else f"_{size}"
    return f"{name}{suffix}.npz", info[url_key], info[md5_key]


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` (and missing parents); return the folders created, deepest first."""
    _check_folder(folder)
    missing = []
    p = folder
    while not os.path.isdir(p) and p.parent != p:
        missing.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(missing)
        raise DataDirError(
            f"cannot create the data folder {folder} ({type(exc).__name__}: "
            f"{exc.strerror or exc}). {_DIR_FIX}"
        ) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataDirError(f"the data folder {folder} is not writable. {_DIR_FIX}")
    return missing


def _remove_empty(folders: Iterable[Path]) -> None:
    """Remove the given folders (deepest first) while they are empty."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:
            return


#: pooch downloads into ``tempfile.NamedTemporaryFile(dir=<data folder>)``: "tmp" + 8 characters.
_POOCH_TMP = re.compile(r"tmp[a-z0-9_]{8}")
#: A live download writes continuously (pooch's HTTP timeout is 30 s); older temp files are stale.
_STALE_TMP_S = 300.0


def _remove_stale_temp_files(folder: Path, *, older_than: float = _STALE_TMP_S) -> list[Path]:
    """Delete pooch temp files in ``folder`` not modified for ``older_than`` seconds (left by a
    killed download). Only names matching pooch's pattern, only directly in ``folder``."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not _POOCH_TMP.fullmatch(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                continue
            os.remove(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def download(
    name: str,
    *,
    size: int = 28,
    data_dir: str | os.PathLike[str] | None = None,
    downloader: Callable[..., Any] | None = None,
    progressbar: bool = False,
) -> Path:
    """Download an official MedMNIST file (if missing) and verify its MD5.

    Args:
        name: official 2D dataset name, e.g. ``"pneumoniamnist"``.
        size: image side in pixels (28, 64, 128 or 224).
        data_dir: target folder (see :func:`resolve_data_dir`); created if needed.
        downloader: a pooch downloader (``(url, output_file, pooch) -> None``); tests pass a
            stub here, users leave it ``None`` for HTTP.

    Returns the path of the verified file. A file already there is checked, not replaced: one
    with another MD5 raises :class:`DataChecksumError`. Raises :class:`DataNotFoundError` naming
    the URL, target path and MD5 when the download fails; no partial file, no stale pooch temp
    file and no folder created by this call is left behind.
    """
    import pooch

    key = _check_name_type(name, func="download").lower().strip()
    if key in _cards.custom_names():
        raise DataNotFoundError(
            f"{key!r} is a registered custom dataset; it cannot be downloaded: "
            f"{_cards.card(key).get('obtain', 'see its data card')}. Put its file in the data "
            f"folder and use medlab.load({key!r}, data_dir=...)."
        )
    key = _check_name(key, func="download")
    fname, url, md5 = _official_file(key, size)
    if downloader is not None and not callable(downloader):
        raise DataArgumentError(
            f"downloader={downloader!r} is not callable; pass a pooch downloader or None."
        )
    folder = resolve_data_dir(data_dir)
    _check_folder(folder)
    target = folder / fname
    if os.path.isdir(target):
        raise DataDirError(f"{target} is a folder, not a file: remove or rename it.")
    if target.exists():
        actual = file_md5(target)
        if actual != md5:
            raise DataChecksumError(
                f"the file at {target} has md5 {actual}, not the official {md5}, so it is not "
                f"the official {fname}. To download the official file, delete it and run "
                f"medlab.data.download({key!r}) (or `medlab download {key}`) again. To keep this "
                f"copy, load it with medlab.load({key!r}, data_dir={str(folder)!r}): it loads, "
                "marked unofficial (official=False)."
            )
        return target
    created = _make_folder(folder)
    _remove_stale_temp_files(folder)
    try:
        pooch.retrieve(
            url,
            known_hash=f"md5:{md5}",
            fname=fname,
            path=folder,
            downloader=downloader,
            progressbar=progressbar,
        )
    except BaseException as exc:  # network down, host unreachable, hash mismatch, Ctrl-C, ...
        # pooch removes its own temporary file; drop stale ones and the folders made here
        _remove_stale_temp_files(folder)
        _remove_empty(created)
        if not isinstance(exc, Exception):
            raise
        if isinstance(exc, PermissionError):
            raise DataDirError(f"cannot write {fname} into {folder} ({exc}). {_DIR_FIX}") from exc
        raise DataNotFoundError(
            f"{fname} is not in {folder} and downloading it failed "
            f"({type(exc).__name__}: {exc}). Download {url} yourself and save it as {target} "
            f"(md5 {md5}), or point data_dir= / ${ENV_VAR} at a folder that has it."
        ) from exc
    _remove_stale_temp_files(folder)
    return target


_fetch = download  # load() has a flag named ``download``, so it calls this name


# --------------------------------------------------------------------------------------------
# offline bundles (``medlab download --all --to DIR``, see medlab.kit)

_MANIFEST_LINE = re.compile(r"([0-9a-fA-F]{32}) [ *](.+)")


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, str]:
    """``{file name: md5}`` from ``folder/MANIFEST.md5`` (``md5sum`` format: ``<md5>  <name>``
    per line); ``{}`` when the folder has no manifest. A malformed line raises
    :class:`DataChecksumError` naming the line and the fix."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataChecksumError(
            f"{path} is not UTF-8 text (byte {exc.start} cannot be decoded), so it is not an "
            f"md5sum manifest: it was damaged or replaced. Copy MANIFEST.md5 again from the "
            f"original bundle, or rebuild the bundle with `medlab download --all --to "
            f"{path.parent}`."
        ) from None
    out = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _MANIFEST_LINE.fullmatch(line.strip())
        if m is None or "/" in m[2] or "\\" in m[2]:
            raise DataChecksumError(
                f"{path}, line {i}: {line.strip()!r} is not '<md5>  <file name>' (md5sum "
                f"format). Rebuild the bundle with `medlab download --all --to {path.parent}`, "
                "or copy MANIFEST.md5 again from the original bundle."
            )
        out[m[2]] = m[1].lower()
    return out


def check_manifest(path: str | os.PathLike[str]) -> None:
    """Verify a data file against the manifest of its folder, if the folder is an offline bundle
    (has ``MANIFEST.md5``) that lists the file; raises :class:`DataChecksumError` naming the
    fix when the MD5 differs. Files the manifest does not list are not checked."""
    path = Path(path)
    expected = read_manifest(path.parent).get(path.name)
    if expected is None:
        return
    actual = file_md5(path)
    if actual != expected:
        raise DataChecksumError(
            f"{path} has md5 {actual}, but the bundle's manifest {path.parent / MANIFEST} lists "
            f"{expected}: the file was damaged or replaced after the bundle was built. Copy "
            f"{path.name} again from the original bundle (`md5sum -c {MANIFEST}` in the bundle "
            f"folder checks every file), or rebuild the bundle online with "
            f"`medlab download --all --to {path.parent}`."
        )


# --------------------------------------------------------------------------------------------
# reading npz files

_NPY_MAGIC = b"\x93NUMPY"
_HTML_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<!--")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if os.path.isdir(path):
        raise DataLayoutError(f"{path} is a folder, not a .npz file: remove or rename it.")
    try:
        with path.open("rb") as fh:
            head = fh.read(1024)
    except OSError as exc:
        raise DataError(
            f"cannot read {path} ({type(exc).__name__}: {exc.strerror or exc}); check that it "
            "is a readable file."
        ) from exc
    again = "delete it and download (or copy) it again"
    if not head:
        raise DataLayoutError(
            f"{path} is empty (0 bytes), probably an interrupted download or copy: {again}."
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
            f"The file is corrupt or not a MedMNIST file: {again}."
        )
    corrupt = (
        f"The file is corrupt or truncated: {again} (its md5 must match), or re-create it with "
        "numpy.savez."
    )
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataLayoutError(
            f"could not read {path} as a MedMNIST .npz ({type(exc).__name__}: {exc}). {corrupt}"
        ) from exc
    if not any(m.endswith(".npy") for m in members):
        raise DataLayoutError(
            f"{path} is a zip archive but not a .npz: it holds no .npy arrays (it holds "
            f"{members[:6]}{' ...' if len(members) > 6 else ''}). Re-create it with numpy.savez."
        )
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
            f"could not read {path} as a MedMNIST .npz ({type(exc).__name__}: {exc}). {corrupt}"
        ) from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise DataLayoutError(
            f"could not read {path} as a MedMNIST .npz ({type(exc).__name__}: {exc}). {corrupt}"
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


def _label_names(info: dict[str, Any]) -> dict[int, str]:
    return {int(k): v for k, v in info["label"].items()}


def _check_label_names(label_names: Any) -> dict[int, str] | None:
    """``{0: 'a', 1: 'b', ...}`` from a dict or a list of names; None stays None."""
    if label_names is None:
        return None
    if isinstance(label_names, str | bytes):
        raise DataArgumentError(
            f"label_names={label_names!r} is a single string; pass a dict, e.g. "
            "label_names={0: 'normal', 1: 'pneumonia'}, or a list such as ['normal', "
            "'pneumonia']."
        )
    if isinstance(label_names, Mapping):
        items = list(label_names.items())
    elif isinstance(label_names, Iterable):
        items = list(enumerate(label_names))
    else:
        raise DataArgumentError(
            f"label_names={label_names!r}: pass a dict, e.g. {{0: 'normal', 1: 'pneumonia'}}."
        )
    if any(isinstance(k, bool) or not isinstance(k, numbers.Integral) for k, _ in items) or sorted(
        int(k) for k, _ in items
    ) != list(range(len(items))):
        raise DataArgumentError(
            f"label_names={label_names!r}: keys must be the class indices 0..n-1, e.g. "
            "{0: 'normal', 1: 'pneumonia'}."
        )
    return {int(k): str(v) for k, v in sorted(items, key=lambda kv: int(kv[0]))}


def available(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Datasets (official names and registered custom ones) whose 28 px file is in ``data_dir``."""
    folder = resolve_data_dir(data_dir)
    found = {}
    for name in OFFICIAL_2D:
        if (folder / f"{name}.npz").is_file():
            found[name] = folder / f"{name}.npz"
    for name in _cards.custom_names():
        p = folder / _cards.card(name)["file"]
        if p.is_file():
            found[name] = p
    return found


def _missing_where(folder: Path) -> str:
    return f"{folder}" if folder.is_dir() else f"{folder} (that folder does not exist)"


def _load_registered(key: str, folder: Path, size: int) -> MedMNISTData:
    """A registered custom dataset, checked against its card (sha256, split sizes)."""
    c = _cards.card(key)
    path = folder / c["file"]
    if not path.exists():
        raise DataNotFoundError(
            f"{c['file']} (custom dataset {key!r}) is not in {_missing_where(folder)}. It cannot "
            f"be downloaded: {c.get('obtain', 'see its data card')}. Put it there or pass "
            f"data_dir= / set ${ENV_VAR} to the folder that has it."
        )
    card_name = f"the data card of {key!r} (datasets/{key}.yaml)"
    own_name = (
        f"or load this file under its own name: medlab.load_custom({str(path)!r}, "
        f"name='my_{key}', like={c['like']!r})"
    )
    expected = str(c.get("sha256") or "").lower()
    if expected and os.path.isfile(path):
        actual = file_sha256(path)
        if actual != expected:
            raise DataChecksumError(
                f"{path} has sha256 {actual}, but {card_name} expects {expected}: it is not the "
                f"file the card describes (another version or a damaged copy). Get the file "
                f"the card describes ({c.get('obtain', 'see its data card')}), {own_name}."
            )
    check_manifest(path)
    info = INFO[_check_name(c["like"])]
    data = _build(
        key,
        path,
        task=info["task"],
        label_names=_label_names(info),
        n_channels=info["n_channels"],
        license=info["license"],
        description=c.get("description") or f"custom MedMNIST-layout file {path.name}",
        official_md5=None,
        expected_sizes={s: int(c["split_sizes"][s]) for s in SPLITS},
        sizes_fix=(
            f"{card_name} says {dict(c['split_sizes'])}: it is not the file the card describes. "
            f"Get the file the card describes, {own_name}."
        ),
        kind="custom",
    )
    if data.size != size:
        raise DataLayoutError(
            f"{path} holds {data.size} px images; custom dataset {key!r} has no {size} px "
            f"version: pass size={data.size}."
        )
    return data


def load(
    name: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    size: int = 28,
    download: bool = True,
    downloader: Callable[..., Any] | None = None,
) -> MedMNISTData:
    """Load a dataset by name: an official 2D MedMNIST name, a registered custom dataset
    (a card in ``datasets/`` with ``kind: custom``), or a path to a MedMNIST-layout ``.npz``.

    Official files are downloaded when missing (``download=True``) and checked by MD5; a local
    file with another MD5 still loads but is marked unofficial (and a warning says so once).
    A registered custom file must match its card's sha256 and split sizes. A split with no
    images (e.g. an empty ``val``) loads as an empty :class:`Split`; training refuses it.
    Nothing is created in ``data_dir`` except by a download.
    """
    if isinstance(name, os.PathLike) or (
        isinstance(name, str) and name.strip().lower().endswith(".npz")
    ):
        p = Path(name).expanduser()
        if p.suffix.lower() != ".npz":
            raise DataArgumentError(
                f"load() got the path {str(p)!r}; a path must be a .npz file in MedMNIST layout "
                "(or pass a dataset name such as 'breastmnist')."
            )
        stem = p.stem.lower()
        if stem in INFO:
            raise DataError(
                f"{p} is named like the official {stem!r}. Load it as that dataset (md5 "
                f"checked) with medlab.load({stem!r}, data_dir={str(p.parent)!r}), or as your "
                f"own file with medlab.load_custom({str(p)!r}, name='my_{stem}', like=...)."
            )
        if not _cards.NAME_RE.fullmatch(p.stem):
            safe = re.sub(r"[^a-z0-9_.-]+", "_", p.stem.lower()).strip("_.-")[:64] or "my_data"
            raise DataError(
                f"load() names a file's data after its file name, and {p.stem!r} is not a "
                "dataset name (lowercase letters, digits, '_', '.', '-'). Load it with "
                f"medlab.load_custom({str(p)!r}, name={safe!r}, like=...), or rename the file."
            )
        return load_custom(p, name=p.stem)
    key = _check_name_type(name).lower().strip()
    size = _check_size(size)
    if not isinstance(download, bool):
        raise DataArgumentError(f"download={download!r}: pass True or False.")
    if downloader is not None and not callable(downloader):
        raise DataArgumentError(
            f"downloader={downloader!r} is not callable; pass a pooch downloader or None."
        )
    folder = resolve_data_dir(data_dir)
    _check_folder(folder)
    if key in _cards.custom_names():
        return _load_registered(key, folder, size)
    key = _check_name(key)
    fname, url, md5 = _official_file(key, size)
    path = folder / fname
    if not path.exists():
        if not download:
            raise DataNotFoundError(
                f"{fname} is not in {_missing_where(folder)} and download=False. Download {url} "
                f"and save it as {path} (md5 {md5}), or pass download=True."
            )
        path = _fetch(key, size=size, data_dir=folder, downloader=downloader)
    check_manifest(path)
    info = INFO[key]
    data = _build(
        key,
        path,
        task=info["task"],
        label_names=_label_names(info),
        n_channels=info["n_channels"],
        license=info["license"],
        description=info["description"],
        official_md5=md5,
        expected_sizes={s: int(info["n_samples"][s]) for s in SPLITS},
        sizes_fix=(
            f"the official {key} has { {s: int(info['n_samples'][s]) for s in SPLITS} }, so it "
            f"is not (a copy of) the official file. Load it as a custom dataset instead: "
            f"medlab.data.load_custom({str(path)!r}, name='my_{key}', like={key!r})."
        ),
        kind="medmnist",
    )
    if data.size != size:
        raise DataLayoutError(
            f"{path} holds {data.size} px images, not {size} px: it is not the official "
            f"{fname}. Delete it and download it again, or load it with size={data.size}."
        )
    return data


def load_custom(
    path: str | os.PathLike[str],
    *,
    name: str,
    like: str | None = None,
    task: str | None = None,
    label_names: Mapping[int, str] | Iterable[str] | None = None,
    license: str = "unknown",
    description: str | None = None,
) -> MedMNISTData:
    """Load your own file in MedMNIST layout under the name you give.

    Args:
        path: ``.npz`` with keys ``{train,val,test}_{images,labels}``.
        name: the name results will carry (must not be an official name).
        like: an official dataset whose task, label names, channels and licence apply (e.g. a
            subset of ``pneumoniamnist``); or give ``task`` and ``label_names`` yourself.

    A custom file is never "official": its provenance says ``official=False``.
    """
    if not isinstance(path, str | os.PathLike):
        raise DataArgumentError(
            f"load_custom() needs the path of a .npz file (str or pathlib.Path), got "
            f"{type(path).__name__} {path!r}."
        )
    check_custom_name(name)
    p = Path(path).expanduser().absolute()
    if name.lower() in INFO:
        raise DataError(
            f"name={name!r} is an official dataset name; give a custom file its own "
            f"name (e.g. '{name}_subset') so results are not mistaken for official."
        )
    if not p.exists():
        raise DataNotFoundError(
            f"custom dataset file {p} does not exist; check the path (a relative path is "
            f"relative to the working directory {os.getcwd()})."
        )
    info: dict[str, Any] = {}
    if like is not None:
        info = INFO[_check_name(like, func="load_custom")]
    task = task or info.get("task")
    names = _check_label_names(label_names) or (_label_names(info) if info else None)
    if task not in TASKS or names is None:
        raise DataError(
            f"custom dataset {name!r} needs like='<official name>' or task= (one of "
            f"{TASKS}) and label_names={{0: '...', ...}}."
        )
    return _build(
        name,
        p,
        task=task,
        label_names=dict(names),
        n_channels=info.get("n_channels"),
        license=info.get("license", license),
        description=description
        or f"custom MedMNIST-layout file {p.name}" + (f" (like {like})" if like else ""),
        official_md5=None,
        expected_sizes=None,
        kind="custom",
    )
