"""The declared dependencies are the ones medlab and its notebooks use, in three groups: the core
(pyproject's ``dependencies``: what the core library imports), the ``lessons`` extra (what the
lesson subpackages and the notebooks import beyond the core) and the ``harness`` extra (what
medlab.harness imports beyond the core). Every third-party package a group's code imports is
declared in the core or that group's extra (a core module's, in the core); every declared package
is imported by its group's code or named below as needed at run time without an import; and the
core installs lean: every core module imports with every extra-only package missing."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "medlab"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]

#: the code of each group: folders and single modules under medlab/ (the lessons also take the
#: notebooks' code cells)
CODE = {
    "core": [
        *("data", "train", "metrics", "scenario", "experiments", "results"),
        *(
            "models.py",
            "plots.py",
            "stats.py",
            "diversity.py",
            "utils.py",
            "cards.py",
            "exercise.py",
        ),
        *("preamble.py", "__init__.py"),
    ],
    "lessons": [
        *("scarcity", "fairness", "explain", "federated", "privacy", "synthetic", "robustness"),
        *("deploy", "audit"),
    ],
    "harness": ["harness", "__main__.py"],  # python -m medlab runs medlab.harness.cli
}

#: extras whose packages a group's code imports only inside a function, where one optional
#: feature needs them (a clear error names the install command when they are missing):
#: extra -> the group whose code imports them
LAZY_EXTRAS = {"cluster": "harness"}  # medlab.harness.backends: `medlab reproduce --scheduler`

#: declared, used without being imported by the group's code: package -> (groups, why)
RUNTIME = {
    "ipykernel": (
        {"lessons", "harness"},
        "the notebooks' kernel (students in Jupyter; papermill runs)",
    ),
    "jupyterlab": ({"lessons"}, "where students open the notebooks (Binder, locally)"),
    "dask": ({"cluster"}, "distributed's own core, installed as the pair dask[distributed]"),
}


def _files(group: str) -> list[Path]:
    paths = [PKG / p for p in CODE[group]]
    return [f for p in paths for f in (sorted(p.rglob("*.py")) if p.is_dir() else [p])]


def _declared(group: str, *, lazy: bool = False) -> dict[str, Requirement]:
    """The core's dependencies or one extra's, as listed (self-references left out); with
    ``lazy``, also those of the extras the group imports lazily (:data:`LAZY_EXTRAS`)."""
    deps = list(PROJECT["dependencies"] if group == "core" else EXTRAS[group])
    if lazy:
        deps += [d for extra, g in LAZY_EXTRAS.items() if g == group for d in EXTRAS[extra]]
    reqs = [Requirement(d) for d in deps]
    return {canonicalize_name(r.name): r for r in reqs if r.name != PROJECT["name"]}


def _imports(source: str, *, at_load: bool = False) -> set[str]:
    """The top-level packages ``source`` imports (``at_load``: only its module-level imports)."""
    out = set()
    tree = ast.parse(source)
    for node in tree.body if at_load else ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _used_modules(group: str) -> set[str]:
    mods = set()
    for f in _files(group):
        mods |= _imports(f.read_text())
    if group == "lessons":
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
    return {m: {canonicalize_name(d) for d in dists.get(m, [])} for m in modules}


def _used(group: str) -> set[str]:
    return set().union(set(), *_distributions(_used_modules(group)).values())


def test_every_module_is_in_one_group():
    grouped = [f for group in CODE for f in _files(group)]
    assert len(grouped) == len(set(grouped)), "a module is in two groups"
    assert set(grouped) == set(PKG.rglob("*.py")), (
        f"not in any group of CODE: {sorted(set(PKG.rglob('*.py')) - set(grouped))}"
    )


def test_every_imported_package_is_declared():
    declared = set().union(*(_declared(g, lazy=True) for g in CODE))
    used = set().union(*(_used_modules(g) for g in CODE))
    missing = {m: d for m, d in _distributions(used).items() if not d & declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_declared_package_is_used():
    used = set().union(*(_used(g) for g in CODE))
    unused = set().union(*(_declared(g, lazy=True) for g in CODE)) - used - set(RUNTIME)
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"


@pytest.mark.parametrize("group", list(CODE))
def test_a_groups_imports_are_in_the_core_or_its_extra(group):
    """A core module's imports are in the core (not only in an extra); a lesson's or the
    harness's, in the core or its own extra."""
    declared = set(_declared("core")) | (
        set(_declared(group, lazy=True)) if group != "core" else set()
    )
    missing = {m: d for m, d in _distributions(_used_modules(group)).items() if not d & declared}
    where = "the core dependencies" if group == "core" else f"the core or the {group} extra"
    assert not missing, f"{group} code imports packages not in {where}: {missing}"


