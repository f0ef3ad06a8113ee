"""Re-execute the curriculum headless and compare every recorded number with its expected value.

``medlab reproduce [--quick] [--seed N | --seeds N N N] [NOTEBOOK ...]`` first checks its inputs
(``-p`` parameters against each notebook's cell tagged ``parameters``, the data folder, the
expected-results file) and refuses bad ones (:class:`ReproduceError`; the command exits 2)
before anything runs or is written. It then executes
each notebook with papermill (cwd = the notebooks folder) into a new run folder::

    <output>/runs/<UTC time>-<quick|full>[-N]/   executed/ html/ figures/ results/ logs/
                                                 reproduce_<mode>.txt  reproduce_<mode>.csv
                                                 notebooks_<mode>.csv  index.html  run.json
    <output>/latest -> runs/<newest complete run>  (or latest.txt holding runs/<run>)
    <output>/cache/                                shared across runs ($MEDLAB_CACHE_DIR)

``run.json`` marks the run ``running`` (incomplete) from its first moment and ``complete`` (with
``outcome`` passed/failed) only at its end; Ctrl-C marks it ``interrupted`` (one line, exit status
130 from the command, :class:`RunInterrupted`), a full disk ``aborted`` (:class:`DiskFullError`).
``latest`` moves only to a complete run (:func:`run_state`, :func:`last_complete_run`). An output
folder that is read-only, a missing ``--expected`` file, a read-only ``--update-expected`` target,
a seed >= 2**31 and a ``--timeout`` below 1 s or not finite are refused before anything runs.

With several seeds each seed gets its own ``seed<k>/`` (executed/, results/, ...) in the run
folder. Nothing of an earlier run is deleted or overwritten. The kernels see
``MEDLAB_OUTPUT_DIR`` (where :class:`medlab.Recorder` writes), ``MEDLAB_RUN_DIR`` and
``MEDLAB_CACHE_DIR`` (``<output>/cache`` unless already set). Kernel noise goes to ``logs/``.
``index.html`` is the run's report page (:mod:`medlab.site`: the curriculum table with each
notebook's time and its kernel's peak memory, every number against its expected value, the
executed notebooks as HTML, the figures, the audit report), readable offline.

The terminal shows one line per notebook run, then one row per number: expected value and
tolerance, the value now and a status: ``reproduced``, ``DEVIATED``, ``MISSING`` (expected but
not recorded), ``new`` (no expected value), ``uninformative`` (within a tolerance so wide that it
covers every value the number can take, e.g. a TPR gap of 0.1 ± 1.3: shown, but the comparison
could not have failed; :func:`covers_range`) or ``measured`` (recorded with ``machine=True``: a
latency or a time, a property of this machine, shown but never compared), then a one-line
summary. The exit code is 0 only
if every notebook ran and recorded numbers and every number was compared and reproduced (or
``uninformative`` or ``measured``)
(``allow_new`` / ``--allow-new`` accepts numbers without expected values, e.g. a new notebook).

``--update-expected --seeds 0 10 20 30 40`` runs each notebook once per seed and writes, for the
sections it ran, the mean over seeds and a tolerance derived from their spread (:func:`derive`); it
refuses fewer than 3 seeds and stops, writing nothing, at the first failed notebook.

Expected values are kept apart by data origin (``official`` files vs ``unofficial`` copies such
as the shared CI data) and by mode (``quick`` / ``full``)::

    unofficial:
      quick:
        01_baseline:
          pneumoniamnist_balanced_subset:
            smallcnn.test_auc:
              value: 0.9512
              tol: 0.0358
              sd: 0.00709
              n_seeds: 5
              seeds: [0, 10, 20, 30, 40]
              derived: tol = 5.04*SD = 5.04*0.00709 over 5 seeds (99 % prediction interval) (above default floor 0.01), rounded up

Entries written before tolerances were derived (``{value, tol}`` only) still load, with a
warning. An AUC/accuracy key whose tolerance exceeds 0.1 needs a ``reason``.
"""

from __future__ import annotations

import ast
import csv
import datetime as _dt
import errno
import itertools
import json
import keyword
import logging
import math
import numbers
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import yaml

from medlab.monitor import KernelMonitor
from medlab.results import (
    RUN_FILE,
    _write_atomic,
    check_key,
    is_complete,
    last_complete_run,
    run_state,
)
from medlab.site import export_notebook_html, write_site

__all__ = [
    "find_notebooks",
    "notebook_parameters",
    "run_notebook",
    "load_expected",
    "check_expected",
    "compare",
    "derive",
    "update_expected",
    "format_table",
    "reproduce",
    "is_rate_key",
    "Row",
    "NotebookRun",
    "ReproduceError",
    "ExpectedFileError",
    "DiskFullError",
    "RunInterrupted",
    "run_state",
    "is_complete",
    "last_complete_run",
    "RUN_FILE",
]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = NOTEBOOKS / "expected_results.yaml"
ORIGINS = ("official", "unofficial")
MODES = ("quick", "full")
#: --update-expected seeds must be this far apart (notebooks use seed, seed + 1, ...).
SEED_GAP = 10
MIN_SEEDS = 3  # --update-expected measures the spread over at least this many seeds
TOL_FLOOR = 0.01  # tolerance floor when the notebook gives no hint (rec.record(..., tol=))
WIDE_TOL = 0.1  # an AUC/accuracy tolerance above this needs a reason
UNEXPLAINED = "UNEXPLAINED: spread over seeds is large"
#: Seeds go to NumPy and torch as seed, seed + 1, ... (up to 100 per notebook): below 2**32.
MAX_SEED = 2**31 - 1
MIN_TIMEOUT = 1.0  # --timeout: seconds per cell, at least this and finite
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
ENTRY_FIELDS = ("value", "tol", "sd", "n_seeds", "seeds", "derived", "reason")
FIX = (
    "Fix the entry by hand, or regenerate that section from real runs with `medlab reproduce "
    "--update-expected --seeds 0 10 20 30 40 [--quick] ...` (CONTRIBUTING.md, 'Expected results')"
)
HEADER = f"""\
# Expected values for `medlab reproduce`, written by
# `medlab reproduce --update-expected --seeds 0 10 20 30 40 [--quick] ...` from real runs (never
# typed in by hand; review the diff). Layout: <origin>/<mode>/<notebook>/<dataset>/<key>. origin:
# official = official MedMNIST files (md5 match), unofficial = other copies (e.g. the shared CI
# data); mode: quick or full. A number is reproduced when |now - value| <= tol.
# How each entry is derived, from one run per seed (n_seeds >= {MIN_SEEDS}):
#   value = mean over the seeds; sd = sample standard deviation over the seeds (ddof=1);
#   tol = max(k * sd, floor), k = t_0.995(n - 1) * sqrt(1 + 1/n) (a 99 % prediction interval for
#   one new run: 11.5 for 3 seeds, 5.04 for 5; a rerun on another CPU is such a new run), floor =
#   the notebook author's hint (rec.record(..., tol=)) or {TOL_FLOOR}; when sd == 0 (exact numbers
#   such as image counts) tol = the hint, else 0; tol is rounded up to 3 significant digits.
#   `derived` says which term set tol.
#   An AUC/accuracy key (a segment containing auc/acc) with tol > {WIDE_TOL} needs a `reason`,
#   taken from the record's note; "{UNEXPLAINED}" marks one to investigate.
"""
_NOISY_LOGGERS = (
    "papermill",
    "traitlets",
    "jupyter_client",
    "nbclient",
    "nbconvert",
    "asyncio",
    "tornado",
)


