"""Notebooks are tests: each numbered notebook runs in quick mode through `medlab reproduce`'s
harness (papermill) on real data, its lesson-check assertions must pass, and its recorded numbers
must reproduce the expected values in notebooks/expected_results.yaml. Those runs are one module
per shared dataset (test_notebooks_pneumonia.py, test_notebooks_breastmnist.py, built by
tests/notebook_runs.py), so that pytest-xdist runs the two chains on two workers.

This module holds the static checks of the convention: the install cell (tests/test_colab.py), then
a `parameters` cell, no outputs committed,
the lesson check is the last section and asserts something, no code cell longer than about 25
lines, and no assertion that passes vacuously (``all()`` of an empty frame is True)."""

from __future__ import annotations

import ast
import json
import re

import nbformat
import pytest

from medlab.harness.notebooks import find_notebooks

ALL = find_notebooks()
MAX_CELL_LINES = 25


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _sections(nb) -> list[tuple[int, str]]:
    """(cell index, title) of every level-1/2 markdown heading."""
    out = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "markdown":
            continue
        for line in c.source.splitlines():
            if line.startswith(("# ", "## ")):
                out.append((i, line.lstrip("#").strip().lower()))
    return out


def test_curriculum_is_numbered():
    assert [p.stem[:2] for p in ALL] == [f"{i:02d}" for i in range(len(ALL))]
    assert len(ALL) >= 5


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_is_committed_clean_with_parameters(path):
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    assert len(code) >= 2 and "install" in code[0].metadata.get("tags", []), (
        "the first code cell must be the install cell, tagged 'install' (tests/test_colab.py)"
    )
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [code[1]], (
        "the code cell after the install cell, alone, is tagged 'parameters'"
    )
    for name in ("quick", "seed", "dataset", "data_dir"):
        assert f"{name} =" in code[1].source, f"parameters cell lacks {name}"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), (
        "commit notebooks without outputs"
    )
    raw = json.loads(path.read_text(encoding="utf-8"))["cells"]
    missing = [i for i, c in enumerate(raw) if not c.get("id")]
    assert not missing, (
        f"cells {missing} have no id (nbformat 4.5 requires one; nbformat.normalize)"
    )


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_lesson_check_is_the_last_section_and_asserts(path):
    nb = nbformat.read(path, as_version=4)
    sections = _sections(nb)
    assert sections, "the notebook has no sections"
    last_index, last_title = sections[-1]
    assert last_title.startswith("lesson check"), (
        f"the last section must be the lesson check, found {last_title!r}"
    )
    after = [c for c in nb.cells[last_index + 1 :] if c.cell_type == "code"]
    assert after, "the lesson check needs code"
    asserts = [n for c in after for n in ast.walk(ast.parse(c.source)) if isinstance(n, ast.Assert)]
    assert asserts, "the lesson check must assert the lesson"
    assert "assert" in after[-1].source, "the notebook ends with its lesson check's assertions"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_code_cells_are_short(path):
    nb = nbformat.read(path, as_version=4)
    long = [
        (i, len(c.source.splitlines()))
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and len(c.source.splitlines()) > MAX_CELL_LINES
    ]
    assert not long, f"code cells longer than {MAX_CELL_LINES} lines (cell, lines): {long}"


def _vacuous(node: ast.Assert) -> str | None:
    """Why an assertion can pass while checking nothing, or None."""
    if isinstance(node.test, ast.Constant):
        return "asserts a constant"
    for n in ast.walk(node.test):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name) and f.id == "all":
                return "all(...) is True for an empty collection"
            if isinstance(f, ast.Attribute) and f.attr == "all":
                return ".all() is True for an empty frame"
    return None


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_no_assertion_can_pass_vacuously(path):
    nb = nbformat.read(path, as_version=4)
    bad = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        for n in ast.walk(ast.parse(c.source)):
            if isinstance(n, ast.Assert) and (why := _vacuous(n)):
                bad.append(f"cell {i}, line {n.lineno}: {why}")
    assert not bad, (
        "assertions that can pass while checking nothing (use .max()/.min(), "
        "which give NaN and fail on an empty frame): " + "; ".join(bad)
    )


def test_vacuity_check_catches_the_old_pattern():
    """The check above would have caught notebook 04's `(frame + se < 1).all()`."""
    src = "assert ((f.ratio + f.se) < 1).all(), 'x'\nassert all(v > 0 for v in xs)\nassert True"
    found = [_vacuous(n) for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Assert)]
    assert all(found) and len(found) == 3
    ok = ast.parse("assert (f.ratio + f.se).max() < 1").body[0]
    assert _vacuous(ok) is None


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_no_python_written_in_markdown(path):
    """Code the student could run is a code cell, not a ```python block in the text (pseudocode in
    a plain ``` block, and commands for a shell, are fine)."""
    nb = nbformat.read(path, as_version=4)
    blocks = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown"
        and re.search(r"^```\s*(python|py|ipython3?)\s*$", c.source, re.M)
    ]
    assert not blocks, f"python code in markdown cells {blocks}: make it a code cell that runs"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_the_preamble_is_medlab_start(path):
    """One preamble (medlab.start), one import-alias scheme (lesson modules by their own names)."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in _code(nb))
    assert f'medlab.start("{path.stem}", quick=quick, seed=seed, dataset=dataset' in code
    aliased = re.findall(r"^from medlab(?:\.\w+)* import \w+ as \w+", code, re.M)
    assert not aliased, f"import medlab's modules by their own names: {aliased}"


TAUGHT_ELSEWHERE = {"00_tour": "a tour of the data: it teaches no algorithm"}


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_the_taught_algorithm_is_running_code_exported_from_the_notebook(path):
    """Each lesson's algorithm is a code cell marked `#| export medlab.<module>` (the one copy
    the library uses: tests/test_export.py checks the copies)."""
    if path.stem in TAUGHT_ELSEWHERE:
        pytest.skip(TAUGHT_ELSEWHERE[path.stem])
    nb = nbformat.read(path, as_version=4)
    marked = [c for c in _code(nb) if c.source.startswith("#| export medlab.")]
    assert marked, f"{path.stem} exports no taught algorithm (a `#| export medlab.<module>` cell)"
