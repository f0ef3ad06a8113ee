"""Wall time and peak kernel memory of every notebook, as `medlab reproduce` runs them.

For each dataset and mode, the notebooks run in order through the reproduce harness's
``run_notebook`` (papermill, one fresh kernel each) with one model cache shared by the run, as
``medlab reproduce`` does (notebook 04 explains notebook 03's cached models). A monitor thread
reads the kernel's peak resident set size (``VmHWM`` in ``/proc/<pid>/status``, the kernel's own
high-water mark, summed with any children it starts) every 0.1 s. The table gives each
notebook's wall time and peak RSS against the budgets: 1.5 GB per kernel in quick mode (Binder's
2 GB must also hold the Jupyter server) and 2 GB in full mode. Usage (from the repo root)::

    python benchmarks/bench_curriculum.py --data-dir ../shared/medmnist --quick \\
        --datasets pneumoniamnist_balanced_subset breastmnist

``--medlab-src DIR`` measures another checkout instead (its notebooks, run with its own ``medlab``
package first on the kernel's ``PYTHONPATH``): the "before" column of a change. It exits 1 when a
notebook fails or a kernel exceeds its budget. Times are for this machine; the
memory figures are what matters across machines. Results on the shared files are results on
unofficial copies.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from medlab.monitor import BUDGET_MB, KernelMonitor
from medlab.reproduce import find_notebooks, run_notebook


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
    for m in modes:
        for ds in args.datasets:
            sel = [r for r in rows if r[1] == m and r[2] == ds]
            print(
                f"total {m} {ds}: {sum(r[3] for r in sel):.0f} s, largest kernel "
                f"{max(r[4] for r in sel):.0f} MB"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
