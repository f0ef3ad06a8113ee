"""A student's walk through the curriculum on Binder's memory: 00 to 10 in one JupyterLab session.

Binder gives the Jupyter server and every kernel 2 GB together. A student opens notebook 00, runs
all its cells, opens 01, runs it, and so on, and never shuts a kernel down. This script does
exactly that with a real JupyterLab driven by a real browser:

* the server (and so every kernel it starts) runs in a memory cgroup limited to ``--limit-mb``
  (2048 by default; cgroup v1 or v2, which needs root on Linux: elsewhere the script says so and
  exits 0 without measuring), without swap, with ``binder/jupyter_server_config.json`` as its
  configuration (the settings ``binder/postBuild`` installs, including
  :class:`medlab.harness.binder.MemoryAwareKernelManager`);
* headless Chromium (the system ``chromium``, driven by playwright) opens each notebook in turn
  through JupyterLab's own commands (``docmanager:open``, ``notebook:run-all-cells``: the menu's
  "Run All Cells"), leaving every earlier tab open;
* the notebooks are copies in a temporary folder with the parameters cell's ``dataset`` and
  ``data_dir`` set as a student would edit them; models go to a fresh model cache there (a
  first visit: every model is trained).

Per notebook it reports the code cells that ran and that failed, kernel deaths (the larger of the
memory cgroup's OOM-kill count and the number of JupyterLab's "kernel died / restarting"
dialogs: a killed kernel whose tab is open gives both), the kernels the
kernel manager shut down to make room, the kernels still running, and the peak memory of the
server plus its kernels (sum of proportional set sizes, sampled every 0.2 s) and of the whole cgroup
(``memory.max_usage_in_bytes`` / ``memory.peak``: also counts page cache, which the kernel reclaims
before it kills). At the end it goes back to the first notebook and runs it again from the top,
as the notebooks' banner tells a student to do when its kernel was shut down. Usage (root)::

    python benchmarks/bench_binder_walk.py --data-dir ../shared/medmnist \\
        --datasets breastmnist pneumoniamnist_balanced_subset --json walk.json

Exit code 1 when a kernel died or a cell failed. Results on the shared files are results on
unofficial copies of MedMNIST.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import psutil

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
V1 = Path("/sys/fs/cgroup/memory")
V2 = Path("/sys/fs/cgroup")


# ---------------------------------------------------------------------------------------------
# the memory cgroup


class Cgroup:
    """A memory cgroup with a hard limit and no swap (v1 or v2)."""

    def __init__(self, name: str, limit_mb: int) -> None:
        if V1.joinpath("memory.limit_in_bytes").exists():
            self.v = 1
            self.path = V1 / name
        elif "memory" in (V2 / "cgroup.controllers").read_text().split():
            self.v = 2
            self.path = V2 / name
        else:  # pragma: no cover - checked by why_not()
            raise RuntimeError("no memory cgroup controller")
        self.path.mkdir(exist_ok=True)
        limit = str(limit_mb * MB)
        if self.v == 1:
            (self.path / "memory.limit_in_bytes").write_text(limit)
            if (self.path / "memory.memsw.limit_in_bytes").exists():
                (self.path / "memory.memsw.limit_in_bytes").write_text(limit)
        else:
            (self.path / "memory.max").write_text(limit)
            if (self.path / "memory.swap.max").exists():
                (self.path / "memory.swap.max").write_text("0")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def oom_kills(self) -> int:
        if self.v == 1:
            text = (self.path / "memory.oom_control").read_text()
        else:
            text = (self.path / "memory.events").read_text()
        m = re.search(r"oom_kill (\d+)", text)
        return int(m.group(1)) if m else 0

    def reset_peak(self) -> None:
        if self.v == 1:
            (self.path / "memory.max_usage_in_bytes").write_text("0")
        elif (self.path / "memory.peak").exists():
            try:
                (self.path / "memory.peak").write_text("0")  # Linux >= 6.12
            except OSError:
                pass

    def peak_mb(self) -> float:
        f = "memory.max_usage_in_bytes" if self.v == 1 else "memory.peak"
        try:
            return int((self.path / f).read_text()) / MB
        except (OSError, ValueError):
            return float("nan")

    def remove(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def why_not() -> str | None:
    """Why the walk cannot run here (None when it can)."""
    if sys.platform != "linux":
        return "needs Linux memory cgroups"
    if os.geteuid() != 0:
        return "needs root to create a memory cgroup"
    v2 = V2 / "cgroup.controllers"
    if not V1.joinpath("memory.limit_in_bytes").exists() and not (
        v2.exists() and "memory" in v2.read_text().split()
    ):
        return "no memory cgroup controller at /sys/fs/cgroup"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "needs the system chromium (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs playwright (the dev extra)"
    return None


class Sampler(threading.Thread):
    """Peak of the summed PSS (proportional set size: a page shared by n processes counts 1/n
    in each, so libraries shared by the server and kernels count once) of the cgroup's
    processes, sampled every ``period`` s."""

    def __init__(self, cgroup: Cgroup, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.cgroup, self.period = cgroup, period
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            for pid in self.cgroup.pids():
                try:
                    total += psutil.Process(pid).memory_full_info().pss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total / MB)
            self.stop.wait(self.period)

    def take(self) -> float:
        peak, self.peak = self.peak, 0.0
        return peak


# ---------------------------------------------------------------------------------------------
# the notebooks and the server


def prepare(
    folder: Path,
    dataset: str,
    data_dir: Path,
    only: list[str] | None = None,
    edition: str = "student",
) -> list[str]:
    """Copy the curriculum's notebooks (``edition``: the ``student`` or ``instructor`` edition
    that ``medlab editions`` builds, or the ``repository``'s own) with ``dataset`` and
    ``data_dir`` set in their parameters cells, as a student would edit them; returns their
    paths relative to ``folder``."""
    out = folder / "notebooks"
    out.mkdir(parents=True)
    names = []
    sources = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    sources = [s for s in sources if not only or s.name[:2] in only]
    if edition != "repository":
        from medlab.harness.editions import build_editions

        sources = build_editions(sources, folder / "editions")[edition]
    for src in sources:
        nb = nbformat.read(src, as_version=4)
        for cell in nb.cells:
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                src_text = cell.source
                src_text = re.sub(r"(?m)^dataset = .*$", f'dataset = "{dataset}"', src_text)
                src_text = re.sub(r"(?m)^data_dir = .*$", f'data_dir = "{data_dir}"', src_text)
                cell.source = src_text
        nbformat.write(nb, out / src.name)
        names.append(f"notebooks/{src.name}")
    return names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    folder: Path, cgroup: Cgroup, log: Path, manager: bool = True
) -> tuple[subprocess.Popen, str]:
    config = folder / "jupyter_config"
    config.mkdir()
    settings = json.loads((ROOT / "binder" / "jupyter_server_config.json").read_text())
    if not manager:  # the "before": JupyterLab's own kernel manager, which keeps every kernel
        settings.get("ServerApp", {}).pop("kernel_manager_class", None)
    (config / "jupyter_server_config.json").write_text(json.dumps(settings))
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(config),
        MEDLAB_CACHE_DIR=str(folder / "cache"),
        HOME=str(folder / "home"),
        JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
    )
    env.pop("MEM_LIMIT", None)  # the cgroup is the limit, as on Binder
    (folder / "home").mkdir()
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
           f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={folder}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.log_level=INFO"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        preexec_fn=lambda: cgroup.add(os.getpid()), start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab did not start: see {log}")
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            return proc, f"{url}/lab?token={token}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"JupyterLab did not answer within 60 s: see {log}")


OPEN = """async (path) => {
  const app = window.jupyterapp;
  const w = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await w.context.ready; await w.sessionContext.ready; await w.revealed;
  app.shell.activateById(w.id); window._walk = w; return w.id;
}"""
RUN = "async (cmd) => { window.jupyterapp.commands.execute(cmd); }"  # may wait on a dialog
STATE = """() => {
  const w = window._walk; const cells = w.content.widgets.filter(c => c.model.type === 'code');
  const prompt = c => (c.node.querySelector('.jp-InputPrompt') || {}).textContent || '';
  return {n: cells.length,
          running: cells.filter(c => prompt(c).includes('*')).length,
          ran: cells.filter(c => c.model.executionCount !== null).length,
          errors: cells.filter(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'))
                       .map(c => w.content.widgets.indexOf(c)),
          status: w.sessionContext.kernelDisplayStatus,
          checks: cells.flatMap(c => c.model.outputs.toJSON()).map(o => [].concat(o.text || '')
                       .join('')).join('').match(/Exercise \\w+: [a-z ]+\\./g) || []};
}"""
DEATH = re.compile(r"died|restarting|dead", re.I)


def dialogs(page) -> list[str]:
    """Texts of open JupyterLab dialogs, each dismissed."""
    seen = []
    for d in page.locator(".jp-Dialog").all():
        try:
            seen.append(" ".join(d.inner_text(timeout=1000).split()))
            d.locator(".jp-Dialog-button").last.click(timeout=2000)
        except Exception:  # noqa: BLE001 - a dialog closing by itself is fine
            pass
    return seen


def run_notebook(page, path: str, timeout_s: float, command: str) -> dict:
    """Open ``path``, run ``command`` (JupyterLab's "Run All Cells", or "Restart Kernel and Run
    All Cells", whose confirmation is accepted), wait until the kernel is idle and no cell is
    queued."""
    page.evaluate(OPEN, path)
    page.evaluate(RUN, command)
    t0, texts, state, statuses = time.time(), [], {}, set()
    time.sleep(1.0)
    quiet = 0
    while time.time() - t0 < timeout_s:
        texts += dialogs(page)
        state = page.evaluate(STATE)
        statuses.add(state["status"])
        done = state["running"] == 0 and state["status"] == "idle"
        quiet = quiet + 1 if done else 0
        if quiet >= 3:
            break
        time.sleep(0.5)
    else:
        state["timed_out"] = True
    state["seconds"] = round(time.time() - t0, 1)
    state["dialogs"] = texts
    state["statuses"] = sorted(statuses)
    return state


# JupyterLab's `restored` promise, turned into a flag that is polled: a page that reloads while
# it starts (it can, on a loaded machine) drops an awaited promise, and Playwright then fails with
# "Resulting promise was garbage collected"; polling starts again in the new page.
RESTORED = """() => {
  const app = window.jupyterapp;
  if (!app || !app.restored) return false;
  if (!window.__medlabHooked) {
    window.__medlabHooked = true;
    app.restored.then(() => { window.__medlabRestored = true; },
                      (e) => { window.__medlabRestored = 'failed: ' + e; });
  }
  return window.__medlabRestored;
}"""


def wait_restored(page, timeout_ms: float) -> None:
    """Wait until JupyterLab has started and restored its layout, surviving a reload; a
    restore that fails raises with JupyterLab's reason."""
    state = page.wait_for_function(RESTORED, timeout=timeout_ms, polling=250).json_value()
    if state is not True:
        raise RuntimeError(f"JupyterLab did not restore its layout: {state}")


def walk(
    dataset: str,
    data_dir: Path,
    limit_mb: int,
    timeout_s: float,
    only: list[str] | None = None,
    *,
    manager: bool = True,
    edition: str = "student",
) -> dict:
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    cgroup = Cgroup(f"medlab_walk_{os.getpid()}", limit_mb)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="medlab-walk-") as tmp:
        folder = Path(tmp)
        names = prepare(folder, dataset, data_dir, only, edition)
        log = folder / "server.log"
        proc, url = start_server(folder, cgroup, log, manager)
        sampler = Sampler(cgroup)
        sampler.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, headless=True,
                                            args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url)
                wait_restored(page, 180_000)
                # every notebook in order; then back to the first, as its banner says: "Restart
                # Kernel and Run All Cells" (its kernel was shut down to make room)
                steps = [(n, n, "notebook:run-all-cells") for n in names]
                steps.append((f"{names[0]} (back to it)", names[0], "notebook:restart-run-all"))
                for label, path, command in steps:
                    oom0, shut0 = cgroup.oom_kills(), log.read_text().count("medlab: shutting")
                    cgroup.reset_peak()
                    sampler.take()
                    state = run_notebook(page, path, timeout_s, command)
                    deaths = cgroup.oom_kills() - oom0
                    died = [t for t in state["dialogs"] if DEATH.search(t)]
                    row = {
                        "notebook": label,
                        "cells": state.get("n", 0),
                        "ran": state.get("ran", 0),
                        "failed": len(state.get("errors", [])),
                        "failed_cells": state.get("errors", []),
                        "oom_kills": deaths,
                        "died_dialogs": died,
                        "shut_down_idle": log.read_text().count("medlab: shutting") - shut0,
                        "kernels_running": len([p for p in cgroup.pids() if p != proc.pid]),
                        "peak_pss_mb": round(sampler.take()),
                        "peak_cgroup_mb": round(cgroup.peak_mb()),
                        "seconds": state["seconds"],
                        "statuses": state["statuses"],
                        "timed_out": bool(state.get("timed_out")),
                        "checks": _verdicts(state.get("checks", [])),
                    }
                    rows.append(row)
                    print(_line(row), flush=True)
                browser.close()
        finally:
            sampler.stop.set()
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            server_log = log.read_text()
            cgroup.remove()
    return {"dataset": dataset, "limit_mb": limit_mb, "edition": edition, "rows": rows,
            "server_log_tail": server_log[-4000:]}  # fmt: skip


