"""pyproject.toml, environment.yml (Binder/conda), binder/ and constraints.txt declare the same
dependencies (environment.yml: the core and every extra a student uses, ``.[all]``); README's
commands and .ci/run stay in step."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _requirements(extras: list[str]) -> list[Requirement]:
    """pyproject's core dependencies and those of the given extras, self-references
    (``medlab-edu[lessons,harness]``) followed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs, todo, seen = [Requirement(d) for d in project["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for d in project["optional-dependencies"][extra]:
            req = Requirement(d)
            if req.name == project["name"]:
                todo += sorted(req.extras)
            else:
                reqs.append(req)
    return reqs


def _pyproject() -> dict[str, Requirement]:
    """What environment.yml must install: the core and ``all`` (every extra a student uses; not
    dev's test tools nor flower)."""
    return {r.name.lower(): r for r in _requirements(["all"])}


def test_all_is_every_extra_but_the_tools():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"]) - {"all", "dev", "flower", "cluster"}
    assert _pyproject() == {r.name.lower(): r for r in _requirements(sorted(extras))}
    dev = {r.name.lower() for r in _requirements(["dev"])}
    tools = {"flwr", "dask", "distributed"}  # the flower and cluster extras, for their tests
    assert dev >= set(_pyproject()) | tools, "dev (README's install) must install everything"


def _environment(path: Path) -> tuple[list, dict[str, Requirement]]:
    env = yaml.safe_load(path.read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    reqs = {Requirement(p).name.lower(): Requirement(p) for p in pip if not p.startswith("-")}
    return conda, reqs


def _constraints() -> dict[str, Requirement]:
    lines = [ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()]
    reqs = [Requirement(ln) for ln in lines if ln and not ln.startswith("#")]
    return {r.name.lower(): r for r in reqs}


def test_environment_declares_same_packages_as_pyproject():
    py = _pyproject()
    conda, env = _environment(ROOT / "environment.yml")
    assert set(env) == set(py), (
        f"only in pyproject: {set(py) - set(env)}; only in env: {set(env) - set(py)}"
    )
    assert any(d.startswith("python=3.11") for d in conda)
    for name, req in env.items():
        if name in ("torch", "torchvision"):
            version = str(req.specifier).removeprefix("==")
            assert py[name].specifier.contains(version), f"{name} {version} outside {py[name]}"
        else:
            assert req.specifier == py[name].specifier, f"{name}: {req} vs {py[name]}"


def test_binder_uses_the_same_environment_file():
    binder = ROOT / "binder" / "environment.yml"
    assert binder.read_text() == (ROOT / "environment.yml").read_text()
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "medlab download" in post


def test_cpu_only_torch_for_binder():
    text = (ROOT / "environment.yml").read_text()
    assert "download.pytorch.org/whl/cpu" in text


def _optional() -> dict[str, Requirement]:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    reqs = [Requirement(d) for deps in extras.values() for d in deps]
    return {r.name.lower(): r for r in reqs if r.name != "medlab-edu"}


def test_constraints_pin_versions_pyproject_allows():
    py, pins = {**_optional(), **_pyproject()}, _constraints()
    conda, env = _environment(ROOT / "environment.yml")
    for name, pin in pins.items():
        version = str(pin.specifier).removeprefix("==")
        assert name in py and py[name].specifier.contains(version), f"{pin} outside {py.get(name)}"
    for name in ("torch", "torchvision"):
        assert str(env[name].specifier) == str(pins[name].specifier)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- (\w+)-command -->\s*```bash\n(.*?)```", readme, re.S)
    commands = dict(blocks)
    assert set(commands) >= {"run", "test"}, "README needs the run and test command blocks"
    for cmd in commands.values():
        assert "constraints.txt" in cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"TEST_COMMAND='{commands['test'].strip()}'" in ci, (
        ".ci/run must hold README's test command"
    )
    run_lines = [ln for ln in ci.splitlines() if not ln.lstrip().startswith(("#", "TEST_COMMAND="))]
    assert commands["test"].strip() in run_lines, ".ci/run must run that command as a line"
