"""medlab.harness.binder.MemoryAwareKernelManager with real kernels: it shuts down idle kernels,
longest idle first, when a new kernel would not fit in the memory limit, and never a busy one."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import pytest

pytest.importorskip("jupyter_server")

from medlab.harness import binder  # noqa: E402


def _run(coro):
    return asyncio.run(coro)


async def _manager(tmp_path, **config):
    km = binder.MemoryAwareKernelManager(root_dir=str(tmp_path), **config)
    return km


async def _start(km):
    kid = await km.start_kernel(kernel_name="python3")
    kernel = km.get_kernel(kid)
    kc = kernel.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)  # an imported ipykernel, not a process just forked
    finally:
        kc.stop_channels()
    kernel.execution_state = "idle"  # the server's activity monitor sets it from status messages
    return kid


def test_a_new_kernel_shuts_down_the_longest_idle_one_when_it_would_not_fit(tmp_path):
    async def go():
        km = await _manager(tmp_path, memory_limit_mb=1e6)
        try:
            a = await _start(km)
            b = await _start(km)
            assert set(km.list_kernel_ids()) == {a, b}  # no pressure: nothing shut down
            sizes = km.kernel_memory_mb()
            assert all(v > 10 for v in sizes.values()), sizes  # real processes, real memory
            server = binder.process_mb(os.getpid())
            # room for the server, one of the two kernels and a new one, not both
            km.kernel_peak_mb = 50.0
            km.memory_limit_mb = server + max(sizes.values()) + 50.0 + 1.0
            km.get_kernel(a).last_activity -= timedelta(minutes=5)  # a idle longer than b
            c = await _start(km)
            assert set(km.list_kernel_ids()) == {b, c}, "the longest idle kernel goes first"
            km.get_kernel(b).execution_state = "busy"
            km.memory_limit_mb = 1.0  # nothing fits: every idle kernel goes, a busy one stays
            d = await _start(km)
            assert set(km.list_kernel_ids()) == {b, d}
        finally:
            await km.shutdown_all(now=True)

    _run(go())


def test_no_limit_shuts_nothing_down(tmp_path, monkeypatch):
    monkeypatch.delenv("MEM_LIMIT", raising=False)
    monkeypatch.setattr(binder, "_cgroup_limit_bytes", lambda pid=None: None)
    assert binder.memory_limit_mb(0.0) is None

    async def go():
        km = await _manager(tmp_path)
        try:
            a = await _start(km)
            assert await km.make_room() == [] and km.list_kernel_ids() == [a]
        finally:
            await km.shutdown_all(now=True)

    _run(go())


def test_memory_limit_sources(monkeypatch):
    monkeypatch.setenv("MEM_LIMIT", str(2048 * binder.MB))
    assert binder.memory_limit_mb(0.0) == 2048.0  # Binder / JupyterHub
    assert binder.memory_limit_mb(1000.0) == 1000.0  # the configuration wins
    monkeypatch.delenv("MEM_LIMIT")
    limit = binder._cgroup_limit_bytes()
    assert limit is None or limit > 0
    assert binder.process_mb(2**22 + 12345) == 0.0  # no such process


def test_the_room_made_is_the_quick_kernel_budget_and_binder_uses_the_manager():
    import json
    from pathlib import Path

    from medlab.harness.monitor import BUDGET_MB

    cfg = json.loads(
        (Path(__file__).resolve().parents[1] / "binder" / "jupyter_server_config.json").read_text()
    )
    assert (
        cfg["ServerApp"]["kernel_manager_class"] == "medlab.harness.binder.MemoryAwareKernelManager"
    )
    assert cfg["MemoryAwareKernelManager"]["kernel_peak_mb"] == BUDGET_MB["quick"]
    assert binder.MemoryAwareKernelManager.kernel_peak_mb.default_value == BUDGET_MB["quick"]


def test_every_notebook_tells_the_student_what_a_shut_down_kernel_means():
    import json
    from pathlib import Path

    for p in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        title = "".join(json.loads(p.read_text())["cells"][0]["source"])
        assert "**On Binder**" in title and "Restart Kernel" in title, p.name
        assert "and Run All Cells" in title, p.name
