"""Re-execute the curriculum headless and compare every recorded number with its expected value.

``medlab reproduce [--quick] [NOTEBOOK ...]`` runs each notebook with papermill, writes executed
copies to ``<output>/executed/``, figures to ``<output>/figures/`` and results to
``<output>/results/``, then prints one row per recorded number: expected value and tolerance
(from ``notebooks/expected_results.yaml``), the value reproduced now, and ``reproduced`` /
``DEVIATED`` / ``new``. It exits non-zero on a deviation or a failed notebook, naming the
notebook and the cell.

Expected values are kept apart by data origin (``official`` files vs ``unofficial`` copies such
as the shared CI data) and by mode (``quick`` / ``full``)::

    unofficial:
      quick:
        01_baseline:
          pneumoniamnist_balanced_subset:
            smallcnn.test_auc: {value: 0.95, tol: 0.03}
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["find_notebooks", "run_notebook", "compare", "reproduce", "Row", "NotebookRun"]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = NOTEBOOKS / "expected_results.yaml"
DEFAULT_TOL = 0.05


@dataclass
class NotebookRun:
    """Outcome of executing one notebook."""

    notebook: str
    ok: bool
    seconds: float
    executed: Path
    error: str = ""


@dataclass
class Row:
    """One recorded number compared with its expected value."""

    notebook: str
    dataset: str
    key: str
    value: float
    origin: str  # "official" / "unofficial"
    expected: float | None = None
    tol: float | None = None
    status: str = "new"
    unit: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def find_notebooks(selection: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """Numbered notebooks (``NN_*.ipynb``) in order; ``selection`` filters by stem or prefix
    (``"01"``, ``"01_baseline"`` or a path)."""
    all_nb = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return all_nb
    chosen = []
    for s in selection:
        stem = Path(s).stem
        hits = [p for p in all_nb if p.stem == stem or p.stem.startswith(stem + "_")
                or p.stem.split("_")[0] == stem]
        if not hits:
            raise SystemExit(f"medlab reproduce: no notebook matches {s!r}; available: "
                             f"{', '.join(p.stem for p in all_nb)}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def run_notebook(path: Path, output: Path, parameters: dict[str, Any], *,
                 timeout: int | None = None) -> NotebookRun:
    """Execute one notebook with papermill (cwd = its folder); never raises on cell errors."""
    import papermill as pm

    executed = output / "executed" / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    env_backup = {k: os.environ.get(k) for k in ("MEDLAB_OUTPUT_DIR", "MEDLAB_NOTEBOOK",
                                                  "MEDLAB_QUIET")}
    os.environ.update(MEDLAB_OUTPUT_DIR=str(output.resolve()), MEDLAB_NOTEBOOK=path.stem,
                      MEDLAB_QUIET="1")
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(path), str(executed), parameters=parameters, cwd=str(path.parent),
                            kernel_name="python3", progress_bar=False, log_output=False,
                            execution_timeout=timeout)
        return NotebookRun(path.stem, True, time.perf_counter() - t0, executed)
    except pm.PapermillExecutionError as exc:
        where = f"cell {exc.cell_index} (execution count {exc.exec_count})"
        msg = f"{where}: {exc.ename}: {str(exc.evalue).strip()[:500]}"
        return NotebookRun(path.stem, False, time.perf_counter() - t0, executed, msg)
    except Exception as exc:  # kernel died, bad parameters, missing kernel, ...
        return NotebookRun(path.stem, False, time.perf_counter() - t0, executed,
                           f"{type(exc).__name__}: {exc}")
    finally:
        for k, v in env_backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_expected(path: Path = EXPECTED) -> dict[str, Any]:
    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def compare(results: dict[str, Any], expected: dict[str, Any], mode: str) -> list[Row]:
    """Rows for one notebook's results file against the expected-results tree."""
    rows = []
    nb = results["notebook"]
    for dataset, recs in results["records"].items():
        for key, r in recs.items():
            origin = "official" if r.get("official") else "unofficial"
            row = Row(nb, dataset, key, float(r["value"]), origin, unit=r.get("unit", ""),
                      extra={"tol_hint": r.get("tol")})
            exp = (expected.get(origin, {}).get(mode, {}).get(nb, {}).get(dataset, {})
                   .get(key))
            if exp is not None:
                row.expected, row.tol = float(exp["value"]), float(exp.get("tol", DEFAULT_TOL))
                row.status = ("reproduced" if abs(row.value - row.expected) <= row.tol + 1e-12
                              else "DEVIATED")
            rows.append(row)
    return rows


