"""The results folder's manifest: the SHA-256 of each results file as it was written
(``results/MANIFEST.sha256``, ``sha256sum`` format, ``<sha256>  <file name>`` per line), so that
:mod:`medlab.audit` can tell a results file edited after it was recorded; and the atomic writer.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MANIFEST", "read_digests", "locked"]

#: The digests of a results folder's files, written by :meth:`Recorder.save`.
MANIFEST = "MANIFEST.sha256"
_DIGEST_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.manifest.lock`` while the manifest is read, changed
    and written: notebooks that record side by side (``medlab reproduce --jobs``) must not drop
    each other's digests. POSIX ``flock``; without it (Windows), no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / ".manifest.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_atomic(path: Path, raw: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(raw)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def read_digests(folder: str | os.PathLike[str]) -> dict[str, str]:
    """``{file name: sha256}`` recorded in ``folder/MANIFEST.sha256`` (``{}`` when there is
    none); a malformed manifest raises ValueError naming the fix."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    fix = "re-run the notebooks (`medlab reproduce`) to record the run again"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text: it was damaged; {fix}") from None
    out = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _DIGEST_LINE.fullmatch(line.strip())
        if m is None or "/" in m[2] or "\\" in m[2]:
            raise ValueError(
                f"{path}, line {i}: {line.strip()[:80]!r} is not '<sha256>  <file name>'; {fix}"
            )
        out[m[2]] = m[1]
    return out
