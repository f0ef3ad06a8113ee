"""Verifying an audit folder: the run's results files against the digests recorded, every
citation recomputed from its sources, every mark in the documents against its citation, no
uncited number, and each HTML page the rendering of its Markdown document (:func:`verify`)."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from medlab.audit.citations import (
    CITATION_HTML_RE,
    CITATION_RE,
    RECORDED,
    UNKNOWN,
    _apply,
    _pointer_get,
    fmt,
)
from medlab.audit.collect import AuditError
from medlab.audit.framework import CURRICULUM
from medlab.audit.integrity import _check_integrity
from medlab.audit.render import _html_pages
from medlab.audit.uncited import uncited_numbers

__all__ = ["verify"]

_DOCS = ("audit_report.md", "model_card.md", "audit_report.html", "model_card.html")
_Files = dict[str, tuple[str, str]]


def _metric_problems(meta: dict[str, Any], cites: dict[str, dict[str, Any]]) -> list[str]:
    """The model card's ``model-index`` values against the citations their names give."""
    problems = []
    for model in meta.get("model-index") or []:
        for res in model.get("results") or []:
            for metric in res.get("metrics") or []:
                m = re.search(r"\[(C\d+)\]", str(metric.get("name", "")))
                c = cites.get(m[1]) if m else None
                if c is None:
                    problems.append(
                        f"model_card.md: model-index metric {metric.get('name')!r} names no "
                        "known citation [C<k>]; run `medlab audit` again"
                    )
                elif not isinstance(metric.get("value"), int | float) or not math.isclose(
                    metric["value"], c["value"], rel_tol=1e-9, abs_tol=1e-12
                ):
                    problems.append(
                        f"model_card.md: model-index value {metric.get('value')!r} of "
                        f"{m[1]} differs from the citation ({c['value']})"
                    )
    return problems


def _metadata_numbers(meta: Any) -> tuple[list[str], list[str]]:
    """Problems for the numbers among the metadata values other than the cited ones, and the
    metadata's texts (checked for uncited numbers)."""
    problems: list[str] = []
    texts: list[str] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, str(k)))
        elif isinstance(node, list):
            for v in node:
                walk(v, path)
        elif path[-2:] in (("metrics", "name"), ("metrics", "value")) and "model-index" in path:
            return  # checked against their citations
        elif isinstance(node, bool) or node is None:
            return
        elif isinstance(node, int | float):
            problems.append(
                f"model_card.md: metadata {'.'.join(path)} holds the number {node!r} with no "
                "citation; run `medlab audit` again"
            )
        else:
            texts.append(str(node))

    walk(meta, ())
    return problems, texts


def _front_matter_problems(card_md: str, cites: dict[str, dict[str, Any]]) -> list[str]:
    """The model card's ``model-index`` values against the citations their names give."""
    if not card_md.startswith("---\n") or "\n---" not in card_md[4:]:
        return ["model_card.md: no YAML front matter (model-index); run `medlab audit` again"]
    try:
        meta = yaml.safe_load(card_md[4 : card_md.index("\n---", 4)]) or {}
    except yaml.YAMLError as exc:
        return [f"model_card.md: the front matter is not YAML ({exc}); run `medlab audit` again"]
    problems = _metric_problems(meta, cites)
    # every other metadata value holds no number of its own (the cited ones are checked above)
    numbers, texts = _metadata_numbers(meta)
    problems += numbers
    problems += [
        p.replace("model_card.md front matter: line", "model_card.md front matter: value")
        for p in uncited_numbers("\n".join(texts), name="model_card.md front matter")
    ]
    return problems


