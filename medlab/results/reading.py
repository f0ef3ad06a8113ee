"""Reading results back: one results file checked (:func:`check_doc`, :func:`read_doc`), and
every recorded number of a run as a table (:func:`load`)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from medlab.results.keys import NAME_RE, output_dir
from medlab.results.runs import latest_run

__all__ = ["check_doc", "read_doc", "load", "COLUMNS"]

COLUMNS = [
    "notebook",
    "dataset",
    "key",
    "value",
    "unit",
    "tol",
    "official",
    "note",
    "machine",
    "n",
    "seed",
    "quick",
    "md5",
    "file",
]


def check_doc(doc: Any, where: str | os.PathLike[str]) -> dict[str, Any]:
    """``doc`` if it is a results document as :class:`Recorder` writes it (``records``:
    ``{dataset: {key: {"value": number, ...}}}``), else a ValueError naming the fix."""
    nb = doc.get("notebook") if isinstance(doc, dict) else None
    nb = nb if isinstance(nb, str) and NAME_RE.fullmatch(nb) else Path(where).stem
    fix = f"re-run the notebook (`medlab reproduce {nb}`) so that medlab.Recorder rewrites it"
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), dict):
        got = type(doc).__name__ if not isinstance(doc, dict) else "no 'records' mapping"
        raise ValueError(
            f"{where} is not a medlab results file ({got}; expected an object with "
            f"'records': {{dataset: {{key: {{'value': number}}}}}}); {fix}"
        )
    for ds, recs in doc["records"].items():
        if not isinstance(recs, dict):
            raise ValueError(
                f"{where}: records[{ds!r}] is a {type(recs).__name__}, not {{key: {{'value': "
                f"number}}}}: an old or hand-written format that medlab cannot audit; {fix}"
            )
        for key, r in recs.items():
            v = r.get("value") if isinstance(r, dict) else None
            if (
                not isinstance(r, dict)
                or isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
            ):
                what = (
                    f"a {type(r).__name__}, not {{'value': number, ...}} (an old format)"
                    if not isinstance(r, dict)
                    else ("has no 'value'" if "value" not in r else f"has value {v!r}")
                )
                raise ValueError(f"{where}: record {ds}/{key} {what}; {fix}")
    prov = doc.get("provenance")
    datasets = prov.get("datasets") or {} if isinstance(prov, dict) else None
    if prov is not None and not (
        isinstance(datasets, dict)
        and all(
            isinstance(p, dict) and isinstance(p.get("split_sizes") or {}, dict)
            for p in datasets.values()
        )
    ):
        raise ValueError(f"{where}: its 'provenance' is not a mapping of fields; {fix}")
    figures = doc.get("figures")
    if figures is not None and not (
        isinstance(figures, list) and all(isinstance(f, str) for f in figures)
    ):
        raise ValueError(f"{where}: its 'figures' is not a list of paths; {fix}")
    return doc


def _results_files(path: Path) -> tuple[list[Path], str]:
    """Results files under ``path`` (a json file, a results folder, a run folder or an output
    folder) and a description of where they were looked for."""
    if path.is_file():
        return [path], str(path)
    if not path.is_dir():
        return [], f"{path} (does not exist)"
    is_run = (path / "results").is_dir() or any(p.is_dir() for p in path.glob("seed*/results"))
    if path.name == "results" or (not is_run and any(path.glob("*.json"))):
        return sorted(path.glob("*.json")), f"{path}/*.json"
    run = path
    if any(
        (path / n).exists() or (path / n).is_symlink() for n in ("latest", "latest.txt", "runs")
    ):
        run = latest_run(path) or path  # an output folder: its newest run
    files = sorted(run.glob("results/*.json")) + sorted(run.glob("seed*/results/*.json"))
    where = f"{run}/results/*.json" + (f" (latest run of {path})" if run != path else "")
    return files, where


def read_doc(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One results file, parsed and checked (:func:`check_doc`); ValueError naming the fix."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"results file {path} is not readable JSON ({exc}): truncated or damaged; re-run "
            "the notebook or `medlab reproduce` to rewrite it"
        ) from None
    return check_doc(doc, path)


def load(
    path_or_run_dir: str | os.PathLike[str] | None = None, *, notebook: str | None = None
) -> Any:
    """Recorded numbers as a tidy pandas DataFrame, one row per (notebook, seed, dataset, key).

    Args:
        path_or_run_dir: a run folder, a results folder, one results ``.json``, or an output
            folder (its latest run); default ``$MEDLAB_OUTPUT_DIR`` or ``./outputs``.
        notebook: only this notebook (stem such as ``"03_bias"`` or prefix ``"03"``).

    Columns: notebook, dataset, key, value, unit, tol (the author's hint), official, note,
    machine (True: a measurement of this machine, never compared), seed, quick, md5 and file
    (of the dataset). ``df.attrs["provenance"]`` maps each notebook
    (``"<notebook>/seed<k>"`` when a run holds several seeds) to its full provenance.
    """
    import pandas as pd

    docs = _documents(output_dir(path_or_run_dir), notebook)
    rows, prov = _rows(docs)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["provenance"] = prov
    return df


def _documents(base: Path, notebook: str | None) -> list[tuple[Path, dict[str, Any]]]:
    """The checked results documents under ``base`` (of ``notebook`` only, if given)."""
    files, where = _results_files(base)
    docs = []
    for f in files:
        docs.append((f, read_doc(f)))
    if notebook is not None:
        names = sorted({d.get("notebook", f.stem) for f, d in docs})
        docs = [(f, d) for f, d in docs if _matches(d.get("notebook", f.stem), notebook)]
        if not docs:
            raise FileNotFoundError(
                f"no results of notebook {notebook!r} in {where}; it has "
                f"{', '.join(names) or 'none'}"
            )
    if not docs:
        raise FileNotFoundError(
            f"no recorded results found: looked in {where}. `medlab "
            "reproduce` writes them (or run a notebook that uses "
            "medlab.Recorder); pass a run folder, results folder or file"
        )
    return docs


def _rows(docs: list[tuple[Path, dict[str, Any]]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One table row per recorded number, and each notebook's provenance."""
    rows, prov = [], {}
    by_nb: dict[str, int] = {}
    for f, d in docs:
        by_nb[d.get("notebook", f.stem)] = by_nb.get(d.get("notebook", f.stem), 0) + 1
    for f, d in docs:
        nb = d.get("notebook", f.stem)
        p = d.get("provenance") or {}
        prov[nb if by_nb[nb] == 1 else f"{nb}/seed{p.get('seed')}"] = p
        for dataset, recs in d["records"].items():
            dprov = (p.get("datasets") or {}).get(dataset) or {}
            for key, r in recs.items():
                rows.append(
                    {
                        "notebook": nb,
                        "dataset": dataset,
                        "key": key,
                        "value": r.get("value"),
                        "unit": r.get("unit", ""),
                        "tol": r.get("tol"),
                        "official": r.get("official"),
                        "note": r.get("note", ""),
                        "machine": bool(r.get("machine", False)),
                        "n": r.get("n"),
                        "seed": p.get("seed"),
                        "quick": p.get("quick"),
                        "md5": dprov.get("md5"),
                        "file": dprov.get("file"),
                    }
                )
    return rows, prov


def _matches(name: str, selection: str) -> bool:
    stem = Path(selection).stem
    return name == stem or name.startswith(stem + "_") or name.split("_")[0] == stem
