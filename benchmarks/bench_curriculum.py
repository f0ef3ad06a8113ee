"""Wall time and peak kernel memory of every notebook, as `medlab reproduce` runs them.

For each dataset and mode, the notebooks run in order through the reproduce harness's
``run_notebook`` (papermill, one fresh kernel each) with one model cache shared by the run, as
``medlab reproduce`` does (notebook 04 explains notebook 03's cached models). A monitor thread
reads the kernel's peak resident set size (``VmHWM`` in ``/proc/<pid>/status``, the kernel's own
high-water mark, summed with any children it starts) every 0.1 s. The table gives each
notebook's wall time and peak RSS against the budgets: 1.4 GiB per kernel in quick mode (Binder's
2 GB must also hold the Jupyter server) and 2 GB in full mode; the totals, for a run of all
eleven notebooks, against the curriculum's budget on 2 cores: 6 min in quick mode, 40 min in full
mode (``medlab.harness.monitor.CURRICULUM_BUDGET_S``). Before the first notebook and after the
last it times a fixed reference workload (``medlab.harness.speed.speed_reference``: 40 small-CNN
training steps on the first dataset's real training images, with the notebooks' thread count)
and gives every total also in units of it: seconds differ twofold between runs of the same 2
cores, the ratio much less. Usage (from the repo root)::

    python benchmarks/bench_curriculum.py --data-dir ../shared/medmnist --quick \\
        --datasets pneumoniamnist_balanced_subset breastmnist

``--medlab-src DIR`` measures another checkout instead (its notebooks, run with its own ``medlab``
package first on the kernel's ``PYTHONPATH``): the "before" column of a change. It exits 1 when a
notebook fails, a kernel exceeds its budget, or a whole curriculum exceeds its time budget. Times
are for this machine (the budgets are set for 2 cores); the memory figures are what matters across
machines. Results on the shared files are results on unofficial copies.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from medlab.data import load
from medlab.experiments import lesson
from medlab.harness.monitor import BUDGET_MB, CURRICULUM_BUDGET_S, KernelMonitor
from medlab.harness.notebooks import find_notebooks, run_notebook
from medlab.harness.speed import speed_reference
from medlab.utils import device


def _reference(split) -> float:
    lesson(True, 0)  # the notebooks' thread count ($MEDLAB_THREADS, else every CPU allowed)
    return speed_reference(split)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", help="notebook stems or prefixes (default: all)")
    ap.add_argument("--data-dir", default=os.environ.get("MEDLAB_DATA_DIR"))
    ap.add_argument("--datasets", nargs="+", default=["pneumoniamnist_balanced_subset"])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="quick mode only")
    mode.add_argument("--full", action="store_true", help="full mode only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None, help="keep outputs in this folder (default: a temp)")
    ap.add_argument(
        "--medlab-src",
        default=None,
        help="measure the notebooks and package of "
        "another checkout (e.g. a git worktree of an older commit)",
    )
    args = ap.parse_args(argv)
    modes = ["quick"] if args.quick else ["full"] if args.full else ["quick", "full"]
    # the kernels inherit $MEDLAB_DEVICE and pick the same device; the reference runs on the CPU
    print(f"device: {device()} (MEDLAB_DEVICE={os.environ.get('MEDLAB_DEVICE') or 'auto'}; "
          "speed reference on the CPU)", flush=True)  # fmt: skip
    extra_env: dict[str, str] = {}
    if args.medlab_src:
        src = Path(args.medlab_src).resolve()
        notebooks = find_notebooks(args.notebooks or None, folder=src / "notebooks")
        extra_env["PYTHONPATH"] = os.pathsep.join(
            [str(src), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    else:
        notebooks = find_notebooks(args.notebooks or None)
    rows, failed = [], False
    try:
        ref_split = load(args.datasets[0], data_dir=args.data_dir).train
    except Exception as exc:  # the notebooks report their own failure to load it
        print(f"speed reference: not measured ({exc})")
        ref_split = None
    refs = [_reference(ref_split)] if ref_split is not None else []
    with tempfile.TemporaryDirectory(prefix="medlab-bench-") as tmp:
        base = Path(args.keep or tmp).resolve()
        print(
            f"{'notebook':<18} {'mode':<5} {'dataset':<32} {'wall (s)':>9} "
            f"{'peak kernel RSS (MB)':>21} {'budget (MB)':>12}  status",
            flush=True,
        )
        for m in modes:
            for ds in args.datasets:
                out = base / f"{m}-{ds}"
                env = {"MEDLAB_CACHE_DIR": str(out / "cache"), **extra_env}
                for nb in notebooks:
                    params = {"quick": m == "quick", "seed": args.seed, "dataset": ds}
                    if args.data_dir:
                        params["data_dir"] = str(Path(args.data_dir).resolve())
                    t0 = time.perf_counter()
                    with KernelMonitor() as mon:
                        run = run_notebook(nb, out, params, env=env, log=out / f"{nb.stem}.log")
                    wall = time.perf_counter() - t0
                    peak = mon.peak_kb / 1024
                    over = peak > BUDGET_MB[m]
                    status = ("ok" if run.ok else f"FAILED: {run.error[:80]}") + (
                        " OVER BUDGET" if over else ""
                    )
                    failed |= (not run.ok) or over
                    rows.append((nb.stem, m, ds, wall, peak))
                    print(
                        f"{nb.stem:<18} {m:<5} {ds:<32} {wall:9.1f} {peak:21.0f} "
                        f"{BUDGET_MB[m]:12d}  {status}",
                        flush=True,
                    )
    if refs:
        refs.append(_reference(ref_split))
        print(
            f"speed reference (40 small-CNN steps on {args.datasets[0]}): {refs[0]:.2f} s "
            f"before, {refs[1]:.2f} s after the notebooks"
        )
    ref = sum(refs) / len(refs) if refs else None
    n_all = len(find_notebooks(None, folder=notebooks[0].parent)) if notebooks else 0
    for m in modes:
        for ds in args.datasets:
            sel = [r for r in rows if r[1] == m and r[2] == ds]
            total, budget = sum(r[3] for r in sel), CURRICULUM_BUDGET_S[m]
            if len(sel) == n_all:
                verdict = "OVER BUDGET" if total > budget else "within budget"
                failed |= total > budget
            else:
                verdict = f"{len(sel)} of {n_all} notebooks: the budget is for all of them"
            print(
                f"total {m} {ds}: {total:.0f} s"
                + (f" = {total / ref:.1f} speed references" if ref else "")
                + f" (budget {budget} s on 2 cores: {verdict}), "
                f"largest kernel {max(r[4] for r in sel):.0f} MB (budget {BUDGET_MB[m]} MB)"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
