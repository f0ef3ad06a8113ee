"""The parameter-range runs (imported by test_parameter_ranges_<end>.py; not a test module).

Each notebook runs in quick mode with every documented parameter at one end of its range
(``medlab.harness.params``), at a seed no file names (drawn for this session and printed), in the
student's view (lesson checks print instead of raising). No run may end on a traceback, and a
lesson that does not hold must say so in the executed notebook ("This run did not show ...").
One module per end, so pytest-xdist runs the two ends on two workers.

The 22 runs take about 15 minutes on 2 cores, so they run only with ``MEDLAB_RANGE_TESTS=1``
(``MEDLAB_RANGE_TESTS=1 pytest tests/test_parameter_ranges_low.py
tests/test_parameter_ranges_high.py``); ``tests/test_parameter_docs.py`` always checks that
every parameter documents its range."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable

import pytest

from medlab.harness.notebooks import find_notebooks, run_notebook
from medlab.harness.params import range_ends

ALL = find_notebooks()
#: Two seeds drawn for this test session: no file names them, so no lesson is tuned to them.
SEEDS = random.SystemRandom().sample(range(100, 100_000), 2)
DATASETS = ("breastmnist", "pneumoniamnist_balanced_subset")


def parameter_run_test(end: int) -> Callable[..., None]:
    """The test that runs every notebook at the low (``end=0``) or high (``end=1``) end."""

    @pytest.mark.notebook
    @pytest.mark.skipif(
        os.environ.get("MEDLAB_RANGE_TESTS") != "1",
        reason="the parameter-range runs take ~15 min: set MEDLAB_RANGE_TESTS=1 to run them",
    )
    @pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
    def test_notebook_runs_at_the_ends_of_its_ranges(path, data_dir, tmp_path, shared_cache):
        params = range_ends(path)[end]
        dataset = DATASETS[end]
        if data_dir is None or not (data_dir / f"{dataset}.npz").exists():
            dataset = "pneumoniamnist" if end else "breastmnist"
        seed = SEEDS[end]
        env = {"MEDLAB_STRICT_CHECKS": "0", "MEDLAB_CACHE_DIR": str(shared_cache)}
        if os.environ.get("PYTEST_XDIST_WORKER"):
            env |= {"MEDLAB_THREADS": "1", "OMP_NUM_THREADS": "1"}
        params |= {"quick": True, "seed": seed, "dataset": dataset}
        params["data_dir"] = None if data_dir is None else str(data_dir)
        run = run_notebook(path, tmp_path, params, env=env, log=tmp_path / "kernel.log")
        what = f"{path.name} with {params} (reproduce: medlab reproduce --quick -p ...)"
        assert run.ok, f"{what} ended on a traceback: {run.error}"
        cells = json.loads(run.executed.read_text(encoding="utf-8"))["cells"]
        text = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
        assert "Traceback" not in text, f"{what} printed a traceback"
        if "did not show" in text:  # the lesson did not hold here: said in the student's view
            print(f"{what}: the run said it did not show its lesson")

    return test_notebook_runs_at_the_ends_of_its_ranges
