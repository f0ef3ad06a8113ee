"""Check every input of ``medlab reproduce`` before anything runs or is written."""

from __future__ import annotations

import itertools
import keyword
import os
from pathlib import Path
from typing import Any

from medlab.harness.base import ReproduceError, is_number
from medlab.harness.expected import EXPECTED
from medlab.harness.notebooks import find_notebooks, notebook_parameters
from medlab.harness.tolerances import MIN_SEEDS
from medlab.utils import check_scalar

__all__ = [
    "plan",
    "check_timeout",
    "check_jobs",
    "check_expected_path",
    "MAX_SEED",
    "SEED_GAP",
    "MIN_TIMEOUT",
]

#: --update-expected seeds must be this far apart (notebooks use seed, seed + 1, ...).
SEED_GAP = 10
#: Seeds go to NumPy and torch as seed, seed + 1, ... (up to 100 per notebook): below 2**32.
MAX_SEED = 2**31 - 1
MIN_TIMEOUT = 1.0  # --timeout: seconds per cell, at least this and finite


def _check_seed(value: Any, what: str) -> int:
    """A seed the notebooks can use: NumPy and torch get seed, seed + 1, ... (< 2**32)."""
    return check_scalar(
        what,
        value,
        kind=int,
        lo=0,
        hi=MAX_SEED,
        fix="pass a non-negative integer seed below 2**31 (notebooks seed NumPy and torch with "
        "seed, seed + 1, ...), e.g. --seed 0",
        error=ReproduceError,
    )


def _resolve(path: Any, what: str) -> Path:
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise ReproduceError(f"{what} must be a folder path, got {path!r}")
    p = Path(path).expanduser()
    return (p if p.is_absolute() else Path.cwd() / p).resolve()


def _check_output(output: Any) -> Path:
    try:
        out = _resolve(output, "--output")
        existing = [p for p in (out, *out.parents) if p.exists()]
    except OSError as exc:
        raise ReproduceError(
            f"--output {output}: cannot reach it ({exc.strerror or exc}); pass a folder you "
            "can write to, e.g. --output ~/medlab-outputs"
        ) from None
    if existing and not existing[0].is_dir():
        raise ReproduceError(
            f"--output {output}: {existing[0]} is a file, not a folder; pass a "
            "folder (it is created if missing), e.g. --output outputs"
        )
    return out


def plan(
    selection: list[str] | None,
    *,
    quick: bool,
    output: Any,
    data_dir: Any,
    seed: Any,
    seeds: Any,
    parameters: dict[str, Any] | None,
    update: bool,
    folder: Path,
) -> tuple[Path, dict[str, Any], list[int | None], list[Path], dict[Path, dict[str, Any]]]:
    """Check every input before anything runs; returns (output folder, base parameters, seeds,
    notebooks, their parameters)."""
    if not isinstance(quick, bool):
        raise ReproduceError(f"quick must be True or False, got {quick!r}")
    out = _check_output(output)
    params = dict(parameters or {})
    _check_names(params, quick)
    seed_list = _seeds(params, seed, seeds, update=update, quick=quick)
    base = _base(params, data_dir, quick)
    notebooks = find_notebooks(selection, folder)
    given = set(base) | ({"seed"} if seed_list != [None] else set())
    nb_params = {}
    for nb in notebooks:
        names = notebook_parameters(nb)
        unknown = sorted(given - set(names))
        if unknown:
            raise ReproduceError(
                f"{nb.name} has no parameter {', '.join(unknown)}; its parameters (cell tagged "
                f"'parameters') are: {', '.join(names) or 'none'}. Check -p NAME=VALUE"
            )
        nb_params[nb] = names
    return out, base, seed_list, notebooks, nb_params


def _check_names(params: dict[str, Any], quick: bool) -> None:
    """Every ``-p`` name is a Python name; a ``-p quick=`` (removed) agrees with ``--quick``."""
    for name in params:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ReproduceError(
                f"parameter name {name!r} is not a Python name; use -p "
                "NAME=VALUE with NAME one of the notebook's parameters"
            )
    if "quick" in params:
        q = params.pop("quick")
        flag = "--quick" if quick else "no --quick (full mode)"
        if q is not quick:
            shown = str(q).lower() if isinstance(q, bool) else repr(q)
            raise ReproduceError(
                f"-p quick={shown} contradicts {flag}: the mode is set by --quick alone, and "
                f"expected values are filed under it. Drop -p quick=...; use --quick for quick "
                "mode, leave it out for full mode"
            )


