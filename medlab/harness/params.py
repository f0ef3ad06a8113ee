"""Documented parameter ranges: what a student may set in a notebook's ``parameters`` cell.

Every parameter beyond ``quick``, ``seed``, ``dataset`` and ``data_dir`` documents its range in
its comment, as two Python literals: ``# <what it is>; range: LO to HI``, for example
``defer_rate = 0.15  # share of cases deferred; range: 0.05 to 0.5`` or, for a list,
``eps_levels = [0, 1, 2, 4, 8]  # budgets (grey levels); range: [0, 8] to [0, 2, 8, 16]``.
A parameter a student should not change (an online-only variant, a folder) says
``fixed: <why>`` instead. ``tests/test_parameter_ranges.py`` runs each notebook with every
parameter at its low end, then at its high end (two seeds no file names): no run may end on a
traceback, and a lesson that does not hold must say so in the student's view.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat

__all__ = ["STANDARD", "parameter_ranges", "range_ends"]

#: The parameters every notebook has (rule 3 of the house): not part of a range test.
STANDARD = ("quick", "seed", "dataset", "data_dir")
_ASSIGN = re.compile(r"^(\w+)\s*=\s*(.*?)\s*(?:#\s*(.*))?$")
_RANGE = re.compile(r"\brange:\s*(.+?)\s+to\s+(.+?)\s*(?:[;)]|$)")
_FIXED = re.compile(r"\bfixed:\s*(.+)$")


def _comments(source: str) -> dict[str, str]:
    """Each assigned name's comment, continuation comment lines included."""
    out: dict[str, str] = {}
    last = None
    for line in source.splitlines():
        m = _ASSIGN.match(line)
        if m:
            last = m.group(1)
            out[last] = m.group(3) or ""
        elif last and line.strip().startswith("#"):
            out[last] += " " + line.strip().lstrip("#").strip()
    return out


def parameter_ranges(path: Path) -> dict[str, tuple[Any, Any] | str]:
    """``{name: (low, high)}`` for each documented range of ``path``'s parameters cell, and
    ``{name: "fixed: why"}`` for a parameter marked fixed. Raises ValueError naming a parameter
    that documents neither, or whose ends are not Python literals."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ValueError(f"{path.name}: no cell tagged 'parameters'")
    out: dict[str, tuple[Any, Any] | str] = {}
    for name, comment in _comments(cells[0].source).items():
        if name in STANDARD:
            continue
        fixed, rng = _FIXED.search(comment), _RANGE.search(comment)
        if rng:
            try:
                out[name] = (ast.literal_eval(rng.group(1)), ast.literal_eval(rng.group(2)))
            except (ValueError, SyntaxError):
                raise ValueError(
                    f"{path.name}: {name}'s range {rng.group(0)!r} is not two Python literals; "
                    "write e.g. 'range: 0.05 to 0.5' or 'range: [0, 8] to [0, 4, 8, 16]'"
                ) from None
        elif fixed:
            out[name] = f"fixed: {fixed.group(1)}"
        else:
            raise ValueError(
                f"{path.name}: parameter {name!r} documents no range; end its comment with "
                "'range: LO to HI' (two Python literals) or 'fixed: <why a student keeps it>'"
            )
    return out


def range_ends(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parameters of the low-end run and of the high-end run of ``path``."""
    ranges = {k: v for k, v in parameter_ranges(path).items() if isinstance(v, tuple)}
    return {k: lo for k, (lo, _) in ranges.items()}, {k: hi for k, (_, hi) in ranges.items()}
