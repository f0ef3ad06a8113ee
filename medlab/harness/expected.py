"""The expected-results file (``notebooks/expected_results.yaml``): read it, check every entry
and name the fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from medlab.harness.base import ExpectedFileError, is_number, one_line
from medlab.harness.notebooks import NOTEBOOKS
from medlab.harness.tolerances import MIN_SEEDS, WIDE_TOL, is_rate_key
from medlab.results import check_key

__all__ = [
    "EXPECTED",
    "ORIGINS",
    "MODES",
    "ENTRY_FIELDS",
    "UNEXPLAINED",
    "FIX",
    "check_expected",
    "load_expected",
    "read_expected",
    "section",
]

EXPECTED = NOTEBOOKS / "expected_results.yaml"
ORIGINS = ("official", "unofficial")
MODES = ("quick", "full")
UNEXPLAINED = "UNEXPLAINED: spread over seeds is large"
ENTRY_FIELDS = ("value", "tol", "sd", "n_seeds", "seeds", "derived", "reason")
FIX = (
    "Fix the entry by hand, or regenerate that section from real runs with `medlab reproduce "
    "--update-expected --seeds 0 10 20 30 40 [--quick] ...` (CONTRIBUTING.md, 'Expected results')"
)


def _check_entry(
    entry: Any, key: str, fail: Any, *, strict: bool = True
) -> tuple[bool, bool, bool]:
    """Validate one ``{value, tol, ...}`` entry; returns (legacy, unexplained, unjustified);
    ``strict``: an unjustified wide AUC/accuracy tolerance is an error, not just reported."""
    if not isinstance(entry, dict):
        fail(f"must be a mapping such as {{value: 0.95, tol: 0.03}}, got {entry!r}")
    unknown = sorted(set(entry) - set(ENTRY_FIELDS), key=str)
    if unknown:
        fail(f"unknown field(s) {', '.join(map(str, unknown))}; allowed: {', '.join(ENTRY_FIELDS)}")
    for name in ("value", "tol"):
        if name not in entry:
            fail(f"lacks `{name}`")
        if not is_number(entry[name]):
            tip = (
                "; write numbers like 0.001 or 1.0e-03 (YAML reads 1e-3 as text)"
                if isinstance(entry[name], str)
                else ""
            )
            fail(f"`{name}` must be a finite number, got {entry[name]!r}{tip}")
    if entry["tol"] < 0:
        fail(f"`tol` must be >= 0, got {entry['tol']}")
    if "sd" in entry and (not is_number(entry["sd"]) or entry["sd"] < 0):
        fail(f"`sd` must be a number >= 0, got {entry['sd']!r}")
    n = entry.get("n_seeds", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        fail(f"`n_seeds` must be a positive integer, got {n!r}")
    seeds = entry.get("seeds", [])
    if not isinstance(seeds, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds
    ):
        fail(f"`seeds` must be a list of non-negative integers, got {seeds!r}")
    for name in ("derived", "reason"):
        if name in entry and (not isinstance(entry[name], str) or not entry[name].strip()):
            fail(f"`{name}` must be a non-empty string, got {entry[name]!r}")
    reason = entry.get("reason", "")
    unjustified = entry["tol"] > WIDE_TOL and is_rate_key(key) and not reason
    if unjustified and strict:
        fail(
            f"tol {entry['tol']} > {WIDE_TOL} on an AUC/accuracy key checks almost nothing "
            "and needs a `reason:` saying why the number varies this much (the record's note)"
        )
    return "derived" not in entry, reason.startswith("UNEXPLAINED"), unjustified


def check_expected(
    tree: Any, source: str = "expected results", *, strict: bool = True
) -> list[str]:
    """Validate an expected-results tree; raises :class:`ExpectedFileError` naming ``source``,
    the entry and the fix. Returns warnings (legacy entries without derivation, unexplained
    wide tolerances). ``strict=False`` (used while regenerating) only warns about a wide
    AUC/accuracy tolerance without a reason."""

    fail_at = _failure(source)
    if tree is None:
        return []
    legacy, unexplained, unjustified = 0, [], []
    for where, key, entry in _entries(tree, fail_at):
        old, unexp, unjust = _check_entry(entry, key, fail_at(where), strict=strict)
        legacy += old
        if unexp:
            unexplained.append(where)
        if unjust:
            unjustified.append(where)
    out = []
    if legacy:
        out.append(
            f"{legacy} expected value(s) in {source} have no `derived` field (written "
            f"before tolerances were measured over >= {MIN_SEEDS} seeds); regenerate "
            "them with `medlab reproduce --update-expected --seeds 0 10 20 30 40 ...`"
        )
    if unexplained:
        out.append(
            f"{len(unexplained)} expected value(s) in {source} have a wide tolerance "
            f"marked UNEXPLAINED, e.g. {unexplained[0]}"
        )
    if unjustified:
        out.append(
            f"{len(unjustified)} expected value(s) in {source} have a tolerance > "
            f"{WIDE_TOL} on an AUC/accuracy key without a `reason`, e.g. {unjustified[0]}; "
            "regenerate those sections with --update-expected --seeds 0 10 20 30 40"
        )
    return out


def _failure(source: str) -> Any:
    """``fail_at(where)(problem)`` raises :class:`ExpectedFileError` naming ``source``, the
    entry and the fix."""

    def fail_at(where: str) -> Any:
        def fail(problem: str) -> None:
            raise ExpectedFileError(f"{source}: {where}: {problem}. {FIX}")

        return fail

    return fail_at


def _entries(tree: Any, fail_at: Any) -> Iterator[tuple[str, str, Any]]:
    """Each entry of an expected-results tree as (where, key, entry), its layout and key checked."""
    if not isinstance(tree, dict):
        fail_at("top level")(
            f"must map data origin ({' / '.join(ORIGINS)}) to modes, got {type(tree).__name__}"
        )
    for origin, modes in tree.items():
        if origin not in ORIGINS:
            fail_at(f"{origin!r}")(f"unknown data origin; use {' or '.join(ORIGINS)}")
        for mode, nbs in _mapping(modes, origin, fail_at).items():
            if mode not in MODES:
                fail_at(f"{origin} > {mode!r}")(f"unknown mode; use {' or '.join(MODES)}")
            for nb, dsets in _mapping(nbs, f"{origin} > {mode}", fail_at).items():
                for ds, keys in _mapping(dsets, f"{origin} > {mode} > {nb}", fail_at).items():
                    for key, entry in _mapping(
                        keys, f"{origin} > {mode} > {nb} > {ds}", fail_at
                    ).items():
                        where = f"{origin} > {mode} > {nb} > {ds} > {key}"
                        try:
                            check_key(key)
                        except (TypeError, ValueError) as exc:
                            fail_at(where)(str(exc))
                        yield where, key, entry


def _mapping(node: Any, where: str, fail_at: Any) -> dict[Any, Any]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        fail_at(where)(f"must be a mapping, got {type(node).__name__} {node!r}")
    for k in node:
        if not isinstance(k, str):
            fail_at(where)(f"name {k!r} must be a string")
    return node


def read_expected(path: Path, *, strict: bool = True) -> tuple[dict[str, Any], list[str]]:
    if not path.exists():
        return {}, []
    if not path.is_file():
        raise ExpectedFileError(f"{path} is not a file; pass the expected-results YAML file")
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ExpectedFileError(
            f"{path} is not valid YAML{where} ({one_line(problem)}). {FIX}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExpectedFileError(f"{path} cannot be read ({exc})") from None
    notes = check_expected(tree, str(path), strict=strict)
    return tree or {}, notes


def load_expected(path: str | os.PathLike[str] = EXPECTED) -> dict[str, Any]:
    """The validated expected-results tree (``{}`` if the file does not exist); raises
    :class:`ExpectedFileError` on bad YAML or a malformed entry."""
    return read_expected(Path(path))[0]


def section(tree: dict[str, Any], *names: str) -> dict[str, Any]:
    for n in names:
        tree = (tree or {}).get(n) or {}
    return tree
