"""The ``medlab`` command line's arguments (argparse): one sub-parser per command."""

from __future__ import annotations

import argparse
import keyword
from collections.abc import Callable
from typing import Any

import yaml

__all__ = ["build"]


def _param(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` with VALUE read as YAML (``-p seed=3``, ``-p dataset=breastmnist``)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE, got {text!r}; e.g. -p dataset=breastmnist"
        )
    name, value = (s.strip() for s in text.split("=", 1))
    if not name.isidentifier() or keyword.iskeyword(name):
        raise argparse.ArgumentTypeError(
            f"{text!r}: {name!r} is not a parameter name; use -p NAME=VALUE, e.g. -p seed=1"
        )
    try:
        return name, yaml.safe_load(value) if value else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value is not valid YAML ({problem}); quote text values, e.g. "
            f"-p '{name}=\"{value}\"'"
        ) from None


def build(
    description: str | None, *, seed: Callable[[str], int], seconds: Callable[[str], float]
) -> argparse.ArgumentParser:
    """The ``medlab`` parser; ``seed`` and ``seconds`` read (and check) a seed and a time limit
    (the command line passes its own: they import the library only when used)."""
    parser = argparse.ArgumentParser(prog="medlab", description=description)
    sub = parser.add_subparsers(dest="cmd", required=True)
    _reproduce_parser(sub, seed, seconds)
    _audit_parser(sub)
    _download_parser(sub)
    sub.add_parser("datasets", help="list the data cards")
    _federate_parser(sub, seed, seconds)
    _editions_parser(sub)
    _site_parser(sub)
    return parser


def _site_parser(sub: Any) -> None:
    s = sub.add_parser(
        "site",
        help="build the course website (Jupyter Book 2) from the student edition and a run",
        description="Build a static course site into <out>/html with Jupyter Book 2 (MyST): a "
        "home page, one page per lesson (the student edition with the outputs of a `medlab "
        "reproduce` run), the instructor guide (docs/) and a search. It opens from a local web "
        "server (the command prints how). Exit code 0: built; 1: the build failed; 2: bad input.",
    )
    s.add_argument(
        "--run",
        required=True,
        metavar="RUN",
        help="a `medlab reproduce` output folder (its latest run is read) or a run folder",
    )
    s.add_argument("--out", default="site", help="output folder (default: ./site)")
    s.add_argument(
        "--template",
        default=None,
        metavar="DIR",
        help="a built MyST book theme (offline builds; default: $MEDLAB_SITE_TEMPLATE, else "
        "Jupyter Book downloads its book-theme)",
    )
    s.add_argument("notebooks", nargs="*", help="notebooks (names or numbers; default: all)")


def _editions_parser(sub: Any) -> None:
    e = sub.add_parser(
        "editions",
        help="build the student and instructor editions of the notebooks",
        description="Write <out>/student/ (solution regions emptied, cells tagged 'instructor' "
        "removed) and <out>/instructor/ (solutions and notes kept) from the repository's "
        "notebooks, the single source. Exit code 0: written; 2: bad input.",
    )
    e.add_argument("--out", default="editions", help="output folder (default: ./editions)")
    e.add_argument(
        "--answers",
        metavar="RUN",
        help="also write <out>/instructor/ANSWERS.md, the answer key, from the executed notebooks "
        "of a `medlab reproduce` run (its output folder, whose latest run is read, or a run folder)",
    )
    e.add_argument("notebooks", nargs="*", help="notebooks (names or numbers; default: all)")


def _reproduce_parser(
    sub: Any, seed: Callable[[str], int], seconds: Callable[[str], float]
) -> None:
    r = sub.add_parser(
        "reproduce",
        help="execute notebooks headless and compare their numbers with the expected values",
        description="Execute notebooks headless into <output>/runs/<UTC time>-<mode>/ "
        "(<output>/latest points at the newest complete run) and compare every recorded number with "
        "notebooks/expected_results.yaml. Exit code 0: all reproduced; 1: a notebook failed, "
        "a number deviated, was missing or has no expected value; 2: bad input.",
    )
    r.add_argument("notebooks", nargs="*", help="notebook stems or prefixes (default: all)")
    r.add_argument("--quick", action="store_true", help="quick mode (CI): small, fast runs")
    r.add_argument(
        "--output",
        default="outputs",
        help="output folder; each run gets its own runs/<time>-<mode>/ in it (default: ./outputs)",
    )
    r.add_argument(
        "--data-dir",
        default=None,
        help="folder with the MedMNIST .npz files, relative to the current folder "
        "(default: $MEDLAB_DATA_DIR or ~/.medmnist)",
    )
    _add_seeds(r, seed)
    r.add_argument(
        "-p",
        "--parameter",
        action="append",
        type=_param,
        default=[],
        metavar="NAME=VALUE",
        help="notebook parameter (VALUE read as YAML), e.g. -p dataset=breastmnist",
    )
    r.add_argument(
        "--update-expected",
        action="store_true",
        help="write mean and tolerance over --seeds (at least 3) into the expected "
        "file instead of comparing",
    )
    r.add_argument(
        "--allow-new",
        action="store_true",
        help="accept numbers without an expected value (a new notebook or section)",
    )
    r.add_argument(
        "--expected",
        default=None,
        metavar="FILE",
        help="expected-results file (default: notebooks/expected_results.yaml)",
    )
    r.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="time limit per cell (finite, >= 1 s; default: none)",
    )
    r.add_argument("--no-html", action="store_true", help="skip the HTML export")
    _add_parallel(r)


