"""The data folder: which one (``data_dir``, ``$MEDLAB_DATA_DIR``, ``~/.medmnist``), refusing one
that is a file, and creating one (only :func:`~medlab.data.download` does) so that a failure
leaves no folder behind."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from medlab.data.errors import DataArgumentError, DataDirError

__all__ = ["ENV_VAR", "resolve_data_dir"]

ENV_VAR = "MEDLAB_DATA_DIR"
_DIR_FIX = f"Set ${ENV_VAR} or pass data_dir= to a writable folder."


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


def _missing_where(folder: Path) -> str:
    return f"{folder}" if folder.is_dir() else f"{folder} (that folder does not exist)"
