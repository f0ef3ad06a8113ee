"""One data layer for the whole curriculum: MedMNIST files in, uint8 tensors with provenance out.

>>> data = load("breastmnist", data_dir="../shared/medmnist")      # doctest: +SKIP
>>> data.train.images.shape, data.train.images.dtype                # (546, 1, 28, 28) uint8
>>> data.provenance["official"]                                     # False for a re-saved copy

Metadata (task, label names, channels, licence, official MD5 and split sizes) is read from
``medmnist.INFO``, never retyped. Official files are downloaded with pooch and verified by MD5;
pooch writes to a temporary file and only moves it into place once the hash matches, so a failed
download never leaves a partial file behind.

The data directory is, in order: the ``data_dir`` argument, the ``MEDLAB_DATA_DIR`` environment
variable, or ``~/.medmnist`` (the folder medmnist itself uses, so existing downloads are reused).
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from medmnist import INFO

from medlab import cards as _cards

__all__ = [
    "SPLITS",
    "SIZES",
    "OFFICIAL_2D",
    "DataError",
    "DataNotFoundError",
    "DataLayoutError",
    "UnofficialDataWarning",
    "Split",
    "MedMNISTData",
    "resolve_data_dir",
    "file_md5",
    "available",
    "load",
    "load_custom",
    "download",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")
SIZES: tuple[int, ...] = (28, 64, 128, 224)
#: Official 2D MedMNIST datasets (the 3D ones are out of scope for the curriculum).
OFFICIAL_2D: tuple[str, ...] = tuple(k for k in INFO if not k.endswith("3d"))
ENV_VAR = "MEDLAB_DATA_DIR"
TASKS = ("binary-class", "multi-class", "ordinal-regression", "multi-label, binary-class")


class DataError(ValueError):
    """Base class for every data problem medlab reports."""


class DataNotFoundError(DataError, FileNotFoundError):
    """The file is not on disk and could not be downloaded."""


class DataLayoutError(DataError):
    """The file exists but is not a MedMNIST-layout npz (or contradicts the official one)."""


class UnofficialDataWarning(UserWarning):
    """A file loaded under an official name whose MD5 is not the official one."""


_warned_unofficial: set[str] = set()
_md5_cache: dict[tuple[str, int, int], str] = {}


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the data directory: ``path``, else ``$MEDLAB_DATA_DIR``, else ``~/.medmnist``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path("~/.medmnist").expanduser()


def file_md5(path: str | os.PathLike[str]) -> str:
    """MD5 hex digest of a file (cached by path, size and modification time)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _md5_cache:
        h = hashlib.md5()
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _md5_cache[key] = h.hexdigest()
    return _md5_cache[key]