def _jobs(text: str) -> int:
    """``--jobs N``: a positive integer."""
    n = int(text) if text.strip().isdigit() else 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"the number of parallel runs must be an integer >= 1, got {text!r}; pass how many "
            "notebook runs go at once, e.g. --jobs 2 (at most the CPU cores), or leave --jobs "
            "out to run one at a time"
        )
    return n


def _add_parallel(r: argparse.ArgumentParser) -> None:
    r.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help="run N (notebook, seed) pairs at once, in worker processes, each kernel with "
        "cores // N threads (default 1; at most the CPU cores; with --scheduler, default: "
        "the cluster's worker threads); same table and numbers as one at a time",
    )
    r.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (the cluster extra); "
        "the data folder, --output and the model cache ($MEDLAB_CACHE_DIR) must be on a "
        "shared filesystem at the same path on every worker",
    )


def _add_seeds(r: argparse.ArgumentParser, seed: Callable[[str], int]) -> None:
    seeds = r.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seed",
        type=seed,
        default=None,
        help="seed passed to every notebook (default: the notebook's own)",
    )
    seeds.add_argument(
        "--seeds",
        nargs="+",
        default=None,
        metavar="SEED",
        help="run each notebook once per seed, e.g. --seeds 0 10 20 30 40 [NOTEBOOK ...]: "
        "seeds are plain numbers (0, 10; no leading zero); the first value that is not one "
        "(01, 03_bias, 10_audit) starts the notebook list",
    )


def _audit_parser(sub: Any) -> None:
    a = sub.add_parser(
        "audit",
        help="write the model card and audit report of a reproduce run",
        description="Read the results a `medlab reproduce` run recorded and write "
        "RUN_DIR/audit/model_card.{md,html}, audit_report.{md,html} and citations.json; every "
        "number is re-checked against the results files. Exit code 0: written and verified; "
        "1: a cited number did not verify, or a number carries no citation; 2: bad input (no "
        "such run, an incomplete run, no results, a results file changed after it was "
        "recorded).",
    )
    a.add_argument(
        "run_dir",
        nargs="?",
        default=None,
        metavar="RUN_DIR",
        help="run folder (outputs/runs/<time>-<mode>) or an output folder (its latest run); "
        "default: the latest run in --output",
    )
    a.add_argument("--output", default="outputs", help="output folder whose latest run is audited")
    a.add_argument(
        "--to",
        default=None,
        metavar="DIR",
        help="write the audit documents into DIR instead of RUN_DIR/audit (e.g. for a read-only "
        "run folder)",
    )


def _download_parser(sub: Any) -> None:
    d = sub.add_parser(
        "download",
        help="download official MedMNIST files (md5-verified), or build an offline bundle",
        description="Download official MedMNIST files into the data folder, verified by MD5. "
        "With --to DIR: build an offline bundle for a workshop (the files, MANIFEST.md5 and a "
        "README on pointing MEDLAB_DATA_DIR at it), copying files already in --data-dir.",
    )
    d.add_argument("names", nargs="*", help="official dataset names, e.g. pneumoniamnist")
    d.add_argument(
        "--all", action="store_true", help="every dataset the curriculum's notebooks use"
    )
    d.add_argument(
        "--to",
        default=None,
        metavar="DIR",
        help="build an offline bundle in DIR (files + MANIFEST.md5 + README.md)",
    )
    d.add_argument("--size", type=int, default=28)
    d.add_argument(
        "--data-dir",
        default=None,
        help="data folder (default: $MEDLAB_DATA_DIR or ~/.medmnist); with --to, the folder "
        "whose files are copied into the bundle instead of downloaded",
    )


def _federate_parser(sub: Any, seed: Callable[[str], int], seconds: Callable[[str], float]) -> None:
    f = sub.add_parser(
        "federate",
        help="FedAvg of notebook 05 on Flower's deployment engine, on loopback (the flower extra)",
    )
    f.add_argument("--dataset", default="pneumoniamnist")
    f.add_argument("--data-dir", default=None)
    f.add_argument("--sites", type=int, default=2, help="SuperNodes, one site each")
    f.add_argument("--rounds", type=int, default=2)
    f.add_argument("--local-steps", type=int, default=8)
    f.add_argument("--seed", type=seed, default=0)
    f.add_argument("--timeout", type=seconds, default=300.0, metavar="SECONDS")
    f.add_argument(
        "--tls",
        action="store_true",
        help="TLS between the SuperNodes and the SuperLink, with a throwaway certificate "
        "authority made for the run (docs/federation.md: a deployment across machines)",
    )
    f.add_argument(
        "--node-auth",
        action="store_true",
        help="admit only SuperNodes whose keys were registered (flwr supernode register); "
        "implies --tls",
    )
