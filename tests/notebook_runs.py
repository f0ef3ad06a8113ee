"""The quick-mode notebook runs (imported by test_notebooks_<dataset>.py; not a test module).

Each numbered notebook runs in quick mode through `medlab reproduce`'s harness (papermill) on a
real dataset: its lesson-check assertions must pass and its recorded numbers must reproduce
notebooks/expected_results.yaml. One test module per dataset: pytest-xdist's ``--dist loadfile``
(pyproject's addopts) runs a module on one worker, in notebook order, so the two datasets' chains
run side by side, and notebook 04 still finds the models notebook 03 cached."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from medlab import results
from medlab.harness.expected import load_expected
from medlab.harness.notebooks import NOTEBOOKS, find_notebooks
from medlab.harness.reproduce import reproduce

ALL = find_notebooks()

#: Lesson runs known to fail their lesson checks, each tied to its open issue (skipped, with the
#: reason shown by ``pytest -ra``; remove an entry when the issue is fixed).
KNOWN_FAILING: dict[tuple[str, str], str] = {}  # (notebook, dataset) -> the open issue, why


def _dataset(data_dir: Path | None, name: str) -> str:
    """The shared file's dataset name; without the shared folder, the official dataset."""
    if name == "pneumoniamnist_balanced_subset" and (
        data_dir is None or not (data_dir / "pneumoniamnist_balanced_subset.npz").exists()
    ):
        return "pneumoniamnist"
    return name


def _expected_for(origin: dict, notebook: str, dataset: str) -> dict:
    """The expected quick-mode entries of ``notebook`` on ``dataset`` in one origin section."""
    return ((origin or {}).get("quick") or {}).get(notebook, {}).get(dataset) or {}


def notebook_run_test(dataset: str) -> Callable[..., None]:
    """The test function that runs every notebook on ``dataset`` (one module per dataset)."""

    @pytest.mark.notebook
    @pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
    def test_notebook_runs_quick_and_reproduces(
        path, data_dir, tmp_path, capsys, shared_cache, monkeypatch
    ):
        monkeypatch.setenv("MEDLAB_CACHE_DIR", str(shared_cache))
        if os.environ.get("PYTEST_XDIST_WORKER"):
            # one core per xdist worker: a kernel with every core's threads would fight the other
            # worker's (OpenMP threads spin; two such kernels are several times slower)
            monkeypatch.setenv("MEDLAB_THREADS", "1")
            monkeypatch.setenv("OMP_NUM_THREADS", "1")
        if (path.stem, dataset) in KNOWN_FAILING:
            pytest.skip(KNOWN_FAILING[(path.stem, dataset)])
        name = _dataset(data_dir, dataset)
        # A notebook with expected values for this dataset must reproduce them (a missing key
        # fails); one without any yet (a lesson newer than the expected file) runs with
        # allow_new: its lesson checks and its recording are still tested, and the run marks its
        # numbers "new".
        trees = load_expected().values()
        has_expected = any(_expected_for(tree, path.stem, name) for tree in trees)
        status = reproduce(
            [path.stem],
            quick=True,
            output=tmp_path,
            data_dir=data_dir,
            parameters={"dataset": name},
            html=False,
            allow_new=not has_expected,
        )
        out = capsys.readouterr().out
        assert status == 0, f"{path.name} failed or deviated:\n{out}"
        df = results.load(tmp_path)
        assert len(df) > 0 and set(df.notebook) == {path.stem}, "the notebook recorded no numbers"
        assert df.value.notna().all() and len(df.value) > 0
        prov = df.attrs["provenance"][path.stem]
        assert prov["quick"] is True and prov["seed"] is not None and prov["packages"]["torch"]
        for d in prov["datasets"].values():
            assert len(d["md5"]) == 32 and isinstance(d["official"], bool)
        executed = tmp_path / "latest" / "executed" / path.name
        assert executed.exists()
        # the repository's notebook is the instructor edition: every exercise's self-check passes
        cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
        text = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
        failed = re.findall(r"(?:✗ Exercise \w+: off|Exercise \w+: not yet)[^\n]*", text)
        assert not failed, f"{path.name}: a solution does not pass its self-check: {failed}"
        assert NOTEBOOKS == path.parent

    return test_notebook_runs_quick_and_reproduces