def _verdicts(found: list[str]) -> dict[str, int]:
    """How many self-checks said each verdict ("not yet", "correct", "off", ...)."""
    out: dict[str, int] = {}
    for f in found:
        verdict = f.split(": ", 1)[1].rstrip(".")
        out[verdict] = out.get(verdict, 0) + 1
    return out


def _line(r: dict) -> str:
    return (f"| {r['notebook']} | {r['ran']}/{r['cells']} | {r['failed']} | "
            f"{max(r['oom_kills'], len(r['died_dialogs']))} | {r['shut_down_idle']} | "
            f"{r['kernels_running']} | {r['peak_pss_mb']} | {r['peak_cgroup_mb']} | "
            f"{r['seconds']} | {_checks(r['checks'])} |")  # fmt: skip


def _checks(c: dict[str, int]) -> str:
    return ", ".join(f"{n} {v}" for v, n in sorted(c.items())) or "none"


HEADER = ("| notebook | cells run | cells failed | kernel deaths | idle kernels shut down | "
          "processes after | peak PSS server+kernels (MB) | peak cgroup (MB) | seconds | "
          "self-checks |\n|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="folder with the .npz files")
    ap.add_argument("--datasets", nargs="+", default=["breastmnist"])
    ap.add_argument("--limit-mb", type=int, default=2048, help="memory limit (MiB), default 2048")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per notebook")
    ap.add_argument(
        "--notebooks",
        nargs="+",
        default=None,
        metavar="NN",
        help="walk only these notebooks (two-digit numbers), e.g. for a smoke test",
    )
    ap.add_argument(
        "--without-manager",
        action="store_true",
        help="the before: JupyterLab's default kernel manager (keeps every kernel)",
    )
    ap.add_argument(
        "--edition",
        choices=("student", "instructor", "repository"),
        default="student",
        help="which notebooks: the student edition (Binder's; exercises unanswered, each "
        "self-check must say 'not yet'), the instructor edition (every self-check must pass), or "
        "the repository's notebooks",
    )
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    reason = why_not()
    if reason:
        print(f"bench_binder_walk: skipped: {reason}")
        return 0
    if not args.data_dir.is_dir():
        ap.error(f"--data-dir {args.data_dir} is not a folder")
    results, bad = [], False
    for ds in args.datasets:
        km = "JupyterLab's default" if args.without_manager else "medlab.harness.binder's"
        print(
            f"\n## {ds}, {args.edition} edition, limit {args.limit_mb} MB, {km} kernel manager "
            f"(quick mode, cold model cache)\n\n{HEADER}"
        )
        res = walk(
            ds,
            args.data_dir.resolve(),
            args.limit_mb,
            args.timeout,
            args.notebooks,
            manager=not args.without_manager,
            edition=args.edition,
        )
        results.append(res)
        for r in res["rows"]:
            bad |= bool(r["failed"] or r["oom_kills"] or r["died_dialogs"] or r["timed_out"]
                        or r["ran"] < r["cells"])  # fmt: skip
            wrong = {"student": {"correct", "close", "off"}, "instructor": {"not yet", "off"}}
            bad |= bool(set(r["checks"]) & wrong.get(args.edition, set()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print("\nFAILED: a kernel died, a cell did not run or a self-check said the wrong thing for "
          "this edition" if bad else "\nOK: no kernel died, every cell ran")  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
