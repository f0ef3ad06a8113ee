"""Downloading official MedMNIST files with pooch, verified by MD5.

pooch writes to a temporary file and only moves it into place once the hash matches, so a
failed download never leaves a partial file behind (temporary files left by a killed download
are removed by the next download into the same folder). A file already on disk is never
replaced: one whose MD5 is not the official one is refused.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medlab import cards as _cards
from medlab.data.digests import file_md5
from medlab.data.errors import (
    DataArgumentError,
    DataChecksumError,
    DataDirError,
    DataNotFoundError,
)
from medlab.data.folders import (
    _DIR_FIX,
    ENV_VAR,
    _check_folder,
    _make_folder,
    _remove_empty,
    resolve_data_dir,
)
from medlab.data.registry import _check_name, _check_name_type, _official_file

__all__ = ["download"]


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
    key = _official_key(name)
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
        _check_existing(target, md5, key)
        return target
    created = _make_folder(folder)
    _remove_stale_temp_files(folder)
    _retrieve(url, md5, target, created, downloader=downloader, progressbar=progressbar)
    _remove_stale_temp_files(folder)
    return target


def _official_key(name: Any) -> str:
    """The official name :func:`download` fetches; a registered custom name is refused."""
    key = _check_name_type(name, func="download").lower().strip()
    if key in _cards.custom_names():
        raise DataNotFoundError(
            f"{key!r} is a registered custom dataset; it cannot be downloaded: "
            f"{_cards.card(key).get('obtain', 'see its data card')}. Put its file in the data "
            f"folder and use medlab.load({key!r}, data_dir=...)."
        )
    return _check_name(key, func="download")


def _check_existing(target: Path, md5: str, key: str) -> None:
    """A file already at ``target`` is kept only if it is the official one (by MD5)."""
    actual = file_md5(target)
    if actual != md5:
        raise DataChecksumError(
            f"the file at {target} has md5 {actual}, not the official {md5}, so it is not "
            f"the official {target.name}. To download the official file, delete it and run "
            f"medlab.data.download({key!r}) (or `medlab download {key}`) again. To keep this "
            f"copy, load it with medlab.load({key!r}, data_dir={str(target.parent)!r}): it "
            "loads, marked unofficial (official=False)."
        )


def _retrieve(
    url: str,
    md5: str,
    target: Path,
    created: list[Path],
    *,
    downloader: Callable[..., Any] | None,
    progressbar: bool,
) -> None:
    """pooch's download of ``url`` into ``target``, MD5-checked; on failure nothing is left
    behind (no temp file, no folder in ``created``) and the error names the fix."""
    import pooch

    folder, fname = target.parent, target.name
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


_fetch = download  # load() has a flag named ``download``, so it calls this name