@dataclass
class Split:
    """One split of a dataset, held in memory.

    Attributes:
        images: uint8 tensor, shape (N, C, H, W), values 0..255.
        labels: int64 tensor (N,) for binary/multi-class/ordinal tasks, or float32 (N, L) of 0/1
            for multi-label tasks.
        name, split, task, label_names: what the data is.
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
        """A new Split holding the rows ``index`` (a copy; the original is untouched)."""
        idx = torch.as_tensor(np.asarray(index if hasattr(index, "__len__") else list(index)))
        idx = idx.nonzero().flatten() if idx.dtype == torch.bool else idx.long()
        return Split(self.name, self.split, self.images[idx].clone(), self.labels[idx].clone(),
                     self.task, dict(self.label_names))

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
        return (f"MedMNISTData({self.name!r}, {self.task}, {self.n_classes} classes, "
                f"{self.n_channels}x{self.size}x{self.size}, train/val/test={sizes}, {flag})")


# --------------------------------------------------------------------------------------------
# official files


def _check_name(name: str) -> str:
    key = name.lower().strip()
    if key in OFFICIAL_2D:
        return key
    if key in INFO:
        raise DataError(f"{name!r} is a 3D MedMNIST dataset; medlab covers the 2D ones: "
                        f"{', '.join(OFFICIAL_2D)}.")
    custom = ", ".join(_cards.custom_names())
    raise DataError(f"unknown dataset {name!r}. Official 2D MedMNIST names: "
                    f"{', '.join(OFFICIAL_2D)}. Registered custom datasets: {custom or 'none'}. "
                    "For your own MedMNIST-layout file use medlab.data.load_custom(path, name=...).")


def _check_size(size: int) -> str:
    if size not in SIZES:
        raise DataError(f"size={size!r} is not a MedMNIST size; choose one of {SIZES}.")
    return "" if size == 28 else f"_{size}"


def _official_file(name: str, size: int) -> tuple[str, str, str]:
    """(file name, url, md5) of an official file, from medmnist.INFO."""
    suffix = _check_size(size)
    info = INFO[name]
    url_key, md5_key = ("url", "MD5") if size == 28 else (f"url_{size}", f"MD5_{size}")
    return f"{name}{suffix}.npz", info[url_key], info[md5_key]


def download(name: str, *, size: int = 28, data_dir: str | os.PathLike[str] | None = None,
             downloader: Callable[..., Any] | None = None, progressbar: bool = False) -> Path:
    """Download an official MedMNIST file (if missing) and verify its MD5.

    Args:
        name: official 2D dataset name, e.g. ``"pneumoniamnist"``.
        size: image side in pixels (28, 64, 128 or 224).
        data_dir: target folder (see :func:`resolve_data_dir`).
        downloader: a pooch downloader (``(url, output_file, pooch) -> None``); tests pass a
            stub here, users leave it ``None`` for HTTP.

    Returns the path of the verified file. Raises :class:`DataNotFoundError` naming the URL,
    target path and MD5 when the download fails; no partial file is left behind.
    """
    import pooch

    name = _check_name(name)
    fname, url, md5 = _official_file(name, size)
    folder = resolve_data_dir(data_dir)
    target = folder / fname
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = pooch.retrieve(url, known_hash=f"md5:{md5}", fname=fname, path=folder,
                              downloader=downloader, progressbar=progressbar)
    except Exception as exc:  # network down, host unreachable, hash mismatch, ...
        # pooch downloads to a temporary file and removes it on failure: nothing partial stays
        raise DataNotFoundError(
            f"{fname} is not in {folder} and downloading it failed "
            f"({type(exc).__name__}: {exc}). Download {url} yourself and save it as {target} "
            f"(md5 {md5}), or point data_dir= / ${ENV_VAR} at a folder that has it.") from exc
    return Path(path)


_fetch = download  # load() has a flag named ``download``, so it calls this name


# --------------------------------------------------------------------------------------------
# reading npz files


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataLayoutError(
            f"could not read {path} as a MedMNIST .npz ({type(exc).__name__}: {exc}). The file is "
            "corrupt or truncated: delete it and download it again (its md5 must match), or "
            "re-create it with numpy.savez.") from exc


def _split_arrays(path: Path, arrays: dict[str, np.ndarray], n_channels: int | None
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for s in SPLITS:
        for kind in ("images", "labels"):
            if f"{s}_{kind}" not in arrays:
                raise DataLayoutError(
                    f"{path} is not in MedMNIST layout: key '{s}_{kind}' is missing (found "
                    f"{sorted(arrays)}). Expected keys train/val/test _images and _labels.")
        x, y = arrays[f"{s}_images"], arrays[f"{s}_labels"]
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 3) or x.shape[1] != x.shape[2]:
            raise DataLayoutError(
                f"{path}: '{s}_images' has shape {x.shape}; MedMNIST layout is (N, H, W) for "
                "grayscale or (N, H, W, 3) for RGB, with H == W.")
        if x.dtype != np.uint8:
            raise DataLayoutError(f"{path}: '{s}_images' has dtype {x.dtype}; expected uint8 "
                                  "(0..255). Convert with (x * 255).round().astype('uint8').")
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[0] != x.shape[0]:
            raise DataLayoutError(
                f"{path}: '{s}_labels' has shape {y.shape} but '{s}_images' has {x.shape[0]} "
                "images; expected labels of shape (N, 1), or (N, L) for multi-label tasks.")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataLayoutError(f"{path}: '{s}_labels' has dtype {y.dtype}; expected integers.")
        channels = 1 if x.ndim == 3 else 3
        if n_channels is not None and channels != n_channels:
            raise DataLayoutError(f"{path}: '{s}_images' has {channels} channel(s) but this "
                                  f"dataset has {n_channels}.")
        out[s] = (x, y)
    sides = {out[s][0].shape[1] for s in SPLITS}
    if len(sides) != 1:
        raise DataLayoutError(f"{path}: splits have different image sizes {sorted(sides)}.")
    return out


def _to_split(name: str, split: str, x: np.ndarray, y: np.ndarray, task: str,
              label_names: dict[int, str], path: Path) -> Split:
    images = torch.from_numpy(np.ascontiguousarray(x))
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()
    n = len(label_names)
    if task == "multi-label, binary-class":
        if y.shape[1] != n:
            raise DataLayoutError(f"{path}: '{split}_labels' has {y.shape[1]} columns; this "
                                  f"multi-label task has {n} labels.")
        labels = torch.from_numpy(y.astype(np.float32))
    else:
        if y.shape[1] != 1:
            raise DataLayoutError(f"{path}: '{split}_labels' has shape {y.shape}; a {task} task "
                                  "needs one label per image, shape (N, 1).")
        labels = torch.from_numpy(y[:, 0].astype(np.int64))
        if len(labels) and (labels.min() < 0 or labels.max() >= n):
            raise DataLayoutError(f"{path}: '{split}_labels' holds values "
                                  f"{int(labels.min())}..{int(labels.max())}; {name} has classes "
                                  f"0..{n - 1} ({label_names}).")
    return Split(name, split, images, labels, task, label_names)


def _build(name: str, path: Path, *, task: str, label_names: dict[int, str],
           n_channels: int | None, license: str, description: str, official_md5: str | None,
           expected_sizes: dict[str, int] | None, kind: str) -> MedMNISTData:
    arrays = _split_arrays(path, _read_npz(path), n_channels)
    sizes = {s: int(arrays[s][0].shape[0]) for s in SPLITS}
    md5 = file_md5(path)
    official = official_md5 is not None and md5 == official_md5
    if expected_sizes is not None and sizes != expected_sizes:
        raise DataLayoutError(
            f"{path} has split sizes {sizes} but the official {name} has {expected_sizes}, so it "
            f"is not (a copy of) the official file. Load it as a custom dataset instead: "
            f"medlab.data.load_custom({str(path)!r}, name='my_{name}', like={name!r}).")
    if official_md5 is not None and not official and str(path) not in _warned_unofficial:
        _warned_unofficial.add(str(path))
        warnings.warn(
            f"{path} has md5 {md5}, not the official {official_md5}: it loads, but it is an "
            "unofficial copy and results on it are marked official=False.",
            UnofficialDataWarning, stacklevel=3)
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
    return MedMNISTData(name, splits["train"], splits["val"], splits["test"], task, label_names,
                        channels, side, license, description, provenance)


def _label_names(info: dict[str, Any]) -> dict[int, str]:
    return {int(k): v for k, v in info["label"].items()}


def available(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Datasets (official names and registered custom ones) whose 28 px file is in ``data_dir``."""
    folder = resolve_data_dir(data_dir)
    found = {}
    for name in OFFICIAL_2D:
        if (folder / f"{name}.npz").exists():
            found[name] = folder / f"{name}.npz"
    for name in _cards.custom_names():
        p = folder / _cards.card(name)["file"]
        if p.exists():
            found[name] = p
    return found