class ReproduceError(ValueError):
    """A rejected ``medlab reproduce`` request (bad input); nothing was run or written (except
    for :class:`DiskFullError`, whose partial run is marked)."""


class ExpectedFileError(ReproduceError):
    """The expected-results file is unreadable or malformed."""


class DiskFullError(ReproduceError):
    """The disk filled up during a run; the partial run folder is marked incomplete."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``str()`` is the one line to show (the run is marked
    ``interrupted`` and ``latest`` did not move)."""


@dataclass
class NotebookRun:
    """Outcome of executing one notebook (once, with one seed)."""

    notebook: str
    ok: bool
    seconds: float
    executed: Path
    error: str = ""
    seed: int | None = None
    log: Path | None = None
    peak_mb: float | None = None  # the kernel's peak resident memory (MB), if measured


@dataclass
class Row:
    """One recorded number compared with its expected value (``value`` None: MISSING)."""

    notebook: str
    dataset: str
    key: str
    value: float | None
    origin: str  # "official" / "unofficial"
    expected: float | None = None
    tol: float | None = None
    status: str = "new"
    unit: str = ""
    seed: int | None = None
    hint: float | None = None  # the author's tolerance hint
    note: str = ""
    machine: bool = False  # a measurement of this machine (status "measured"), not compared


# --------------------------------------------------------------------------------------------
# notebooks


def find_notebooks(selection: list[str] | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """Numbered notebooks (``NN_*.ipynb``) in order; ``selection`` filters by stem or prefix
    (``"01"``, ``"01_baseline"`` or a path)."""
    all_nb = sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not all_nb:
        raise ReproduceError(f"no numbered notebooks (NN_*.ipynb) in {folder}")
    if not selection:
        return all_nb
    chosen: list[Path] = []
    for s in selection:
        stem = Path(s).stem
        hits = [
            p
            for p in all_nb
            if p.stem == stem or p.stem.startswith(stem + "_") or p.stem.split("_")[0] == stem
        ]
        if not hits:
            raise ReproduceError(
                f"no notebook matches {s!r}; available: {', '.join(p.stem for p in all_nb)}"
            )
        chosen += [h for h in hits if h not in chosen]
    return chosen


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Names and default values assigned in the notebook's cell tagged ``parameters`` (a
    default that is not a literal is given as its source text)."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # any unreadable notebook is the same user error
        raise ReproduceError(f"{path} is not a readable notebook ({exc})") from None
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ReproduceError(
            f"{path.name} has no cell tagged 'parameters', so it takes no "
            "parameters; tag the code cell that assigns them 'parameters' (CONTRIBUTING.md, "
            "notebook rule 1)"
        )
    try:
        tree = ast.parse(cells[0].source)
    except SyntaxError:
        from papermill.inspection import inspect_notebook

        return {k: v.get("default") for k, v in inspect_notebook(str(path)).items()}
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for t in targets:
            if isinstance(t, ast.Name):
                try:
                    out[t.id] = ast.literal_eval(value)
                except ValueError:
                    out[t.id] = ast.unparse(value)
    return out


