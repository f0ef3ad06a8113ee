"""Peak memory of the notebook kernels this process starts (for ``medlab reproduce`` and the
benchmarks).

A kernel's peak resident set size is read from ``VmHWM`` in ``/proc/<pid>/status`` (the kernel's
own high-water mark, so a short spike between two polls is not missed). A process the kernel
starts adds its unique set size (USS: the pages only it holds), largest seen: a forked child's
RSS also counts every page it still shares with the kernel, so summing RSS counted the kernel
twice whenever it forked (``subprocess.run(["git", ...])`` for provenance: 2467 MB reported for a
1268 MB kernel). Where ``/proc`` is missing (macOS, Windows) the current RSS from psutil is polled
for the kernel instead, which can miss short peaks.

>>> with KernelMonitor() as mon:                      # doctest: +SKIP
...     run_notebook(...)
>>> mon.peak_mb                                        # peak RSS of the kernel, MB (2**20 bytes)
"""

from __future__ import annotations

import threading

import psutil

from medlab.utils import check_scalar

__all__ = ["KernelMonitor", "hwm_kb", "uss_kb", "BUDGET_MB", "CURRICULUM_BUDGET_S"]

#: Peak RSS budget of one kernel (MiB): quick mode 1.4 GiB, so that Binder's 2 GiB also holds the
#: server (medlab.harness.binder.MemoryAwareKernelManager makes room for this much); full mode
#: 2 GiB.
BUDGET_MB = {"quick": 1434, "full": 2048}

#: Wall-time budget of the whole curriculum (00-10, in order, one fresh kernel each) on 2 CPU
#: cores (s): a quick pass fits a class hour, a reviewer's full run an afternoon coffee.
CURRICULUM_BUDGET_S = {"quick": 360, "full": 2400}


def hwm_kb(pid: int) -> int:
    """Peak resident set size (kB) of a process so far: ``VmHWM`` from /proc, else its current
    RSS from psutil (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    try:
        return int(psutil.Process(pid).memory_info().rss // 1024)
    except psutil.Error:
        return 0


def _parent(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None


def uss_kb(proc: psutil.Process) -> int:
    """Unique set size (kB) of a process now: the memory it alone holds, not the pages a fork
    shares with its parent (0 if it is gone or cannot be read; its RSS where USS is not
    available)."""
    try:
        return int(proc.memory_full_info().uss // 1024)
    except psutil.AccessDenied:
        try:
            return int(proc.memory_info().rss // 1024)
        except psutil.Error:
            return 0
    except (psutil.Error, OSError, AttributeError):
        return 0


class KernelMonitor:
    """Tracks the peak RSS of the processes this process starts (the kernels) while it is
    entered; processes that already ran before (a previous kernel shutting down) are ignored.

    Attributes:
        peak_kb: peak RSS in kB (the kernel's peak plus its children's largest unique set
            sizes), 0 if no process was seen.
        interval: seconds between two polls.
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = check_scalar(
            "interval",
            interval,
            kind=float,
            lo=0,
            lo_inclusive=False,
            fix="a positive number of seconds, e.g. 0.1",
        )
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._seen: dict[int, int] = {}
        self._before: set[int] = set()

    @property
    def peak_mb(self) -> float:
        """Peak RSS in MB (2**20 bytes)."""
        return self.peak_kb / 1024

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                kids = [k for k in me.children(recursive=True) if k.pid not in self._before]
            except psutil.Error:
                kids = []
            for k in kids:
                own = hwm_kb(k.pid) if _parent(k) == me.pid else uss_kb(k)
                self._seen[k.pid] = max(self._seen.get(k.pid, 0), own)
            # a kernel (a direct child) with its peak, plus what its own children hold alone
            self.peak_kb = max(self.peak_kb, sum(self._seen.get(k.pid, 0) for k in kids))
            self._stop.wait(self.interval)

    def __enter__(self) -> KernelMonitor:
        # the previous notebook's kernel may still be shutting down: measure only new processes
        try:
            self._before = {k.pid for k in psutil.Process().children(recursive=True)}
        except psutil.Error:
            self._before = set()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, max(self._seen.values(), default=0))  # one kernel alone
