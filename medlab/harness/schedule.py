"""The (notebook, seed) runs of one ``medlab reproduce`` call, on a backend
(:mod:`medlab.harness.backends`): at most its ``slots`` at once; one progress line per run; the
results back in (notebook, seed) order, whatever order the runs finish in, so the table is the
sequential one. ``--jobs 1`` is one slot of this same scheduler and runs in that order. With more
slots the runs that took longest in the newest complete runs of the mode (``Task.cost``) start
first, so that the longest (notebook 07 in full mode: about a third of the whole) does not start
last and run alone (Graham's longest-processing-time rule); runs without a cost keep their
order. A run that reads the whole run's results (``after_all``: the audit notebook) starts only
when every run before it has ended, as one at a time.

With one slot a run's line starts when it starts (``[medlab] 01_baseline (quick, seed 0) ...``)
and ends when it ends; with more, each line is printed whole when its run ends. With
``stop_on_failure`` (``--update-expected``, which writes nothing after a failed run) no run
starts after one has failed. Ctrl-C, or any error, interrupts the runs in flight (their kernels
are killed) before it propagates.
"""

from __future__ import annotations

import errno
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as wait_any
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medlab.harness.base import NotebookRun, Row, one_line
from medlab.harness.runs import FULL_DISK

__all__ = ["Task", "run_tasks"]


@dataclass(frozen=True)
class Task:
    """One notebook run: the notebook, its output folder, its parameters and its seed."""

    nb: Path
    target: Path  # the run folder, or its seed<k>/ with several seeds
    params: dict[str, Any]
    seed: int | None  # shown and recorded with its rows (None: the notebook has no int seed)
    label: str  # e.g. "01_baseline (quick, seed 0)"
    after_all: bool = False  # it reads the results of the runs before it (the audit)
    cost: float = 0.0  # its notebook's seconds in the newest complete run with it (0: unknown)


def _ready(tasks: list[Task], i: int, done: dict[int, Any]) -> bool:
    """Task ``i`` may start: it reads no other run's results, or every run before it has ended
    (the audit reads every seed's folder, and its own seeds write one ``audit/`` folder)."""
    return not tasks[i].after_all or all(j in done for j in range(i))


def _next(
    tasks: list[Task], todo: deque[int], done: dict[int, Any], *, by_cost: bool
) -> int | None:
    """The task to start now: the first of ``todo`` (``by_cost``: the one with the highest
    cost, the first of equals) among those that may start; None if none may."""
    ready = [i for i in todo if _ready(tasks, i, done)]
    if not ready:
        return None
    return max(ready, key=lambda i: (tasks[i].cost, -i)) if by_cost else ready[0]


def run_tasks(
    tasks: list[Task],
    execute: Callable[..., tuple[NotebookRun, list[Row], str]],
    job: Any,
    backend: Any,
    *,
    stop_on_failure: bool = False,
) -> list[tuple[NotebookRun, list[Row]]]:
    """Run ``execute(task, job, slots=k)`` for each task on ``backend``; returns each finished
    run and its rows, in the order of ``tasks``. Raises KeyboardInterrupt on Ctrl-C and OSError
    on a full disk, after the runs in flight were stopped."""
    show = _Progress(together=backend.slots > 1)
    if show.together:
        print(f"[medlab] {len(tasks)} notebook run(s), {backend.describe()}", flush=True)
    todo: deque[int] = deque(range(len(tasks)))
    running: dict[Future[Any], int] = {}
    done: dict[int, tuple[NotebookRun, list[Row]]] = {}
    try:
        while todo or running:
            failed = any(not run.ok for run, _ in done.values())
            while todo and len(running) < backend.slots and not (stop_on_failure and failed):
                i = _next(tasks, todo, done, by_cost=backend.slots > 1)
                if i is None:
                    break  # the audit waits for the runs it reads; they are running
                todo.remove(i)
                show.start(tasks[i])
                running[backend.submit(execute, tasks[i], job)] = i
            if not running:
                break  # nothing more may start
            finished = wait_any(running, return_when=FIRST_COMPLETED).done
            ended = sorted((running.pop(fut), fut) for fut in finished)  # none left "running"
            for k, (i, fut) in enumerate(ended):
                try:
                    done[i] = _outcome(fut, tasks[i], show)
                except BaseException:
                    for j, other in ended[k + 1 :]:  # finished too: each gets its line
                        try:
                            done[j] = _outcome(other, tasks[j], show)
                        except BaseException:  # noqa: S110 - the first error is the one raised
                            pass
                    raise
    except BaseException as exc:
        word = "interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped"
        for i in sorted(running.values()):
            show.end(tasks[i], word)
        backend.stop()
        raise
    return [done[i] for i in sorted(done)]


def _outcome(fut: Future[Any], task: Task, show: _Progress) -> tuple[NotebookRun, list[Row]]:
    """A finished run's result, its progress line printed; raises what stops every run."""
    try:
        run, rows, extra = fut.result()
    except KeyboardInterrupt:
        show.end(task, "interrupted")
        raise
    except OSError as exc:
        show.end(task, f"FAILED: {exc.strerror or exc}")
        raise
    except BaseException as exc:  # a lost worker, a cluster that cannot see the run folder
        show.end(task, f"FAILED: {one_line(str(exc) or type(exc).__name__, 300)}")
        raise
    text = ("ok" if run.ok else "FAILED") + f" {run.seconds:.1f} s"
    if run.peak_mb is not None:
        text += f", peak {run.peak_mb:.0f} MB"
    if not run.ok:
        text += f": {one_line(run.error, 300)}"
    show.end(task, text + (f" ({extra})" if extra else ""))
    if not run.ok and FULL_DISK.search(run.error):  # the kernel could not write
        raise OSError(errno.ENOSPC, f"{run.notebook}: {run.error}", str(task.target))
    return run, rows


class _Progress:
    """One line per run: started and ended on one line when runs go one at a time
    (``together`` False), printed whole at its end when they overlap."""

    def __init__(self, *, together: bool) -> None:
        self.together = together

    def start(self, task: Task) -> None:
        if not self.together:
            print(f"[medlab] {task.label} ... ", end="", flush=True)

    def end(self, task: Task, text: str) -> None:
        print(f"[medlab] {task.label} ... {text}" if self.together else text, flush=True)
