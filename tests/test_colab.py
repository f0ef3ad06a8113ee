"""Colab, one click: every notebook's title cell links to itself on Colab at the release tag, and
its first code cell (tagged ``install``) installs medlab, as the distribution ``medlab-edu`` with
its ``all`` extra (the core and everything the lessons and the harness use) from the repository at
that tag, only when medlab is missing.

The install cell is run as it stands, with ``python -c``: in this environment (medlab is there:
pip is never called) and in a fresh virtual environment without medlab, where it installs this
checkout through the same code path (``MEDLAB_INSTALL_SOURCE``) and does nothing the second time.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
from fresh_env import checkout_copy, make_venv, run_python

from medlab.harness import site
from medlab.harness.notebooks import find_notebooks

ROOT = Path(__file__).resolve().parent.parent
ALL = find_notebooks()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
VERSION, DIST = PROJECT["version"], PROJECT["name"]
TAG = f"v{VERSION}"
REPO = "github.com/medlab-edu/medlab"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
PINNED = f"{DIST}[all] @ git+https://{REPO}@{TAG}"  # a student gets every extra
MISSING = "/nonexistent/medlab-checkout"  # an install source pip would fail on


def _install_cell(path: Path) -> nbformat.NotebookNode:
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    tagged = [c for c in cells if "install" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: one code cell must be tagged 'install'"
    assert cells[0] is tagged[0], f"{path.name}: the install cell must be the first code cell"
    return tagged[0]


def test_the_distribution_is_not_the_unrelated_pypi_medlab():
    assert DIST == "medlab-edu"  # "medlab" on PyPI is an unrelated project (README, install)
    assert f"{DIST}[" in " ".join(PROJECT["optional-dependencies"]["dev"])  # its own extra
    flower = tomllib.loads((ROOT / "flower_app" / "pyproject.toml").read_text())["project"]
    assert DIST in flower["dependencies"] and "medlab" not in flower["dependencies"]
    readme = (ROOT / "README.md").read_text()
    assert f"`{DIST}`" in readme and "unrelated" in readme
    docs = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    for p in [*docs, ROOT / "binder" / "postBuild", *sorted((ROOT / "medlab").glob("*.py"))]:
        for command in re.findall(r"pip3? install\b[^\n`&;|]*", p.read_text()):
            names = [t.strip("'\"") for t in command.split()]
            bare = [t for t in names if re.fullmatch(r"medlab(\[[\w,]+\])?", t)]
            assert not bare, f"{p.name}: `{command}` installs the unrelated PyPI project medlab"


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_title_cell_opens_this_notebook_on_colab_at_the_release_tag(path):
    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    link = f"https://colab.research.google.com/github/medlab-edu/medlab/blob/{TAG}/notebooks/"
    assert f"[![Open In Colab]({BADGE})]({link}{path.name})" in title.source
    links = re.findall(r"colab\.research\.google\.com/github/[^)\s]+", title.source)
    assert links == [f"{link.removeprefix('https://')}{path.name}"], links


def test_readme_links_every_notebook_on_colab_in_the_student_edition():
    """README sends students to the published student edition (tag vX-student, made by
    .ci/publish-student-edition), not to the repository's notebooks, which hold the solutions."""
    readme = (ROOT / "README.md").read_text()
    found = re.findall(
        r"colab\.research\.google\.com/github/medlab-edu/medlab/blob/([^/]+)/notebooks/([^)\s]+)",
        readme,
    )
    assert sorted(set(found)) == [(f"{TAG}-student", p.name) for p in ALL]
    assert f".ci/publish-student-edition {TAG}" in readme
    assert f'"{PINNED}"' in readme  # what the install cell does, spelled out


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_install_cell_pins_the_release_and_comes_before_the_parameters(path):
    cell = _install_cell(path)
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert "parameters" in code[1].metadata.get("tags", [])
    assert f'"{PINNED}"' in cell.source, f"the install cell must install {PINNED}"
    assert '[sys.executable, "-m", "pip", "install"' in cell.source  # headless, same Python
    assert "!pip" not in cell.source and "%pip" not in cell.source
    assert "MEDLAB_INSTALL_SOURCE" in cell.source
    assert cell.source.lstrip().startswith("#"), "the cell says what it does, for students"
    assert cell.source == _install_cell(ALL[0]).source, "every notebook has the same install cell"


def test_install_cell_does_nothing_where_medlab_is_installed(tmp_path):
    """In this environment medlab is importable: the cell neither calls pip (a source pip would
    fail on is ignored) nor prints anything."""
    res = run_python(
        sys.executable, _install_cell(ALL[0]).source, tmp_path, MEDLAB_INSTALL_SOURCE=MISSING
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and res.stderr == ""


def _own_install() -> tuple[str | None, str | None]:
    """This environment's own medlab install (it must not change)."""
    from importlib import metadata

    dist = metadata.distribution(DIST)
    return dist.read_text("direct_url.json"), dist.read_text("RECORD")


def test_install_cell_installs_the_checkout_into_a_fresh_environment(tmp_path):
    """A fresh venv without medlab (as on Colab): the cell installs ``medlab-edu[all] @ <this
    checkout>`` with pip (same code path as the default ``git+...@TAG``; pip checks that the
    name is the distribution's), medlab imports in the same process afterwards, with the
    version of pyproject.toml, and the second run does not call pip. About 20 s on 2 cores: pip
    builds the package (fetching setuptools for its isolated build, so it needs the package
    index); the dependencies are found installed, so nothing else is downloaded."""
    before = _own_install()
    python = make_venv(tmp_path / "venv")
    probe = "import importlib.util as u; print(u.find_spec('medlab'), u.find_spec('torch') is None)"
    assert run_python(python, probe, tmp_path).stdout.split() == ["None", "False"], (
        "the fresh environment must see torch (through the .pth) but not medlab"
    )

    source = f"{DIST}[all] @ {checkout_copy(tmp_path / 'checkout').as_uri()}"
    cell = _install_cell(ALL[0]).source
    check = (
        "\nimport importlib.metadata as m, medlab\n"
        f"print('VERSION', medlab.__version__, m.version({DIST!r}), medlab.__file__)"
    )
    res = run_python(python, cell + check, tmp_path, MEDLAB_INSTALL_SOURCE=source)
    assert res.returncode == 0, res.stdout + res.stderr
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("VERSION ")][-1]
    _, version, dist_version, where = line.split(" ", 3)
    assert version == dist_version == VERSION
    assert Path(where).is_relative_to(tmp_path / "venv"), where  # installed there, not editable

    again = run_python(python, cell, tmp_path, MEDLAB_INSTALL_SOURCE=MISSING)
    assert again.returncode == 0 and again.stdout == again.stderr == "", again.stderr
    assert _own_install() == before, "this environment's medlab install was changed"


def test_the_run_report_shows_the_badge_without_fetching_it(tmp_path):
    """A run's HTML copy of a notebook opens offline: the Colab badge (an image on another host)
    becomes its alt text, still linked."""
    nb = nbformat.read(ALL[0], as_version=4)
    nb.cells = nb.cells[:1]
    nbformat.write(nb, tmp_path / ALL[0].name)
    body = site.export_notebook_html(tmp_path / ALL[0].name, tmp_path / "html").read_text()
    assert BADGE not in body and "<img" not in body
    assert re.search(
        r'<a href="https://colab\.research\.google\.com/[^"]+">Open In Colab</a>', body
    )
