"""Provenance and result recording for the reproduce harness, and reading results back.

A notebook creates one :class:`Recorder` and records each key number through one call::

    rec = medlab.Recorder("01_baseline", datasets=[data], seed=seed, quick=quick)
    rec.record("smallcnn.test_auc", auc, dataset=data)
    rec.figure(fig, "learning_curves")           # shows the figure and saves it

Records go to ``$MEDLAB_OUTPUT_DIR/results/<notebook>.json`` (default ``./outputs``; ``medlab
reproduce`` points it at its run folder) together with their provenance: dataset file, md5,
whether it is the official file, seed, quick mode, package versions. ``medlab reproduce``
compares them with ``notebooks/expected_results.yaml``; :func:`load` reads them back as a table.

Each save also records the SHA-256 of the exact bytes written in ``results/MANIFEST.sha256``
(``sha256sum`` format, ``<sha256>  <file name>`` per line, rewritten atomically), so that
:mod:`medlab.audit` can tell a results file edited after it was recorded (:func:`read_digests`).
Notebook and figure names become file names: they must match :data:`NAME_RE` (no folders).

Record keys follow one scheme, ``<subject>.<metric>[.<condition>]``: at least two dot-separated
lowercase segments, each ``[a-z0-9][a-z0-9_+-]*``, optionally followed by ``[<source dataset>]``,
e.g. ``smallcnn.test_auc``, ``share5.baseline.tpr_gap``, ``transfer[breastmnist].test_auc.k10``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import numbers
import os
import platform
import re
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medlab.data import MedMNISTData

__all__ = [
    "Recorder",
    "provenance",
    "package_versions",
    "output_dir",
    "check_key",
    "check_name",
    "check_doc",
    "read_doc",
    "read_digests",
    "load",
    "latest_run",
    "run_state",
    "is_complete",
    "last_complete_run",
    "RUN_FILE",
    "KEY_SCHEME",
    "MANIFEST",
    "NAME_RE",
    "PACKAGES",
]

PACKAGES = (
    "medlab",
    "torch",
    "torchvision",
    "numpy",
    "scikit-learn",
    "medmnist",
    "fairlearn",
    "opacus",
    "shap",
    "captum",
    "lime",
    "plotly",
    "papermill",
)
#: Distribution names that differ from the name a result's provenance shows: medlab is installed
#: as ``medlab-edu`` ("medlab" on PyPI is an unrelated project).
DISTRIBUTIONS = {"medlab": "medlab-edu"}

_SEGMENT = r"[a-z0-9][a-z0-9_+\-]*(?:\[[a-z0-9][a-z0-9_+\-]*\])?"
KEY_RE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})+")
KEY_SCHEME = (
    "<subject>.<metric>[.<condition>]: at least two dot-separated lowercase segments, each "
    "[a-z0-9][a-z0-9_+-]* optionally followed by [<source dataset>], e.g. 'smallcnn.test_auc', "
    "'share5.baseline.tpr_gap', 'transfer[breastmnist].test_auc.k10'"
)
#: Notebook and figure names (they become file names): no folders, no leading dot.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]*")
#: The digests of a results folder's files, written by :meth:`Recorder.save`.
MANIFEST = "MANIFEST.sha256"
_DIGEST_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")
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
    "seed",
    "quick",
    "md5",
    "file",
]


def output_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$MEDLAB_OUTPUT_DIR``, else ``./outputs``."""
    return Path(path or os.environ.get("MEDLAB_OUTPUT_DIR") or "outputs").expanduser()


def check_key(key: Any) -> str:
    """``key`` if it follows the record-key scheme (:data:`KEY_SCHEME`), else an error."""
    if not isinstance(key, str):
        raise TypeError(f"record key must be a string, got {type(key).__name__} {key!r}")
    if not key:
        raise ValueError(f"record key is empty; keys follow {KEY_SCHEME}")
    if not KEY_RE.fullmatch(key):
        raise ValueError(f"record key {key!r} does not follow the key scheme {KEY_SCHEME}")
    return key


