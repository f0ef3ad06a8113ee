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
``latest`` moves only to a complete run (:func:`medlab.results.run_state`,
:func:`~medlab.results.last_complete_run`). An output folder that is read-only, a missing
``--expected`` file, a read-only ``--update-expected`` target, a seed >= 2**31 and a ``--timeout``
below 1 s or not finite are refused before anything runs.

With several seeds each seed gets its own ``seed<k>/`` (executed/, results/, ...) in the run
folder. ``--jobs N`` runs N (notebook, seed) pairs at once in worker processes, each kernel with
its share of the CPU cores (``OMP_NUM_THREADS`` and the like = cores // N), and ``--scheduler
ADDRESS`` sends them to an existing Dask cluster (:mod:`medlab.harness.backends`); either way
the table, the run folder and the numbers are those of a sequential run
(:mod:`medlab.harness.schedule`). Nothing of an earlier run is deleted or overwritten. The
kernels see ``MEDLAB_OUTPUT_DIR`` (where :class:`medlab.Recorder` writes), ``MEDLAB_RUN_DIR`` and
``MEDLAB_CACHE_DIR`` (``<output>/cache`` unless already set). Kernel noise goes to ``logs/``.
``index.html`` is the run's report page (:mod:`medlab.harness.site`: the curriculum table with
each notebook's time and its kernel's peak memory, every number against its expected value, the
executed notebooks as HTML, the figures, the audit report), readable offline.

The terminal shows one line per notebook run, then one row per number: expected value and
tolerance, the value now and a status: ``reproduced``, ``DEVIATED``, ``MISSING`` (expected but
not recorded), ``new`` (no expected value), ``uninformative`` (within a tolerance so wide that it
covers every value the number can take, e.g. a TPR gap of 0.1 ± 1.3: shown, but the comparison
could not have failed; :func:`~medlab.harness.tolerances.covers_range`) or ``measured``
(recorded with ``machine=True``: a latency or a time, a property of this machine, shown but never
compared), then a one-line summary. The exit code is 0 only if every notebook ran and recorded
numbers and every number was compared and reproduced (or ``uninformative`` or ``measured``)
(``allow_new`` / ``--allow-new`` accepts numbers without expected values, e.g. a new notebook).

``--update-expected --seeds 0 10 20 30 40`` runs each notebook once per seed and writes, for the
sections it ran, the mean over seeds and a tolerance derived from their spread
(:func:`~medlab.harness.tolerances.derive`); it refuses fewer than 3 seeds and stops, writing
nothing, at the first failed notebook.

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

import errno
import itertools
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medlab.harness.backends import make_backend, thread_env
from medlab.harness.base import (
    DiskFullError,
    NotebookRun,
    ReproduceError,
    Row,
    RunInterrupted,
    no_space,
    one_line,
)
from medlab.harness.compare import compare
from medlab.harness.expected import read_expected
from medlab.harness.finish import finish
from medlab.harness.monitor import KernelMonitor
from medlab.harness.notebooks import NOTEBOOKS, quiet, run_notebook
from medlab.harness.plan import check_expected_path, check_jobs, check_timeout, plan
from medlab.harness.runs import (
    check_latest,
    check_update_target,
    check_writable,
    latest_target,
    mark,
    new_results,
    new_run_dir,
    notebook_seconds,
    past_seconds,
    point_latest,
    shown,
    snapshot,
)
from medlab.harness.schedule import Task, run_tasks
from medlab.harness.site import export_notebook_html
from medlab.results import RUN_FILE

