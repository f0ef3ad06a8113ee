"""Dataset names and their official facts: the official 2D MedMNIST names, sizes and tasks read
from ``medmnist.INFO`` (never retyped), registered custom names (data cards), and the checks of
names, sizes and label names that every entry point shares."""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from medmnist import INFO

from medlab import cards as _cards
from medlab.data.errors import DataArgumentError, DataError, UnknownDatasetError
from medlab.utils import check_scalar

__all__ = ["SPLITS", "SIZES", "OFFICIAL_2D", "TASKS", "check_custom_name", "check_names"]


SPLITS: tuple[str, ...] = ("train", "val", "test")


SIZES: tuple[int, ...] = (28, 64, 128, 224)


#: Official 2D MedMNIST datasets (the 3D ones are out of scope for the curriculum).
OFFICIAL_2D: tuple[str, ...] = tuple(k for k in INFO if not k.endswith("3d"))


TASKS = ("binary-class", "multi-class", "ordinal-regression", "multi-label, binary-class")


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