def update_expected(rows: list[Row], mode: str, path: Path = EXPECTED) -> None:
    """Write the values of ``rows`` into the expected file (keeps tolerances already there)."""
    tree = load_expected(path)
    for r in rows:
        node = (tree.setdefault(r.origin, {}).setdefault(mode, {}).setdefault(r.notebook, {})
                .setdefault(r.dataset, {}))
        old = node.get(r.key, {})
        hint = r.extra.get("tol_hint")
        tol = old.get("tol", DEFAULT_TOL if hint is None else hint)
        node[r.key] = {"value": round(r.value, 4), "tol": float(tol)}
    header = ("# Expected values for `medlab reproduce`, written by\n"
              "# `medlab reproduce --update-expected` from real runs (never typed in by hand).\n"
              "# official: official MedMNIST files (md5 match); unofficial: other copies, e.g. the\n"
              "# shared CI data. Each entry: {value, tol}: reproduced when |now - value| <= tol.\n")
    path.write_text(header + yaml.safe_dump(tree, sort_keys=True, width=100))


def format_table(rows: list[Row], runs: list[NotebookRun]) -> str:
    """Plain-text table of the comparison (one line per number, then one per failed run)."""
    head = f"{'notebook':<18} {'dataset':<32} {'key':<40} {'data':<10} {'expected':>9} " \
           f"{'tol':>6} {'now':>9}  status"
    lines = [head, "-" * len(head)]
    for r in rows:
        exp = f"{r.expected:9.4f}" if r.expected is not None else f"{'-':>9}"
        tol = f"{r.tol:6.3f}" if r.tol is not None else f"{'-':>6}"
        lines.append(f"{r.notebook:<18} {r.dataset:<32} {r.key:<40} {r.origin:<10} {exp} {tol} "
                     f"{r.value:9.4f}  {r.status}")
    for run in runs:
        if not run.ok:
            lines.append(f"{run.notebook:<18} FAILED in {run.error}  (see {run.executed})")
    return "\n".join(lines)


def reproduce(selection: list[str] | None = None, *, quick: bool = False,
              output: str | os.PathLike[str] = "outputs", data_dir: str | None = None,
              seed: int | None = None, parameters: dict[str, Any] | None = None,
              update: bool = False, html: bool = True, folder: Path = NOTEBOOKS) -> int:
    """Run notebooks, compare with expected values, print the table; returns the exit code."""
    out = Path(output).resolve()
    mode = "quick" if quick else "full"
    params: dict[str, Any] = {"quick": quick}
    if data_dir is not None:
        params["data_dir"] = str(Path(data_dir).expanduser().resolve())
    if seed is not None:
        params["seed"] = seed
    params.update(parameters or {})
    expected = load_expected()
    runs, rows = [], []
    for nb in find_notebooks(selection, folder):
        res_file = out / "results" / f"{nb.stem}.json"
        res_file.unlink(missing_ok=True)
        print(f"[medlab] running {nb.name} ({mode} mode) ...", flush=True)
        run = run_notebook(nb, out, params)
        runs.append(run)
        status = "ok" if run.ok else f"FAILED: {run.error}"
        print(f"[medlab]   {nb.stem}: {status} ({run.seconds:.1f} s)", flush=True)
        if run.ok and html:
            _export_html(run.executed, out / "html")
        if res_file.exists():
            rows += compare(json.loads(res_file.read_text()), expected, mode)
        elif run.ok:
            run.ok, run.error = False, "notebook recorded no results (no rec.record call ran)"
    if update:
        update_expected(rows, mode)
        print(f"[medlab] wrote {len(rows)} expected values ({mode}) to {EXPECTED}")
        for r in rows:
            r.status = "updated"
    table = format_table(rows, runs)
    print()
    print(table)
    (out / f"reproduce_{mode}.txt").write_text(table + "\n")
    _write_csv(rows, out / f"reproduce_{mode}.csv")
    n_dev = sum(r.status == "DEVIATED" for r in rows)
    n_fail = sum(not r.ok for r in runs)
    n_new = sum(r.status == "new" for r in rows)
    print(f"\n[medlab] {len(runs)} notebooks, {len(rows)} numbers: "
          f"{sum(r.status == 'reproduced' for r in rows)} reproduced, {n_dev} deviated, "
          f"{n_new} without expected value; {n_fail} notebook(s) failed. Outputs in {out}")
    return 1 if (n_dev or n_fail) else 0


def _export_html(executed: Path, folder: Path) -> None:
    try:
        import nbconvert
        import nbformat

        folder.mkdir(parents=True, exist_ok=True)
        body, _ = nbconvert.HTMLExporter().from_notebook_node(nbformat.read(executed, 4))
        (folder / executed.with_suffix(".html").name).write_text(body)
    except Exception as exc:  # a failed export must not hide the results
        print(f"[medlab]   (HTML export of {executed.name} failed: {exc})")


def _write_csv(rows: list[Row], path: Path) -> None:
    import csv

    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["notebook", "dataset", "key", "data", "expected", "tol", "value", "unit",
                    "status"])
        for r in rows:
            w.writerow([r.notebook, r.dataset, r.key, r.origin, r.expected, r.tol, r.value,
                        r.unit, r.status])
