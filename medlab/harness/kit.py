"""The workshop kit: an offline bundle of every dataset the curriculum uses.

``medlab download --all --to DIR`` (:func:`build_bundle`) puts into ``DIR`` every official file
the notebooks load by default (:func:`curriculum_datasets`), each verified against its official
MD5, plus ``MANIFEST.md5`` (``md5sum`` format) and a ``README.md`` saying how to point
``MEDLAB_DATA_DIR`` at the folder. Files already in your data folder (``$MEDLAB_DATA_DIR`` or
``~/.medmnist``) are copied instead of downloaded. :func:`medlab.load` checks every file it loads
from a bundle against the manifest (:func:`medlab.data.check_manifest`) and refuses a damaged copy
with a message naming the fix.
"""

from __future__ import annotations

import ast
import datetime as _dt
import errno
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from medlab import __version__
from medlab import data as D
from medlab.harness.base import ReproduceError
from medlab.harness.notebooks import NOTEBOOKS, find_notebooks, notebook_parameters

__all__ = ["ALSO", "curriculum_datasets", "build_bundle", "README", "DiskFullError"]

#: Datasets every lesson must also run on (CONTRIBUTING: pneumoniamnist and breastmnist).
ALSO: tuple[str, ...] = ("breastmnist",)
README = "README.md"
_LOAD_CALL = re.compile(r"""\bload\(\s*["']([a-z0-9_]+)["']""")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(D.DataError):
    """The disk filled up while building a bundle (``medlab download --to`` exits 2)."""


def _full_disk(exc: BaseException) -> bool:
    """Whether ``exc`` (or the error it was raised from) is a full disk."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


def _names_in(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [v.lower() for v in items if isinstance(v, str) and v.lower() in D.OFFICIAL_2D]


def curriculum_datasets(folder: str | os.PathLike[str] | None = None) -> list[str]:
    """Official 2D datasets the numbered notebooks use by default, in order of first use: the
    dataset names among the defaults of each notebook's ``parameters`` cell (``dataset``,
    ``source_dataset``, ...), those in literal ``load("...")`` calls, then :data:`ALSO`."""
    import nbformat

    folder = Path(folder) if folder is not None else NOTEBOOKS
    try:
        notebooks = find_notebooks(None, folder)
    except ReproduceError as exc:
        raise D.DataError(
            f"{exc}: the curriculum's datasets are read from its notebooks. Run this from a "
            "checkout of the repository, or name the datasets, e.g. `medlab download "
            "pneumoniamnist breastmnist --to DIR`."
        ) from None
    names: list[str] = []
    for nb in notebooks:
        for value in notebook_parameters(nb).values():
            if isinstance(value, str) and value.startswith("["):  # a default given as source
                try:
                    value = ast.literal_eval(value)
                except (ValueError, SyntaxError):
                    pass
            names += _names_in(value)
        for cell in nbformat.read(nb, as_version=4).cells:
            if cell.cell_type == "code":
                names += _names_in(_LOAD_CALL.findall(cell.source))
    names += list(ALSO)
    return list(dict.fromkeys(names))


def _copy_verified(src: Path, dst: Path, md5: str) -> bool:
    """Copy ``src`` to ``dst`` (through a temporary file) if it is the official file; returns
    whether it did."""
    if D.file_md5(src) != md5:
        return False
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _readme(folder: Path, files: list[tuple[str, str, Path]]) -> str:
    rows = "\n".join(
        f"| `{name}` | `{p.name}` | {p.stat().st_size / 2**20:.1f} | `{md5}` |"
        for name, md5, p in files
    )
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""\
# medlab offline data bundle

Built {when} with medlab {__version__} (`medlab download --all --to {folder.name}`): the official
MedMNIST v2 files the medlab curriculum uses, each verified against its official MD5.

| dataset | file | MB | md5 |
|---|---|---|---|
{rows}

## Use it

Copy this whole folder (with `{D.MANIFEST}`) to each machine, e.g. from a USB stick, then point
medlab at it before starting Jupyter:

```bash
export MEDLAB_DATA_DIR=/path/to/{folder.name}        # Linux, macOS
setx MEDLAB_DATA_DIR C:\\path\\to\\{folder.name}        # Windows (new terminals)
jupyter lab notebooks/
```

or set `data_dir = "/path/to/{folder.name}"` in a notebook's parameters cell, or pass
`medlab reproduce --data-dir /path/to/{folder.name}`. No network is needed after that.

## Check it

`md5sum -c {D.MANIFEST}` in this folder checks every file. medlab also checks each file against
`{D.MANIFEST}` when it loads it, and refuses a damaged or replaced copy with a message naming
the file: copy that file again from the original bundle.

## Licence

MedMNIST v2 (Yang et al., Scientific Data 2023), CC BY 4.0; cite it and each dataset's source
(see the data cards: `medlab datasets`).
"""


