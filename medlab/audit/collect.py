"""Reading a run: which run folder is audited (:func:`resolve_run`) and its results files.

An output folder's latest run is where its ``latest`` link points (or its ``latest.txt``), else
its newest complete run; a run marked incomplete in its ``run.json`` is refused, naming the last
complete one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medlab import results
from medlab.results import RUN_FILE, describe_state, is_complete, last_complete_run

__all__ = ["AuditError", "resolve_run"]


class AuditError(ValueError):
    """A run folder that cannot be audited (missing, a file, or holding no results)."""


def _results_files(run: Path) -> list[Path]:
    return sorted(run.glob("results/*.json")) + sorted(run.glob("seed*/results/*.json"))


def _latest_named(out: Path) -> tuple[Path, str] | None:
    """The run the ``latest`` link or ``latest.txt`` of ``out`` names, and where that is said;
    None when there is neither."""
    link, txt = out / "latest", out / "latest.txt"
    if link.is_symlink():
        return link.resolve(), f"{link} points at {os.readlink(link)}"
    if link.exists():
        raise AuditError(
            f"{link} is a real {'folder' if link.is_dir() else 'file'}, not the link "
            "`medlab reproduce` keeps to the newest complete run; move it away (e.g. "
            f"`mv {link} {link}.old`) or pass the run folder to audit "
            f"({out}/runs/<time>-<mode>)"
        )
    if not txt.is_file():
        return None
    try:
        text = txt.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(
            f"{txt} cannot be read ({exc}); delete it, or pass the run folder"
        ) from None
    target = (Path(text) if Path(text).is_absolute() else out / text).resolve()
    return target, f"{txt} names {text!r}"


def _latest_of(out: Path) -> Path:
    """The latest run of the output folder ``out`` (see :func:`resolve_run`)."""
    runs = (out / "runs").resolve()
    named = _latest_named(out)
    if named is None:
        target = last_complete_run(out)
        if target is None:
            some = sorted(p.name for p in (out / "runs").glob("*") if p.is_dir())
            what = (
                f"no complete run (only incomplete ones: {', '.join(some)})"
                if some
                else "no runs yet"
            )
            raise AuditError(f"{out} holds {what}: run `medlab reproduce --quick` first")
        return target
    target, where = named
    if target.parent != runs or not target.is_dir():
        raise AuditError(
            f"{where}, which is not a run folder in {runs}; it must name one of "
            f"runs/<time>-<mode>. Fix or delete it, or pass the run folder to audit"
        )
    return target


def _existing_folder(run_dir: Any) -> Path:
    """``run_dir`` (default the output folder) as an existing folder; :class:`AuditError`
    naming the fix when it is not."""
    if run_dir is not None and not isinstance(run_dir, str | os.PathLike):
        raise TypeError(f"run_dir must be a folder path or None, got {type(run_dir).__name__}")
    base = results.output_dir(run_dir)
    if run_dir is None and not base.exists():
        raise AuditError(
            f"no run folder in {base}/runs: run `medlab reproduce --quick` first, or "
            "pass the run folder: `medlab audit outputs/runs/<time>-<mode>`"
        )
    if not base.exists():
        raise AuditError(
            f"run folder {base} does not exist: run `medlab reproduce --quick` to make one, "
            "then pass its folder (outputs/runs/<time>-<mode>) or an output folder (its latest "
            "run is audited)"
        )
    if not base.is_dir():
        raise AuditError(f"{base} is a file, not a run folder; pass outputs/runs/<time>-<mode>")
    return base


def _check_complete(base: Path) -> None:
    """Refuse a run folder with no results, or one marked incomplete (other than the run this
    process is part of), naming the fix."""
    # a seed<k>/ folder of a run with several seeds is marked in the run folder above it
    marked = base
    if base.name.startswith("seed") and not (base / RUN_FILE).exists():
        marked = base.parent if (base.parent / RUN_FILE).exists() else base
    no_results = AuditError(
        f"run folder {base} holds no results (no results/*.json or seed*/results/*.json): "
        "no notebook recorded a number in it. Run `medlab reproduce --quick` (or pass the "
        "run folder of a finished run)"
    )
    if not (marked / RUN_FILE).exists() and not _results_files(base):
        raise no_results  # not a run folder medlab made: say what is missing, not "incomplete"
    current = os.environ.get("MEDLAB_RUN_DIR")
    if not is_complete(marked) and not (current and Path(current).resolve() == marked.resolve()):
        last = last_complete_run(marked.parent.parent) if marked.parent.name == "runs" else None
        raise AuditError(
            f"run {marked} is incomplete ({describe_state(marked)}; see its {RUN_FILE}), "
            "so its numbers are partial. "
            + (
                f"The last complete run is {last}: `medlab audit {last}`"
                if last is not None
                else "There is no complete run next to it: run `medlab reproduce --quick`"
            )
        )
    if not _results_files(base):
        raise no_results


def resolve_run(run_dir: str | os.PathLike[str] | None = None) -> Path:
    """The run folder to audit: ``run_dir`` (a run folder, or an output folder: its latest run),
    default the latest run of ``$MEDLAB_OUTPUT_DIR`` or ``./outputs``. An output folder's latest
    run is where its ``latest`` link points (or its ``latest.txt``, which must name a folder in
    its ``runs/``), else its newest complete run. Raises :class:`AuditError` naming the fix when
    there is none, it holds no results, or it is marked incomplete (``run.json``: interrupted,
    killed, aborted, still running), naming the last complete run; the run this process is part
    of (``$MEDLAB_RUN_DIR``: notebook 10 inside ``medlab reproduce``) may be audited while it
    runs."""
    base = _existing_folder(run_dir)
    if (
        run_dir is None
        or (base / "runs").is_dir()
        or any((base / n).exists() or (base / n).is_symlink() for n in ("latest", "latest.txt"))
    ):
        base = _latest_of(base)
    _check_complete(base)
    return base.resolve()


def _read_docs(run: Path) -> dict[str, dict[str, Any]]:
    """The run's results files, parsed and checked; :class:`AuditError` naming the fix."""
    docs = {}
    for f in _results_files(run):
        rel = f.relative_to(run).as_posix()
        try:
            docs[rel] = results.read_doc(f)
        except ValueError as exc:
            raise AuditError(str(exc).replace(str(f), rel)) from None
    return docs


def _number(name: str) -> str:
    return name.split("_")[0]


def _failed_cell(executed: Path) -> str | None:
    """The first cell with an error output in an executed notebook, as text; None if none."""
    try:
        nb = json.loads(executed.read_text())
    except (OSError, json.JSONDecodeError):
        return "unreadable executed notebook"
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                return f"cell {i}: {out.get('ename', 'error')}: {out.get('evalue', '')}"[:300]
    return None