__all__ = ["reproduce"]


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
    jobs: int | None = None,
    scheduler: str | None = None,
    folder: Path = NOTEBOOKS,
) -> int:
    """Run notebooks into a new run folder, compare with expected values (or, with ``update``,
    write them from >= 3 ``seeds``), print the table; returns the exit code (0 ok, 1 failed).

    Raises :class:`ReproduceError` (and writes nothing) on bad input: contradicting or unknown
    parameters, a missing data folder, an output path that is a file or read-only, a missing or
    malformed expected file (``update``: a read-only one), ``update`` with fewer than 3 seeds, a
    seed >= 2**31, a timeout below 1 s, ``jobs`` not a positive integer, a ``scheduler`` that
    cannot be reached. ``jobs``: runs at once (default 1; on a cluster, its worker threads);
    ``scheduler``: a Dask scheduler's address (:mod:`medlab.harness.backends`). The run folder
    is marked in its ``run.json`` from the start; ``latest`` moves to it only once it is
    complete. Ctrl-C raises :class:`RunInterrupted` (run marked ``interrupted``), a full disk
    :class:`DiskFullError` (run marked ``aborted``).
    """
    mode = "quick" if quick else "full"
    out, base, seed_list, notebooks, nb_params = plan(
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
    timeout, jobs = check_timeout(timeout), check_jobs(jobs)
    exp_path = check_expected_path(expected, update=update)
    tree, exp_notes = read_expected(exp_path, strict=not update)
    _check_folders(out, output, exp_path if update else None)
    seconds = past_seconds(out, mode)  # the last complete runs' times: the longest start first
    with make_backend(jobs=jobs, scheduler=scheduler) as backend:
        previous, run_dir = latest_target(out), _start(out, mode)
        for note in exp_notes:
            print(f"[medlab] warning: {note}")
        env = _kernel_env(out, run_dir, update=update)
        job = _Job(mode, tree, update, html, timeout, env, run_dir)
        tasks = _tasks(job, notebooks, seed_list, base, nb_params, seconds)
        status = _guarded(job, tasks, backend, allow_new, exp_path, out, previous)
    _publish(out, run_dir)
    return status


@dataclass(frozen=True)
class _Job:
    """What every notebook run of one ``reproduce`` call shares."""

    mode: str
    tree: dict[str, Any]  # the expected values
    update: bool
    html: bool
    timeout: float | None
    env: dict[str, str]  # for the kernels
    run_dir: Path


def _check_folders(out: Path, output: Any, update_target: Path | None) -> None:
    """The output folder takes a new run (its ``latest`` is a link, it is writable) and the
    expected file to update (if any) can be replaced: checked before anything runs."""
    check_latest(out, output)
    check_writable(out, output)
    if update_target is not None:
        check_update_target(update_target)


def _start(out: Path, mode: str) -> Path:
    """A new run folder (marked ``running``), or a :class:`ReproduceError` naming the fix."""
    try:
        return new_run_dir(out, mode)
    except OSError as exc:
        if no_space(exc):
            raise DiskFullError(
                f"no space left on the disk of {out} (creating a run folder); free space there "
                "(e.g. delete old folders in its runs/) and run again. Nothing was run"
            ) from None
        raise ReproduceError(
            f"cannot create a run folder in {out}/runs ({exc.strerror or exc}); pass a "
            "writable --output folder"
        ) from None


#: Settings of this process that every kernel gets, also on a Dask worker of another machine
#: (threads are not among them: :func:`~medlab.harness.backends.thread_env` sets them where the
#: kernel runs, from that machine's cores).
FORWARDED = ("MEDLAB_DATA_DIR", "MEDLAB_DEVICE")


def _kernel_env(out: Path, run_dir: Path, *, update: bool = False) -> dict[str, str]:
    """The kernels' settings: the run and cache folders, this process's ``FORWARDED`` settings,
    and, for ``--update-expected``, the CPU: expected values and their tolerances come from CPU
    runs (a GPU's numbers are checked against them, never written into them)."""
    env = {k: os.environ[k] for k in FORWARDED if os.environ.get(k)}
    env |= {
        "MEDLAB_RUN_DIR": str(run_dir),
        "MEDLAB_CACHE_DIR": os.environ.get("MEDLAB_CACHE_DIR") or str(out / "cache"),
    }
    if update:
        env["MEDLAB_DEVICE"] = "cpu"
    return env


def _tasks(
    job: _Job,
    notebooks: list[Path],
    seed_list: list[int | None],
    base: dict[str, Any],
    nb_params: dict[Path, dict[str, Any]],
    seconds: dict[str, float],
) -> list[Task]:
    """Each notebook with each seed, in that order (the order of the table); ``seconds``: each
    notebook's time in the newest complete run of this mode that ran it (:func:`past_seconds`)."""
    tasks = []
    for nb, s in itertools.product(notebooks, seed_list):
        shown_seed = s if s is not None else nb_params[nb].get("seed")
        seed = shown_seed if isinstance(shown_seed, int) else None
        label = f"{nb.stem} ({job.mode}" + ("" if seed is None else f", seed {seed}") + ")"
        target = job.run_dir if len(seed_list) == 1 else job.run_dir / f"seed{s}"
        params = dict(base) | ({} if s is None else {"seed": s})
        audits = "run_dir" in nb_params[nb]  # it reads the run's results (10_audit)
        tasks.append(
            Task(nb, target, params, seed, label, after_all=audits, cost=seconds.get(nb.stem, 0.0))
        )
    return tasks


def _guarded(
    job: _Job,
    tasks: list[Task],
    backend: Any,
    allow_new: bool,
    exp_path: Path,
    out: Path,
    previous: Path | None,
) -> int:
    """:func:`_run_all`; Ctrl-C marks the run ``interrupted``, a full disk or any other error
    ``aborted`` (``previous``: where ``latest`` points, for the message)."""
    try:
        return _run_all(job, tasks, backend, allow_new, exp_path)
    except KeyboardInterrupt:
        raise _interrupted(job.run_dir, previous) from None
    except BaseException as exc:
        if no_space(exc):
            raise _disk_full(exc, job.run_dir, out, previous) from None
        mark(job.run_dir, "aborted", error=one_line(f"{type(exc).__name__}: {exc}", 300))
        raise


def _run_all(job: _Job, tasks: list[Task], backend: Any, allow_new: bool, exp_path: Path) -> int:
    """Run the tasks on the backend (``--update-expected``: none after a failed one, it writes
    nothing then), then judge (or update) and mark the run complete; returns the exit code."""
    done = run_tasks(tasks, _execute, job, backend, stop_on_failure=job.update)
    runs = [run for run, _ in done]
    rows = [row for _, new in done for row in new]
    status = finish(
        rows,
        runs,
        job.tree,
        mode=job.mode,
        update=job.update,
        allow_new=allow_new,
        exp_path=exp_path,
        run_dir=job.run_dir,
    )
    fields = {"outcome": "passed" if status == 0 else "failed", "exit_code": status}
    fields |= {"notebook_runs": len(runs), "failed_runs": sum(not r.ok for r in runs)}
    fields["seconds"] = notebook_seconds(runs)  # the next --jobs run starts the longest first
    if not mark(job.run_dir, "complete", **fields):
        raise OSError(errno.ENOSPC, "cannot mark the run complete", str(job.run_dir / RUN_FILE))
    return status


def _interrupted(run_dir: Path, previous: Path | None) -> RunInterrupted:
    """Ctrl-C: the run is marked ``interrupted``; the one line to show."""
    marked = mark(run_dir, "interrupted")
    return RunInterrupted(
        f"[medlab] interrupted: run {run_dir} is incomplete ("
        + ("marked interrupted in its run.json" if marked else "left marked running")
        + f"); latest still points at {shown(previous)}"
    )


def _disk_full(exc: OSError, run_dir: Path, out: Path, previous: Path | None) -> DiskFullError:
    """A full disk: the run is marked ``aborted`` (if it can be); the error naming the fix."""
    marked = mark(run_dir, "aborted", error="the disk is full")
    where = exc.filename or run_dir
    return DiskFullError(
        f"no space left on the disk (writing {where}): run {run_dir} is incomplete ("
        + ("marked aborted in its run.json" if marked else "left marked running")
        + f"); free space on the disk of {out} (e.g. delete old folders in {out}/runs) and "
        f"run again; latest still points at {shown(previous)}"
    )


def _publish(out: Path, run_dir: Path) -> None:
    """Point ``latest`` at the complete run (only now: it never points at an incomplete one)."""
    try:
        point_latest(out, run_dir)
    except OSError as exc:
        raise ReproduceError(
            f"run {run_dir} is complete, but {out}/latest could not be pointed at it "
            f"({exc.strerror or exc}); free space or make {out} writable, then open the run "
            "folder itself"
        ) from None


def _execute(task: Task, job: _Job, *, slots: int) -> tuple[NotebookRun, list[Row], str]:
    """One run, wherever the backend executes it (``slots``: runs sharing this machine, for the
    kernel's share of threads); returns the run, its rows and an HTML export problem ('')."""
    if not job.run_dir.is_dir():
        raise ReproduceError(
            f"the run folder {job.run_dir} is not on {socket.gethostname()}: on a Dask cluster "
            "the output folder, the data folder and the model cache (MEDLAB_CACHE_DIR) must be "
            "on a shared filesystem, at the same path on every worker; pass such an --output"
        )
    nb, target = task.nb, task.target
    log = target / "logs" / f"{nb.stem}.log"
    before = snapshot(target / "results")
    env = job.env | thread_env(slots)
    with KernelMonitor() as mon:
        run = run_notebook(nb, target, task.params, timeout=job.timeout, env=env, log=log)
    run.seed = task.seed
    run.peak_mb = mon.peak_mb if mon.peak_kb else None
    docs = new_results(run, nb, target / "results", before)
    rows: list[Row] = []
    for d in docs:
        new = compare(d, job.tree, job.mode, seed=task.seed, strict=not job.update)
        rows += new if run.ok else [r for r in new if r.status != "MISSING"]
    html = job.html and run.executed.exists()
    return run, rows, (_export_html(run.executed, target / "html", log) if html else "")


def _export_html(executed: Path, folder: Path, log: Path | None) -> str:
    """HTML copy of an executed notebook; returns an error text ('' if it worked)."""
    try:
        with quiet(log, fds=False):
            export_notebook_html(executed, folder)  # offline: no CDN scripts
        return ""
    except Exception as exc:  # a failed export must not hide the results
        if no_space(exc):
            raise
        return f"HTML export failed: {one_line(exc, 200)}"