def load(name: str, *, data_dir: str | os.PathLike[str] | None = None, size: int = 28,
         download: bool = True, downloader: Callable[..., Any] | None = None) -> MedMNISTData:
    """Load a dataset by name: an official 2D MedMNIST name, a registered custom dataset
    (a card in ``datasets/`` with ``kind: custom``), or a path to a MedMNIST-layout ``.npz``.

    Official files are downloaded when missing (``download=True``) and checked by MD5; a local
    file with another MD5 still loads but is marked unofficial (and a warning says so once).
    """
    if str(name).endswith(".npz"):
        p = Path(name)
        return load_custom(p, name=p.stem)
    key = str(name).lower().strip()
    if key in _cards.custom_names():
        c = _cards.card(key)
        path = resolve_data_dir(data_dir) / c["file"]
        if not path.exists():
            raise DataNotFoundError(
                f"{c['file']} (custom dataset {key!r}) is not in {resolve_data_dir(data_dir)}."
                f" It cannot be downloaded: {c.get('obtain', 'see its data card')}. Put it there "
                f"or pass data_dir= / set ${ENV_VAR} to the folder that has it.")
        return load_custom(path, name=key, like=c["like"], description=c.get("description"))
    key = _check_name(key)
    fname, url, md5 = _official_file(key, size)
    path = resolve_data_dir(data_dir) / fname
    if not path.exists():
        if not download:
            raise DataNotFoundError(
                f"{fname} is not in {path.parent} and download=False. Download {url} and save "
                f"it as {path} (md5 {md5}), or pass download=True.")
        path = _fetch(key, size=size, data_dir=path.parent, downloader=downloader)
    info = INFO[key]
    data = _build(key, path, task=info["task"], label_names=_label_names(info),
                  n_channels=info["n_channels"], license=info["license"],
                  description=info["description"], official_md5=md5,
                  expected_sizes={s: int(info["n_samples"][s]) for s in SPLITS}, kind="medmnist")
    if data.size != size:
        raise DataLayoutError(f"{path} holds {data.size} px images, not {size} px.")
    return data


def load_custom(path: str | os.PathLike[str], *, name: str, like: str | None = None,
                task: str | None = None, label_names: dict[int, str] | None = None,
                license: str = "unknown", description: str | None = None) -> MedMNISTData:
    """Load your own file in MedMNIST layout under the name you give.

    Args:
        path: ``.npz`` with keys ``{train,val,test}_{images,labels}``.
        name: the name results will carry (must not be an official name).
        like: an official dataset whose task, label names, channels and licence apply (e.g. a
            subset of ``pneumoniamnist``); or give ``task`` and ``label_names`` yourself.

    A custom file is never "official": its provenance says ``official=False``.
    """
    p = Path(path).expanduser()
    if name.lower() in INFO:
        raise DataError(f"name={name!r} is an official dataset name; give a custom file its own "
                        f"name (e.g. '{name}_subset') so results are not mistaken for official.")
    if not p.exists():
        raise DataNotFoundError(f"custom dataset file {p} does not exist.")
    info: dict[str, Any] = {}
    if like is not None:
        info = INFO[_check_name(like)]
    task = task or info.get("task")
    names = label_names or (_label_names(info) if info else None)
    if task not in TASKS or names is None:
        raise DataError(f"custom dataset {name!r} needs like='<official name>' or task= (one of "
                        f"{TASKS}) and label_names={{0: '...', ...}}.")
    return _build(name, p, task=task, label_names=dict(names),
                  n_channels=info.get("n_channels"), license=info.get("license", license),
                  description=description or f"custom MedMNIST-layout file {p.name}"
                  + (f" (like {like})" if like else ""),
                  official_md5=None, expected_sizes=None, kind="custom")