def build_bundle(
    to: str | os.PathLike[str],
    names: Iterable[str] | None = None,
    *,
    size: int = 28,
    source: str | os.PathLike[str] | None = None,
    downloader: Callable[..., Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Build an offline bundle in ``to``: the official files of ``names`` (default: every
    dataset the curriculum uses, :func:`curriculum_datasets`), ``MANIFEST.md5`` and
    ``README.md``; returns the folder.

    A file already in ``source`` (default ``$MEDLAB_DATA_DIR`` or ``~/.medmnist``) with the
    official MD5 is copied; others are downloaded (``downloader``: a pooch downloader, for
    tests). Every file is verified against its official MD5 (:func:`medlab.data.download`); a
    failure raises :class:`~medlab.data.DataError` naming the file, and the manifest is only
    written once every file is in place.
    """
    names = curriculum_datasets() if names is None else D.check_names(names)
    if not names:
        raise D.DataArgumentError("no dataset to bundle; name at least one, or use --all")
    custom = [n for n in names if n not in D.OFFICIAL_2D]
    if custom:
        raise D.DataError(
            f"{', '.join(custom)}: registered custom dataset(s) cannot be downloaded; a bundle "
            "holds official MedMNIST files only. Copy custom files next to the bundle yourself."
        )
    folder = D.resolve_data_dir(to)
    src = D.resolve_data_dir(source)
    created = D._make_folder(folder)
    try:
        return _build(folder, names, size=size, src=src, downloader=downloader, progress=progress)
    except (OSError, D.DataError) as exc:
        if not _full_disk(exc):
            raise
        for tmp in folder.glob(f".*.{os.getpid()}.tmp"):
            tmp.unlink(missing_ok=True)
        D._remove_empty(created)  # a bundle folder this call made and could not fill
        raise DiskFullError(
            f"no space left on the disk of {folder} while building the bundle; free space "
            f"there and run the same command again (files already verified in {folder} are "
            f"kept; {D.MANIFEST} is only written once every file is in place, so a bundle "
            "without it is incomplete)"
        ) from None


def _build(
    folder: Path,
    names: list[str],
    *,
    size: int,
    src: Path,
    downloader: Callable[..., Any] | None,
    progress: Callable[[str], None] | None,
) -> Path:
    """The body of :func:`build_bundle` (a full disk is reported by the caller)."""
    say = progress or (lambda _msg: None)
    files = []
    for name in names:
        fname, _url, md5 = D._official_file(name, size)
        target = folder / fname
        how = "already in the bundle"
        if not target.exists() and (src / fname).is_file() and src != folder:
            if _copy_verified(src / fname, target, md5):
                how = f"copied from {src}"
        if not target.exists():
            how = "downloaded"
        path = D.download(name, size=size, data_dir=folder, downloader=downloader)
        files.append((name, md5, path))
        say(f"{name}: {path.name} ({how}, md5 {md5})")
    manifest = folder / D.MANIFEST
    built = {p.name for _name, _md5, p in files}
    for fname, md5 in sorted(D.read_manifest(folder).items()):  # earlier builds' files
        path = folder / fname
        if fname in built or not path.is_file():
            continue  # rebuilt now, or gone: a stale entry is dropped
        actual = D.file_md5(path)
        if actual != md5:
            raise D.DataChecksumError(
                f"{path} has md5 {actual}, but the bundle's {D.MANIFEST} lists {md5}: the file "
                f"changed after an earlier build. Delete {fname} (or copy it again from the "
                "original bundle) and build again; nothing was written"
            )
        files.append((Path(fname).stem, md5, path))
    kept = {p.name: md5 for _name, md5, p in files}
    tmp = manifest.with_name(f".{D.MANIFEST}.{os.getpid()}.tmp")
    try:
        tmp.write_text("".join(f"{md5}  {f}\n" for f, md5 in sorted(kept.items())))
        tmp.replace(manifest)
    finally:
        tmp.unlink(missing_ok=True)
    (folder / README).write_text(_readme(folder, files), encoding="utf-8")
    return folder
