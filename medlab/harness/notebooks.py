"""The curriculum's notebooks: find them, read their parameters, and execute one headless with
papermill (its kernel's output to a log, its connection file private, the kernel always stopped).
"""

from __future__ import annotations

import ast
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import papermill as pm

from medlab.harness.base import NotebookRun, ReproduceError, no_space, one_line
from medlab.harness.engine import ENGINE

__all__ = ["ROOT", "NOTEBOOKS", "find_notebooks", "notebook_parameters", "run_notebook", "quiet"]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
_NOISY_LOGGERS = (
    "papermill",
    "traitlets",
    "jupyter_client",
    "nbclient",
    "nbconvert",
    "asyncio",
    "tornado",
)


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
def quiet(log: Path | None, *, fds: bool = True) -> Iterator[None]:
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


def _stop_kernels(managers: list[Any], *, reap: bool = True) -> int:
    """Kill any kernel (and its process group) still running, e.g. after Ctrl-C, and (``reap``)
    wait for it; returns how many were running."""
    killed = 0
    for km in managers:
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is None or proc.poll() is not None:
            continue
        killed += 1
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the kernel leads its own session
        except OSError:
            proc.kill()
        if reap:
            try:
                proc.wait(timeout=10)
            except Exception:  # pragma: no cover - a zombie we cannot reap
                pass
    return killed


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
    (KeyboardInterrupt; the kernel is killed at once, :func:`_sigint_kills`) and on a full disk
    (OSError). The kernel's connection file lives in a private temporary folder, deleted as soon
    as the kernel is up and again whatever happens; the kernel is always stopped."""
    executed = output / "executed" / path.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        "MEDLAB_OUTPUT_DIR": str(output.resolve()),
        "MEDLAB_NOTEBOOK": path.stem,
        "MEDLAB_QUIET": "1",
        "MEDLAB_STRICT_CHECKS": "1",  # a lesson check that fails raises: the run fails
        **(env or {}),
    }
    with _environ(settings):
        private = Path(tempfile.mkdtemp(prefix="medlab-kernel-"))
        managers: list[Any] = []
        interrupted = threading.Event()
        t0 = time.perf_counter()
        error = ""
        try:
            with _sigint_kills(managers, interrupted), quiet(log):
                pm.execute_notebook(
                    str(path),
                    str(executed),
                    parameters=parameters,
                    cwd=str(path.parent),
                    kernel_name="python3",
                    engine_name=ENGINE,  # papermill's nbclient, writing less often
                    progress_bar=False,
                    log_output=False,
                    execution_timeout=timeout,
                    kernel_manager_class=_kernel_manager(private / "kernel.json", managers),
                    on_notebook_start=lambda **_: _started(private, managers, interrupted),
                )
        except pm.PapermillExecutionError as exc:
            where = f"cell {exc.cell_index} (execution count {exc.exec_count})"
            error = f"{where}: {exc.ename}: {one_line(exc.evalue)}"
        except Exception as exc:  # kernel died, missing kernel, timeout, ...
            if no_space(exc):
                raise
            error = f"{type(exc).__name__}: {one_line(exc)}"
        finally:
            seconds = time.perf_counter() - t0  # the notebook's time, not the cleanup's
            _stop_kernels(managers)
            shutil.rmtree(private, ignore_errors=True)
        if interrupted.is_set():  # Ctrl-C: the kernel was killed, papermill stopped
            raise KeyboardInterrupt
        return NotebookRun(path.stem, not error, seconds, executed, error, log=log)


def _started(private: Path, managers: list[Any], interrupted: threading.Event) -> None:
    """The kernel is up and has read its connection file: delete it; a Ctrl-C that came while
    the kernel started (nothing to kill then) stops it now."""
    shutil.rmtree(private, ignore_errors=True)
    if interrupted.is_set():
        _stop_kernels(managers, reap=False)


@contextmanager
def _sigint_kills(managers: list[Any], came: threading.Event) -> Iterator[None]:
    """While running a notebook in the main thread, SIGINT (Ctrl-C, or a worker's interrupt)
    kills the running kernels in ``managers`` with their process groups and sets ``came``, and
    raises nothing: papermill then stops on the dead kernel (within about a second) and the
    caller raises KeyboardInterrupt at a point of its choosing. An exception raised at an
    arbitrary point of the jupyter stack was once swallowed under load and left a run waiting in
    its event loop. The handler in place runs too; its KeyboardInterrupt (Python's default)
    propagates only when there was no kernel to kill: before the kernel exists (it is killed as
    soon as it does), or on a second Ctrl-C. Elsewhere (another thread, SIGINT ignored) nothing
    changes."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        came.set()
        killed = _stop_kernels(managers, reap=False)  # no wait in a handler: finally reaps
        try:
            previous(signum, frame)  # a worker's handler keeps its count of interrupts
        except KeyboardInterrupt:
            if not killed:
                raise

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _environ(settings: dict[str, str]) -> Iterator[None]:
    """Set ``settings`` in this process's environment (the kernel inherits it); restore it after."""
    backup = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for k, v in backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
