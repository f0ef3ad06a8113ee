"""`medlab reproduce --jobs N` and `--scheduler ADDRESS` (issue 29): the runs of a tiny demo
notebook (no training) over three seeds give the same table, rows, order and expected entries in
parallel, locally and on a Dask cluster, as one at a time; each kernel gets its share of the
cores; bad values are refused before anything runs; Ctrl-C stops every kernel.

No check depends on the machine's speed: the Ctrl-C test waits for markers the kernels write.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import ROOT, tiny_notebook
from processes import SAFETY_S, alive, wait_for

from medlab.harness import reproduce as R
from medlab.harness.backends import THREAD_VARS, LocalBackend, cpu_count, thread_env
from medlab.harness.base import ReproduceError
from medlab.harness.cli import main
from medlab.results import run_state

SEEDS = [0, 10, 20]
#: records numbers that depend on the seed alone, and writes the thread settings its kernel saw
DEMO = """\
import json, os
import numpy as np
import medlab
from medlab.harness.backends import THREAD_VARS
from medlab.utils import set_threads
data = medlab.load("breastmnist", data_dir=data_dir)
rec = medlab.Recorder("00_par", datasets=[data], seed=seed, quick=quick)
rng = np.random.default_rng(seed)
rec.record("demo.test_auc", 0.8 + 0.001 * rng.standard_normal(), tol=0.005)
rec.record("demo.draw", float(rng.random()))
rec.record("test.images", len(data["test"]))
seen = {v: os.environ.get(v) for v in THREAD_VARS}
seen["torch"] = set_threads()
seen["parent"] = os.getppid()  # the process that started this kernel
with open(os.path.join(os.environ["MEDLAB_OUTPUT_DIR"], "threads.json"), "w") as fh:
    json.dump(seen, fh)
"""
#: holds each kernel mid-notebook until a `go` file appears (it never does here)
HOLD = """\
import os, pathlib, time
fault = pathlib.Path(os.environ["MEDLAB_FAULT_DIR"])
(fault / f"started-{os.getpid()}").write_text(os.environ["MEDLAB_RUN_DIR"])
while not (fault / "go").exists():
    time.sleep(0.05)
"""
#: the command line, on a notebook folder of the test's own
COMMAND = """\
import functools, pathlib, sys
from medlab.harness import reproduce as R
R.reproduce = functools.partial(R.reproduce, folder=pathlib.Path(sys.argv[1]))
from medlab.harness.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory, data_dir):
    if data_dir is None or not (data_dir / "breastmnist.npz").exists():
        pytest.skip("the shared MedMNIST data ($MEDLAB_TEST_DATA_DIR) is not here")
    root = tmp_path_factory.mktemp("parallel")
    (root / "nbs").mkdir()
    tiny_notebook(root / "nbs" / "00_par.ipynb", DEMO)
    return root


def _run(root: Path, data_dir: Path, name: str, **kw) -> dict:
    """One reproduce call over SEEDS (kernel thread settings left to it); its exit code, run
    folder and printed text."""
    kw.setdefault("update", True)
    kw.setdefault("expected", root / f"{name}.yaml")
    kw.setdefault("folder", root / "nbs")
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        for var in THREAD_VARS:
            mp.delenv(var, raising=False)
        status = R.reproduce(
            None,
            quick=True,
            output=root / name,
            data_dir=data_dir,
            seeds=SEEDS,
            html=False,
            **kw,
        )
    return {"status": status, "run": (root / name / "latest").resolve(), "out": printed.getvalue()}


@pytest.fixture(scope="module")
def runs(demo, data_dir):
    """--update-expected over three seeds, one at a time and with --jobs 2."""
    one = _run(demo, data_dir, "one", jobs=1)
    two = _run(demo, data_dir, "two", jobs=2)
    two["workers_left"] = _workers()
    return one, two


def _workers() -> list[psutil.Process]:
    """Worker processes of this test process still alive."""
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if "medlab.harness.workers" in " ".join(p.cmdline())
    ]


def _rows(run: Path) -> list[tuple[str, ...]]:
    """The table's rows (notebook, seed, dataset, key, value), in its order."""
    with (run / "reproduce_quick.csv").open() as fh:
        return [
            (r["notebook"], r["seed"], r["dataset"], r["key"], r["value"])
            for r in csv.DictReader(fh)
        ]


