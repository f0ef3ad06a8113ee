"""Faults during `medlab reproduce`, run as a subprocess on the fastest notebook (00_tour): Ctrl-C
and SIGKILL mid-notebook, two runs into one --output at once, a read-only --output.

In each case the earlier complete run is untouched (byte for byte), the partial run is marked in
its ``run.json``, ``latest`` points at a complete run and no kernel connection file is left in the
(private) temp folder. "Mid-notebook" is made certain, not timed: an IPython startup file (a
private ``$IPYTHONDIR``) holds each kernel after its first cell, writes a marker and waits for a
``go`` file, so every signal is sent while a kernel is running, whatever the machine's speed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from processes import SAFETY_S, alive, wait_for

from medlab import audit
from medlab.results import is_complete, run_state

NOTEBOOK = "00_tour"
DATASET = "breastmnist"
HOLD = """\
import os, pathlib, time
_fault = os.environ.get("MEDLAB_FAULT_DIR")
if _fault:
    def _medlab_hold(result=None):
        get_ipython().events.unregister("post_run_cell", _medlab_hold)
        marker = pathlib.Path(_fault, f"started-{os.getpid()}")
        marker.write_text(os.environ.get("MEDLAB_RUN_DIR", ""))
        while not pathlib.Path(_fault, "go").exists():
            time.sleep(0.05)
    get_ipython().events.register("post_run_cell", _medlab_hold)
"""


@pytest.fixture(scope="module")
def base(data_dir):
    """A scratch folder for the module (one earlier run, private temp folders)."""
    if data_dir is None or not (data_dir / f"{DATASET}.npz").exists():
        pytest.skip("the shared MedMNIST data ($MEDLAB_TEST_DATA_DIR) is not here")
    folder = Path(tempfile.mkdtemp(prefix="medlab-faults-"))
    folder.chmod(0o755)
    startup = folder / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-medlab-hold.py").write_text(HOLD)
    for p in [folder, *folder.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    yield folder
    for p in [folder, *folder.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _env(base: Path, tmp: Path, fault: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLAB_")}
    env.update(
        TMPDIR=str(tmp),
        HOME=str(tmp),
        IPYTHONDIR=str(base / "ipython"),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MEDLAB_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    if fault is not None:
        env["MEDLAB_FAULT_DIR"] = str(fault)
    return env


def _start(
    base: Path, out: Path, tmp: Path, data_dir: Path, fault: Path | None = None, **popen
) -> subprocess.Popen:
    """``medlab reproduce --quick 00_tour`` into ``out``, in its own session, TMPDIR ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.chmod(0o777)
    if fault is not None:
        fault.mkdir(parents=True, exist_ok=True)
        fault.chmod(0o777)
    cmd = [sys.executable, "-m", "medlab", "reproduce", "--quick", "--no-html"]
    cmd += ["--data-dir", str(data_dir), "-p", f"dataset={DATASET}", "--output", str(out)]
    return subprocess.Popen(
        [*cmd, NOTEBOOK],
        env=_env(base, tmp, fault),
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **popen,
    )


def _held(fault: Path, n: int = 1) -> list[Path]:
    """Wait until ``n`` kernels are held mid-notebook; returns their markers."""
    return wait_for(
        lambda: (m := sorted(fault.glob("started-*"))) and len(m) >= n and m, "a kernel"
    )


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file (sha256 of its bytes) and link (its target) under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _leftovers(tmp: Path) -> list[Path]:
    """Kernel connection files (jupyter's default tmp*.json, kernel-*.json) and medlab's
    private kernel folders left in the temp folder."""
    found = list(tmp.glob("*.json")) + list(tmp.glob("medlab-kernel-*"))
    return found + list(tmp.rglob("kernel-*.json"))


@pytest.fixture(scope="module")
def earlier(base, data_dir):
    """An output folder holding one complete run; returns (output, run, its snapshot)."""
    out = base / "out"
    p = _start(base, out, base / "tmp-earlier", data_dir)
    stdout, stderr = p.communicate(timeout=SAFETY_S)
    assert p.returncode == 0, stdout + stderr
    run = (out / "latest").resolve()
    assert run_state(run)["status"] == "complete"
    return out, run, _snapshot(run)


def _check_untouched(earlier) -> None:
    out, run, snap = earlier
    assert _snapshot(run) == snap, "the earlier complete run changed"
    latest = (out / "latest").resolve()
    assert is_complete(latest) and (latest / "results" / f"{NOTEBOOK}.json").exists()


def _new_runs(earlier) -> list[Path]:
    out, run, _ = earlier
    return sorted(p for p in (out / "runs").iterdir() if p != run)


