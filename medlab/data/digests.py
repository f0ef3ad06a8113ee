"""File integrity: MD5 / SHA-256 digests (cached per file version) and the ``MANIFEST.md5`` of
an offline bundle (``medlab download --all --to DIR``, see :mod:`medlab.harness.kit`)."""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import Any

from medlab.data.errors import DataChecksumError

__all__ = ["MANIFEST", "file_md5", "file_sha256", "read_manifest", "check_manifest"]

#: An offline bundle's list of files and MD5s (``md5sum`` format), checked by :func:`load`.
MANIFEST = "MANIFEST.md5"
_digest_cache: dict[tuple[Any, ...], str] = {}


#: A digest is cached only for files whose status last changed this long ago, so a same-size
#: rewrite within one file-system timestamp tick can never hit a stale entry ("racy" files).
_RACY_NS = 2_000_000_000


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