def check_name(name: Any, *, what: str = "notebook name") -> str:
    """``name`` if it can be a file name inside its folder (:data:`NAME_RE`, at most 100
    characters), else a ValueError naming the fix."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__} {name!r}")
    if len(name) > 100 or not NAME_RE.fullmatch(name):
        raise ValueError(
            f"{what} {name!r} cannot be a file name: use letters, digits, '_', '.', '+' and "
            "'-' only, starting with a letter or digit (no folders, at most 100 characters), "
            "e.g. '03_bias'"
        )
    return name


def _inside(folder: Path, name: str, what: str) -> Path:
    """``folder / name``, checked to stay inside ``folder`` once resolved."""
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(
            f"{what} {name!r} leads outside {folder}; use a plain name such as '03_bias'"
        )
    return path


def _as_number(key: str, value: Any) -> float:
    """A finite Python float from a number, numpy scalar or 0-d array/tensor (not a bool)."""
    what = "a number (int, float, numpy scalar, 0-d array or 0-d tensor)"
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise ValueError(
                f"record({key!r}): value must be {what}, got a tensor of shape "
                f"{tuple(value.shape)}; reduce it first (e.g. .mean())"
            )
        value = value.item()
    elif isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise ValueError(
                f"record({key!r}): value must be {what}, got an array of shape "
                f"{value.shape}; reduce it first (e.g. .mean())"
            )
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"record({key!r}): value must be {what}, got {type(value).__name__} {value!r}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"record({key!r}): value must be finite, got {value}")
    return value


@cache
def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages whose behaviour the results depend on."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(DISTRIBUTIONS.get(name, name))
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@cache
def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return res.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(
    datasets: list[MedMNISTData] | None = None,
    *,
    seed: int | None = None,
    quick: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Where a number came from: datasets (file, md5, official?), seed, mode, software, machine."""
    return {
        "datasets": {d.name: dict(d.provenance) for d in (datasets or [])},
        "seed": seed,
        "quick": quick,
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
        "utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }


class Recorder:
    """Collects a notebook's key numbers and figures, with provenance, on disk.

    Args:
        notebook: notebook id (default ``$MEDLAB_NOTEBOOK``, set by ``medlab reproduce``).
        datasets: the datasets the numbers are computed on.
        seed, quick: the notebook's parameters.
        output: output folder (default ``$MEDLAB_OUTPUT_DIR`` or ``./outputs``).
    """

    def __init__(
        self,
        notebook: str | None = None,
        *,
        datasets: list[MedMNISTData] | None = None,
        seed: int | None = None,
        quick: bool | None = None,
        output: str | os.PathLike[str] | None = None,
        **params: Any,
    ) -> None:
        if notebook is not None:
            check_name(notebook)
        elif os.environ.get("MEDLAB_NOTEBOOK"):
            check_name(os.environ["MEDLAB_NOTEBOOK"], what="$MEDLAB_NOTEBOOK")
        self.notebook = notebook or os.environ.get("MEDLAB_NOTEBOOK") or "interactive"
        self.output = output_dir(output)
        for folder in (self.output, self.output / "results"):
            if folder.exists() and not folder.is_dir():
                raise ValueError(
                    f"output {folder} is a file, not a folder: pass a folder for the results "
                    "(e.g. outputs), or move the file away"
                )
        self.datasets = {d.name: d for d in (datasets or [])}
        self.seed, self.quick, self.params = seed, quick, params
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.figures: list[str] = []
        self.path = _inside(self.output / "results", f"{self.notebook}.json", "notebook name")

    def add_dataset(self, data: MedMNISTData) -> None:
        self.datasets[data.name] = data

    def record(
        self,
        key: str,
        value: float,
        *,
        dataset: MedMNISTData | str | None = None,
        unit: str = "",
        tol: float | None = None,
        note: str = "",
        machine: bool = False,
    ) -> float:
        """Record one finite number under ``key`` for ``dataset``; returns it as a float.

        ``key`` follows :data:`KEY_SCHEME`. ``value``: int, float, numpy scalar or 0-d
        array/tensor (not a bool). ``tol`` is the author's hint for the reproduction tolerance
        (absolute; ``medlab reproduce --update-expected`` uses it as the floor of the tolerance
        it derives from the spread over seeds); ``note`` explains the number (it becomes the
        ``reason`` of a wide AUC/accuracy tolerance); ``unit`` is shown in the table.
        ``machine=True`` marks a measurement of this machine rather than a result of the lesson
        (a latency, a time: the same code is 2-5x faster on another CPU): ``medlab reproduce``
        shows it as ``measured`` and neither compares it nor writes an expected value for it;
        ``tol`` must then be None.
        """
        check_key(key)
        value = _as_number(key, value)
        if tol is not None:
            if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
                raise TypeError(f"record({key!r}): tol must be a number or None, got {tol!r}")
            tol = float(tol)
            if not math.isfinite(tol) or tol < 0:
                raise ValueError(f"record({key!r}): tol must be finite and >= 0, got {tol}")
        if not isinstance(machine, bool):
            raise TypeError(f"record({key!r}): machine must be True or False, got {machine!r}")
        if machine and tol is not None:
            raise ValueError(
                f"record({key!r}): a machine measurement is not compared, so it takes no tol; "
                "drop tol= (or machine=True if the number should reproduce)"
            )
        if not isinstance(unit, str) or not isinstance(note, str):
            raise TypeError(f"record({key!r}): unit and note must be strings")
        if dataset is None:
            if len(self.datasets) != 1:
                raise ValueError(
                    f"record({key!r}): say which dataset (dataset=...); this "
                    f"recorder has {sorted(self.datasets) or 'none'}"
                )
            dataset = next(iter(self.datasets.values()))
        if isinstance(dataset, MedMNISTData):
            self.add_dataset(dataset)
            name = dataset.name
        else:
            name = str(dataset)
            if name not in self.datasets:
                raise ValueError(
                    f"record({key!r}): unknown dataset {name!r}; pass the "
                    "MedMNISTData object so its provenance is recorded"
                )
        self.records.setdefault(name, {})[key] = {
            "value": value,
            "unit": unit,
            "tol": tol,
            "note": note,
            "official": bool(self.datasets[name].provenance.get("official")),
            **({"machine": True} if machine else {}),
        }
        self.save()
        return value

    def figure(self, fig: Any, name: str) -> Any:
        """Save a plotly figure as standalone HTML under ``figures/<notebook>/`` and return it
        (so a notebook cell ending with ``rec.figure(fig, "x")`` also displays it)."""
        check_name(name, what="figure name")
        folder = _inside(self.output / "figures", self.notebook, "notebook name")
        path = _inside(folder, f"{name}.html", "figure name")
        folder.mkdir(parents=True, exist_ok=True)
        fig.write_html(path, include_plotlyjs="directory", full_html=True)
        self.figures.append(str(path))
        self.save()
        return fig

    def as_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "provenance": provenance(
                list(self.datasets.values()), seed=self.seed, quick=self.quick, params=self.params
            ),
            "records": self.records,
            "figures": self.figures,
        }

    def save(self) -> Path:
        """Write ``results/<notebook>.json`` and its SHA-256 in ``results/MANIFEST.sha256``
        (each file replaced atomically)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = json.dumps(self.as_dict(), indent=2, default=str).encode("utf-8")
        _write_atomic(self.path, raw)
        digests = read_digests(self.path.parent)
        digests[self.path.name] = hashlib.sha256(raw).hexdigest()
        lines = "".join(f"{d}  {n}\n" for n, d in sorted(digests.items()))
        _write_atomic(self.path.parent / MANIFEST, lines.encode("utf-8"))
        return self.path

    def table(self) -> Any:
        """The records as a pandas DataFrame (dataset, key, value, unit, official)."""
        import pandas as pd

        rows = [
            {
                "dataset": d,
                "key": k,
                "value": r["value"],
                "unit": r["unit"],
                "official data": r["official"],
            }
            for d, recs in self.records.items()
            for k, r in recs.items()
        ]
        return pd.DataFrame(rows)


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


# --------------------------------------------------------------------------------------------
# reading results back


#: Each run folder's state: ``running`` from its first moment, then ``complete`` (whatever the
#: outcome: ``outcome`` passed/failed), ``interrupted`` (Ctrl-C) or ``aborted`` (an error).
RUN_FILE = "run.json"


def run_state(run: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What ``run/run.json`` says about a run folder (``status`` is ``running`` until the run
    ends, then ``complete``, ``interrupted`` or ``aborted``); None for a folder without one (a
    run written before runs were marked); ``{"status": "unreadable"}`` if it cannot be read."""
    path = Path(run) / RUN_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"status": "unreadable"}
    return (
        doc
        if isinstance(doc, dict) and isinstance(doc.get("status"), str)
        else {"status": "unreadable"}
    )