def test_ctrl_c_mid_notebook_marks_the_run_interrupted(earlier, base, data_dir):
    out, run, _ = earlier
    before = set(_new_runs(earlier))
    tmp, fault = base / "tmp-sigint", base / "fault-sigint"
    p = _start(base, out, tmp, data_dir, fault)
    (marker,) = _held(fault)
    partial, kernel = Path(marker.read_text()), int(marker.name.split("-")[1])
    os.killpg(p.pid, signal.SIGINT)  # a terminal's Ctrl-C (the kernel has its own session)
    stdout, stderr = p.communicate(timeout=SAFETY_S)
    assert p.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "interrupted" in lines[0] and str(partial) in lines[0] and str(run) in lines[0]
    assert set(_new_runs(earlier)) - before == {partial}
    assert run_state(partial)["status"] == "interrupted"
    assert (out / "latest").resolve() == run
    _check_untouched(earlier)
    # killed with its process group; on a loaded machine the OS may take a moment to tear it
    # down (seen once in CI), so wait for that: the safety limit only stops a kernel that survives
    wait_for(lambda: not alive(kernel), "the kernel to be gone")
    assert not _leftovers(tmp)
    with pytest.raises(audit.AuditError, match="incomplete") as err:
        audit.resolve_run(partial)
    assert f"last complete run is {run}" in str(err.value)
    assert audit.resolve_run(out) == run


def test_sigkill_mid_notebook_leaves_the_run_marked_running(earlier, base, data_dir):
    out, run, _ = earlier
    before = set(_new_runs(earlier))
    tmp, fault = base / "tmp-sigkill", base / "fault-sigkill"
    p = _start(base, out, tmp, data_dir, fault)
    (marker,) = _held(fault)
    partial, kernel = Path(marker.read_text()), int(marker.name.split("-")[1])
    os.kill(p.pid, signal.SIGKILL)  # no handler runs: the mark made at the start must say it
    p.communicate(timeout=SAFETY_S)
    assert set(_new_runs(earlier)) - before == {partial}
    assert run_state(partial)["status"] == "running"
    assert not is_complete(partial)
    assert (out / "latest").resolve() == run
    _check_untouched(earlier)
    wait_for(lambda: not alive(kernel), "the orphaned kernel to exit")  # ipykernel's parent poller
    assert not _leftovers(tmp)  # the connection file went as soon as the kernel was up
    with pytest.raises(audit.AuditError, match="never finished") as err:
        audit.resolve_run(partial)
    assert f"last complete run is {run}" in str(err.value)
    assert audit.resolve_run(out) == run


def test_two_runs_into_one_output_at_once(earlier, base, data_dir):
    out, run, _ = earlier
    before = set(_new_runs(earlier))
    fault = base / "fault-both"
    tmps = [base / "tmp-a", base / "tmp-b"]
    procs = [_start(base, out, t, data_dir, fault) for t in tmps]
    markers = _held(fault, 2)  # both kernels are mid-notebook at the same time
    assert len({Path(m.read_text()) for m in markers}) == 2  # each run has its own folder
    (fault / "go").write_text("")
    for p in procs:
        stdout, stderr = p.communicate(timeout=SAFETY_S)
        assert p.returncode == 0, stdout + stderr
    new = set(_new_runs(earlier)) - before
    assert new == {Path(m.read_text()) for m in markers}
    for r in new:
        state = run_state(r)
        assert state["status"] == "complete" and state["outcome"] == "passed"
        assert (r / "results" / f"{NOTEBOOK}.json").exists()
    assert (out / "latest").resolve() in new
    _check_untouched(earlier)
    for t in tmps:
        assert not _leftovers(t)


def _without_dac_override() -> None:
    """In the child before exec: drop root's CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    capability bounding set, so that permission bits bind it as they bind any user."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "cannot drop CAP_DAC_OVERRIDE (prctl)")


def test_read_only_output_is_refused_before_anything_runs(earlier, base, data_dir):
    out, run, _ = earlier
    before, latest = sorted((out / "runs").iterdir()), (out / "latest").resolve()
    tmp = base / "tmp-readonly"
    as_other = {}
    if os.geteuid() == 0:  # root writes into read-only folders: drop that power first
        as_other = {"preexec_fn": _without_dac_override}
    modes = {p: p.stat().st_mode for p in [out, *out.rglob("*")] if not p.is_symlink()}
    try:
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        proc = _start(base, out, tmp, data_dir, **as_other)
        stdout, stderr = proc.communicate(timeout=SAFETY_S)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
    assert proc.returncode == 2, stdout + stderr
    assert "Traceback" not in stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "read-only" in lines[0] and "writable --output" in lines[0], stderr
    assert sorted((out / "runs").iterdir()) == before  # no run folder was made
    assert (out / "latest").resolve() == latest
    _check_untouched(earlier)
    assert not _leftovers(tmp)
