"""The shape of the package (issue 26): a small teaching library and a separate harness, one
idea per module, and budgets that keep it that way."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "medlab"
MODULES = sorted(PKG.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: the command line may import what a subcommand needs when it runs (`medlab --help` stays fast)
LAZY_IMPORTS_ALLOWED = {PKG / "harness" / "cli.py"}


def _rel(p: Path) -> str:
    return str(p.relative_to(PKG.parent))


def _tree(p: Path) -> ast.Module:
    return ast.parse(p.read_text(encoding="utf-8"))


def _medlab_imports(node: ast.AST, module: str) -> list[str]:
    """The medlab modules an import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "medlab"]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".")[: -node.level]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        if name.split(".")[0] == "medlab":
            return [name] + [f"{name}.{a.name}" for a in node.names]
    return []


def test_no_module_is_longer_than_the_budget():
    long = {
        _rel(p): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules (one idea each, <= {MAX_MODULE_LINES} lines): {long}"


def test_no_function_is_longer_than_the_budget():
    long = {}
    for p in MODULES:
        for node in ast.walk(_tree(p)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{_rel(p)}:{node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_medlab_modules_are_imported_at_module_level():
    hidden = []
    for p in MODULES:
        if p in LAZY_IMPORTS_ALLOWED:
            continue
        for fn in ast.walk(_tree(p)):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(fn):
                    if _medlab_imports(node, _module_name(p)):
                        hidden.append(f"{_rel(p)}:{fn.name} (line {node.lineno})")
    assert not hidden, f"function-level imports of medlab hide the dependency graph: {hidden}"


def _module_name(p: Path) -> str:
    parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    names = {_module_name(p) for p in MODULES}
    graph: dict[str, set[str]] = {}
    for p in MODULES:
        me = _module_name(p)
        deps = set()
        for node in _tree(p).body:  # module level; `if TYPE_CHECKING:` blocks are not imports
            for name in _medlab_imports(node, me if p.name != "__init__.py" else me + ".x"):
                if name in names and name != me:
                    deps.add(name)
        graph[me] = deps
    return graph


def test_the_library_never_imports_the_harness():
    graph = _graph()
    bad = {m: sorted(d for d in deps if d.startswith("medlab.harness"))
           for m, deps in graph.items() if not m.startswith("medlab.harness")}  # fmt: skip
    assert not {m: d for m, d in bad.items() if d}, bad


def test_no_import_cycle_between_modules():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(path[path.index(d) :] + [d] if d in path else [m, d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # a package's __init__ importing its own submodules (re-exports) is not a cycle
    real = [c for c in cycles if not all(x.startswith(c[0]) or c[0].startswith(x) for x in c)]
    assert not real, f"import cycles: {real}"


@pytest.mark.parametrize("names", ["", "load lesson train_model Recorder predict summarize"])
def test_import_medlab_loads_no_harness_code(names):
    code = (
        "import sys, medlab\n"
        f"for n in {names.split()!r}: getattr(medlab, n)\n"
        "print(sorted(m for m in sys.modules if m.startswith('medlab.harness')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_pyproject_lists_every_subpackage():
    conf = tomllib.loads((PKG.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {_module_name(p) for p in PKG.rglob("__init__.py")}
    listed = set(conf["packages"]) - {"medlab.datasets"}
    assert listed == folders, (
        f"pyproject's packages must list every package folder (a wheel leaves out the rest): "
        f"missing {sorted(folders - listed)}, extra {sorted(listed - folders)}"
    )


def test_contributing_maps_every_module():
    """CONTRIBUTING's map of the code names every module once and nothing that does not exist."""
    text = (PKG.parent / "CONTRIBUTING.md").read_text()
    body = text[text.index("## Map of the code") :]
    body = body[: body.index("\n## ", 5)] if "\n## " in body[5:] else body
    mapped, folder = set(), None
    for line in body.splitlines():
        top = re.match(r"^- `medlab/([\w/.]+)`", line)
        sub = re.match(r"^  - `([\w.]+\.py)`", line)
        if top:
            name = top.group(1)
            folder = name.rstrip("/") if name.endswith("/") else None
            mapped.add(f"{name}__init__.py" if name.endswith("/") else name)
        elif sub and folder:
            mapped.add(f"{folder}/{sub.group(1)}")
    actual = {str(p.relative_to(PKG)) for p in MODULES}
    assert mapped == actual, (
        f"CONTRIBUTING's map lacks {sorted(actual - mapped)} and names {sorted(mapped - actual)}"
    )
