"""Names in a results folder: record keys, notebook and figure names (they become file names)
and the output folder.

Record keys follow one scheme, ``<subject>.<metric>[.<condition>]``: at least two dot-separated
lowercase segments, each ``[a-z0-9][a-z0-9_+-]*``, optionally followed by ``[<source dataset>]``,
e.g. ``smallcnn.test_auc``, ``share5.baseline.tpr_gap``, ``transfer[breastmnist].test_auc.k10``.
Notebook and figure names must match :data:`NAME_RE` (no folders).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["output_dir", "check_key", "check_name", "KEY_RE", "KEY_SCHEME", "NAME_RE"]

_SEGMENT = r"[a-z0-9][a-z0-9_+\-]*(?:\[[a-z0-9][a-z0-9_+\-]*\])?"
KEY_RE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})+")
KEY_SCHEME = (
    "<subject>.<metric>[.<condition>]: at least two dot-separated lowercase segments, each "
    "[a-z0-9][a-z0-9_+-]* optionally followed by [<source dataset>], e.g. 'smallcnn.test_auc', "
    "'share5.baseline.tpr_gap', 'transfer[breastmnist].test_auc.k10'"
)
#: Notebook and figure names (they become file names): no folders, no leading dot.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*")
#: The digests of a results folder's files, written by :meth:`Recorder.save`.


def output_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$MEDLAB_OUTPUT_DIR``, else ``./outputs``."""
    return Path(path or os.environ.get("MEDLAB_OUTPUT_DIR") or "outputs").expanduser()


def check_key(key: Any) -> str:
    """``key`` if it follows the record-key scheme (:data:`KEY_SCHEME`), else an error."""
    if not isinstance(key, str):
        raise TypeError(f"record key must be a string, got {type(key).__name__} {key!r}")
    if not key:
        raise ValueError(f"record key is empty; keys follow {KEY_SCHEME}")
    if not KEY_RE.fullmatch(key):
        raise ValueError(f"record key {key!r} does not follow the key scheme {KEY_SCHEME}")
    return key


def check_name(name: Any, *, what: str = "notebook name") -> str:
    """``name`` if it can be a file name inside its folder (:data:`NAME_RE`, at most 100
    characters), else a ValueError naming the fix."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__} {name!r}")
    if len(name) > 100 or not NAME_RE.fullmatch(name):
        raise ValueError(
            f"{what} {name!r} cannot be a file name: use letters, digits, '_', '.', '+' and "
            "'-' only, starting with a letter or digit (no folders, at most 100 characters), "
            "e.g. '03_bias'"
        )
    return name


def _inside(folder: Path, name: str, what: str) -> Path:
    """``folder / name``, checked to stay inside ``folder`` once resolved."""
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(
            f"{what} {name!r} leads outside {folder}; use a plain name such as '03_bias'"
        )
    return path
