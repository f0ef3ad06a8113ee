"""Run folders: a new one marked ``running`` from its first moment, its ``run.json`` marks, the
``latest`` pointer (moved only to a complete run), and checks that the output folder takes files.
"""

from __future__ import annotations

import datetime as _dt
import errno
import itertools
import json
import math
import os
import re
import shlex
import shutil
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

from medlab.harness.base import NO_SPACE, DiskFullError, NotebookRun, ReproduceError, no_space
from medlab.results import RUN_FILE, _write_atomic, run_state

__all__ = [
    "new_run_dir",
    "mark",
    "write_json_atomic",
    "check_latest",
    "point_latest",
    "latest_target",
    "shown",
    "check_writable",
    "check_update_target",
    "FULL_DISK",
    "snapshot",
    "new_results",
    "notebook_seconds",
    "past_seconds",
]


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def new_run_dir(out: Path, mode: str) -> Path:
    """A new run folder, marked ``running`` (incomplete) from its first moment."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    runs = out / "runs"
    made = [p for p in (runs, *runs.parents) if not p.exists()]
    runs.mkdir(parents=True, exist_ok=True)
    for i in itertools.count(1):
        run = runs / (f"{stamp}-{mode}" if i == 1 else f"{stamp}-{mode}-{i}")
        try:
            run.mkdir()
        except FileExistsError:
            continue
        state = {
            "status": "running",
            "mode": mode,
            "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": shlex.join(sys.argv),
        }
        try:
            write_json_atomic(run / RUN_FILE, state)
        except OSError:
            shutil.rmtree(run, ignore_errors=True)  # nothing ran in it yet
            for p in made:  # nor the folders made for it
                try:
                    p.rmdir()
                except OSError:
                    break
            raise
        return run
    raise AssertionError("unreachable")  # pragma: no cover


def mark(run: Path, status: str, **fields: Any) -> bool:
    """Set the run's ``run.json`` status (and fields); returns whether it could be written."""
    state = run_state(run) or {}
    state.update(fields, status=status)
    state["ended"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    try:
        write_json_atomic(run / RUN_FILE, state)
        return True
    except OSError:  # a full disk: the run keeps its "running" mark, still incomplete
        return False


def check_latest(out: Path, output: Any) -> None:
    link = out / "latest"
    if (link.exists() or link.is_symlink()) and not link.is_symlink():
        kind = "folder" if link.is_dir() else "file"
        raise ReproduceError(
            f"{link} is a real {kind}, not the link medlab keeps to the newest complete run; "
            f"move it away (e.g. `mv {link} {link}.old`) or pass another --output than {output}"
        )


def point_latest(out: Path, run: Path) -> Path:
    """Make ``out/latest`` a link to ``run`` (a complete run); where links cannot be made,
    write ``out/latest.txt`` holding ``runs/<run>`` instead. A ``latest`` that is a real
    folder or file is an error (:class:`ReproduceError`), never silently bypassed."""
    check_latest(out, out)
    link = out / "latest"
    tmp = out / f".latest.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(Path("runs") / run.name, target_is_directory=True)
        os.replace(tmp, link)
        return link
    except (OSError, NotImplementedError) as exc:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            raise
        if tmp.is_symlink():
            tmp.unlink()
        if link.is_symlink():  # a stale pointer of an earlier run would win over latest.txt
            link.unlink()
        txt = out / "latest.txt"
        _write_atomic(txt, f"runs/{run.name}\n".encode())
        return txt


FULL_DISK = re.compile(r"Errno 28\b|No space left on device|Errno 122\b|Disk quota exceeded")


def latest_target(out: Path) -> Path | None:
    """The run ``out/latest`` (or ``latest.txt``) points at now, if any."""
    link = out / "latest"
    if link.is_symlink():
        return link.resolve() if link.exists() else None
    txt = out / "latest.txt"
    if txt.is_file():
        try:
            p = Path(txt.read_text().strip())
        except (OSError, UnicodeDecodeError):
            return None
        p = p if p.is_absolute() else out / p
        return p if p.is_dir() else None
    return None


def shown(run: Path | None) -> str:
    return str(run) if run is not None else "no run (there was no complete run before)"


def _probe(folder: Path) -> OSError | None:
    """Whether a file can be created in ``folder`` (it is created and removed at once)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".medlab-probe-", dir=folder)
    except OSError as exc:
        return exc
    os.close(fd)
    os.unlink(name)
    return None


def check_writable(out: Path, output: Any) -> None:
    """The output folder (or, if missing, the folder it would be created in) must take new
    files: checked before anything runs."""
    existing = next(p for p in (out, *out.parents) if p.exists())
    for folder in [existing] + [out / n for n in ("runs",) if (out / n).is_dir()]:
        err = _probe(folder)
        if err is None:
            continue
        if no_space(err):
            raise DiskFullError(
                f"no space left on the disk of {folder}; free space there (e.g. delete old "
                f"folders in {out}/runs) and run again. Nothing was run"
            )
        why = (
            "is read-only"
            if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
            else (f"cannot take new files ({err.strerror or err})")
        )
        raise ReproduceError(
            f"--output {output}: {folder} {why}, so no run could be written; make it writable "
            "(chmod u+w) or pass a writable --output folder, e.g. --output ~/medlab-outputs"
        )


def check_update_target(path: Path) -> None:
    """--update-expected must be able to replace ``path``: checked before any seed runs."""
    if path.exists() and not (path.stat().st_mode & stat.S_IWUSR):
        raise ReproduceError(
            f"--update-expected would rewrite {path}, which is read-only; make it writable "
            f"(chmod u+w {path}) or pass --expected a writable copy"
        )
    err = _probe(path.parent)
    if err is not None:
        raise ReproduceError(
            f"--update-expected cannot write {path}: its folder {path.parent} "
            f"{'is read-only' if not no_space(err) else 'is on a full disk'} "
            f"({err.strerror or err}); make the folder writable (or free space), or pass "
            "--expected a file in a writable folder"
        )


def snapshot(results_dir: Path) -> dict[Path, int]:
    """Each results file's modification time (ns), to tell which files a run then writes."""
    return {f: f.stat().st_mtime_ns for f in results_dir.glob("*.json")}


def new_results(
    run: NotebookRun, nb: Path, results_dir: Path, before: dict[Path, int]
) -> list[dict[str, Any]]:
    """The results files the run wrote or changed (a file whose ``run_as`` names another notebook
    was written by that notebook's kernel, running at the same time); a run that recorded
    nothing, or under another name, or wrote an unreadable file, is marked failed."""
    docs, bad = [], ""
    for f, mtime in sorted(snapshot(results_dir).items()):
        if before.get(f) == mtime:
            continue  # another notebook's results
        try:
            doc = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            bad = f"results file {f.name} is unreadable ({exc})"
            continue
        if doc.get("run_as") not in (None, nb.stem):
            continue  # written by another notebook's kernel at the same time (--jobs)
        docs.append(doc)
        if doc.get("notebook") != nb.stem:
            bad = (
                f"it records under the name {doc.get('notebook')!r}, not its own "
                f"{nb.stem!r}; use medlab.Recorder({nb.stem!r}, ...)"
            )
    n_rec = sum(len(recs or {}) for d in docs for recs in (d.get("records") or {}).values())
    if run.ok and bad:
        run.ok, run.error = False, bad
    elif run.ok and not n_rec:
        run.ok, run.error = (
            False,
            (
                "notebook ran but recorded no numbers (no rec.record call "
                "ran; CONTRIBUTING.md notebook rule 2)"
            ),
        )
    return docs


def notebook_seconds(runs: list[NotebookRun]) -> dict[str, float]:
    """Each notebook's wall time (s) in a run, the longest over its seeds (for ``run.json``);
    a notebook with a failed run is left out (it may have stopped early)."""
    failed = {run.notebook for run in runs if not run.ok}
    out: dict[str, float] = {}
    for run in runs:
        if run.notebook not in failed:
            out[run.notebook] = round(max(out.get(run.notebook, 0.0), run.seconds), 1)
    return out


def past_seconds(out: Path, mode: str) -> dict[str, float]:
    """Each notebook's ``seconds`` in the newest complete ``mode`` run under ``out/runs`` that
    has it (:func:`notebook_seconds`, in ``run.json``); empty if there is none. Only a finite
    number >= 0 counts, and a folder or file that cannot be read is passed over: this is only
    the order ``--jobs`` starts runs in (the longest first), never a reason to stop."""
    found: dict[str, float] = {}
    try:
        runs = sorted((out / "runs").iterdir(), reverse=True)
    except OSError:  # no runs/ folder yet, or one that cannot be read
        return found
    for run in runs:
        try:
            state = run_state(run) or {}
        except (OSError, ValueError):  # a folder we may not enter, a number json cannot read
            continue
        seconds = state.get("seconds")
        if state.get("status") != "complete" or state.get("mode") != mode:
            continue
        for nb, value in (seconds if isinstance(seconds, dict) else {}).items():
            if type(value) in (int, float) and 0 <= value < math.inf and nb not in found:
                found[str(nb)] = float(value)
    return found
