"""``--update-expected``: write the entries derived over seeds into the expected-results file,
replacing only the sections that were run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from medlab.harness.base import ReproduceError, Row, one_line
from medlab.harness.expected import (
    ENTRY_FIELDS,
    EXPECTED,
    MODES,
    UNEXPLAINED,
    check_expected,
    read_expected,
)
from medlab.harness.tolerances import (
    MIN_SEEDS,
    TOL_FLOOR,
    WIDE_TOL,
    covers_range,
    derive,
    is_rate_key,
    key_range,
    prediction_factor,
)

__all__ = ["update_expected", "HEADER"]

HEADER = f"""\
# Expected values for `medlab reproduce`, written by
# `medlab reproduce --update-expected --seeds 0 10 20 30 40 [--quick] ...` from real runs (never
# typed in by hand; review the diff). Layout: <origin>/<mode>/<notebook>/<dataset>/<key>. origin:
# official = official MedMNIST files (md5 match), unofficial = other copies (e.g. the shared CI
# data); mode: quick or full. A number is reproduced when |now - value| <= tol.
# How each entry is derived, from one run per seed (n_seeds >= {MIN_SEEDS}):
#   value = mean over the seeds; sd = sample standard deviation over the seeds (ddof=1);
#   tol = max(k * sd, floor), k = t_0.995(n - 1) * sqrt(1 + 1/n) (a 99 % prediction interval for
#   one new run: 11.5 for 3 seeds, 5.04 for 5; a rerun on another CPU is such a new run), floor =
#   the notebook author's hint (rec.record(..., tol=)) or {TOL_FLOOR}; when sd == 0 (exact numbers
#   such as image counts) tol = the hint, else 0; tol is rounded up to 3 significant digits.
#   `derived` says which term set tol.
#   An AUC/accuracy key (a segment containing auc/acc) with tol > {WIDE_TOL} needs a `reason`,
#   taken from the record's note; "{UNEXPLAINED}" marks one to investigate.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _list_flow(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(list, _list_flow)


def _sorted_tree(tree: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    if depth == 5:  # an entry: fields in their documented order
        return {k: tree[k] for k in ENTRY_FIELDS if k in tree}
    return {
        k: _sorted_tree(v, depth + 1) if isinstance(v, dict) else v for k, v in sorted(tree.items())
    }


def update_expected(
    rows: list[Row], mode: str, *, path: str | os.PathLike[str] = EXPECTED
) -> list[str]:
    """Write the entries derived from ``rows`` (one per seed, >= 3 seeds) into the expected file,
    replacing the sections (origin, mode, notebook, dataset) they come from and keeping all
    others (so one dataset can be regenerated without touching another's values).
    Returns warnings (wide AUC/accuracy tolerances without a note)."""
    path = Path(path)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    groups: dict[tuple[str, str, str, str], list[Row]] = {}
    nb_seeds: dict[tuple[str, str], set[Any]] = {}
    for r in rows:
        if r.value is None or r.machine:
            continue
        groups.setdefault((r.origin, r.notebook, r.dataset, r.key), []).append(r)
        nb_seeds.setdefault((r.origin, r.notebook), set()).add(r.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(path.parent):  # two runs updating at once must not drop each other's sections
        return _update(path, groups, nb_seeds, mode)


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (flock on the directory itself: no lock file is left
    behind, and the lock goes when the process does)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _update(
    path: Path,
    groups: dict[tuple[str, str, str, str], list[Row]],
    nb_seeds: dict[tuple[str, str], set[Any]],
    mode: str,
) -> list[str]:
    """Read the expected file, replace the sections in ``groups``, write it back atomically."""
    tree, _ = read_expected(path, strict=False)
    sections: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    notes: list[str] = []
    for (origin, nb, dataset, key), rs in sorted(groups.items()):
        entry = _entry(f"{nb} {dataset} {key}", key, rs, nb_seeds[origin, nb], notes, path)
        sections.setdefault((origin, nb), {}).setdefault(dataset, {})[key] = entry
    for (origin, nb), section in sections.items():
        if not isinstance(tree.get(origin), dict):
            tree[origin] = {}
        if not isinstance(tree[origin].get(mode), dict):
            tree[origin][mode] = {}
        if not isinstance(tree[origin][mode].get(nb), dict):
            tree[origin][mode][nb] = {}
        tree[origin][mode][nb].update(section)  # per dataset: other datasets' entries stay
    text = HEADER + yaml.dump(
        _sorted_tree(tree), Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True
    )
    # never write what cannot be read back; report unjustified tolerances left in other sections
    for w in check_expected(yaml.safe_load(text), str(path), strict=False):
        if "without a `reason`" in w:
            notes.append(w)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return notes


def _entry(
    what: str, key: str, rs: list[Row], ran: set[Any], notes: list[str], path: Path
) -> dict[str, Any]:
    """The entry derived from one key's rows (one per seed; ``ran``: the seeds its notebook ran
    with); appends to ``notes`` what a reviewer should know about it."""
    seeds = sorted({r.seed for r in rs}, key=str)
    if None in seeds or len(seeds) != len(rs):
        raise ReproduceError(
            f"{what}: each value needs its own seed, got seeds {[r.seed for r in rs]}"
        )
    if len(seeds) < MIN_SEEDS:
        raise ReproduceError(
            f"{what}: recorded for seeds {seeds}; deriving a "
            f"tolerance needs >= {MIN_SEEDS} seeds (--seeds 0 10 20 30 40)"
        )
    if set(seeds) != ran:
        raise ReproduceError(
            f"{what}: recorded for seeds {seeds} but the "
            f"notebook ran with seeds {sorted(ran)}; a key "
            "must be recorded by every seed"
        )
    hint = next((r.hint for r in rs if r.hint is not None), None)
    entry = derive([r.value for r in rs], hint=hint)
    entry["seeds"] = seeds
    if entry["tol"] > WIDE_TOL and is_rate_key(key):
        note = next((r.note for r in rs if r.note and r.note.strip()), "")
        entry["reason"] = one_line(note) if note else UNEXPLAINED
        if not note:
            notes.append(
                f"{what}: tol {entry['tol']:g} > {WIDE_TOL} (SD "
                f"{entry['sd']:g} over seeds {seeds}) and the notebook gives no note "
                f"explaining it; marked UNEXPLAINED in {path.name}"
            )
    bounds = key_range(key)
    if bounds and covers_range(key, entry["value"], entry["tol"]):
        notes.append(
            f"{what}: {entry['value']:.3g} ± {entry['tol']:.3g} covers the "
            f"whole {bounds[0]:g} to {bounds[1]:g} range, so this comparison cannot fail; "
            f"more seeds narrow it (k = {prediction_factor(len(seeds)):.3g} with "
            f"{len(seeds)} seeds, {prediction_factor(2 * len(seeds)):.3g} with {2 * len(seeds)})"
        )
    return entry
