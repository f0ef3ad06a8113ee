"""Where the (notebook, seed) runs of ``medlab reproduce`` execute: on this machine (``local``,
``--jobs N``) or on an existing Dask cluster (``dask``, ``--scheduler ADDRESS``).

A backend takes a call ``fn(*args, slots=k)`` (``k``: how many runs share the machine it lands
on, for the kernel's share of threads, :func:`thread_env`) and returns a
:class:`concurrent.futures.Future`; :mod:`medlab.harness.schedule` decides what to submit and
when. Every backend has ``slots`` (runs at once), ``describe()``, ``stop()`` (interrupt the runs
in flight; their kernels are killed before it returns) and is a context manager that ends what
it started.

``local``: with one slot each run executes in this process, in turn, as it always has. With
``N`` > 1 slots, a pool of ``N`` threads each drives one worker *process*
(:class:`medlab.harness.workers.Worker`, started on first use and reused). Threads alone are not
enough: executing a notebook is process-wide state here (the kernel's environment is set
through ``os.environ``, its output redirected on file descriptors 1 and 2, the memory monitor
watches this process's children), so two runs in one process would mix their environments,
logs and memory peaks; papermill's kernels are separate processes, but their drivers must be
too. The workers live in their own session: Ctrl-C reaches this process alone, and
:meth:`~LocalBackend.stop` interrupts each worker's run and waits until its kernel is killed.

``dask``: each run is one task on the cluster (``distributed`` is imported only here, from the
``cluster`` extra), executed on its Dask worker in a fresh worker process as above, so a Dask
worker with several threads still runs each notebook apart, and a kernel's threads are its
host's cores shared among all Dask worker threads on that host. The data folder, the output
folder and the model cache (``MEDLAB_CACHE_DIR``) must be on a shared filesystem, at the same
path on every worker, and medlab (the same version) installed there.
"""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from typing import Any

from medlab.harness.base import ReproduceError
from medlab.harness.workers import GRACE_S, Worker

__all__ = [
    "LocalBackend",
    "DaskBackend",
    "make_backend",
    "thread_env",
    "cpu_count",
    "THREAD_VARS",
    "INSTALL_CLUSTER",
]

#: the kernel's thread settings: OpenMP, MKL, OpenBLAS, and torch's (medlab.utils.set_threads)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MEDLAB_THREADS")
INSTALL_CLUSTER = (
    "pip install -c constraints.txt -e '.[cluster]' in the checkout (or pip install "
    "'medlab-edu[cluster]')"
)


