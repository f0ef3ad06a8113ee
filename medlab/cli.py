"""Command line: ``medlab reproduce``, ``medlab audit``, ``medlab download``, ``medlab datasets``,
``medlab federate``."""

from __future__ import annotations

import argparse
import keyword
import re
import sys

import yaml

__all__ = ["main"]


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


#: Seeds go to NumPy and torch as seed, seed + 1, ... (medlab.reproduce.MAX_SEED).
MAX_SEED = 2**31 - 1
MIN_SECONDS = 1.0
_SEED_LIKE = re.compile(r"[+-]?(0|[1-9][0-9]*)")


def _number(text: str, kind: type) -> object:
    """``text`` as ``kind`` if it reads as one, else the text itself (check_scalar refuses it)."""
    try:
        return kind(text)
    except ValueError:
        return text


def _seed(text: str) -> int:
    from medlab.utils import check_scalar

    return check_scalar(
        "seed",
        _number(text, int),
        lo=0,
        hi=MAX_SEED,
        fix="pass a non-negative integer below 2**31 (notebooks seed NumPy and torch with seed, "
        "seed + 1, ...), e.g. --seed 0",
        error=argparse.ArgumentTypeError,
    )


def _seconds(text: str) -> float:
    from medlab.utils import check_scalar

    return check_scalar(
        "the time limit",
        _number(text, float),
        kind=float,
        lo=MIN_SECONDS,
        fix="a finite number of seconds, e.g. --timeout 600",
        error=argparse.ArgumentTypeError,
    )


