"""Loading a dataset by name (official, registered custom) or by path, and listing the datasets
a data folder holds."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medmnist import INFO

from medlab import cards as _cards
from medlab.data.build import _build
from medlab.data.custom import _load_registered, load_custom
from medlab.data.digests import check_manifest
from medlab.data.downloads import _fetch
from medlab.data.errors import DataArgumentError, DataError, DataLayoutError, DataNotFoundError
from medlab.data.folders import _check_folder, _missing_where, resolve_data_dir
from medlab.data.registry import (
    OFFICIAL_2D,
    SPLITS,
    _check_name,
    _check_name_type,
    _check_size,
    _label_names,
    _official_file,
)
from medlab.data.splits import MedMNISTData

__all__ = ["available", "load"]


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
    if _is_path(name):
        return _load_path(name)
    key = _check_name_type(name).lower().strip()
    size = _check_size(size)
    _check_download_args(download, downloader)
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
    data = _build(key, path, **_official_facts(key, path, md5))
    if data.size != size:
        raise DataLayoutError(
            f"{path} holds {data.size} px images, not {size} px: it is not the official "
            f"{fname}. Delete it and download it again, or load it with size={data.size}."
        )
    return data


def _is_path(name: Any) -> bool:
    """``name`` names a file (a path object, or a string ending in ``.npz``), not a dataset."""
    return isinstance(name, os.PathLike) or (
        isinstance(name, str) and name.strip().lower().endswith(".npz")
    )


def _load_path(name: str | os.PathLike[str]) -> MedMNISTData:
    """A ``.npz`` path given to :func:`load`: loaded as a custom dataset named after the file."""
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


def _check_download_args(download: Any, downloader: Any) -> None:
    if not isinstance(download, bool):
        raise DataArgumentError(f"download={download!r}: pass True or False.")
    if downloader is not None and not callable(downloader):
        raise DataArgumentError(
            f"downloader={downloader!r} is not callable; pass a pooch downloader or None."
        )


def _official_facts(key: str, path: Path, md5: str) -> dict[str, Any]:
    """What :func:`~medlab.data.build._build` checks an official file against (medmnist.INFO)."""
    info = INFO[key]
    return dict(
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
