"""Comparison: each recorded number against its expected value, and the table of the result."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from medlab.harness.base import NotebookRun, Row
from medlab.harness.expected import check_expected, section
from medlab.harness.tolerances import covers_range

__all__ = ["compare", "format_table", "write_csv"]


def compare(
    results: dict[str, Any],
    expected: dict[str, Any],
    mode: str,
    *,
    seed: int | None = None,
    strict: bool = True,
) -> list[Row]:
    """Rows for one notebook's results against the expected tree: each recorded number, and
    each expected key of a dataset the notebook recorded numbers on that it did not record
    (``MISSING``).
    The tree is validated first (:func:`check_expected`, ``strict``)."""
    check_expected(expected, strict=strict)
    nb = results["notebook"]
    prov = results.get("provenance") or {}
    if prov.get("seed") is not None:
        seed = prov["seed"]
    origins = {
        ds: "official" if (p or {}).get("official") else "unofficial"
        for ds, p in (prov.get("datasets") or {}).items()
    }
    rows = []
    for dataset, recs in results["records"].items():
        for key, r in recs.items():
            origin = "official" if r.get("official") else "unofficial"
            origins[dataset] = origin
            row = Row(
                nb,
                dataset,
                key,
                float(r["value"]),
                origin,
                unit=r.get("unit") or "",
                seed=seed,
                hint=r.get("tol"),
                note=r.get("note") or "",
                machine=bool(r.get("machine", False)),
            )
            _judge(row, section(expected, origin, mode, nb, dataset).get(key))
            rows.append(row)
    rows += _missing(results, expected, mode, origins, seed)
    return rows


def _judge(row: Row, exp: dict[str, Any] | None) -> None:
    """Set ``row``'s status (and expected value and tolerance) from its expected entry."""
    if row.machine:  # this machine's speed: shown, never compared with another's
        row.status = "measured"
    elif exp is not None:
        row.expected, row.tol = float(exp["value"]), float(exp["tol"])
        slack = 1e-9 * max(1.0, abs(row.expected))
        ok = abs(row.value - row.expected) <= row.tol + slack
        if not ok:
            row.status = "DEVIATED"
        elif covers_range(row.key, row.expected, row.tol):
            row.status = "uninformative"
        else:
            row.status = "reproduced"


def _missing(
    results: dict[str, Any],
    expected: dict[str, Any],
    mode: str,
    origins: dict[str, str],
    seed: int | None,
) -> list[Row]:
    """A ``MISSING`` row for each expected key of a dataset the notebook recorded numbers on
    that it did not record."""
    nb, rows = results["notebook"], []
    # a dataset the notebook only used (e.g. 02's pretraining source) is not checked for missing
    # keys: its expected section belongs to runs on that dataset
    for dataset, origin in origins.items():
        recorded = results["records"].get(dataset) or {}
        if not recorded:
            continue
        for key, exp in sorted(section(expected, origin, mode, nb, dataset).items()):
            if key not in recorded:
                rows.append(
                    Row(
                        nb,
                        dataset,
                        key,
                        None,
                        origin,
                        float(exp["value"]),
                        float(exp["tol"]),
                        "MISSING",
                        seed=seed,
                    )
                )
    return rows


def format_table(rows: list[Row], runs: list[NotebookRun]) -> str:
    """Plain-text table of the comparison (one line per number, then one per failed run)."""
    cols = ["notebook", "seed", "dataset", "key", "data", "expected", "tol", "now", "status"]
    body = []
    for r in rows:
        body.append(
            [
                r.notebook,
                "-" if r.seed is None else str(r.seed),
                r.dataset,
                r.key,
                r.origin,
                "-" if r.expected is None else f"{r.expected:.4f}",
                "-" if r.tol is None else f"{r.tol:.3g}",
                "-" if r.value is None else f"{r.value:.4f}",
                r.status,
            ]
        )
    widths = [max([len(c)] + [len(b[i]) for b in body]) for i, c in enumerate(cols)]
    right = {"expected", "tol", "now"}

    def line(cells: list[str]) -> str:
        return " ".join(
            c.rjust(w) if name in right else c.ljust(w)
            for c, w, name in zip(cells, widths, cols, strict=True)
        ).rstrip()

    head = line(cols)
    lines = [head, "-" * len(head)] + [line(b) for b in body]
    for run in runs:
        if not run.ok:
            seed = "" if run.seed is None else f" (seed {run.seed})"
            lines.append(f"{run.notebook}{seed} FAILED in {run.error}  (see {run.executed})")
    return "\n".join(lines)


def write_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "notebook",
                "seed",
                "dataset",
                "key",
                "data",
                "expected",
                "tol",
                "value",
                "unit",
                "status",
            ]
        )
        for r in rows:
            w.writerow(
                [
                    r.notebook,
                    r.seed,
                    r.dataset,
                    r.key,
                    r.origin,
                    r.expected,
                    r.tol,
                    r.value,
                    r.unit,
                    r.status,
                ]
            )