def _split_seeds(values: list[str]) -> tuple[list[int], list[str]]:
    """``--seeds 0 10 20 01 03_bias`` -> seeds [0, 10, 20], notebooks ['01', '03_bias']: values
    are seeds while they are plain numbers (no leading zero); the first one that is not (a
    notebook such as 01 or 10_audit) starts the notebook list. Raises ValueError naming the fix."""
    seeds: list[int] = []
    for i, v in enumerate(values):
        if not _SEED_LIKE.fullmatch(v):
            return seeds, values[i:]
        try:
            seeds.append(_seed(v))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"--seeds: {exc}") from None
    return seeds, []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medlab", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)

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
    seeds = r.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seed",
        type=_seed,
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
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="time limit per cell (finite, >= 1 s; default: none)",
    )
    r.add_argument("--no-html", action="store_true", help="skip the HTML export")

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

    sub.add_parser("datasets", help="list the data cards")

    f = sub.add_parser(
        "federate",
        help="FedAvg of notebook 05 on Flower's deployment engine, on loopback (the flower extra)",
    )
    f.add_argument("--dataset", default="pneumoniamnist")
    f.add_argument("--data-dir", default=None)
    f.add_argument("--sites", type=int, default=2, help="SuperNodes, one site each")
    f.add_argument("--rounds", type=int, default=2)
    f.add_argument("--local-steps", type=int, default=8)
    f.add_argument("--seed", type=_seed, default=0)
    f.add_argument("--timeout", type=_seconds, default=300.0, metavar="SECONDS")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input, with the reason on stderr)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed usage and the error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _run(args)
    except KeyboardInterrupt as exc:  # Ctrl-C: one line, no traceback; 128 + SIGINT
        line = str(exc) if str(exc).startswith("[medlab]") else f"[medlab] interrupted ({args.cmd})"
        print(line, file=sys.stderr, flush=True)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "reproduce":
        from medlab.reproduce import ReproduceError, find_notebooks, reproduce

        notebooks, seeds = list(args.notebooks), None
        if args.seeds is not None:
            try:
                seeds, more = _split_seeds(args.seeds)
                if not seeds:
                    raise ValueError(
                        f"--seeds {' '.join(args.seeds)}: give the seeds right after --seeds, "
                        "e.g. --seeds 0 10 20 30 40 01"
                    )
                if not more and not notebooks:  # e.g. --seeds 0 1 2 10: 10 is a seed here
                    named, last = [], args.seeds[-1]  # a notebook would come last
                    try:
                        named = [f"{last} ({p.stem})" for p in find_notebooks([last])]
                    except ReproduceError:
                        pass
                    if named:
                        print(
                            f"[medlab] note: {', '.join(named)} read as a seed, and every "
                            "notebook runs; to run a notebook give its name after the seeds "
                            "(e.g. --seeds 0 1 2 10_audit) or before --seeds",
                            file=sys.stderr,
                        )
                for name in more:
                    try:
                        find_notebooks([name])
                    except ReproduceError as exc:
                        raise ValueError(
                            f"--seeds ... {name}: {name!r} is neither a seed (a plain "
                            f"non-negative integer such as 0 or 10) nor a notebook ({exc})"
                        ) from None
            except ValueError as exc:
                print(f"medlab reproduce: error: {exc}", file=sys.stderr)
                return 2
            notebooks += more
        params: dict[str, object] = {}
        for name, value in args.parameter:
            if name in params and params[name] != value:
                print(
                    f"medlab reproduce: error: -p {name} given twice ({params[name]!r} and "
                    f"{value!r}); give each parameter once",
                    file=sys.stderr,
                )
                return 2
            params[name] = value
        try:
            return reproduce(
                notebooks,
                quick=args.quick,
                output=args.output,
                data_dir=args.data_dir,
                seed=args.seed,
                seeds=seeds,
                parameters=params,
                update=args.update_expected,
                allow_new=args.allow_new,
                expected=args.expected,
                html=not args.no_html,
                timeout=args.timeout,
            )
        except ReproduceError as exc:
            print(f"medlab reproduce: error: {exc}", file=sys.stderr)
            return 2
    if args.cmd == "audit":
        from medlab.audit import AuditError, audit, verify

        try:
            report, paths = audit(
                args.run_dir if args.run_dir is not None else args.output, folder=args.to
            )
        except AuditError as exc:
            print(f"medlab audit: error: {exc}", file=sys.stderr)
            return 2
        print(report.summary().to_string(index=False))
        problems = verify(paths["audit_report.md"].parent)
        for p in problems:
            print(f"medlab audit: NOT VERIFIED: {p}", file=sys.stderr)
        print(
            f"\n[medlab] audit of {report.run_dir}: {len(report.citations)} cited numbers, "
            f"{'all verified' if not problems else f'{len(problems)} problem(s)'}"
        )
        if report.not_run:
            print(f"[medlab] not run (not assessed): {', '.join(report.not_run)}")
        if report.unofficial:
            print(f"[medlab] unofficial data: {', '.join(report.unofficial)}")
        if report.unknown_origin:
            print(f"[medlab] origin unknown (not in the run's manifest): "
                  f"{', '.join(report.unknown_origin)}")  # fmt: skip
        for name in ("model_card.md", "model_card.html", "audit_report.md", "audit_report.html"):
            print(f"[medlab] wrote {paths[name]}")
        return 1 if problems else 0
    if args.cmd == "download":
        from medlab.data import (
            DataArgumentError,
            DataDirError,
            DataError,
            UnknownDatasetError,
            download,
            file_md5,
        )
        from medlab.kit import DiskFullError

        # exit 2: the command line or the machine needs fixing; 1: a download or file failed
        usage = (UnknownDatasetError, DataArgumentError, DataDirError, DiskFullError)

        if bool(args.names) == args.all:
            print(
                "medlab download: error: give dataset names or --all (every dataset the "
                "curriculum uses), e.g. `medlab download --all --to workshop-data`",
                file=sys.stderr,
            )
            return 2
        if args.to is not None:
            from medlab.kit import build_bundle

            try:
                folder = build_bundle(
                    args.to,
                    None if args.all else args.names,
                    size=args.size,
                    source=args.data_dir,
                    progress=print,
                )
            except DataError as exc:
                print(f"medlab download: error: {exc}", file=sys.stderr)
                return 2 if isinstance(exc, usage) else 1
            print(f"bundle ready: {folder} (see its README.md); use it with")
            print(f"  export MEDLAB_DATA_DIR={folder}")
            return 0
        names = args.names
        if args.all:
            from medlab.kit import curriculum_datasets

            try:
                names = curriculum_datasets()
            except DataError as exc:
                print(f"medlab download: error: {exc}", file=sys.stderr)
                return 2
        status = 0
        for name in names:
            try:
                path = download(name, size=args.size, data_dir=args.data_dir, progressbar=True)
                print(f"{name}: {path} (md5 {file_md5(path)})")
            except DataError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                status = max(status, 2 if isinstance(exc, usage) else 1)
        return status
    if args.cmd == "federate":
        from medlab.flower_run import federate

        try:
            out = federate(
                dataset=args.dataset,
                data_dir=args.data_dir,
                n_sites=args.sites,
                rounds=args.rounds,
                local_steps=args.local_steps,
                seed=args.seed,
                timeout=args.timeout,
                verbose=True,
            )
        except (ValueError, TypeError, FileNotFoundError) as exc:  # bad input: checked first
            print(f"medlab federate: error: {exc}", file=sys.stderr)
            return 2
        except RuntimeError as exc:  # the Flower run itself failed
            print(f"medlab federate: error: {exc}", file=sys.stderr)
            return 1
        curve = ", ".join(f"round {int(r)}: {a:.3f}" for r, a in out["curve"])
        print(
            f"Flower FedAvg on {args.sites} loopback SuperNodes: test accuracy {curve}; "
            f"wall time {out['wall_s']:.1f} s"
        )
        return 0
    if args.cmd == "datasets":
        from medlab.cards import cards_table

        for row in cards_table():
            print(
                f"{row['dataset']:<32} {row['kind']:<9} {row['task']:<26} "
                f"{row['train/val/test']:<18} {row['modality']}"
            )
        return 0
    return 2  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