def _seeds(
    params: dict[str, Any], seed: Any, seeds: Any, *, update: bool, quick: bool
) -> list[int | None]:
    """The seeds to run (``[None]``: each notebook's own), from ``--seed``, ``--seeds`` or
    ``-p seed=`` (removed from ``params``), checked; ``update`` needs >= 3 seeds far apart."""
    if "seed" in params:
        s = _check_seed(params.pop("seed"), "-p seed")
        if seeds is not None:
            raise ReproduceError("-p seed=... and --seeds both given; use --seeds only")
        if seed is not None and _check_seed(seed, "--seed") != s:
            raise ReproduceError(
                f"-p seed={s} contradicts --seed {seed}; give the seed once, with --seed"
            )
        seed = s
    if seed is not None:
        seed = _check_seed(seed, "--seed")
    if seeds is not None:
        if isinstance(seeds, str | bytes) or not hasattr(seeds, "__iter__"):
            raise ReproduceError(f"--seeds must be a list of integers, e.g. 0 1 2; got {seeds!r}")
        seeds = [_check_seed(s, "each --seeds value") for s in seeds]
        if not seeds:
            raise ReproduceError("--seeds is empty; give seeds such as --seeds 0 10 20 30 40")
        if len(set(seeds)) != len(seeds):
            raise ReproduceError(f"--seeds {seeds} repeats a seed; give each seed once")
        if seed is not None:
            raise ReproduceError("--seed and --seeds both given; use one of them")
    if update:
        _check_update_seeds(seeds, quick)
    return list(seeds) if seeds is not None else [seed]


def _check_update_seeds(seeds: list[int] | None, quick: bool) -> None:
    if seeds is None or len(seeds) < MIN_SEEDS:
        got = "one run" if seeds is None else f"{len(seeds)} seed(s)"
        raise ReproduceError(
            f"--update-expected derives each tolerance from the spread over at least {MIN_SEEDS} "
            f"seeds, got {got}; use e.g. --update-expected --seeds 0 10 20 30 40"
            + (" --quick" if quick else "")
        )
    if min(b - a for a, b in itertools.pairwise(sorted(seeds))) < SEED_GAP:
        raise ReproduceError(
            f"--seeds {' '.join(map(str, seeds))} are closer than {SEED_GAP}: each notebook "
            "averages over consecutive seeds (seed, seed + 1, ... from medlab.lesson), so close "
            "seeds share models and understate the spread; use e.g. --seeds 0 10 20 30 40"
        )


def _base(params: dict[str, Any], data_dir: Any, quick: bool) -> dict[str, Any]:
    """The parameters every notebook gets: ``quick``, the checked data folder (``--data-dir``
    or ``-p data_dir=``) and the other ``-p`` values (a relative .npz path resolved)."""
    if "data_dir" in params:
        d = params.pop("data_dir")
        if d is not None:
            d = _resolve(d, "-p data_dir")
            if data_dir is not None and _resolve(data_dir, "--data-dir") != d:
                raise ReproduceError(
                    f"-p data_dir={d} contradicts --data-dir {data_dir}; give "
                    "the data folder once, with --data-dir"
                )
            data_dir = d
    base: dict[str, Any] = {"quick": quick}
    if data_dir is not None:
        dd = _resolve(data_dir, "--data-dir")
        if not dd.is_dir():
            state = "is not a folder" if dd.exists() else "does not exist"
            raise ReproduceError(
                f"data folder {str(data_dir)!r} {state} (resolved against the current folder: "
                f"{dd}); pass the folder with the MedMNIST .npz files, or leave --data-dir out "
                "to use $MEDLAB_DATA_DIR or ~/.medmnist"
            )
        base["data_dir"] = str(dd)
    for k, v in params.items():  # a relative .npz path means one relative to the caller
        if (
            isinstance(v, str)
            and v.endswith(".npz")
            and not Path(v).is_absolute()
            and Path(v).expanduser().exists()
        ):
            params[k] = str(Path(v).expanduser().resolve())
    base.update(params)
    return base


def check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if not is_number(timeout) or timeout < MIN_TIMEOUT:
        raise ReproduceError(
            f"--timeout must be a finite number of seconds >= {MIN_TIMEOUT:g} (a limit per "
            f"cell), got {timeout!r}; pass e.g. --timeout 600, or leave it out for no limit"
        )
    return float(timeout)


def check_jobs(jobs: Any) -> int | None:
    """``--jobs``: how many runs at once, a positive integer (None: the backend's default)."""
    if jobs is None:
        return None
    return check_scalar(
        "--jobs",
        jobs,
        lo=1,
        fix="pass how many notebook runs go at once, e.g. --jobs 2 (at most the CPU cores "
        "medlab may use), or leave it out to run one at a time",
        error=ReproduceError,
    )


def check_expected_path(expected: Any, *, update: bool) -> Path:
    """The expected-results file: it must exist, except with ``update``, which creates it in
    an existing folder."""
    path = EXPECTED if expected is None else _resolve(expected, "--expected")
    if path.exists():
        return path
    if not update:
        raise ReproduceError(
            f"expected-results file {path} does not exist, so nothing could be compared; pass "
            "the right --expected FILE (default notebooks/expected_results.yaml), or create it "
            "with --update-expected --seeds 0 10 20 30 40"
        )
    if not path.parent.is_dir():
        raise ReproduceError(
            f"--expected {path}: its folder {path.parent} does not exist; --update-expected "
            "creates the file, not its folder. Pass a file in an existing folder"
        )
    return path
