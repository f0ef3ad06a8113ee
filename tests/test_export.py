"""The taught algorithms are written once, in the notebook (medlab.harness.export): every
module copy equals its notebook cell, and the tool catches a stale copy and rewrites it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medlab.harness import export


def test_every_exported_cell_matches_its_module_copy():
    assert export.check() == [], "run `python -m medlab.harness.export` after editing a notebook"


def test_every_taught_algorithm_is_exported_from_its_notebook():
    by_nb = {}
    for c in export.cells():
        by_nb.setdefault(Path(c.notebook).stem, set()).add(c.module)
    assert by_nb, "no notebook exports its taught algorithm"


def _fake_repo(tmp_path: Path, code: str) -> Path:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "medlab").mkdir()
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": "#| export medlab.algo\n" + code}  # fmt: skip
    doc = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "notebooks" / "01_x.ipynb").write_text(json.dumps(doc))
    (tmp_path / "medlab" / "algo.py").write_text('"""An algorithm."""\n\nimport math\n')
    return tmp_path


def test_the_tool_appends_rewrites_and_reports(tmp_path):
    root = _fake_repo(tmp_path, "def f(x):\n    return math.sqrt(x)\n")
    assert export.check(root) == ["medlab/algo.py: 0 export regions for 1 notebook cells"]
    assert export.write(root) == [root / "medlab" / "algo.py"]
    assert export.check(root) == []
    ns: dict = {}
    exec((root / "medlab" / "algo.py").read_text(), ns)
    assert ns["f"](9.0) == 3.0
    nb = root / "notebooks" / "01_x.ipynb"
    nb.write_text(nb.read_text().replace("math.sqrt(x)", "math.sqrt(x) + 1"))
    assert export.check(root) == [
        "medlab/algo.py: the copy of notebooks/01_x.ipynb cell 0 is stale"
    ]
    export.write(root)
    assert export.check(root) == []
    assert "math.sqrt(x) + 1" in (root / "medlab" / "algo.py").read_text()
    assert export.write(root) == []  # idempotent


def test_a_region_without_a_cell_is_reported(tmp_path):
    root = _fake_repo(tmp_path, "def f(x):\n    return x\n")
    export.write(root)
    (root / "notebooks" / "01_x.ipynb").unlink()
    assert export.check(root) == ["medlab/algo.py: 1 export regions for 0 notebook cells"]
    with pytest.raises(ValueError, match="delete the extra region"):
        export.write(root)
