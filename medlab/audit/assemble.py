"""Building an audit: everything the documents show, computed from one run's recorded results
(:func:`build` returns an :class:`Audit`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlab.audit.citations import RECORDED, UNKNOWN, Citation
from medlab.audit.collect import _number, resolve_run
from medlab.audit.evidence import _datasets, _documentation_item, _notebook_status, _row
from medlab.audit.framework import AREAS, CHECKLIST, CURRICULUM, Area
from medlab.audit.markup import _c, _mark, _plain, _t
from medlab.audit.records import _Builder

__all__ = ["Audit", "build"]

#: The report the citation marks of the report's own rows link to.
_REPORT = "audit_report.md"


@dataclass
class Audit:
    """Everything the documents show, computed from one run's results (see :func:`build`)."""

    run_dir: Path
    table: Any  # results.load(run_dir)
    docs: dict[str, dict[str, Any]]  # results file (relative to run_dir) -> its JSON
    citations: dict[str, Citation]
    notebooks: list[dict[str, Any]]  # one per curriculum notebook / notebook found in the run
    datasets: list[dict[str, Any]]
    areas: list[dict[str, Any]]
    other: list[dict[str, Any]]  # recorded numbers no area shows
    checklist: list[dict[str, Any]]
    mode: str
    #: results file (relative to run_dir) -> (origin: "recorded" / "origin unknown", sha256)
    files: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def unknown_origin(self) -> list[str]:
        """Results files the run's manifest does not list (their numbers: origin unknown)."""
        return [f for f, (origin, _) in self.files.items() if origin != RECORDED]

    @property
    def not_run(self) -> list[str]:
        """Curriculum notebooks with no results and no executed copy in the run."""
        return [n["notebook"] for n in self.notebooks if n["status"] == "not run"]

    @property
    def failed(self) -> list[str]:
        return [n["notebook"] for n in self.notebooks if n["status"].startswith("FAILED")]

    @property
    def unofficial(self) -> list[str]:
        return [d["dataset"] for d in self.datasets if not d["official"]]

    def summary(self) -> Any:
        """The report's summary table (pandas DataFrame): one row per area."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "area": a["title"],
                    "status": a["status"],
                    "notebooks": ", ".join(a["notebooks_run"]) or "-",
                    "not run": ", ".join(a["notebooks_missing"]) or "-",
                    "headline": _plain(a["headline"]),
                    "data": a["data"],
                }
                for a in self.areas
            ]
        )


def _notebooks(b: _Builder, run: Path) -> list[dict[str, Any]]:
    """The status of every curriculum notebook and of every other notebook found in the run."""
    found = sorted(
        {nb for nb, _, _ in b.records}
        | {p.stem for p in run.glob("executed/*.ipynb")}
        | {p.stem for p in run.glob("seed*/executed/*.ipynb")}
    )
    notebooks = []
    for number, (stem, topic) in CURRICULUM.items():
        names = [n for n in found if _number(n) == number] or [stem]
        for name in names:
            notebooks.append(_notebook_status(b, run, name, topic))
    for name in found:
        if _number(name) not in CURRICULUM:
            notebooks.append(
                _notebook_status(b, run, name, "the audit" if name[:2] == "10" else "")
            )
    return notebooks


def _area(b: _Builder, area: Area, present: set[str]) -> dict[str, Any]:
    """One area of the report: its rows, and whether the notebooks it needs ran."""
    rows = [_row(b, *h, _REPORT) for h in b.match(area.patterns)]
    wanted = sorted({n for n, _ in area.patterns})
    ran = sorted({_number(r["notebook"]) for r in rows})
    missing = [CURRICULUM.get(n, (n,))[0] for n in wanted if n not in present and n != "10"]
    status = "not assessed" if not rows else ("partly assessed" if missing else "assessed")
    head = rows[0] if rows else None
    return {
        "id": area.id,
        "title": area.title,
        "question": area.question,
        "rows": rows,
        "status": status,
        "notebooks_run": sorted({r["notebook"] for r in rows}),
        "notebooks_missing": missing,
        "headline": (
            f"{_c(head['key'])} = {head['value']}"
            + (f" ({head['interval']})" if head["interval"] != "-" else "")
        )
        if head
        else "not assessed",
        "data": ", ".join(sorted({r["data"].strip("*") for r in rows})) or "-",
        "ran": ran,
    }


def _checklist_item(b: _Builder, item: Area, present: set[str]) -> dict[str, Any]:
    """One item of the checklist: the cited evidence for what it asks for."""
    hits = b.match(item.patterns)
    wanted = sorted({n for n, _ in item.patterns})
    missing = [CURRICULUM[n][0] for n in wanted if n not in present]
    evidence = [
        f"{_c(k)} = {_mark(c, _REPORT)} ({_t(nb)}, {_t(ds)}"
        + (f", **{UNKNOWN}**" if c.origin != RECORDED else "")
        + ")"
        for nb, ds, k in hits
        if (c := b.cite_record(nb, ds, k))
    ]
    status = "not assessed" if not hits else ("partly assessed" if missing else "evidence")
    return {
        "id": item.id,
        "title": item.title,
        "asks": item.question,
        "status": status,
        "evidence": evidence,
        "missing": missing,
    }


def _mode(b: _Builder) -> str:
    """quick, full, mixed or unknown: the mode the run's results files record."""
    modes = {(doc.get("provenance") or {}).get("quick") for doc in b.docs.values()}
    return (
        {True: "quick", False: "full"}.get(modes.pop(), "unknown")
        if len(modes) == 1
        else ("mixed (quick and full)")
    )


def build(run_dir: str | os.PathLike[str] | None = None) -> Audit:
    """Read one run's recorded results and compute everything the documents will show.

    ``run_dir``: a run folder of ``medlab reproduce`` (``outputs/runs/<time>-<mode>``), an
    output folder (its latest run) or a folder with ``results/*.json``; default the latest run.
    """
    run = resolve_run(run_dir)
    b = _Builder(run)
    present = {_number(nb) for nb, _, _ in b.records}
    notebooks = _notebooks(b, run)
    datasets = _datasets(b)
    areas = [_area(b, area, present) for area in AREAS]
    shown = {(r["notebook"], r["dataset"], r["key"]) for x in areas for r in x["rows"]}
    other = [
        _row(b, *h, _REPORT)
        for h in sorted(b.records)
        if h not in shown and not b.is_sd_companion(*h)
    ]
    checklist = [
        _documentation_item(item, datasets, b)
        if item.id == "documentation"
        else _checklist_item(b, item, present)
        for item in CHECKLIST
    ]
    mode = _mode(b)
    return Audit(
        run,
        b.table,
        b.docs,
        b.citations,
        notebooks,
        datasets,
        areas,
        other,
        checklist,
        mode,
        b.files,
    )
