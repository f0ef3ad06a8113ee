"""Custom datasets: your own MedMNIST-layout file under a name you give (:func:`load_custom`),
or a registered one (a data card in ``datasets/`` with ``kind: custom``), checked against its
card's sha256 and split sizes. A custom file is never "official"."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from medmnist import INFO

from medlab import cards as _cards
from medlab.data.build import _build
from medlab.data.digests import check_manifest, file_sha256
from medlab.data.errors import (
    DataArgumentError,
    DataChecksumError,
    DataError,
    DataLayoutError,
    DataNotFoundError,
)
from medlab.data.folders import ENV_VAR, _missing_where
from medlab.data.registry import (
    SPLITS,
    TASKS,
    _check_label_names,
    _check_name,
    _label_names,
    check_custom_name,
)
from medlab.data.splits import MedMNISTData

__all__ = ["load_custom"]


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