@pytest.mark.parametrize("group", list(CODE))
def test_a_group_declares_only_what_its_code_uses(group):
    runtime = {name for name, (groups, _) in RUNTIME.items() if group in groups}
    unused = set(_declared(group)) - _used(group) - runtime
    assert not unused, f"the {group} group declares packages its code never imports: {unused}"
    if group != "core":
        both = set(_declared(group)) & set(_declared("core"))
        assert not both, f"in the core and again in the {group} extra: {both}"


@pytest.mark.parametrize("extra", list(LAZY_EXTRAS))
def test_a_lazy_extra_is_imported_only_inside_functions(extra):
    """The packages of an extra such as ``cluster`` are imported where the feature runs, never
    when its module loads: without the extra, everything else still imports."""
    group = LAZY_EXTRAS[extra]
    names = {canonicalize_name(Requirement(d).name) for d in EXTRAS[extra]}
    names -= {n for n, (groups, _) in RUNTIME.items() if extra in groups}
    top_level = set().union(*(_imports(f.read_text(), at_load=True) for f in _files(group)))
    at_load = {m for m, d in _distributions(top_level).items() if d & names}
    assert names <= _used(group), f"the {extra} extra's {sorted(names - _used(group))} unused"
    assert not at_load, f"{group} imports the {extra} extra's {sorted(at_load)} at module level"


def test_runtime_packages_are_declared_where_they_are_needed():
    for name, (groups, why) in RUNTIME.items():
        for group in groups:
            assert name in _declared(group), f"{name} ({why}) must be in the {group} extra"


def test_a_package_in_two_groups_has_one_requirement():
    seen: dict[str, Requirement] = {}
    for group in CODE:
        for name, req in _declared(group).items():
            assert str(seen.setdefault(name, req)) == str(req), f"{req} vs {seen[name]}"


def test_all_and_dev_install_everything():
    assert EXTRAS["all"] == [f"{PROJECT['name']}[{','.join(g for g in CODE if g != 'core')}]"]
    assert f"{PROJECT['name']}[all,flower]" in EXTRAS["dev"]


def _closure(reqs: list[Requirement]) -> set[str]:
    """The installed distributions these requirements pull in, following each requirement's
    extras and markers (what pip would install, as far as it is installed here)."""
    out: set[str] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in reqs]
    done = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        out.add(name)
        for spec in dist.requires or []:
            req = Requirement(spec)
            envs = [{"extra": e} for e in ("", *extras)]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return out


#: run in a fresh interpreter: a finder first in sys.meta_path makes the blocked top-level
#: packages missing, then every core module is imported
_LEAN = """
import importlib, sys
BLOCKED = set(sys.argv[1].split(","))
early = sorted(BLOCKED & {m.split(".")[0] for m in sys.modules})
assert not early, f"imported before the test could block them: {early}"

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (extra-only)", name=name)
        return None

sys.meta_path.insert(0, Missing())
for module in sys.argv[2].split(","):
    importlib.import_module(module)
import medlab
for name in medlab.__all__:
    getattr(medlab, name)
print("OK")
"""


def test_the_core_imports_without_the_extras():
    """`pip install medlab-edu` (no extras) is enough for every core module: with every package
    that only an extra brings in missing (blocked), each imports, and so does each of medlab's
    top-level names."""
    extras = [Requirement(d) for group in EXTRAS for d in EXTRAS[group]]
    core = _closure([Requirement(d) for d in PROJECT["dependencies"]])
    extra_only = _closure([r for r in extras if r.name != PROJECT["name"]]) - core
    blocked = {
        m
        for m, dists in packages_distributions().items()
        if m != "medlab" and {canonicalize_name(d) for d in dists} <= extra_only
    }
    assert {"captum", "papermill", "opacus", "pytest"} <= blocked  # the finder has work to do
    modules = sorted(
        ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for f in _files("core")
    )
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", _LEAN, ",".join(sorted(blocked)), ",".join(modules)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("OK"), res.stderr[-3000:]


def test_a_core_only_install_names_the_extra_medlab_reproduce_needs(tmp_path):
    """`medlab reproduce` without the harness extra: exit 2 and the pip command, no traceback."""
    import subprocess

    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'papermill':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from medlab.harness.cli import main\n"
        f"sys.exit(main(['reproduce', '--quick', '--output', {str(tmp_path)!r}, '00_tour']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    assert "'papermill'" in out.stderr and "pip install 'medlab-edu[all]'" in out.stderr
    assert "Traceback" not in out.stderr
    assert not any(tmp_path.iterdir()), "nothing may be written before the check"