def is_complete(run: str | os.PathLike[str]) -> bool:
    """Whether a run folder finished (``run.json`` status ``complete``, whatever its outcome;
    a folder from before runs were marked counts as complete if it holds results)."""
    state = run_state(run)
    if state is None:  # an older run: complete if it recorded something
        run = Path(run)
        return (run / "results").is_dir() or any(run.glob("seed*/results"))
    return state["status"] == "complete"


def last_complete_run(out: str | os.PathLike[str]) -> Path | None:
    """The newest run folder in ``out/runs/`` that finished (:func:`is_complete`); None if
    there is none."""
    runs = sorted(
        (p for p in (Path(out) / "runs").glob("*") if p.is_dir() and not p.is_symlink()),
        reverse=True,
    )  # a link inside runs/ may lead anywhere: never followed
    return next((r for r in runs if is_complete(r)), None)


def latest_run(root: str | os.PathLike[str]) -> Path | None:
    """The newest complete run folder of an output folder: where ``latest`` (link) or
    ``latest.txt`` points, if that is a folder directly inside ``root/runs/`` that finished,
    else the newest complete run in ``runs/`` (:func:`medlab.reproduce.last_complete_run`);
    None if there is none. A pointer that leads anywhere else is not followed."""
    root = Path(root)
    runs = (root / "runs").resolve()
    pointers = []
    link = root / "latest"
    if link.is_symlink():
        pointers.append(link)
    txt = root / "latest.txt"
    if txt.is_file():
        try:
            pointers.append(Path(txt.read_text(encoding="utf-8").strip()))
        except (OSError, UnicodeDecodeError):
            pass
    for p in pointers:
        p = (p if p.is_absolute() else root / p).resolve()
        if p.parent == runs and p.is_dir() and is_complete(p):
            return p
    return last_complete_run(root)


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

    base = output_dir(path_or_run_dir)
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
                        "seed": p.get("seed"),
                        "quick": p.get("quick"),
                        "md5": dprov.get("md5"),
                        "file": dprov.get("file"),
                    }
                )
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["provenance"] = prov
    return df


def _matches(name: str, selection: str) -> bool:
    stem = Path(selection).stem
    return name == stem or name.startswith(stem + "_") or name.split("_")[0] == stem