def _threads(run: Path) -> list[dict]:
    return [json.loads((run / f"seed{s}" / "threads.json").read_text()) for s in SEEDS]


def test_jobs_2_gives_the_rows_of_jobs_1_in_the_same_order(runs):
    one, two = runs
    assert one["status"] == 0 and two["status"] == 0, one["out"] + two["out"]
    rows = _rows(two["run"])
    assert rows == _rows(one["run"])  # same values, same order
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), key=int)  # (notebook, seed) order
    assert {r[1] for r in rows} == {str(s) for s in SEEDS} and len(rows) == 3 * len(SEEDS)
    for run in (one["run"], two["run"]):  # each seed its own folder, the run marked complete
        assert all((run / f"seed{s}" / "results" / "00_par.json").exists() for s in SEEDS)
        state = run_state(run)
        assert state["status"] == "complete" and state["notebook_runs"] == len(SEEDS)
    lines = [[ln for ln in r["out"].splitlines() if ln.startswith("[medlab] 00_par")] for r in runs]
    labels = [sorted(ln.split(" ... ")[0] for ln in ls) for ls in lines]
    assert labels[1] == labels[0] == [f"[medlab] 00_par (quick, seed {s})" for s in SEEDS]
    assert all(" ... ok " in ln for ln in lines[1]), two["out"]  # one whole line per run
    assert not two["workers_left"], "worker processes outlived the run"


def test_update_expected_via_jobs_2_writes_the_entries_of_jobs_1(runs, demo):
    one, two = runs
    written = [yaml.safe_load((demo / f"{n}.yaml").read_text()) for n in ("one", "two")]
    entries = next(iter(written[0].values()))["quick"]["00_par"]["breastmnist"]
    assert set(entries) == {"demo.test_auc", "demo.draw", "test.images"}
    assert entries["demo.draw"]["seeds"] == SEEDS and entries["demo.draw"]["sd"] > 0
    assert written[1] == written[0]


def test_update_expected_via_jobs_2_writes_nothing_when_a_run_failed(demo, data_dir):
    folder = demo / "failing"
    folder.mkdir()
    tiny_notebook(folder / "00_par.ipynb", DEMO + "assert seed != 10, 'seed 10 fails here'\n")
    failing = _run(demo, data_dir, "failing", jobs=2, folder=folder)
    assert failing["status"] == 1
    assert "seed 10 fails here" in failing["out"] and "not updating" in failing["out"]
    assert not (demo / "failing.yaml").exists()  # nothing written
    assert run_state(failing["run"])["outcome"] == "failed"


