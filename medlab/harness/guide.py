"""The instructor guide's lesson pages, generated from the notebooks (never written twice).

For each notebook :func:`lesson_page` collects what an instructor needs before a session, from
the repository's notebook (the single source): the lesson's question, its objectives, its time
and memory line, every exercise's heading, and the cells tagged ``instructor`` (expected answers,
common mistakes, discussion questions); and, from a ``medlab reproduce`` run's executed copy of
the same notebook, what every exercise's self-check printed for the solution in that run, so
that each number in the guide comes from a named run (dataset, seed, mode).
``medlab editions --answers RUN`` writes the pages to ``instructor/GUIDE.md``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from medlab.harness.editions import INSTRUCTOR_TAG, answer_rows

__all__ = ["lesson_page", "instructor_guide", "exercise_headings", "exercise_seconds"]

_EXERCISE = re.compile(r"^\*\*Exercise (\w+) \(([^)]*)\)\.\*\*\s*(.*)$", re.M)
_SECTION = re.compile(r"^\*\*(The question|Time)\.\*\*\s*(.*?)(?=\n\n|\Z)", re.M | re.S)
_OBJECTIVES = re.compile(r"^\*\*After this notebook you can\*\*\n(.*?)(?=\n\n|\Z)", re.M | re.S)
_DIV = re.compile(r"</?div[^>]*>")
_HEADING = re.compile(r"^\*\*Exercise (\w+) \(", re.M)
_SELF_CHECK = re.compile(r"medlab\.exercise\.check_\w+\(\s*[\"'](\w+)[\"']")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _one_line(text: str) -> str:
    return " ".join(text.split())


def exercise_headings(cells: list[dict]) -> list[tuple[str, str, str]]:
    """``(number, kind and cost, first sentence)`` of every exercise heading in markdown."""
    out = []
    for c in cells:
        if c["cell_type"] != "markdown":
            continue
        for n, kind, rest in _EXERCISE.findall(_text(c)):
            body = _one_line(_text(c)[_text(c).index(rest) :]) if rest else ""
            first = re.split(r"(?<=[.?!])\s", body, maxsplit=1)[0] if body else ""
            out.append((n, _one_line(kind), first))
    return out


def exercise_seconds(executed: Path) -> dict[str, float]:
    """Seconds each exercise's code cells took in an executed notebook (papermill's per-cell
    ``duration``): from the markdown cell that opens ``**Exercise N (`` to the cell that runs its
    self-check (or the check of its last part, ``1b``), that one included: the lesson cells a
    prediction waits for count too, so this is what a student waits, not the exercise's own extra
    compute. An exercise whose cells carry no duration is left out."""
    total: dict[str, float] = {}
    current: str | None = None
    for c in _cells(executed):
        text = _text(c)
        if c["cell_type"] == "markdown":
            heads = _HEADING.findall(text)
            current = heads[-1] if heads else current
            continue
        if current is None:
            continue
        seconds = (c.get("metadata", {}).get("papermill") or {}).get("duration")
        if isinstance(seconds, (int, float)):
            total[current] = total.get(current, 0.0) + float(seconds)
        ids = _SELF_CHECK.findall(text)  # "2", or the parts "1a", "1b" of exercise 1
        if any(
            i == current or (i.startswith(current) and i[len(current) :].isalpha()) for i in ids
        ):
            current = None
    return total


def lesson_page(source: Path, executed: Path | None = None) -> str:
    """Markdown for one lesson: key idea, objectives, time, exercises, the answers ``executed``
    (the run's copy of ``source``) printed, and the instructor notes of ``source``."""
    cells = _cells(source)
    title = _text(cells[0]).splitlines()[0].lstrip("# ").strip() if cells else source.stem
    head = _text(cells[0]) if cells else ""
    found = dict((k, _one_line(v)) for k, v in _SECTION.findall(head))
    lines = [f"## {title}", ""]
    if "The question" in found:
        lines += [f"**Key idea (the lesson's question).** {found['The question']}", ""]
    obj = _OBJECTIVES.search(head)
    if obj:
        lines += ["**Students leave able to**", "", obj.group(1).rstrip(), ""]
    if "Time" in found:
        lines += [f"**Time.** {found['Time']}", ""]
    heads = exercise_headings(cells)
    if heads:
        took = exercise_seconds(executed) if executed is not None and executed.exists() else {}
        lines += [
            "**Exercises**",
            "",
            "| exercise | kind; extra compute in quick mode | heading to self-check in the run below"
            " (lesson cells between them included) | task |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {n} | {k} | {f'{took[n]:.1f} s' if n in took else '-'} | {t.replace('|', '/')} |"
            for n, k, t in heads
        ]
        lines.append("")
    if executed is not None and executed.exists():
        run, rows = answer_rows(executed)
        lines += [f"**Expected answers** (self-checks of the solutions; {run}):", ""]
        lines += ["| exercise | self-check | what the run printed |", "|---|---|---|"]
        lines += [f"| {n} | {s} | {m.replace('|', '/')} |" for n, s, m in rows] + [""]
    else:
        lines += [
            "**Expected answers:** build the guide from a run (`medlab reproduce --quick`, then "
            "`medlab editions --answers outputs`) to see the numbers your run gives.",
            "",
        ]
    notes = [c for c in cells if INSTRUCTOR_TAG in c.get("metadata", {}).get("tags", [])]
    if notes:
        lines += ["**Instructor notes** (common mistakes, discussion questions)", ""]
        lines += [_DIV.sub("", _text(c)).strip() + "\n" for c in notes]
    return "\n".join(lines).rstrip() + "\n"


def instructor_guide(sources: list[Path], executed: dict[str, Path]) -> str:
    """The guide's lesson pages for ``sources`` (repository notebooks), each with the run's
    executed copy from ``executed`` (by file name) where there is one."""
    parts = [
        "# Instructor guide: the lessons",
        "",
        "Generated by `medlab editions --answers RUN` from the notebooks (the single source) "
        "and one `medlab reproduce` run's executed copies: do not edit by hand. Session plans, "
        "offline setup and pitfalls: `docs/instructor/README.md`.",
        "",
    ]
    for src in sorted(sources):
        parts.append(lesson_page(src, executed.get(src.name)))
    return "\n".join(parts)
