"""Integrity: every results file of a run against the SHA-256 the Recorder recorded for it.

:class:`medlab.Recorder` lists each results file it saves in the run's
``results/MANIFEST.sha256``. A listed file that is gone or whose bytes differ is refused; a file
the manifest does not list is of *origin unknown*.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from medlab import results
from medlab.audit.citations import RECORDED, UNKNOWN
from medlab.audit.collect import AuditError, _results_files

__all__ = ["RECORDED", "UNKNOWN"]


def _check_integrity(run: Path) -> dict[str, tuple[str, str]]:
    """``{results file relative to run: (origin, sha256)}`` for every results file of ``run``.

    Raises :class:`AuditError` naming the fix when a file listed in a manifest
    (``results/MANIFEST.sha256``) is missing or its bytes differ from the recorded digest, or
    when a manifest is malformed. A file no manifest lists gets :data:`UNKNOWN`."""
    out: dict[str, tuple[str, str]] = {}
    folders = {f.parent for f in _results_files(run)}
    folders |= {m.parent for m in run.glob(f"results/{results.MANIFEST}")}
    folders |= {m.parent for m in run.glob(f"seed*/results/{results.MANIFEST}")}
    for folder in sorted(folders):
        where = folder.relative_to(run).as_posix()
        try:
            recorded = results.read_digests(folder)
        except ValueError as exc:
            raise AuditError(str(exc)) from None
        for name in sorted(recorded):
            if not (folder / name).is_file():
                raise AuditError(
                    f"{where}/{name} is listed in the run's manifest ({where}/"
                    f"{results.MANIFEST}) but is missing: it was deleted or moved after it was "
                    f"recorded. Re-run the notebook (`medlab reproduce {Path(name).stem}`), or "
                    "audit another run"
                )
        for f in sorted(folder.glob("*.json")):
            rel = f.relative_to(run).as_posix()
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            if f.name in recorded and recorded[f.name] != digest:
                raise AuditError(
                    f"{rel} was changed after it was recorded: its SHA-256 {digest} differs "
                    f"from the run's manifest ({where}/{results.MANIFEST}: "
                    f"{recorded[f.name]}); re-run the notebook (`medlab reproduce {f.stem}`) "
                    "to record its numbers again"
                )
            out[rel] = (RECORDED if f.name in recorded else UNKNOWN, digest)
    return out
