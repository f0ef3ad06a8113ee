"""The declared dependencies are the ones medlab and its notebooks use: every third-party package
they import is declared in pyproject.toml, and every declared package is imported somewhere or
named below as needed at run time without an import."""

from __future__ import annotations

import ast
import json
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent

#: declared, used without being imported by medlab's code or notebooks
RUNTIME = {
    "ipykernel": "the notebooks' kernel",
    "jupyterlab": "where students open the notebooks (Binder, locally)",
    "nbconvert": "papermill's and the site's notebook export",
    "ipywidgets": "the notebooks' explorers (imported in notebooks)",
}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {Requirement(d).name.lower().replace("_", "-") for d in project["dependencies"]}


def _imports(source: str) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _used_modules() -> set[str]:
    mods = set()
    for f in (ROOT / "medlab").rglob("*.py"):
        mods |= _imports(f.read_text())
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        lines = [ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        mods |= _imports("\n".join(lines))
    return {
        m for m in mods if m not in sys.stdlib_module_names and m not in ("medlab", "__future__")
    }


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    dists = packages_distributions()
    return {m: {d.lower().replace("_", "-") for d in dists.get(m, [])} for m in modules}


def test_every_imported_package_is_declared():
    declared = _declared()
    missing = {m: d for m, d in _distributions(_used_modules()).items() if not d & declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_declared_package_is_used():
    used = set().union(*_distributions(_used_modules()).values())
    unused = _declared() - used - set(RUNTIME)
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"
