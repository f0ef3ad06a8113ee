"""The end of a reproduce run: update or judge the numbers, write the tables and the report page,
print the table and a one-line summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medlab.harness.base import NotebookRun, ReproduceError, Row, no_space, one_line
from medlab.harness.compare import format_table, write_csv
from medlab.harness.expected import read_expected, section
from medlab.harness.site import write_site
from medlab.harness.update import update_expected

__all__ = ["finish"]


STATUSES = ("reproduced", "DEVIATED", "MISSING", "new", "updated", "uninformative", "measured")


def finish(
    rows: list[Row],
    runs: list[NotebookRun],
    tree: dict[str, Any],
    *,
    mode: str,
    update: bool,
    allow_new: bool,
    exp_path: Path,
    run_dir: Path,
) -> int:
    """Update or judge, write the table, print it and the summary; returns the exit code."""
    n_fail = sum(not r.ok for r in runs)
    hints: list[str] = []
    status = 0
    if update:
        rows, status = _update(rows, n_fail, mode, exp_path, hints)
    table = format_table(rows, runs)
    (run_dir / f"reproduce_{mode}.txt").write_text(table + "\n")
    write_csv(rows, run_dir / f"reproduce_{mode}.csv")
    count = {s: sum(r.status == s for r in rows) for s in STATUSES}
    if not update:
        status = _judge(rows, tree, count, n_fail, mode, allow_new, exp_path, hints)
    try:
        page = write_site(run_dir, rows, runs, mode=mode, passed=status == 0)
        hints.append(f"report: {page}")
    except Exception as exc:  # a broken report page must not hide the results
        if no_space(exc):
            raise
        hints.append(f"the report page could not be written: {one_line(exc, 300)}")
    print()
    print(table)
    summary = _summary(status, update=update, n_runs=len(runs), n_fail=n_fail)
    print(
        f"\n[medlab] {summary}; {len(rows)} numbers: {_parts(count, update)}. Run folder: {run_dir}"
    )
    for h in hints:
        print(f"[medlab] {h}")
    return status


def _update(
    rows: list[Row], n_fail: int, mode: str, exp_path: Path, hints: list[str]
) -> tuple[list[Row], int]:
    """``--update-expected``: write the derived entries (unless a run failed) and mark the rows
    ``updated``; returns the rows to show and the exit code."""
    if n_fail:
        hints.append(
            f"not updating {exp_path}: {n_fail} notebook run(s) failed; fix them and run again"
        )
        return rows, 1
    try:
        for w in update_expected(rows, mode, path=exp_path):
            print(f"[medlab] warning: {w}")
    except ReproduceError as exc:
        hints.append(f"not updating {exp_path}: {exc}")
        return rows, 1
    except OSError as exc:
        if no_space(exc):
            raise
        hints.append(f"could not write {exp_path} ({exc.strerror or exc}); nothing was updated")
        return rows, 1
    written = read_expected(exp_path, strict=False)[0]
    rows = [r for r in rows if r.value is not None]
    for r in rows:
        if r.machine:
            continue  # stays "measured": no expected value is written for it
        e = section(written, r.origin, mode, r.notebook, r.dataset).get(r.key) or {}
        r.expected, r.tol, r.status = e.get("value"), e.get("tol"), "updated"
    n = len({(r.origin, r.notebook, r.dataset, r.key) for r in rows if not r.machine})
    hints.append(f"wrote {n} expected values ({mode}) to {exp_path}; review the diff")
    return rows, 0


def _judge(
    rows: list[Row],
    tree: dict[str, Any],
    count: dict[str, int],
    n_fail: int,
    mode: str,
    allow_new: bool,
    exp_path: Path,
    hints: list[str],
) -> int:
    """The exit code of a comparison (0: every notebook ran and every number reproduced), with
    a hint for each kind of failure."""
    for origin in sorted({r.origin for r in rows}):
        if not section(tree, origin, mode):
            hints.append(
                f"{exp_path.name} has no expected values for {origin} data in {mode} "
                "mode, so nothing was checked"
            )
    if count["new"] and not allow_new:
        hints.append(
            f"{count['new']} number(s) have no expected value: record them with "
            f"`medlab reproduce --update-expected --seeds 0 10 20 30 40"
            f"{' --quick' if mode == 'quick' else ''} ...` (or pass --allow-new)"
        )
    if count["MISSING"]:
        hints.append(
            f"{count['MISSING']} expected number(s) were not recorded (MISSING): "
            "a renamed or dropped key; update the expected values if intended"
        )
    failed = (
        n_fail
        or not rows
        or count["DEVIATED"]
        or count["MISSING"]
        or (count["new"] and not allow_new)
    )
    return 1 if failed else 0


def _summary(status: int, *, update: bool, n_runs: int, n_fail: int) -> str:
    done = ("updated" if update else "reproduced") if status == 0 else "FAILED"
    return f"{done}: {n_runs} notebook run(s), {n_fail} failed"


def _parts(count: dict[str, int], update: bool) -> str:
    """The numbers counted by status, for the summary line."""
    if update:
        parts = [f"{count['updated']} updated"]
    else:
        parts = [f"{count[s]} {s.lower()}" for s in ("reproduced", "DEVIATED", "MISSING", "new")]
    if count["uninformative"]:
        parts.append(
            f"{count['uninformative']} uninformative (within a tolerance that covers the "
            "number's whole range, so the comparison could not fail)"
        )
    if count["measured"]:
        parts.append(f"{count['measured']} measured (this machine's speed, not compared)")
    return ", ".join(parts)