def _read_citations(folder: Path) -> tuple[dict[str, Any], Path, dict[str, dict[str, Any]]]:
    """The audit folder's ``citations.json``, its run folder and its citations by id."""
    try:
        meta = json.loads((folder / "citations.json").read_text(encoding="utf-8"))
        run = Path(meta["run_dir"])
        cites = {c["id"]: c for c in meta["citations"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditError(
            f"{folder} holds no readable citations.json ({exc}): it is not an audit folder "
            "written by medlab.audit; run `medlab audit` to write it"
        ) from None
    return meta, run, cites


def _uncited_file_problem(f: str, files: dict[str, Any], now_files: _Files) -> list[str]:
    """A results file no citation reads and of no assessed notebook (e.g. the audit notebook's
    own results, recorded after it audited its run) cannot change what the audit says; only
    its origin is checked."""
    if f in now_files and now_files[f][0] != RECORDED:
        added = " was added after the audit was written;" if f not in files else ":"
        return [
            f"{f}{added} {UNKNOWN} (the run's manifest does not list it); re-run "
            "its notebook to record it"
        ]
    return []


def _file_problems(files: dict[str, Any], now_files: _Files, cites: dict[str, Any]) -> list[str]:
    """The run's results files now against the digests the audit recorded (``files``)."""
    cited = {s.get("file") for c in cites.values() for s in c.get("sources") or []}
    assessed = {stem for stem, _ in CURRICULUM.values()}
    problems = []
    for f in sorted(set(files) | set(now_files)):
        if f not in cited and Path(f).stem not in assessed:
            problems += _uncited_file_problem(f, files, now_files)
        elif f not in now_files:
            problems.append(f"{f} is gone since the audit was written; run `medlab audit` again")
        elif f not in files:
            problems.append(f"{f} was added after the audit was written; run `medlab audit` again")
        elif now_files[f][1] != files[f].get("sha256"):
            problems.append(
                f"{f} changed since the audit was written (SHA-256 {now_files[f][1]}); run "
                "`medlab audit` again"
            )
        elif now_files[f][0] != RECORDED:
            problems.append(
                f"{f}: {UNKNOWN} (the run's manifest does not list it), so its numbers are "
                "not verified; re-run its notebook to record them"
            )
    return problems


def _citation_problems(run: Path, cites: dict[str, Any], now_files: _Files | None) -> list[str]:
    """Each citation recomputed from its sources (results files of the run)."""
    problems = []
    for c in cites.values():
        outside = [
            s.get("file")
            for s in c.get("sources") or []
            if now_files and s.get("file") not in now_files
        ]
        if outside:
            problems.append(
                f"{c['id']}: cites {outside[0]!r}, which is not a results file of the run"
            )
            continue
        try:
            xs = [
                float(_pointer_get(json.loads((run / s["file"]).read_text()), s["pointer"]))
                for s in c["sources"]
            ]
            now = _apply(c["op"], xs)
        except (OSError, KeyError, IndexError, ValueError, TypeError) as exc:
            problems.append(f"{c['id']}: cannot recompute from its sources ({exc})")
            continue
        if fmt(now) != c["shown"] or not math.isclose(now, c["value"], rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"{c['id']}: shows {c['shown']}, results give {fmt(now)}")
    return problems


def _document_problems(folder: Path, cites: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Every citation mark of the documents against its citation, and the uncited numbers of
    the Markdown documents; also returns the documents' texts."""
    problems, texts = [], {}
    for name in _DOCS:
        try:
            texts[name] = text = (folder / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{name}: cannot be read ({exc}); run `medlab audit` again")
            continue
        pattern = CITATION_HTML_RE if name.endswith(".html") else CITATION_RE
        for m in pattern.finditer(text):
            c = cites.get(m["id"])
            if c is None:
                problems.append(f"{name}: cites unknown {m['id']}")
            elif m["num"] != c["shown"]:
                problems.append(f"{name}: {m['id']} shown as {m['num']}, citation is {c['shown']}")
        if name.endswith(".md"):
            units = {c.get("unit") or "" for c in cites.values()}
            problems += uncited_numbers(text, name=name, units=units)
    return problems, texts


def _rendering_problems(texts: dict[str, str]) -> list[str]:
    """Each HTML page against the rendering of its Markdown document."""
    if "audit_report.md" not in texts or "model_card.md" not in texts:
        return []
    pages = _html_pages(texts["audit_report.md"], texts["model_card.md"])
    return [
        f"{name} is not the rendering of its Markdown document (edited by hand?); "
        "run `medlab audit` again"
        for name, page in pages.items()
        if name in texts and texts[name] != page
    ]


def verify(folder: str | os.PathLike[str]) -> list[str]:
    """Check an audit folder against the results files it was built from; returns problems
    (empty: every number in every document is cited, and equals its recomputed value).

    * The run's results files still match the SHA-256 digests the Recorder recorded (the run's
      manifest) and the audit recorded; none is of origin unknown, none was added or removed.
    * Each citation's value is recomputed from its sources (the run's results files).
    * Each citation mark in the Markdown and HTML files names a known citation and shows its text.
    * No number in the Markdown documents lacks a citation (:func:`uncited_numbers`); the
      model card's metadata values equal their citations; each HTML page is the rendering of
      its Markdown document.
    """
    folder = Path(folder)
    meta, run, cites = _read_citations(folder)
    problems = []
    try:
        now_files = _check_integrity(run)
    except AuditError as exc:
        problems.append(str(exc))
        now_files = None
    files = meta.get("files")
    if not isinstance(files, dict):
        problems.append(
            "citations.json records no digests of the results files (an older medlab wrote "
            "it): run `medlab audit` again"
        )
    elif now_files is not None:
        problems += _file_problems(files, now_files, cites)
    problems += _citation_problems(run, cites, now_files)
    found, texts = _document_problems(folder, cites)
    problems += found
    if "model_card.md" in texts:
        problems += _front_matter_problems(texts["model_card.md"], cites)
    return problems + _rendering_problems(texts)
