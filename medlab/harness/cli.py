"""Command line: ``medlab reproduce``, ``medlab audit``, ``medlab download``, ``medlab datasets``,
``medlab federate``, ``medlab editions``, ``medlab site``."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys

from medlab.harness.parser import build

__all__ = ["main"]


#: Seeds go to NumPy and torch as seed, seed + 1, ... (medlab.harness.plan.MAX_SEED).
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


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input, with the reason on stderr)."""
    parser = build(__doc__, seed=_seed, seconds=_seconds)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed usage and the error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _run(args)
    except ModuleNotFoundError as exc:  # a core-only install: name the extra that brings it
        extra = {"audit": "lessons", "federate": "flower"}.get(args.cmd, "harness")
        both = "all" if extra != "flower" else "all,flower"
        print(
            f"medlab {args.cmd}: error: it needs {exc.name!r}, which comes with medlab's "
            f"'{extra}' extra: pip install 'medlab-edu[{both}]' (or 'medlab-edu[{extra}]')",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C: one line, no traceback; 128 + SIGINT
        line = str(exc) if str(exc).startswith("[medlab]") else f"[medlab] interrupted ({args.cmd})"
        print(line, file=sys.stderr, flush=True)
        return 130


def _run(args: argparse.Namespace) -> int:
    commands = {
        "reproduce": _reproduce,
        "audit": _audit,
        "download": _download,
        "federate": _federate,
        "datasets": _datasets,
        "editions": _editions,
        "site": _site,
    }
    if args.cmd not in commands:
        return 2
    _require(args.cmd)
    return commands[args.cmd](args)


#: what each command needs beyond the core install, checked before it writes anything
NEEDS = {
    "reproduce": ("papermill", "nbformat", "nbconvert", "jupyter_client", "ipykernel"),
    "audit": ("mistune", "jinja2", "huggingface_hub"),
    "editions": ("nbformat", "nbconvert", "nbgrader"),
    "site": ("nbformat", "nbconvert", "nbgrader"),  # and the jupyter-book command (dev extra)
}


def _require(cmd: str) -> None:
    """Raise ModuleNotFoundError for the first package ``cmd`` needs that is not installed."""
    for name in NEEDS.get(cmd, ()):
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _reproduce(args: argparse.Namespace) -> int:
    from medlab.harness.base import ReproduceError
    from medlab.harness.reproduce import reproduce

    notebooks, seeds = list(args.notebooks), None
    if args.seeds is not None:
        try:
            seeds, more = _seeds_and_notebooks(args.seeds, notebooks)
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
            jobs=args.jobs,
            scheduler=args.scheduler,
        )
    except ReproduceError as exc:
        print(f"medlab reproduce: error: {exc}", file=sys.stderr)
        return 2


def _seeds_and_notebooks(values: list[str], notebooks: list[str]) -> tuple[list[int], list[str]]:
    """``--seeds`` values split into seeds and the notebooks after them (each checked); a
    ValueError names the fix."""
    from medlab.harness.base import ReproduceError
    from medlab.harness.notebooks import find_notebooks

    seeds, more = _split_seeds(values)
    if not seeds:
        raise ValueError(
            f"--seeds {' '.join(values)}: give the seeds right after --seeds, "
            "e.g. --seeds 0 10 20 30 40 01"
        )
    if not more and not notebooks:  # e.g. --seeds 0 1 2 10: 10 is a seed here
        named, last = [], values[-1]  # a notebook would come last
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
    return seeds, more


def _audit(args: argparse.Namespace) -> int:
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


def _download(args: argparse.Namespace) -> int:
    from medlab.data import DataError, download, file_md5
    from medlab.harness.kit import curriculum_datasets

    if bool(args.names) == args.all:
        print(
            "medlab download: error: give dataset names or --all (every dataset the "
            "curriculum uses), e.g. `medlab download --all --to workshop-data`",
            file=sys.stderr,
        )
        return 2
    if args.to is not None:
        return _bundle(args)
    names = args.names
    if args.all:
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
            status = max(status, 2 if isinstance(exc, _usage_errors()) else 1)
    return status


def _usage_errors() -> tuple[type[Exception], ...]:
    """Errors for which ``medlab download`` exits 2 (the command line or the machine needs
    fixing); any other DataError exits 1 (a download or file failed)."""
    from medlab.data import DataArgumentError, DataDirError, UnknownDatasetError
    from medlab.harness.kit import DiskFullError

    return (UnknownDatasetError, DataArgumentError, DataDirError, DiskFullError)


