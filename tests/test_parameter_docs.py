"""Every parameter a student may change documents its range (medlab.harness.params)."""

import nbformat
import pytest

from medlab.harness.notebooks import find_notebooks
from medlab.harness.params import parameter_ranges, range_ends

ALL = find_notebooks()


def _notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]})]
    nbformat.write(nb, path)
    return path


def test_ranges_are_read_from_the_comments(tmp_path):
    path = _notebook(
        tmp_path / "x.ipynb",
        "quick = True\nseed = 0\ndataset = 'x'\ndata_dir = None\n"
        "rate = 0.15   # share deferred; range: 0.05 to 0.5\n"
        "levels = [0, 8]  # budgets (grey levels, of 255)\n"
        "                 # range: [0, 8] to [0, 2, 8, 16]\n"
        "online = False  # fixed: downloads weights (needs the internet)\n",
    )
    assert parameter_ranges(path) == {
        "rate": (0.05, 0.5),
        "levels": ([0, 8], [0, 2, 8, 16]),
        "online": "fixed: downloads weights (needs the internet)",
    }
    assert range_ends(path) == (
        {"rate": 0.05, "levels": [0, 8]},
        {"rate": 0.5, "levels": [0, 2, 8, 16]},
    )


@pytest.mark.parametrize(
    "line, match",
    [
        ("rate = 0.1  # a share", "documents no range"),
        ("rate = 0.1  # range: low to 2", "literals"),
    ],
)
def test_an_undocumented_or_unreadable_range_is_refused_with_the_fix(tmp_path, line, match):
    path = _notebook(tmp_path / "y.ipynb", f"quick = True\n{line}\n")
    with pytest.raises(ValueError, match=match) as err:
        parameter_ranges(path)
    assert "range: " in str(err.value)


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_every_notebook_documents_each_parameters_range(path):
    ranges = parameter_ranges(path)
    for name, r in ranges.items():
        if isinstance(r, tuple):
            assert r[0] != r[1], f"{path.name}: {name}'s range is a single value {r}"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_papermill_reads_every_parameter(path):
    """papermill's own parser (``papermill --help-notebook``, its unknown-parameter warning)
    sees every parameter: a line with a second '=' (in its comment) is one it cannot parse."""
    from papermill import inspect_notebook

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = set(inspect_notebook(str(path)))
    assigned = {
        line.split("=")[0].strip()
        for line in cell.source.splitlines()
        if line and not line[0].isspace() and not line.startswith("#") and "=" in line
    }
    assert assigned <= names, f"{path.name}: papermill cannot parse {sorted(assigned - names)}"
