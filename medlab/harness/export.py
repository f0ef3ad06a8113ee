"""The taught algorithms are written once, in the notebook the student reads (d2l's ``#@save``,
nbdev's ``#| export``).

A notebook code cell whose first line is ``#| export medlab.<module>`` is the source of that
code. The module holds a copy between two marker lines, written by this tool and checked by
``tests/test_export.py`` (a test fails when a copy is stale, or when a region has no cell)::

    # %% exported from notebooks/06_privacy.ipynb: edit the notebook, then run
    # %% `python -m medlab.harness.export`
    def dp_sgd_step(...):
        ...
    # %% end of export

Regions sit between ``# fmt: off`` and ``# fmt: on`` lines (one pair may hold several regions):
the copy is the notebook's text, which ``ruff format`` must not rewrite. The tool adds the pair
around a region it appends, and ``--check`` reports a region outside such a pair.

The notebook runs its own cell (the student can read, change or blank it); the library, the
Flower app and the tests import the module's copy, which is the same text. A module's other code
(its docstring, imports, helpers) is written in the module as usual.

``python -m medlab.harness.export`` rewrites every region from its cell; ``--check`` only
reports, and exits with status 1 when something is stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = re.compile(r"^#\|\s*export\s+(medlab(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*$")
BEGIN = (
    "# %% exported from {nb}: edit the notebook, then run\n# %% `python -m medlab.harness.export`\n"
)
BEGIN_RE = re.compile(
    r"^# %% exported from (\S+): edit the notebook, then run\n# %% `python -m medlab\.harness\.export`\n",
    re.M,
)
END = "# %% end of export\n"

__all__ = ["Cell", "cells", "regions", "check", "write", "main"]


@dataclass(frozen=True)
class Cell:
    """One exported notebook cell: where it is, the module it goes to, and its code."""

    notebook: str  # relative to the repository root, e.g. notebooks/06_privacy.ipynb
    index: int  # the cell's position in the notebook (0-based)
    module: str  # dotted, e.g. medlab.privacy.dpsgd
    code: str  # the cell's source without the marker line, ending in one newline

    def path(self, root: Path = ROOT) -> Path:
        return root / (self.module.replace(".", "/") + ".py")


def cells(root: Path = ROOT) -> list[Cell]:
    """Every ``#| export`` cell of ``root/notebooks/*.ipynb``, in notebook and cell order."""
    out = []
    for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        doc = json.loads(nb.read_text(encoding="utf-8"))
        for i, c in enumerate(doc["cells"]):
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            first, _, rest = src.partition("\n")
            m = MARK.match(first)
            if c["cell_type"] == "code" and m:
                code = rest.strip("\n") + "\n"
                out.append(Cell(str(nb.relative_to(root)), i, m.group(1), code))
    return out


def regions(text: str) -> list[tuple[str, int, int]]:
    """The export regions of a module's text: (notebook, start, end) character offsets of the
    code between the markers."""
    out = []
    for m in BEGIN_RE.finditer(text):
        end = text.find(END, m.end())
        if end < 0:
            raise ValueError(f"an export region from {m.group(1)} has no `{END.strip()}` line")
        out.append((m.group(1), m.end(), end))
    return out


def _plan(root: Path) -> dict[Path, list[Cell]]:
    by_module: dict[Path, list[Cell]] = {}
    for c in cells(root):
        by_module.setdefault(c.path(root), []).append(c)
    for path in sorted((root / "medlab").rglob("*.py")):
        if BEGIN_RE.search(path.read_text(encoding="utf-8")):
            by_module.setdefault(path, [])
    return by_module


def _unformatted(text: str, pos: int) -> bool:
    """Whether ``pos`` lies after a ``# fmt: off`` line that no ``# fmt: on`` line closed."""
    off, on = text.rfind("\n# fmt: off\n", 0, pos), text.rfind("\n# fmt: on\n", 0, pos)
    return off > on


def check(root: Path = ROOT) -> list[str]:
    """What is stale: a cell whose module lacks it, a region without a cell, a different text.
    Empty when every module's copy equals its notebook cell."""
    problems = []
    for path, cs in _plan(root).items():
        rel = path.relative_to(root)
        if not path.exists():
            problems.append(f"{rel}: missing (exported from {cs[0].notebook})")
            continue
        text = path.read_text(encoding="utf-8")
        rs = regions(text)
        if len(rs) != len(cs):
            problems.append(f"{rel}: {len(rs)} export regions for {len(cs)} notebook cells")
        for c, (nb, a, b) in zip(cs, rs, strict=False):
            if nb != c.notebook or text[a:b] != c.code:
                problems.append(f"{rel}: the copy of {c.notebook} cell {c.index} is stale")
            if not _unformatted(text, a):
                problems.append(
                    f"{rel}: the copy of {c.notebook} cell {c.index} is not inside "
                    "`# fmt: off` / `# fmt: on` (ruff format would rewrite it)"
                )
    return problems


def write(root: Path = ROOT) -> list[Path]:
    """Rewrite every module's regions from the notebook cells (new cells are appended at the
    end of their module). Returns the modules that changed."""
    changed = []
    for path, cs in _plan(root).items():
        if not path.exists():
            raise FileNotFoundError(
                f"{path.relative_to(root)} does not exist: create the module (docstring and "
                "imports) first, then export into it"
            )
        text = path.read_text(encoding="utf-8")
        rs = regions(text)
        if len(rs) > len(cs):
            raise ValueError(
                f"{path.relative_to(root)} has {len(rs)} export regions but only {len(cs)} "
                "notebook cells export to it: delete the extra region by hand"
            )
        new, pos = [], 0
        for c, (_nb, a, b) in zip(cs, rs, strict=False):
            head = text.rfind("# %% exported from", 0, a)
            new += [text[pos:head], BEGIN.format(nb=c.notebook), c.code]
            pos = b
        new.append(text[pos:])
        for c in cs[len(rs) :]:
            new.append(
                ("\n\n" if not new[-1].endswith("\n\n") else "")
                + "# fmt: off\n"
                + BEGIN.format(nb=c.notebook)
                + c.code
                + END
                + "# fmt: on\n"
            )
        out = "".join(new)
        if out != text:
            path.write_text(out, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m medlab.harness.export", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--check", action="store_true", help="only report stale copies (exit 1 if any)")
    args = ap.parse_args(argv)
    if args.check:
        problems = check()
        for p in problems:
            print(p)
        return 1 if problems else 0
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