def _bundle(args: argparse.Namespace) -> int:
    from medlab.data import DataError
    from medlab.harness.kit import build_bundle

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
        return 2 if isinstance(exc, _usage_errors()) else 1
    print(f"bundle ready: {folder} (see its README.md); use it with")
    print(f"  export MEDLAB_DATA_DIR={folder}")
    return 0


def _editions(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medlab.harness.editions import answer_key, build_editions
    from medlab.harness.guide import instructor_guide
    from medlab.harness.notebooks import find_notebooks

    try:
        chosen = find_notebooks(args.notebooks or None)
        executed: list[Path] = []
        if args.answers:
            run = Path(args.answers)
            folder = next(
                (f for f in (run / "executed", run / "latest" / "executed") if f.is_dir()), None
            )
            if folder is None:
                raise ValueError(
                    f"--answers {run}: no executed/ or latest/executed/ folder; pass "
                    "the --output folder of a `medlab reproduce` run, or a run folder"
                )
            executed = [folder / p.name for p in chosen if (folder / p.name).exists()]
        written = build_editions(chosen, Path(args.out))
    except ValueError as exc:
        print(f"medlab editions: error: {exc}", file=sys.stderr)
        return 2
    for edition, paths in written.items():
        print(f"{edition}: {len(paths)} notebook(s) in {paths[0].parent if paths else args.out}")
    guide = Path(args.out) / "instructor" / "GUIDE.md"
    guide.write_text(instructor_guide(chosen, {p.name: p for p in executed}), encoding="utf-8")
    print(f"instructor guide: {guide} (lesson pages; with --answers RUN, the run's answers)")
    if args.answers:
        key = Path(args.out) / "instructor" / "ANSWERS.md"
        key.write_text(answer_key(executed), encoding="utf-8")
        print(f"answer key: {key} ({len(executed)} executed notebook(s) read)")
    return 0


def _site(args: argparse.Namespace) -> int:
    from medlab.harness.coursesite import SiteError, build_site
    from medlab.harness.notebooks import find_notebooks

    try:
        chosen = find_notebooks(args.notebooks or None)
        built = build_site(args.run, args.out, notebooks=chosen, template=args.template)
    except SiteError as exc:
        print(f"medlab site: error: {exc}", file=sys.stderr)
        return 1 if str(exc).startswith("jupyter-book build") else 2
    except ValueError as exc:  # a notebook name that matches none
        print(f"medlab site: error: {exc}", file=sys.stderr)
        return 2
    html = built["html"]
    print(f"site: {len(built['lessons'])} lesson(s), {len(built['guide'])} guide file(s) in "
          f"{html} ({built['seconds']:.0f} s; theme {built['template']})")  # fmt: skip
    if built["missing"]:
        print(f"not in the run, left out: {', '.join(built['missing'])}")
    print(f"open it: python -m http.server --directory {html} 8000, then http://localhost:8000/")
    return 0


def _federate(args: argparse.Namespace) -> int:
    from medlab.harness.flower_run import federate

    try:
        out = federate(
            dataset=args.dataset,
            data_dir=args.data_dir,
            n_sites=args.sites,
            rounds=args.rounds,
            local_steps=args.local_steps,
            seed=args.seed,
            timeout=args.timeout,
            tls=args.tls or args.node_auth,
            node_auth=args.node_auth,
            verbose=True,
        )
    except (ValueError, TypeError, FileNotFoundError) as exc:  # bad input: checked first
        print(f"medlab federate: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the Flower run itself failed
        print(f"medlab federate: error: {exc}", file=sys.stderr)
        return 1
    curve = ", ".join(f"round {int(r)}: {a:.3f}" for r, a in out["curve"])
    how = " over TLS, registered keys only" if args.node_auth else " over TLS" * args.tls
    print(
        f"Flower FedAvg on {args.sites} loopback SuperNodes{how}: test accuracy {curve}; ", end=""
    )
    print(f"wall time {out['wall_s']:.1f} s")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from medlab.cards import cards_table

    for row in cards_table():
        print(
            f"{row['dataset']:<32} {row['kind']:<9} {row['task']:<26} "
            f"{row['train/val/test']:<18} {row['modality']}"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