@contextmanager
def _quiet(log: Path | None, *, fds: bool = True) -> Iterator[None]:
    """Silence the jupyter stack: its loggers, Python warnings and (``fds``) everything the kernel
    process writes to stdout/stderr, which goes to ``log`` instead of the terminal."""
    loggers = [logging.getLogger(n) for n in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    saved: list[tuple[int, int]] = []
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    sink = open(log if log is not None else os.devnull, "ab")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fds:
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()
                for fd in (1, 2):
                    try:
                        saved.append((fd, os.dup(fd)))
                        os.dup2(sink.fileno(), fd)
                    except OSError:
                        pass
            yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        sink.close()
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


def _kernel_manager(path: Path, started: list[Any]) -> type:
    """A kernel manager class that writes the kernel's connection file to ``path``
    (a private temporary folder, not the shared temp folder) and lists its instances in
    ``started`` so that their kernels can be stopped whatever happens."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Unicode

    class _Manager(AsyncKernelManager):
        connection_file = Unicode(str(path))

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            started.append(self)

    return _Manager


def _stop_kernels(managers: list[Any]) -> None:
    """Kill any kernel (and its process group) still running, e.g. after Ctrl-C."""
    for km in managers:
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is None or proc.poll() is not None:
            continue
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the kernel leads its own session
        except OSError:
            proc.kill()
        try:
            proc.wait(timeout=10)
        except Exception:  # pragma: no cover - a zombie we cannot reap
            pass


def run_notebook(
    path: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> NotebookRun:
    """Execute one notebook with papermill (cwd = its folder) into ``output/executed/``, with
    ``MEDLAB_OUTPUT_DIR=output`` and ``env`` set for the kernel; kernel output goes to ``log``.
    Never raises on cell errors: the returned run names the failing cell. Raises on Ctrl-C
    (KeyboardInterrupt) and on a full disk (OSError), after stopping the kernel.

    The kernel's connection file (its ports and key) lives in a private temporary folder and is
    deleted as soon as the kernel is up, and again whatever happens; the kernel is stopped."""
    import papermill as pm

    executed = output / "executed" / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        "MEDLAB_OUTPUT_DIR": str(output.resolve()),
        "MEDLAB_NOTEBOOK": path.stem,
        "MEDLAB_QUIET": "1",
        **(env or {}),
    }
    backup = {k: os.environ.get(k) for k in settings}
    private = Path(tempfile.mkdtemp(prefix="medlab-kernel-"))
    managers: list[Any] = []

    def kernel_ready(**_: Any) -> None:  # the kernel has read its connection file
        shutil.rmtree(private, ignore_errors=True)

    os.environ.update(settings)
    t0 = time.perf_counter()
    try:
        with _quiet(log):
            pm.execute_notebook(
                str(path),
                str(executed),
                parameters=parameters,
                cwd=str(path.parent),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                execution_timeout=timeout,
                kernel_manager_class=_kernel_manager(private / "kernel.json", managers),
                on_notebook_start=kernel_ready,
            )
        return NotebookRun(path.stem, True, time.perf_counter() - t0, executed, log=log)
    except pm.PapermillExecutionError as exc:
        where = f"cell {exc.cell_index} (execution count {exc.exec_count})"
        msg = f"{where}: {exc.ename}: {_one_line(exc.evalue)}"
        return NotebookRun(path.stem, False, time.perf_counter() - t0, executed, msg, log=log)
    except Exception as exc:  # kernel died, missing kernel, timeout, ...
        if _no_space(exc):
            raise
        return NotebookRun(
            path.stem,
            False,
            time.perf_counter() - t0,
            executed,
            f"{type(exc).__name__}: {_one_line(exc)}",
            log=log,
        )
    finally:
        _stop_kernels(managers)
        shutil.rmtree(private, ignore_errors=True)
        for k, v in backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --------------------------------------------------------------------------------------------
# expected values


def is_rate_key(key: str) -> bool:
    """Whether ``key`` names an AUC or accuracy (a segment with a word starting ``auc``/``acc``)."""
    return any(re.search(r"(?:^|_)(?:auc|acc)", seg.split("[")[0]) for seg in key.split("."))


def key_range(key: str) -> tuple[float, float] | None:
    """The range a recorded number can take, read off its key: ``(0, 1)`` for an AUC or
    accuracy (:func:`is_rate_key`), ``(-1, 1)`` for a gap or difference between groups or
    variants (a segment with a word ``gap``, ``eod`` or ``diff``: signed, or absolute as
    fairlearn's equalized-odds difference), else None (counts, times, ratios: unbounded)."""
    if any(re.search(r"(?:^|_)(?:gap|eod|diff)", seg.split("[")[0]) for seg in key.split(".")):
        return (-1.0, 1.0)  # also an AUC gap ("auc_gap")
    return (0.0, 1.0) if is_rate_key(key) else None


def covers_range(key: str, value: float, tol: float) -> bool:
    """Whether ``value ± tol`` covers the whole range ``key`` can take (:func:`key_range`):
    then no result can deviate and the comparison checks nothing. A number whose seed spread is
    that wide (a TPR gap over a handful of minority-group patients) is reported
    ``uninformative``, not ``reproduced``."""
    bounds = key_range(key)
    return bool(bounds) and value - tol <= bounds[0] < bounds[1] <= value + tol


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _check_entry(
    entry: Any, key: str, fail: Any, *, strict: bool = True
) -> tuple[bool, bool, bool]:
    """Validate one ``{value, tol, ...}`` entry; returns (legacy, unexplained, unjustified);
    ``strict``: an unjustified wide AUC/accuracy tolerance is an error, not just reported."""
    if not isinstance(entry, dict):
        fail(f"must be a mapping such as {{value: 0.95, tol: 0.03}}, got {entry!r}")
    unknown = sorted(set(entry) - set(ENTRY_FIELDS), key=str)
    if unknown:
        fail(f"unknown field(s) {', '.join(map(str, unknown))}; allowed: {', '.join(ENTRY_FIELDS)}")
    for name in ("value", "tol"):
        if name not in entry:
            fail(f"lacks `{name}`")
        if not _is_number(entry[name]):
            tip = (
                "; write numbers like 0.001 or 1.0e-03 (YAML reads 1e-3 as text)"
                if isinstance(entry[name], str)
                else ""
            )
            fail(f"`{name}` must be a finite number, got {entry[name]!r}{tip}")
    if entry["tol"] < 0:
        fail(f"`tol` must be >= 0, got {entry['tol']}")
    if "sd" in entry and (not _is_number(entry["sd"]) or entry["sd"] < 0):
        fail(f"`sd` must be a number >= 0, got {entry['sd']!r}")
    n = entry.get("n_seeds", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        fail(f"`n_seeds` must be a positive integer, got {n!r}")
    seeds = entry.get("seeds", [])
    if not isinstance(seeds, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
    ):
        fail(f"`seeds` must be a list of non-negative integers, got {seeds!r}")
    for name in ("derived", "reason"):
        if name in entry and (not isinstance(entry[name], str) or not entry[name].strip()):
            fail(f"`{name}` must be a non-empty string, got {entry[name]!r}")
    reason = entry.get("reason", "")
    unjustified = entry["tol"] > WIDE_TOL and is_rate_key(key) and not reason
    if unjustified and strict:
        fail(
            f"tol {entry['tol']} > {WIDE_TOL} on an AUC/accuracy key checks almost nothing "
            "and needs a `reason:` saying why the number varies this much (the record's note)"
        )
    return "derived" not in entry, reason.startswith("UNEXPLAINED"), unjustified


def check_expected(
    tree: Any, source: str = "expected results", *, strict: bool = True
) -> list[str]:
    """Validate an expected-results tree; raises :class:`ExpectedFileError` naming ``source``,
    the entry and the fix. Returns warnings (legacy entries without derivation, unexplained
    wide tolerances). ``strict=False`` (used while regenerating) only warns about a wide
    AUC/accuracy tolerance without a reason."""

    def fail_at(where: str) -> Any:
        def fail(problem: str) -> None:
            raise ExpectedFileError(f"{source}: {where}: {problem}. {FIX}")

        return fail

    if tree is None:
        return []
    if not isinstance(tree, dict):
        fail_at("top level")(
            f"must map data origin ({' / '.join(ORIGINS)}) to modes, got {type(tree).__name__}"
        )
    legacy, unexplained, unjustified = 0, [], []
    for origin, modes in tree.items():
        if origin not in ORIGINS:
            fail_at(f"{origin!r}")(f"unknown data origin; use {' or '.join(ORIGINS)}")
        for mode, nbs in _mapping(modes, origin, fail_at).items():
            if mode not in MODES:
                fail_at(f"{origin} > {mode!r}")(f"unknown mode; use {' or '.join(MODES)}")
            for nb, dsets in _mapping(nbs, f"{origin} > {mode}", fail_at).items():
                for ds, keys in _mapping(dsets, f"{origin} > {mode} > {nb}", fail_at).items():
                    for key, entry in _mapping(
                        keys, f"{origin} > {mode} > {nb} > {ds}", fail_at
                    ).items():
                        where = f"{origin} > {mode} > {nb} > {ds} > {key}"
                        try:
                            check_key(key)
                        except (TypeError, ValueError) as exc:
                            fail_at(where)(str(exc))
                        old, unexp, unjust = _check_entry(entry, key, fail_at(where), strict=strict)
                        legacy += old
                        if unexp:
                            unexplained.append(where)
                        if unjust:
                            unjustified.append(where)
    out = []
    if legacy:
        out.append(
            f"{legacy} expected value(s) in {source} have no `derived` field (written "
            f"before tolerances were measured over >= {MIN_SEEDS} seeds); regenerate "
            "them with `medlab reproduce --update-expected --seeds 0 10 20 30 40 ...`"
        )
    if unexplained:
        out.append(
            f"{len(unexplained)} expected value(s) in {source} have a wide tolerance "
            f"marked UNEXPLAINED, e.g. {unexplained[0]}"
        )
    if unjustified:
        out.append(
            f"{len(unjustified)} expected value(s) in {source} have a tolerance > "
            f"{WIDE_TOL} on an AUC/accuracy key without a `reason`, e.g. {unjustified[0]}; "
            "regenerate those sections with --update-expected --seeds 0 10 20 30 40"
        )
    return out


def _mapping(node: Any, where: str, fail_at: Any) -> dict[Any, Any]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        fail_at(where)(f"must be a mapping, got {type(node).__name__} {node!r}")
    for k in node:
        if not isinstance(k, str):
            fail_at(where)(f"name {k!r} must be a string")
    return node


def _read_expected(path: Path, *, strict: bool = True) -> tuple[dict[str, Any], list[str]]:
    if not path.exists():
        return {}, []
    if not path.is_file():
        raise ExpectedFileError(f"{path} is not a file; pass the expected-results YAML file")
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ExpectedFileError(
            f"{path} is not valid YAML{where} ({_one_line(problem)}). {FIX}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExpectedFileError(f"{path} cannot be read ({exc})") from None
    notes = check_expected(tree, str(path), strict=strict)
    return tree or {}, notes


def load_expected(path: str | os.PathLike[str] = EXPECTED) -> dict[str, Any]:
    """The validated expected-results tree (``{}`` if the file does not exist); raises
    :class:`ExpectedFileError` on bad YAML or a malformed entry."""
    return _read_expected(Path(path))[0]


def _node(tree: dict[str, Any], *names: str) -> dict[str, Any]:
    for n in names:
        tree = (tree or {}).get(n) or {}
    return tree


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
            exp = _node(expected, origin, mode, nb, dataset).get(key)
            if row.machine:  # this machine's speed: shown, never compared with another's
                row.status = "measured"
            elif exp is not None:
                row.expected, row.tol = float(exp["value"]), float(exp["tol"])
                slack = 1e-9 * max(1.0, abs(row.expected))
                ok = abs(row.value - row.expected) <= row.tol + slack
                if not ok:
                    row.status = "DEVIATED"
                elif covers_range(key, row.expected, row.tol):
                    row.status = "uninformative"
                else:
                    row.status = "reproduced"
            rows.append(row)
    # a dataset the notebook only used (e.g. 02's pretraining source) is not checked for missing
    # keys: its expected section belongs to runs on that dataset
    for dataset, origin in origins.items():
        recorded = results["records"].get(dataset) or {}
        if not recorded:
            continue
        for key, exp in sorted(_node(expected, origin, mode, nb, dataset).items()):
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


def _round_up(x: float, digits: int = 3) -> float:
    if x <= 0:
        return 0.0
    d = Decimal(f"{x:.12g}")  # drop float noise first: 3 * 0.01 must stay 0.03
    q = Decimal(1).scaleb(d.adjusted() - digits + 1)
    return float((d / q).to_integral_value(rounding=ROUND_CEILING) * q)


def prediction_factor(n: int) -> float:
    """k such that ``mean ± k * SD`` over ``n`` seeds is a 99 % prediction interval for one new
    run (Student t, n - 1 degrees of freedom): ``t_0.995(n - 1) * sqrt(1 + 1/n)``. 11.5 for 3
    seeds, 5.04 for 5, 3.71 for 8, tending to 2.58. A reproduction on another machine is such a
    new run: the same seed on another CPU rounds differently, and a small training amplifies that
    into seed-sized differences."""
    from scipy.stats import t

    if n < 2:
        raise ValueError(f"a prediction interval needs >= 2 values, got {n}")
    return float(t.ppf(0.995, n - 1) * math.sqrt(1 + 1 / n))


def derive(values: list[float], *, hint: float | None = None) -> dict[str, Any]:
    """Expected entry from one value per seed: ``value`` (mean), ``tol`` = max(k SD, floor) with
    k = :func:`prediction_factor` (n) (floor = ``hint`` or 0.01; SD 0 gives ``hint`` or 0), ``sd``
    (ddof=1), ``n_seeds`` and a one-line ``derived`` saying which term set the tolerance."""
    n = len(values)
    if n < MIN_SEEDS:
        raise ValueError(f"need values from at least {MIN_SEEDS} seeds, got {n}")
    if all(v == values[0] for v in values):
        mean, sd = float(values[0]), 0.0
    else:
        mean, sd = statistics.fmean(values), statistics.stdev(values)
    k = prediction_factor(n)
    if sd == 0:
        tol = float(hint or 0.0)
        how = f"SD 0 over {n} seeds (exact); tol = " + (f"author's hint {hint:g}" if hint else "0")
    else:
        floor, src = (
            (float(hint), "author's hint") if hint is not None else (TOL_FLOOR, "default floor")
        )
        term = f"{k:.3g}*SD = {k:.3g}*{sd:.3g} over {n} seeds (99 % prediction interval)"
        if k * sd >= floor:
            tol, how = k * sd, f"tol = {term} (above {src} {floor:g})"
        else:
            tol, how = floor, f"tol = {src} {floor:g} (above {term})"
    tol = _round_up(tol, 3)
    short = float(f"{mean:.6g}")
    value = short if abs(short - mean) <= tol / 100 else mean
    return {
        "value": value,
        "tol": tol,
        "sd": float(f"{sd:.3g}"),
        "n_seeds": n,
        "derived": how + ("" if sd == 0 else ", rounded up"),
    }


class _Dumper(yaml.SafeDumper):
    pass


def _list_flow(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(list, _list_flow)


def _sorted_tree(tree: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    if depth == 5:  # an entry: fields in their documented order
        return {k: tree[k] for k in ENTRY_FIELDS if k in tree}
    return {
        k: _sorted_tree(v, depth + 1) if isinstance(v, dict) else v for k, v in sorted(tree.items())
    }


def update_expected(
    rows: list[Row], mode: str, *, path: str | os.PathLike[str] = EXPECTED
) -> list[str]:
    """Write the entries derived from ``rows`` (one per seed, >= 3 seeds) into the expected file,
    replacing the sections (origin, mode, notebook, dataset) they come from and keeping all
    others (so one dataset can be regenerated without touching another's values).
    Returns warnings (wide AUC/accuracy tolerances without a note)."""
    path = Path(path)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    groups: dict[tuple[str, str, str, str], list[Row]] = {}
    nb_seeds: dict[tuple[str, str], set[Any]] = {}
    for r in rows:
        if r.value is None or r.machine:
            continue
        groups.setdefault((r.origin, r.notebook, r.dataset, r.key), []).append(r)
        nb_seeds.setdefault((r.origin, r.notebook), set()).add(r.seed)
    tree, _ = _read_expected(path, strict=False)
    sections: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    notes = []
    for (origin, nb, dataset, key), rs in sorted(groups.items()):
        seeds = sorted({r.seed for r in rs}, key=str)
        if None in seeds or len(seeds) != len(rs):
            raise ReproduceError(
                f"{nb} {dataset} {key}: each value needs its own seed, got "
                f"seeds {[r.seed for r in rs]}"
            )
        if len(seeds) < MIN_SEEDS:
            raise ReproduceError(
                f"{nb} {dataset} {key}: recorded for seeds {seeds}; deriving a "
                f"tolerance needs >= {MIN_SEEDS} seeds (--seeds 0 10 20 30 40)"
            )
        if set(seeds) != nb_seeds[origin, nb]:
            raise ReproduceError(
                f"{nb} {dataset} {key}: recorded for seeds {seeds} but the "
                f"notebook ran with seeds {sorted(nb_seeds[origin, nb])}; a key "
                "must be recorded by every seed"
            )
        hint = next((r.hint for r in rs if r.hint is not None), None)
        entry = derive([r.value for r in rs], hint=hint)
        entry["seeds"] = seeds
        if entry["tol"] > WIDE_TOL and is_rate_key(key):
            note = next((r.note for r in rs if r.note and r.note.strip()), "")
            entry["reason"] = _one_line(note) if note else UNEXPLAINED
            if not note:
                notes.append(
                    f"{nb} {dataset} {key}: tol {entry['tol']:g} > {WIDE_TOL} (SD "
                    f"{entry['sd']:g} over seeds {seeds}) and the notebook gives no note "
                    f"explaining it; marked UNEXPLAINED in {path.name}"
                )
        bounds = key_range(key)
        if bounds and covers_range(key, entry["value"], entry["tol"]):
            notes.append(
                f"{nb} {dataset} {key}: {entry['value']:.3g} ± {entry['tol']:.3g} covers the "
                f"whole {bounds[0]:g} to {bounds[1]:g} range, so this comparison cannot fail; "
                f"more seeds than {len(seeds)} narrow it (k falls from 11.5 with 3 seeds to 5.04 "
                "with 5)"
            )
        sections.setdefault((origin, nb), {}).setdefault(dataset, {})[key] = entry
    for (origin, nb), section in sections.items():
        if not isinstance(tree.get(origin), dict):
            tree[origin] = {}
        if not isinstance(tree[origin].get(mode), dict):
            tree[origin][mode] = {}
        if not isinstance(tree[origin][mode].get(nb), dict):
            tree[origin][mode][nb] = {}
        tree[origin][mode][nb].update(section)  # per dataset: other datasets' entries stay
    text = HEADER + yaml.dump(
        _sorted_tree(tree), Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True
    )
    # never write what cannot be read back; report unjustified tolerances left in other sections
    for w in check_expected(yaml.safe_load(text), str(path), strict=False):
        if "without a `reason`" in w:
            notes.append(w)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return notes


# --------------------------------------------------------------------------------------------
# reporting


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


def _write_csv(rows: list[Row], path: Path) -> None:
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


def _export_html(executed: Path, folder: Path, log: Path | None) -> str:
    """HTML copy of an executed notebook; returns an error text ('' if it worked)."""
    try:
        with _quiet(log, fds=False):
            export_notebook_html(executed, folder)  # offline: no CDN scripts
        return ""
    except Exception as exc:  # a failed export must not hide the results
        if _no_space(exc):
            raise
        return f"HTML export failed: {_one_line(exc, 200)}"


# --------------------------------------------------------------------------------------------
# the command


def _check_seed(value: Any, what: str) -> int:
    """A seed the notebooks can use: NumPy and torch get seed, seed + 1, ... (< 2**32)."""
    from medlab.utils import check_scalar

    return check_scalar(
        what,
        value,
        kind=int,
        lo=0,
        hi=MAX_SEED,
        fix="pass a non-negative integer seed below 2**31 (notebooks seed NumPy and torch with "
        "seed, seed + 1, ...), e.g. --seed 0",
        error=ReproduceError,
    )


def _resolve(path: Any, what: str) -> Path:
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise ReproduceError(f"{what} must be a folder path, got {path!r}")
    p = Path(path).expanduser()
    return (p if p.is_absolute() else Path.cwd() / p).resolve()


def _check_output(output: Any) -> Path:
    try:
        out = _resolve(output, "--output")
        existing = [p for p in (out, *out.parents) if p.exists()]
    except OSError as exc:
        raise ReproduceError(
            f"--output {output}: cannot reach it ({exc.strerror or exc}); pass a folder you "
            "can write to, e.g. --output ~/medlab-outputs"
        ) from None
    if existing and not existing[0].is_dir():
        raise ReproduceError(
            f"--output {output}: {existing[0]} is a file, not a folder; pass a "
            "folder (it is created if missing), e.g. --output outputs"
        )
    return out


def _plan(
    selection: list[str] | None,
    *,
    quick: bool,
    output: Any,
    data_dir: Any,
    seed: Any,
    seeds: Any,
    parameters: dict[str, Any] | None,
    update: bool,
    folder: Path,
) -> tuple[Path, dict[str, Any], list[int | None], list[Path], dict[Path, dict[str, Any]]]:
    """Check every input before anything runs; returns (output folder, base parameters, seeds,
    notebooks, their parameters)."""
    if not isinstance(quick, bool):
        raise ReproduceError(f"quick must be True or False, got {quick!r}")
    out = _check_output(output)
    params = dict(parameters or {})
    for name in params:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ReproduceError(
                f"parameter name {name!r} is not a Python name; use -p "
                "NAME=VALUE with NAME one of the notebook's parameters"
            )
    if "quick" in params:
        q = params.pop("quick")
        flag = "--quick" if quick else "no --quick (full mode)"
        if q is not quick:
            shown = str(q).lower() if isinstance(q, bool) else repr(q)
            raise ReproduceError(
                f"-p quick={shown} contradicts {flag}: the mode is set by --quick alone, and "
                f"expected values are filed under it. Drop -p quick=...; use --quick for quick "
                "mode, leave it out for full mode"
            )
    if "seed" in params:
        s = _check_seed(params.pop("seed"), "-p seed")
        if seeds is not None:
            raise ReproduceError("-p seed=... and --seeds both given; use --seeds only")
        if seed is not None and _check_seed(seed, "--seed") != s:
            raise ReproduceError(
                f"-p seed={s} contradicts --seed {seed}; give the seed once, with --seed"
            )
        seed = s
    if seed is not None:
        seed = _check_seed(seed, "--seed")
    if seeds is not None:
        if isinstance(seeds, str | bytes) or not hasattr(seeds, "__iter__"):
            raise ReproduceError(f"--seeds must be a list of integers, e.g. 0 1 2; got {seeds!r}")
        seeds = [_check_seed(s, "each --seeds value") for s in seeds]
        if not seeds:
            raise ReproduceError("--seeds is empty; give seeds such as --seeds 0 10 20 30 40")
        if len(set(seeds)) != len(seeds):
            raise ReproduceError(f"--seeds {seeds} repeats a seed; give each seed once")
        if seed is not None:
            raise ReproduceError("--seed and --seeds both given; use one of them")
    if update and (seeds is None or len(seeds) < MIN_SEEDS):
        got = "one run" if seeds is None else f"{len(seeds)} seed(s)"
        raise ReproduceError(
            f"--update-expected derives each tolerance from the spread over at least {MIN_SEEDS} "
            f"seeds, got {got}; use e.g. --update-expected --seeds 0 10 20 30 40"
            + (" --quick" if quick else "")
        )
    if update and min(b - a for a, b in itertools.pairwise(sorted(seeds))) < SEED_GAP:
        raise ReproduceError(
            f"--seeds {' '.join(map(str, seeds))} are closer than {SEED_GAP}: each notebook "
            "averages over consecutive seeds (seed, seed + 1, ... from medlab.lesson), so close "
            "seeds share models and understate the spread; use e.g. --seeds 0 10 20 30 40"
        )
    if "data_dir" in params:
        d = params.pop("data_dir")
        if d is not None:
            d = _resolve(d, "-p data_dir")
            if data_dir is not None and _resolve(data_dir, "--data-dir") != d:
                raise ReproduceError(
                    f"-p data_dir={d} contradicts --data-dir {data_dir}; give "
                    "the data folder once, with --data-dir"
                )
            data_dir = d
    base: dict[str, Any] = {"quick": quick}
    if data_dir is not None:
        dd = _resolve(data_dir, "--data-dir")
        if not dd.is_dir():
            state = "is not a folder" if dd.exists() else "does not exist"
            raise ReproduceError(
                f"data folder {str(data_dir)!r} {state} (resolved against the current folder: "
                f"{dd}); pass the folder with the MedMNIST .npz files, or leave --data-dir out "
                "to use $MEDLAB_DATA_DIR or ~/.medmnist"
            )
        base["data_dir"] = str(dd)
    for k, v in params.items():  # a relative .npz path means one relative to the caller
        if (
            isinstance(v, str)
            and v.endswith(".npz")
            and not Path(v).is_absolute()
            and Path(v).expanduser().exists()
        ):
            params[k] = str(Path(v).expanduser().resolve())
    base.update(params)
    notebooks = find_notebooks(selection, folder)
    given = set(base) | ({"seed"} if seed is not None or seeds is not None else set())
    nb_params = {}
    for nb in notebooks:
        names = notebook_parameters(nb)
        unknown = sorted(given - set(names))
        if unknown:
            raise ReproduceError(
                f"{nb.name} has no parameter {', '.join(unknown)}; its parameters (cell tagged "
                f"'parameters') are: {', '.join(names) or 'none'}. Check -p NAME=VALUE"
            )
        nb_params[nb] = names
    return out, base, list(seeds) if seeds is not None else [seed], notebooks, nb_params


def _write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def describe_state(run: str | os.PathLike[str]) -> str:
    """Why a run folder is incomplete, in words (for error messages)."""
    state = run_state(run) or {}
    status = state.get("status")
    if status == "running":
        pid, host = state.get("pid"), state.get("host")
        alive = False
        if isinstance(pid, int) and host == socket.gethostname():
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except OSError:
                alive = True
        if alive:
            return f"still running (process {pid})"
        return "never finished: its process stopped without marking it (killed, or the machine went down)"
    if status == "interrupted":
        return "interrupted (Ctrl-C) before it finished"
    if status == "aborted":
        return f"aborted: {state.get('error') or 'an error stopped it'}"
    return f"not marked complete ({RUN_FILE} status {status!r})"


def _new_run_dir(out: Path, mode: str) -> Path:
    """A new run folder, marked ``running`` (incomplete) from its first moment."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    runs = out / "runs"
    made = [p for p in (runs, *runs.parents) if not p.exists()]
    runs.mkdir(parents=True, exist_ok=True)
    for i in itertools.count(1):
        run = runs / (f"{stamp}-{mode}" if i == 1 else f"{stamp}-{mode}-{i}")
        try:
            run.mkdir()
        except FileExistsError:
            continue
        state = {
            "status": "running",
            "mode": mode,
            "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": shlex.join(sys.argv),
        }
        try:
            _write_json_atomic(run / RUN_FILE, state)
        except OSError:
            shutil.rmtree(run, ignore_errors=True)  # nothing ran in it yet
            for p in made:  # nor the folders made for it
                try:
                    p.rmdir()
                except OSError:
                    break
            raise
        return run
    raise AssertionError("unreachable")  # pragma: no cover


def _mark(run: Path, status: str, **fields: Any) -> bool:
    """Set the run's ``run.json`` status (and fields); returns whether it could be written."""
    state = run_state(run) or {}
    state.update(fields, status=status)
    state["ended"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    try:
        _write_json_atomic(run / RUN_FILE, state)
        return True
    except OSError:  # a full disk: the run keeps its "running" mark, still incomplete
        return False


def _check_latest(out: Path, output: Any) -> None:
    link = out / "latest"
    if (link.exists() or link.is_symlink()) and not link.is_symlink():
        kind = "folder" if link.is_dir() else "file"
        raise ReproduceError(
            f"{link} is a real {kind}, not the link medlab keeps to the newest complete run; "
            f"move it away (e.g. `mv {link} {link}.old`) or pass another --output than {output}"
        )


def _point_latest(out: Path, run: Path) -> Path:
    """Make ``out/latest`` a link to ``run`` (a complete run); where links cannot be made,
    write ``out/latest.txt`` holding ``runs/<run>`` instead. A ``latest`` that is a real
    folder or file is an error (:class:`ReproduceError`), never silently bypassed."""
    _check_latest(out, out)
    link = out / "latest"
    tmp = out / f".latest.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(Path("runs") / run.name, target_is_directory=True)
        os.replace(tmp, link)
        return link
    except (OSError, NotImplementedError) as exc:
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            raise
        if tmp.is_symlink():
            tmp.unlink()
        if link.is_symlink():  # a stale pointer of an earlier run would win over latest.txt
            link.unlink()
        txt = out / "latest.txt"
        _write_atomic(txt, f"runs/{run.name}\n".encode())
        return txt


def reproduce(
    selection: list[str] | None = None,
    *,
    quick: bool = False,
    output: str | os.PathLike[str] = "outputs",
    data_dir: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    seeds: list[int] | None = None,
    parameters: dict[str, Any] | None = None,
    update: bool = False,
    allow_new: bool = False,
    expected: str | os.PathLike[str] | None = None,
    html: bool = True,
    timeout: float | None = None,
    folder: Path = NOTEBOOKS,
) -> int:
    """Run notebooks into a new run folder, compare with expected values (or, with ``update``,
    write them from >= 3 ``seeds``), print the table; returns the exit code (0 ok, 1 failed).

    Raises :class:`ReproduceError` (and writes nothing) on bad input: contradicting or unknown
    parameters, a missing data folder, an output path that is a file or read-only, a missing or
    malformed expected file (``update``: a read-only one), ``update`` with fewer than 3 seeds, a
    seed >= 2**31, a timeout below 1 s. The run folder is marked in its ``run.json`` from the
    start; ``latest`` moves to it only once it is complete. Ctrl-C raises
    :class:`RunInterrupted` (run marked ``interrupted``), a full disk :class:`DiskFullError`
    (run marked ``aborted``).
    """
    mode = "quick" if quick else "full"
    out, base, seed_list, notebooks, nb_params = _plan(
        selection,
        quick=quick,
        output=output,
        data_dir=data_dir,
        seed=seed,
        seeds=seeds,
        parameters=parameters,
        update=update,
        folder=Path(folder),
    )
    timeout = _check_timeout(timeout)
    exp_path = _check_expected_path(expected, update=update)
    tree, exp_notes = _read_expected(exp_path, strict=not update)
    _check_latest(out, output)
    _check_writable(out, output)
    if update:
        _check_update_target(exp_path)

    previous = _latest_target(out)
    try:
        run_dir = _new_run_dir(out, mode)
    except OSError as exc:
        if _no_space(exc):
            raise DiskFullError(
                f"no space left on the disk of {out} (creating a run folder); free space there "
                "(e.g. delete old folders in its runs/) and run again. Nothing was run"
            ) from None
        raise ReproduceError(
            f"cannot create a run folder in {out}/runs ({exc.strerror or exc}); pass a "
            "writable --output folder"
        ) from None
    env = {
        "MEDLAB_RUN_DIR": str(run_dir),
        "MEDLAB_CACHE_DIR": os.environ.get("MEDLAB_CACHE_DIR") or str(out / "cache"),
    }
    for note in exp_notes:
        print(f"[medlab] warning: {note}")
    runs: list[NotebookRun] = []
    rows: list[Row] = []
    try:
        for nb, s in itertools.product(notebooks, seed_list):
            if update and any(not r.ok for r in runs):
                break  # --update-expected writes nothing after a failure: stop early
            target = run_dir if len(seed_list) == 1 else run_dir / f"seed{s}"
            params = dict(base) | ({} if s is None else {"seed": s})
            shown = s if s is not None else nb_params[nb].get("seed")
            run, new = _run_one(
                nb,
                target,
                params,
                seed=shown if isinstance(shown, int) else None,
                mode=mode,
                tree=tree,
                strict=not update,
                html=html,
                timeout=timeout,
                env=env,
            )
            if not run.ok and _FULL_DISK.search(run.error):  # the kernel could not write
                raise OSError(errno.ENOSPC, f"{run.notebook}: {run.error}", str(target))
            runs.append(run)
            rows += new
        status = _finish(
            rows,
            runs,
            tree,
            mode=mode,
            update=update,
            allow_new=allow_new,
            exp_path=exp_path,
            run_dir=run_dir,
        )
        outcome = "passed" if status == 0 else "failed"
        n_failed = sum(not r.ok for r in runs)
        if not _mark(
            run_dir,
            "complete",
            outcome=outcome,
            exit_code=status,
            notebook_runs=len(runs),
            failed_runs=n_failed,
        ):
            raise OSError(errno.ENOSPC, "cannot mark the run complete", str(run_dir / RUN_FILE))
    except KeyboardInterrupt:
        marked = _mark(run_dir, "interrupted")
        raise RunInterrupted(
            f"[medlab] interrupted: run {run_dir} is incomplete ("
            + ("marked interrupted in its run.json" if marked else "left marked running")
            + f"); latest still points at {_shown(previous)}"
        ) from None
    except OSError as exc:
        if not _no_space(exc):
            _mark(run_dir, "aborted", error=_one_line(f"{type(exc).__name__}: {exc}", 300))
            raise
        marked = _mark(run_dir, "aborted", error="the disk is full")
        where = exc.filename or run_dir
        raise DiskFullError(
            f"no space left on the disk (writing {where}): run {run_dir} is incomplete ("
            + ("marked aborted in its run.json" if marked else "left marked running")
            + f"); free space on the disk of {out} (e.g. delete old folders in {out}/runs) and "
            f"run again; latest still points at {_shown(previous)}"
        ) from None
    except BaseException as exc:
        _mark(run_dir, "aborted", error=_one_line(f"{type(exc).__name__}: {exc}", 300))
        raise
    try:
        _point_latest(out, run_dir)  # only now: latest never points at an incomplete run
    except OSError as exc:
        raise ReproduceError(
            f"run {run_dir} is complete, but {out}/latest could not be pointed at it "
            f"({exc.strerror or exc}); free space or make {out} writable, then open the run "
            "folder itself"
        ) from None
    return status


_FULL_DISK = re.compile(r"Errno 28\b|No space left on device|Errno 122\b|Disk quota exceeded")


def _latest_target(out: Path) -> Path | None:
    """The run ``out/latest`` (or ``latest.txt``) points at now, if any."""
    link = out / "latest"
    if link.is_symlink():
        return link.resolve() if link.exists() else None
    txt = out / "latest.txt"
    if txt.is_file():
        try:
            p = Path(txt.read_text().strip())
        except (OSError, UnicodeDecodeError):
            return None
        p = p if p.is_absolute() else out / p
        return p if p.is_dir() else None
    return None


def _shown(run: Path | None) -> str:
    return str(run) if run is not None else "no run (there was no complete run before)"


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if not _is_number(timeout) or timeout < MIN_TIMEOUT:
        raise ReproduceError(
            f"--timeout must be a finite number of seconds >= {MIN_TIMEOUT:g} (a limit per "
            f"cell), got {timeout!r}; pass e.g. --timeout 600, or leave it out for no limit"
        )
    return float(timeout)


def _check_expected_path(expected: Any, *, update: bool) -> Path:
    """The expected-results file: it must exist, except with ``update``, which creates it in
    an existing folder."""
    path = EXPECTED if expected is None else _resolve(expected, "--expected")
    if path.exists():
        return path
    if not update:
        raise ReproduceError(
            f"expected-results file {path} does not exist, so nothing could be compared; pass "
            "the right --expected FILE (default notebooks/expected_results.yaml), or create it "
            "with --update-expected --seeds 0 10 20 30 40"
        )
    if not path.parent.is_dir():
        raise ReproduceError(
            f"--expected {path}: its folder {path.parent} does not exist; --update-expected "
            "creates the file, not its folder. Pass a file in an existing folder"
        )
    return path


def _probe(folder: Path) -> OSError | None:
    """Whether a file can be created in ``folder`` (it is created and removed at once)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".medlab-probe-", dir=folder)
    except OSError as exc:
        return exc
    os.close(fd)
    os.unlink(name)
    return None


def _check_writable(out: Path, output: Any) -> None:
    """The output folder (or, if missing, the folder it would be created in) must take new
    files: checked before anything runs."""
    existing = next(p for p in (out, *out.parents) if p.exists())
    for folder in [existing] + [out / n for n in ("runs",) if (out / n).is_dir()]:
        err = _probe(folder)
        if err is None:
            continue
        if _no_space(err):
            raise DiskFullError(
                f"no space left on the disk of {folder}; free space there (e.g. delete old "
                f"folders in {out}/runs) and run again. Nothing was run"
            )
        why = (
            "is read-only"
            if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
            else (f"cannot take new files ({err.strerror or err})")
        )
        raise ReproduceError(
            f"--output {output}: {folder} {why}, so no run could be written; make it writable "
            "(chmod u+w) or pass a writable --output folder, e.g. --output ~/medlab-outputs"
        )


def _check_update_target(path: Path) -> None:
    """--update-expected must be able to replace ``path``: checked before any seed runs."""
    if path.exists() and not (path.stat().st_mode & stat.S_IWUSR):
        raise ReproduceError(
            f"--update-expected would rewrite {path}, which is read-only; make it writable "
            f"(chmod u+w {path}) or pass --expected a writable copy"
        )
    err = _probe(path.parent)
    if err is not None:
        raise ReproduceError(
            f"--update-expected cannot write {path}: its folder {path.parent} "
            f"{'is read-only' if not _no_space(err) else 'is on a full disk'} "
            f"({err.strerror or err}); make the folder writable (or free space), or pass "
            "--expected a file in a writable folder"
        )


def _run_one(
    nb: Path,
    target: Path,
    params: dict[str, Any],
    *,
    seed: int | None,
    mode: str,
    tree: dict[str, Any],
    strict: bool,
    html: bool,
    timeout: float | None,
    env: dict[str, str],
) -> tuple[NotebookRun, list[Row]]:
    """Run one notebook with one seed, printing its progress line; returns the run and rows."""
    label = f"{nb.stem} ({mode}" + ("" if seed is None else f", seed {seed}") + ")"
    print(f"[medlab] {label} ... ", end="", flush=True)
    log = target / "logs" / f"{nb.stem}.log"
    results_dir = target / "results"

    def snapshot() -> dict[Path, int]:
        return {f: f.stat().st_mtime_ns for f in results_dir.glob("*.json")}

    before = snapshot()
    try:
        with KernelMonitor() as mon:
            run = run_notebook(nb, target, params, timeout=timeout, env=env, log=log)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        raise
    except OSError as exc:
        print(f"FAILED: {exc.strerror or exc}", flush=True)
        raise
    run.seed = seed
    run.peak_mb = mon.peak_mb if mon.peak_kb else None
    docs, bad = [], ""
    for f, mtime in sorted(snapshot().items()):
        if before.get(f) == mtime:
            continue  # another notebook's results
        try:
            docs.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            bad = f"results file {f.name} is unreadable ({exc})"
            continue
        if docs[-1].get("notebook") != nb.stem:
            bad = (
                f"it records under the name {docs[-1].get('notebook')!r}, not its own "
                f"{nb.stem!r}; use medlab.Recorder({nb.stem!r}, ...)"
            )
    n_rec = sum(len(recs or {}) for d in docs for recs in (d.get("records") or {}).values())
    if run.ok and bad:
        run.ok, run.error = False, bad
    elif run.ok and not n_rec:
        run.ok, run.error = (
            False,
            (
                "notebook ran but recorded no numbers (no rec.record call "
                "ran; CONTRIBUTING.md notebook rule 2)"
            ),
        )
    rows: list[Row] = []
    for d in docs:
        new = compare(d, tree, mode, seed=seed, strict=strict)
        rows += new if run.ok else [r for r in new if r.status != "MISSING"]
    extra = (
        _export_html(run.executed, target / "html", log) if (html and run.executed.exists()) else ""
    )
    done = ("ok" if run.ok else "FAILED") + f" {run.seconds:.1f} s"
    if run.peak_mb is not None:
        done += f", peak {run.peak_mb:.0f} MB"
    if not run.ok:
        done += f": {_one_line(run.error, 300)}"
    print(done + (f" ({extra})" if extra else ""), flush=True)
    return run, rows


def _finish(
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
    hints = []
    status = 0
    if update:
        if n_fail:
            hints.append(
                f"not updating {exp_path}: {n_fail} notebook run(s) failed; fix them and run again"
            )
            status = 1
        else:
            try:
                for w in update_expected(rows, mode, path=exp_path):
                    print(f"[medlab] warning: {w}")
            except ReproduceError as exc:
                hints.append(f"not updating {exp_path}: {exc}")
                status = 1
            except OSError as exc:
                if _no_space(exc):
                    raise
                hints.append(
                    f"could not write {exp_path} ({exc.strerror or exc}); nothing was updated"
                )
                status = 1
            else:
                written = _read_expected(exp_path, strict=False)[0]
                rows = [r for r in rows if r.value is not None]
                for r in rows:
                    if r.machine:
                        continue  # stays "measured": no expected value is written for it
                    e = _node(written, r.origin, mode, r.notebook, r.dataset).get(r.key) or {}
                    r.expected, r.tol, r.status = e.get("value"), e.get("tol"), "updated"
                hints.append(
                    f"wrote {len({(r.origin, r.notebook, r.dataset, r.key) for r in rows if not r.machine})}"
                    f" expected values ({mode}) to {exp_path}; review the diff"
                )
    table = format_table(rows, runs)
    (run_dir / f"reproduce_{mode}.txt").write_text(table + "\n")
    _write_csv(rows, run_dir / f"reproduce_{mode}.csv")
    count = {
        s: sum(r.status == s for r in rows)
        for s in (
            "reproduced",
            "DEVIATED",
            "MISSING",
            "new",
            "updated",
            "uninformative",
            "measured",
        )
    }
    if not update:
        for origin in sorted({r.origin for r in rows}):
            if not _node(tree, origin, mode):
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
        status = 1 if failed else 0
    try:
        page = write_site(run_dir, rows, runs, mode=mode, passed=status == 0)
        hints.append(f"report: {page}")
    except Exception as exc:  # a broken report page must not hide the results
        if _no_space(exc):
            raise
        hints.append(f"the report page could not be written: {_one_line(exc, 300)}")
    print()
    print(table)
    done = ("updated" if update else "reproduced") if status == 0 else "FAILED"
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
    print(
        f"\n[medlab] {done}: {len(runs)} notebook run(s), {n_fail} failed; {len(rows)} numbers: "
        f"{', '.join(parts)}. Run folder: {run_dir}"
    )
    for h in hints:
        print(f"[medlab] {h}")
    return status
