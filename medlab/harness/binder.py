"""Binder support: keep a whole curriculum walk within one memory limit.

Binder gives the Jupyter server and every kernel 2 GB together, and JupyterLab keeps every
kernel alive (tab open or closed) until it is shut down. A student who opens notebook 00, runs
it, opens 01, runs it, and so on, soon holds several finished kernels of 0.5-1 GB each, and the
next notebook's kernel is killed by the memory limit.

:class:`MemoryAwareKernelManager` is a Jupyter server kernel manager (set in
``binder/jupyter_server_config.json``) that makes room *before* a kernel starts or restarts:
when the memory of the server and its kernels, plus the room a new kernel needs
(``kernel_peak_mb``, the curriculum's per-kernel budget in quick mode), would exceed the limit,
it shuts down idle kernels, the longest idle first, until it fits. A busy kernel is never shut
down. Without a memory limit (a laptop, a workstation) it shuts nothing down.

The limit is, in order: ``memory_limit_mb`` when set, ``$MEM_LIMIT`` (bytes; JupyterHub and
Binder set it), the memory cgroup of the server process (v1 or v2). Memory is the proportional
set size (PSS) of the server and each kernel with its children, so libraries shared between
kernels count once; the resident set size where PSS cannot be read.

A notebook whose kernel was shut down keeps its outputs; its variables are gone. Re-running it
from the top (Kernel > Restart Kernel and Run All Cells) brings it back; models come from the
model cache, so this is fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Float

__all__ = ["MemoryAwareKernelManager", "memory_limit_mb", "process_mb"]

MB = 1024 * 1024


def _cgroup_limit_bytes(pid: int | None = None) -> int | None:
    """The memory limit of ``pid``'s cgroup (v1 or v2), or None when there is none."""
    try:
        lines = Path(f"/proc/{pid or 'self'}/cgroup").read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        path = path.lstrip("/")
        if controllers == "":  # cgroup v2
            candidates = [Path("/sys/fs/cgroup", path, "memory.max")]
        elif "memory" in controllers.split(","):
            candidates = [Path("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes")]
        else:
            continue
        for f in candidates:
            try:
                text = f.read_text().strip()
            except OSError:
                continue
            if text.isdigit():
                limits.append(int(text))
    total = psutil.virtual_memory().total
    limits = [v for v in limits if 0 < v < total]  # v1 writes a huge number for "no limit"
    return min(limits) if limits else None


def memory_limit_mb(configured: float = 0.0) -> float | None:
    """The memory limit the server and its kernels share, in MiB, or None when there is none.

    Args:
        configured: a limit set in the configuration (MiB); 0 means detect it.
    """
    if configured > 0:
        return float(configured)
    env = os.environ.get("MEM_LIMIT", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env) / MB
    limit = _cgroup_limit_bytes()
    return None if limit is None else limit / MB


def process_mb(pid: int) -> float:
    """Memory of a process and all its children, in MiB: PSS where readable, else RSS; 0 when
    the process is gone."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        return 0.0
    total = 0
    for p in procs:
        try:
            try:
                total += p.memory_full_info().pss
            except (psutil.AccessDenied, AttributeError):
                total += p.memory_info().rss
        except psutil.Error:
            continue
    return total / MB


class MemoryAwareKernelManager(AsyncMappingKernelManager):
    """Shut down idle kernels, longest idle first, when a kernel starting or restarting would
    not fit in the memory limit (see the module docstring)."""

    kernel_peak_mb = Float(
        1434.0,
        help="Room (MiB) a kernel needs: a quick-mode notebook's peak (the curriculum budget).",
    ).tag(config=True)
    memory_limit_mb = Float(
        0.0, help="Memory limit (MiB) of the server and its kernels; 0: $MEM_LIMIT or cgroup."
    ).tag(config=True)

    def _kernel_pid(self, kernel_id: str) -> int | None:
        km = self.get_kernel(kernel_id)
        prov = getattr(km, "provisioner", None)
        pid = getattr(prov, "pid", None) or getattr(getattr(prov, "process", None), "pid", None)
        return int(pid) if pid else None

    def kernel_memory_mb(self) -> dict[str, float]:
        """Memory of each running kernel (MiB), by kernel id."""
        out = {}
        for kid in list(self.list_kernel_ids()):
            pid = self._kernel_pid(kid)
            out[kid] = process_mb(pid) if pid else 0.0
        return out

    async def make_room(self, *, keep: str | None = None) -> list[str]:
        """Shut down idle kernels (never ``keep``, never a busy one), longest idle first, until
        the server, the other kernels and ``kernel_peak_mb`` fit in the limit.

        Returns:
            the ids of the kernels shut down.
        """
        limit = memory_limit_mb(self.memory_limit_mb)
        if limit is None:
            return []
        sizes = self.kernel_memory_mb()
        used = process_mb(os.getpid()) + sum(v for k, v in sizes.items() if k != keep)
        idle = []
        for kid in sizes:
            kernel = self._kernels.get(kid)
            if kid == keep or kernel is None:
                continue
            if getattr(kernel, "execution_state", "idle") in ("busy", "starting"):
                continue
            idle.append((getattr(kernel, "last_activity", None), kid))
        idle.sort(key=lambda t: (t[0] is not None, t[0]))
        stopped = []
        for _, kid in idle:
            if used + self.kernel_peak_mb <= limit:
                break
            self.log.warning(
                "medlab: shutting down idle kernel %s (%.0f MiB) to make room for a kernel that "
                "may need %.0f MiB (in use %.0f of %.0f MiB); re-run its notebook from the top "
                "to get it back",
                kid,
                sizes[kid],
                self.kernel_peak_mb,
                used,
                limit,
            )
            await self.shutdown_kernel(kid)
            used -= sizes[kid]
            stopped.append(kid)
        return stopped

    async def start_kernel(self, *, kernel_id: str | None = None, **kwargs: Any) -> str:  # type: ignore[override]
        if kernel_id is None or kernel_id not in self:
            await self.make_room()
        return await super().start_kernel(kernel_id=kernel_id, **kwargs)

    async def restart_kernel(self, kernel_id: str, now: bool = False) -> Any:  # type: ignore[override]
        await self.make_room(keep=kernel_id)
        return await super().restart_kernel(kernel_id, now=now)