def test_each_kernel_gets_its_share_of_the_cores(runs):
    one, two = runs
    cores = cpu_count()
    if cores < 2:
        pytest.skip("one CPU core: --jobs 2 runs one at a time here")
    share = str(max(1, cores // 2))
    for seen in _threads(two["run"]):
        assert {v: seen[v] for v in THREAD_VARS} == dict.fromkeys(THREAD_VARS, share)
        assert seen["torch"] == int(share)
    for seen in _threads(one["run"]):  # one at a time: every core
        assert seen["OMP_NUM_THREADS"] == str(cores) and seen["torch"] == cores
    # one at a time: this process starts each kernel; --jobs 2: worker processes do
    assert {seen["parent"] for seen in _threads(one["run"])} == {os.getpid()}
    assert os.getpid() not in {seen["parent"] for seen in _threads(two["run"])}
    assert f"2 at a time in worker processes on this machine, {share} thread(s) each" in two["out"]


def test_a_lower_cap_in_the_environment_is_kept():
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "junk", "MEDLAB_THREADS": "16"}
    assert thread_env(2, env, cores=8) == {
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "4",
        "OPENBLAS_NUM_THREADS": "4",
        "MEDLAB_THREADS": "4",
    }
    assert set(thread_env(3, {}, cores=2).values()) == {"1"}  # never 0 threads


def test_more_jobs_than_cores_warns_once_and_runs_one_per_core(capsys):
    cores = cpu_count()
    with LocalBackend(cores + 3) as backend:
        assert backend.slots == cores
    out = capsys.readouterr().out
    assert out.count("warning") == 1 and f"--jobs {cores + 3}" in out
    assert f"running {cores} at a time" in out


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
def test_bad_jobs_values_are_refused_before_anything_runs(tmp_path, capsys, value):
    out = tmp_path / "out"
    assert main(["reproduce", "00", "--quick", "--jobs", value, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--jobs" in err and "e.g. --jobs 2" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("value", [0, -1, "2", True, 1.5])
def test_the_api_refuses_bad_jobs_values(tmp_path, value):
    with pytest.raises(ReproduceError, match="e.g. --jobs 2"):
        R.reproduce(["00"], quick=True, output=tmp_path / "out", jobs=value)
    assert not (tmp_path / "out").exists()


def test_a_missing_dask_names_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    out = tmp_path / "out"
    args = ["reproduce", "00", "--quick", "--output", str(out), "--scheduler", "tcp://h:8786"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "pip install" in err and "[cluster]" in err and not out.exists()


def test_an_unreachable_scheduler_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["reproduce", "00", "--quick", "--output", str(out), "--scheduler", "nonsense://x"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--scheduler nonsense://x" in err and "dask scheduler" in err and not out.exists()


def test_the_dask_backend_gives_the_rows_of_the_local_one(runs, demo, data_dir, monkeypatch):
    from distributed import LocalCluster

    one, _ = runs
    for var in THREAD_VARS:  # the workers (and their kernels) inherit this environment
        monkeypatch.delenv(var, raising=False)
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster:
        dask = _run(
            demo,
            data_dir,
            "dask",
            update=False,
            expected=demo / "one.yaml",
            scheduler=cluster.scheduler_address,
        )
    assert dask["status"] == 0, dask["out"]  # every number reproduced jobs 1's values
    assert _rows(dask["run"]) == _rows(one["run"])
    assert f"2 at a time on the Dask cluster at {cluster.scheduler_address}" in dask["out"]
    share = str(max(1, cpu_count() // 2))  # two Dask workers share this host
    assert {seen["OMP_NUM_THREADS"] for seen in _threads(dask["run"])} == {share}


def test_ctrl_c_with_jobs_2_kills_every_kernel(tmp_path):
    if cpu_count() < 2:
        pytest.skip("one CPU core: --jobs 2 runs one at a time here, with no second kernel")
    (tmp_path / "nbs").mkdir()
    tiny_notebook(tmp_path / "nbs" / "00_hold.ipynb", HOLD)
    (tmp_path / "e.yaml").write_text("")
    fault, tmp, out = tmp_path / "fault", tmp_path / "tmp", tmp_path / "out"
    fault.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLAB_")}
    env.update(TMPDIR=str(tmp), MEDLAB_FAULT_DIR=str(fault), OMP_NUM_THREADS="1")
    args = ["reproduce", "--quick", "--no-html", "--jobs", "2", "--output", str(out)]
    args += ["--expected", str(tmp_path / "e.yaml"), "--seeds", *map(str, SEEDS)]
    p = subprocess.Popen(
        [sys.executable, "-c", COMMAND, str(tmp_path / "nbs"), *args],
        env=env,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        markers = wait_for(
            lambda: len(m := sorted(fault.glob("started-*"))) >= 2 and m, "2 kernels"
        )
        os.killpg(p.pid, signal.SIGINT)  # a terminal's Ctrl-C: the workers have their own session
        stdout, stderr = p.communicate(timeout=SAFETY_S)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[medlab] interrupted: run "), stderr
    (partial,) = {Path(m.read_text()) for m in markers}
    assert run_state(partial)["status"] == "interrupted" and not (out / "latest").exists()
    assert stdout.count(" ... interrupted") == 2, stdout
    kernels = [int(m.name.split("-")[1]) for m in markers]
    # killed (SIGKILL to its process group); on a loaded machine the OS may take a moment to
    # tear it down, so wait for that (the safety limit only stops a kernel that survives)
    wait_for(lambda: not [k for k in kernels if alive(k)], "the kernels to be gone")
    left = [
        q
        for q in psutil.process_iter()
        if "medlab.harness.workers" in " ".join(_quietly(q.cmdline))
        and _quietly(q.environ).get("MEDLAB_FAULT_DIR") == str(fault)
    ]
    assert not left, "worker processes outlived the interrupted run"
    assert not list(tmp.glob("medlab-kernel-*")), "a kernel's private folder was left behind"


def _quietly(method):
    try:
        return method()
    except psutil.Error:
        return {} if method.__name__ == "environ" else []


#: two notebooks that record while the other runs: 01_a records, then waits until 02_b recorded
SIDE = """\
import os, pathlib, time
import medlab
out = pathlib.Path(os.environ["MEDLAB_OUTPUT_DIR"])
me, other = {me!r}, {other!r}
def wait_for(name):  # the other notebook's marker; a minute means it is not running beside
    t0 = time.monotonic()
    while not (out / name).exists():
        assert time.monotonic() - t0 < 60, f"{{name}} never appeared: not run side by side"
        time.sleep(0.05)
if me == "02_b":
    wait_for("01_a-recorded")
data = medlab.load("breastmnist", data_dir=data_dir)
rec = medlab.Recorder(me, datasets=[data], seed=seed, quick=quick)
rec.record("demo.value", 1.0 if me == "01_a" else 2.0)
(out / f"{{me}}-recorded").write_text("")
wait_for(f"{{other}}-recorded")
"""


@pytest.mark.skipif(cpu_count() < 2, reason="two runs at once need two cores")
def test_notebooks_side_by_side_in_one_folder_each_keep_their_own_results(demo, data_dir, tmp_path):
    """--jobs 2 over two notebooks of one run folder: each kernel writes its results file while
    the other notebook runs. Each run is credited with its own file only (its ``run_as``), so
    neither fails as 'records under another name'; a wrong name is still caught."""
    (tmp_path / "nbs").mkdir()
    tiny_notebook(tmp_path / "nbs" / "01_a.ipynb", SIDE.format(me="01_a", other="02_b"))
    tiny_notebook(tmp_path / "nbs" / "02_b.ipynb", SIDE.format(me="02_b", other="01_a"))
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        for var in THREAD_VARS:  # a cap of 1 thread would allow one run at a time
            mp.delenv(var, raising=False)
        status = R.reproduce(None, quick=True, output=tmp_path / "out", jobs=2, html=False,
                             data_dir=data_dir, allow_new=True, folder=tmp_path / "nbs")  # fmt: skip
    assert status == 0, printed.getvalue()
    run = (tmp_path / "out" / "latest").resolve()
    assert [r[0] for r in _rows(run)] == ["01_a", "02_b"], printed.getvalue()
    docs = {f.stem: json.loads(f.read_text()) for f in (run / "results").glob("*.json")}
    assert {k: d["run_as"] for k, d in docs.items()} == {"01_a": "01_a", "02_b": "02_b"}
    # a notebook that records under another notebook's name still fails, with the fix
    wrong = (
        'import medlab\nd = medlab.load("breastmnist", data_dir=data_dir)\n'
        'medlab.Recorder("02_b", datasets=[d], quick=quick).record("demo.value", 1.0)'
    )
    tiny_notebook(tmp_path / "nbs" / "01_a.ipynb", wrong)
    (tmp_path / "nbs" / "02_b.ipynb").unlink()
    with contextlib.redirect_stdout(printed := io.StringIO()):
        status = R.reproduce(None, quick=True, output=tmp_path / "out2", html=False,
                             data_dir=data_dir, allow_new=True, folder=tmp_path / "nbs")  # fmt: skip
    assert status == 1 and "records under the name '02_b', not its own '01_a'" in printed.getvalue()


class _Threads:
    """A backend of ``slots`` threads for the scheduler's tests; ``submitted``: the labels of
    the tasks in the order they were started."""

    def __init__(self, slots):
        from concurrent.futures import ThreadPoolExecutor

        self.slots, self.pool, self.submitted = slots, ThreadPoolExecutor(slots), []

    def submit(self, fn, task, job):
        self.submitted.append(task.label)
        return self.pool.submit(fn, task, job, slots=self.slots)

    def stop(self):
        self.pool.shutdown(cancel_futures=True)

    def describe(self):
        return f"{self.slots} threads"


def test_the_audit_starts_only_when_the_runs_it_reads_have_ended(tmp_path):
    """The scheduler with two slots: a run marked ``after_all`` (the audit notebook, which has a
    ``run_dir`` parameter) does not take the slot that frees while an earlier run still runs,
    in its folder or another seed's. Here run A waits up to 3 s for the audit to start: it
    must not."""
    import threading

    from medlab.harness.base import NotebookRun
    from medlab.harness.schedule import Task, run_tasks

    audit_started, log, waiter = threading.Event(), [], [""]

    def execute(task, job, *, slots):
        log.append(("start", task.label))
        if task.after_all:
            audit_started.set()
        if task.label == waiter[0]:
            log.append(("A saw the audit start", audit_started.wait(3.0)))
        log.append(("end", task.label))
        return NotebookRun(task.label, True, 0.0, tmp_path), [], ""

    # one folder, where A waits; then two seeds, notebook by notebook as reproduce orders them
    # (a A b B audit audit), where seed 1's A waits: seed 0's a and b end early, and the audit
    # of seed 0 must wait for A all the same (it reads every seed's results)
    for seeds, waiter[0] in (([0], "a"), ([0, 1], "A")):
        audit_started.clear(), log.clear()
        tasks = [Task(Path(f"{k}.ipynb"), tmp_path / f"seed{s}", {}, s, k if s else k.lower(),
                      after_all=k == "audit") for k in ("A", "B", "audit") for s in seeds]  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):
            done = run_tasks(tasks, execute, None, _Threads(2))
        assert [r.notebook for r, _ in done] == [t.label for t in tasks]
        assert ("A saw the audit start", False) in log
        first_audit = min(i for i, e in enumerate(log) if e[0] == "start" and "audit" in e[1])
        assert first_audit > log.index(("end", waiter[0])), log
    # reproduce marks the notebooks with a run_dir parameter: the audit, and only it
    import papermill

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    marked = [p.stem for p in notebooks if "run_dir" in papermill.inspect_notebook(str(p))]
    assert marked == ["10_audit"]


def test_a_kernel_saving_waits_for_the_manifest_lock(tmp_path):
    """Recorder.save reads, changes and writes the folder's manifest under an exclusive lock, so
    kernels recording side by side (--jobs) keep each other's digests: while this process holds
    the lock, another process's save waits; it completes once the lock is released."""
    import time

    from medlab.results.manifest import locked, read_digests

    (tmp_path / "results").mkdir()
    code = (
        "import pathlib, sys; from medlab.results import Recorder\n"
        "rec = Recorder('01_a', output=sys.argv[1])\n"
        "pathlib.Path(sys.argv[1], 'ready').write_text('')\n"
        "rec.save()\n"
    )
    with locked(tmp_path / "results"):
        proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)])
        wait_for(lambda: (tmp_path / "ready").exists() or proc.poll() is not None, "the child")
        time.sleep(0.5)  # a save takes milliseconds: without the lock it would be done
        assert proc.poll() is None and not (tmp_path / "results" / "01_a.json").exists()
    assert proc.wait(60) == 0 and set(read_digests(tmp_path / "results")) == {"01_a.json"}


def test_with_two_slots_the_longest_runs_start_first_and_the_table_keeps_its_order(tmp_path):
    """``Task.cost`` (the notebook's seconds in the last complete run): with two slots the
    costliest ready run starts first (unknown costs, 0, keep their order; the audit still waits
    for every run before it); with one slot the order is the table's. Either way the results
    come back in the table's order."""
    from medlab.harness.base import NotebookRun
    from medlab.harness.schedule import Task, run_tasks

    def execute(task, job, *, slots):
        return NotebookRun(task.label, True, 0.0, tmp_path), [], ""

    costs = {"a": 10.0, "b": 50.0, "c": 0.0, "e": 0.0, "d": 30.0, "audit": 100.0}
    tasks = [Task(Path(f"{k}.ipynb"), tmp_path, {}, 0, k, after_all=k == "audit", cost=c)
             for k, c in costs.items()]  # fmt: skip
    for slots, order in ((2, ["b", "d", "a", "c", "e", "audit"]), (1, list(costs))):
        backend = _Threads(slots)
        with contextlib.redirect_stdout(io.StringIO()):
            done = run_tasks(tasks, execute, None, backend)
        backend.stop()
        assert backend.submitted == order
        assert [r.notebook for r, _ in done] == list(costs)


def _past_run(out, name, status, seconds, mode="quick"):
    """A run folder ``out/runs/name`` whose ``run.json`` has this status, mode and seconds."""
    (out / "runs" / name).mkdir(parents=True)
    doc = {"status": status, "mode": mode, "seconds": seconds}
    (out / "runs" / name / "run.json").write_text(json.dumps(doc))


def test_a_complete_run_leaves_its_seconds_for_the_next_runs_order(tmp_path):
    """reproduce writes each notebook's longest time over its seeds into ``run.json`` (not a
    notebook with a failed run); ``past_seconds`` takes each notebook's from the newest
    complete run of the same mode that ran it, and nothing from running, interrupted or other
    modes' runs."""
    from medlab.harness.base import NotebookRun
    from medlab.harness.runs import notebook_seconds, past_seconds

    runs = [NotebookRun(nb, ok, t, tmp_path) for nb, ok, t in (
        ("03_x", True, 12.34), ("03_x", True, 20.0), ("07_y", True, 5.0), ("08_z", True, 9.0),
        ("08_z", False, 1.0))]  # fmt: skip
    assert notebook_seconds(runs) == {"03_x": 20.0, "07_y": 5.0}
    assert past_seconds(tmp_path, "quick") == {}  # no runs/ folder yet
    _past_run(tmp_path, "20260101T000000Z-quick", "complete", {"03_x": 1.0, "07_y": 7.0})
    _past_run(tmp_path, "20260102T000000Z-quick", "complete", {"03_x": 2.0})  # 03 alone
    _past_run(tmp_path, "20260103T000000Z-full", "complete", {"03_x": 3.0}, mode="full")
    _past_run(tmp_path, "20260104T000000Z-quick", "interrupted", {"03_x": 4.0})
    _past_run(tmp_path, "20260105T000000Z-quick", "running", {"03_x": 5.0})
    assert past_seconds(tmp_path, "quick") == {"03_x": 2.0, "07_y": 7.0}
    assert past_seconds(tmp_path, "full") == {"03_x": 3.0}


@pytest.mark.parametrize(
    "seconds",
    [[1, 2], {"03_x": "12"}, {"03_x": None}, {"03_x": True}, {"03_x": -1.0},
     {"03_x": float("inf")}, {"03_x": float("nan")}, "x"],
)  # fmt: skip
def test_a_hand_edited_run_json_is_passed_over_not_fatal(tmp_path, seconds):
    """Only the order runs start in depends on these numbers: a value that is not a finite
    number >= 0 is skipped, and a run.json or run folder that cannot be read is passed over."""
    from medlab.harness.runs import past_seconds

    _past_run(tmp_path, "20260102T000000Z-quick", "complete", seconds)
    _past_run(tmp_path, "20260101T000000Z-quick", "complete", {"03_x": 2.0, "07_y": 3.0})
    got = past_seconds(tmp_path, "quick")
    assert got == {"03_x": 2.0, "07_y": 3.0}, got


def test_an_unreadable_run_folder_or_huge_number_is_passed_over(tmp_path, monkeypatch):
    from medlab.harness import runs as runs_mod

    _past_run(tmp_path, "20260101T000000Z-quick", "complete", {"03_x": 2.0})
    (tmp_path / "runs" / "20260102T000000Z-quick").mkdir()
    (tmp_path / "runs" / "20260102T000000Z-quick" / "run.json").write_text(
        '{"status": "complete", "mode": "quick", "seconds": {"03_x": 1' + "0" * 5000 + "}}"
    )  # json refuses integers of over 4300 digits (ValueError)
    assert runs_mod.past_seconds(tmp_path, "quick") == {"03_x": 2.0}
    real = runs_mod.run_state

    def denied(run):  # a run folder another user left, which we may not enter
        if run.name.startswith("20260102"):
            raise PermissionError(13, "Permission denied", str(run))
        return real(run)

    monkeypatch.setattr(runs_mod, "run_state", denied)
    assert runs_mod.past_seconds(tmp_path, "quick") == {"03_x": 2.0}
    (tmp_path / "runs").rename(tmp_path / "old")
    (tmp_path / "runs").write_text("not a folder")
    assert runs_mod.past_seconds(tmp_path, "quick") == {}


def test_reproduce_records_each_notebooks_seconds(runs):
    one, two = runs
    for r in (one, two):
        seconds = run_state(r["run"])["seconds"]
        assert list(seconds) == ["00_par"] and seconds["00_par"] > 0, seconds
