"""Notebooks are tests: each numbered notebook runs in quick mode through `medlab reproduce`'s
harness (papermill) on real data, its lesson-check assertions must pass, and its recorded numbers
must reproduce the expected values in notebooks/expected_results.yaml."""

from __future__ import annotations

import json

import nbformat
import pytest

from medlab.reproduce import NOTEBOOKS, find_notebooks, reproduce

ALL = find_notebooks()


def _dataset(data_dir) -> str:
    if data_dir is not None and (data_dir / "pneumoniamnist_balanced_subset.npz").exists():
        return "pneumoniamnist_balanced_subset"
    return "pneumoniamnist"


def test_curriculum_is_numbered():
    assert [p.stem[:2] for p in ALL] == [f"{i:02d}" for i in range(len(ALL))]
    assert len(ALL) >= 2


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_is_committed_clean_with_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    for name in ("quick", "seed", "dataset", "data_dir"):
        assert f"{name} =" in code[0].source, f"parameters cell lacks {name}"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        "commit notebooks without outputs"
    heads = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "markdown" and "lesson check" in c.source.lower().split("\n")[0]]
    assert heads, "the notebook needs a '## Lesson check' section"
    after = [c for c in nb.cells[heads[-1] + 1:] if c.cell_type == "code"]
    assert any("assert " in c.source for c in after), "the lesson check must assert the lesson"
    assert len(nb.cells) - heads[-1] <= 6, "the lesson check ends the notebook (a short summary may follow)"


@pytest.mark.notebook
@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_runs_quick_and_reproduces(path, data_dir, tmp_path, capsys):
    status = reproduce([path.stem], quick=True, output=tmp_path, data_dir=data_dir,
                       parameters={"dataset": _dataset(data_dir)}, html=False)
    out = capsys.readouterr().out
    assert status == 0, f"{path.name} failed or deviated:\n{out}"
    results = json.loads((tmp_path / "results" / f"{path.stem}.json").read_text())
    assert results["records"], "the notebook recorded no numbers"
    prov = results["provenance"]
    assert prov["quick"] is True and prov["seed"] is not None and prov["packages"]["torch"]
    for d in prov["datasets"].values():
        assert len(d["md5"]) == 32 and isinstance(d["official"], bool)
    assert (tmp_path / "executed" / path.name).exists()
    assert NOTEBOOKS == path.parent
