"""Writing an audit: the model card, the audit report (Markdown and HTML) and
``citations.json`` of one run (:func:`write`; :func:`audit` builds, then writes)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medlab.audit.assemble import Audit, build
from medlab.audit.card import card_markdown
from medlab.audit.collect import AuditError
from medlab.audit.render import _html_pages
from medlab.audit.report import report_markdown

__all__ = ["write", "audit"]


def _texts(a: Audit, folder: Path) -> dict[str, str]:
    """The text of each file of the audit, by file name."""
    report_md = report_markdown(a, folder)
    card_md = card_markdown(a)
    pages = _html_pages(report_md, card_md)
    return {
        "audit_report.md": report_md,
        "audit_report.html": pages["audit_report.html"],
        "model_card.md": card_md,
        "model_card.html": pages["model_card.html"],
        "citations.json": json.dumps(_citations_json(a), indent=2, default=str),
    }


def _citations_json(a: Audit) -> dict[str, Any]:
    return {
        "run_dir": str(a.run_dir),
        "not_run": a.not_run,
        "failed": a.failed,
        "unofficial_datasets": a.unofficial,
        "unknown_origin": a.unknown_origin,
        "files": {f: {"origin": o, "sha256": d} for f, (o, d) in a.files.items()},
        "citations": [asdict(c) for c in a.citations.values()],
    }


def write(a: Audit, folder: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Write the model card, the audit report (Markdown and HTML) and ``citations.json`` to
    ``folder`` (default ``<run_dir>/audit``); returns the paths by file name. A folder that
    cannot be written raises :class:`AuditError` naming the fix, and leaves nothing behind."""
    folder = Path(folder) if folder is not None else a.run_dir / "audit"
    texts = _texts(a, folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    paths, tmp = {}, None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            path = folder / name
            tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            paths[name] = path
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        for p in made if not paths else []:
            try:
                p.rmdir()
            except OSError:
                pass
        raise AuditError(
            f"cannot write the audit into {folder} ({exc.strerror or exc}): a read-only or full "
            f"run folder? Write it to another folder: `medlab audit {a.run_dir} --to DIR` "
            "(in Python: medlab.audit.audit(run_dir, folder=DIR))"
        ) from None
    return paths


def audit(
    run_dir: str | os.PathLike[str] | None = None, *, folder: str | os.PathLike[str] | None = None
) -> tuple[Audit, dict[str, Path]]:
    """:func:`build` then :func:`write`; returns the audit and the written paths."""
    a = build(run_dir)
    return a, write(a, folder)