def cpu_count() -> int:
    """The CPUs this process may use (its affinity, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_env(
    slots: int, environ: Mapping[str, str] | None = None, *, cores: int | None = None
) -> dict[str, str]:
    """The thread settings of a kernel that shares this machine with ``slots - 1`` others:
    ``max(1, cores // slots)`` threads for each of :data:`THREAD_VARS`, or fewer where
    ``environ`` (default ``os.environ``) already caps one lower. Never more threads than
    cores in all: two kernels each spinning every core's OpenMP threads run ~10x slower."""
    environ = os.environ if environ is None else environ
    share = max(1, (cpu_count() if cores is None else cores) // max(1, slots))
    out = {}
    for var in THREAD_VARS:
        cap = environ.get(var, "").strip()
        out[var] = str(min(share, int(cap)) if cap.isdigit() and int(cap) >= 1 else share)
    return out


def make_backend(*, jobs: int | None = None, scheduler: str | None = None) -> Any:
    """The backend for ``--jobs`` / ``--scheduler`` (checked: a :class:`ReproduceError` names
    the fix); ``jobs`` None means one run at a time locally, the cluster's threads on Dask."""
    if scheduler is not None:
        return DaskBackend(scheduler, jobs=jobs)
    return LocalBackend(1 if jobs is None else jobs)


class LocalBackend:
    """Runs on this machine, ``jobs`` at a time (at most one per CPU core: more is warned about
    once and capped)."""

    def __init__(self, jobs: int) -> None:
        cores = cpu_count()
        if jobs > cores:
            print(
                f"[medlab] warning: --jobs {jobs} is more than the {cores} CPU core(s) this "
                f"process may use; running {cores} at a time (more would only slow each run down)"
            )
        self.slots = min(jobs, cores)
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        self._workers: list[Worker] = []
        self._lock = threading.Lock()
        self._futures: list[Future[Any]] = []
        self._stopping = False
        self._pool = ThreadPoolExecutor(self.slots, "medlab-run") if self.slots > 1 else None

    def describe(self) -> str:
        threads = thread_env(self.slots)["OMP_NUM_THREADS"]
        return (
            f"{self.slots} at a time in worker processes on this machine, {threads} thread(s) each"
        )

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self._pool is None:  # one slot: here and now, as a sequential run always was
            fut: Future[Any] = Future()
            try:
                fut.set_result(fn(*args, slots=1))
            except BaseException as exc:  # Ctrl-C included: the scheduler reads it from the future
                fut.set_exception(exc)
            return fut
        fut = self._pool.submit(self._drive, fn, args)
        self._futures.append(fut)
        return fut

    def _drive(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """In a pool thread: one call on an idle worker (started on first use)."""
        with self._lock:
            if self._stopping:
                raise KeyboardInterrupt
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                worker = Worker()
                self._workers.append(worker)
        try:
            return worker.call(fn, args, {"slots": self.slots})
        finally:
            if worker.alive():
                self._idle.put(worker)

    def stop(self) -> None:
        """Interrupt every run in flight and wait until their kernels are gone."""
        with self._lock:
            self._stopping = True
            workers = list(self._workers)
        for w in workers:
            w.interrupt()
        wait_all(self._futures, timeout=GRACE_S)
        for w in workers:
            if w.busy:  # did not stop in time: kill it and its kernel
                w.kill()
        wait_all(self._futures, timeout=GRACE_S)

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            workers = list(self._workers)
        for w in workers:
            w.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)


class DaskBackend:
    """Runs on the Dask cluster whose scheduler is at ``address``: each run one task,
    ``jobs`` at a time (default: the cluster's worker threads)."""

    def __init__(self, address: str, *, jobs: int | None = None) -> None:
        if not isinstance(address, str) or not address.strip():  # Client("") starts a cluster
            raise ReproduceError(
                f"--scheduler must be a Dask scheduler's address, got {address!r}; pass e.g. "
                "--scheduler tcp://10.0.0.5:8786, or leave it out to run on this machine"
            )
        try:
            from distributed import Client, Event
        except ImportError as exc:
            raise ReproduceError(
                f"--scheduler needs Dask's distributed ({exc}): {INSTALL_CLUSTER}"
            ) from None
        self.address = address
        try:
            self.client = Client(address, timeout="10s")
        except Exception as exc:  # refused, timed out, a malformed address
            raise ReproduceError(
                f"--scheduler {address}: cannot reach a Dask scheduler there ({exc}); start one "
                "(`dask scheduler`, then `dask worker ADDRESS` on each machine) and pass its "
                "address, e.g. --scheduler tcp://10.0.0.5:8786"
            ) from None
        threads = sum(self.client.nthreads().values())
        if not threads:
            self.client.close()
            raise ReproduceError(
                f"--scheduler {address}: the cluster has no workers; start some with "
                f"`dask worker {address}` (medlab installed, the data, output and cache folders "
                "shared at the same paths)"
            )
        # at most one run per Dask thread: more would queue inside Dask, out of reach of
        # --update-expected's stop at the first failure
        self.slots = min(jobs or threads, threads)
        self._stop = Event(f"medlab-stop-{uuid.uuid4().hex}", client=self.client)
        self._remote: list[Any] = []  # Dask's futures, kept so that their tasks stay wanted
        self._futures: list[Future[Any]] = []

    def describe(self) -> str:
        return f"{self.slots} at a time on the Dask cluster at {self.address}"

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        out: Future[Any] = Future()
        remote = self.client.submit(
            _on_dask_worker, fn, args, self._stop.name, self.slots, pure=False
        )
        self._remote.append(remote)
        self._futures.append(out)
        remote.add_done_callback(lambda r: _settle(out, r))
        return out

    def stop(self) -> None:
        """Interrupt the runs in flight (their workers kill their kernels), drop the rest."""
        self._stop.set()
        wait_all(self._futures, timeout=GRACE_S)
        self.client.cancel(self._remote)

    def __enter__(self) -> DaskBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def _settle(out: Future[Any], remote: Any) -> None:
    """Pass a Dask task's outcome on to the scheduler's future."""
    try:
        tag, value = remote.result()
        if tag == "interrupted":
            raise KeyboardInterrupt
        out.set_result(value)
    except BaseException as exc:
        out.set_exception(exc)


def _on_dask_worker(fn: Callable[..., Any], args: tuple[Any, ...], stop: str, limit: int) -> Any:
    """A Dask task: ``fn(*args)`` in a fresh worker process on this machine, its kernel given
    this machine's share of threads: its cores over the runs that can run here at once (the
    threads of every Dask worker on this host, at most ``limit``, the runs in flight overall);
    interrupted when the event ``stop`` is set."""
    from distributed import Event, get_client, get_worker
    from distributed.comm import get_address_host

    client = get_client()
    here = get_address_host(get_worker().address)
    slots = sum(n for a, n in client.nthreads().items() if get_address_host(a) == here)
    slots = min(slots, limit)
    worker, done = Worker(), threading.Event()
    threading.Thread(
        target=_interrupt_on, args=(Event(stop, client=client), worker, done), daemon=True
    ).start()
    try:
        return ("ok", worker.call(fn, args, {"slots": max(1, slots)}))
    except KeyboardInterrupt:
        return ("interrupted", None)
    finally:
        done.set()
        worker.close()


def _interrupt_on(stop: Any, worker: Worker, done: threading.Event) -> None:
    while not done.is_set():
        if stop.wait(timeout=1):
            worker.interrupt()
            return
