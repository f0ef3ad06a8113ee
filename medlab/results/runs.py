"""Run folders of ``medlab reproduce``: their state (``run.json``), which finished, and which is
the latest. Library code (the audit lesson reads runs); the harness writes them.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

__all__ = [
    "RUN_FILE",
    "run_state",
    "is_complete",
    "last_complete_run",
    "latest_run",
    "describe_state",
]


#: Each run folder's state: ``running`` from its first moment, then ``complete`` (whatever the
#: outcome: ``outcome`` passed/failed), ``interrupted`` (Ctrl-C) or ``aborted`` (an error).
RUN_FILE = "run.json"


def run_state(run: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What ``run/run.json`` says about a run folder (``status`` is ``running`` until the run
    ends, then ``complete``, ``interrupted`` or ``aborted``); None for a folder without one (a
    run written before runs were marked); ``{"status": "unreadable"}`` if it cannot be read."""
    path = Path(run) / RUN_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {"status": "unreadable"}
    return (
        doc
        if isinstance(doc, dict) and isinstance(doc.get("status"), str)
        else {"status": "unreadable"}
    )


def is_complete(run: str | os.PathLike[str]) -> bool:
    """Whether a run folder finished (``run.json`` status ``complete``, whatever its outcome;
    a folder from before runs were marked counts as complete if it holds results)."""
    state = run_state(run)
    if state is None:  # an older run: complete if it recorded something
        run = Path(run)
        return (run / "results").is_dir() or any(run.glob("seed*/results"))
    return state["status"] == "complete"


def last_complete_run(out: str | os.PathLike[str]) -> Path | None:
    """The newest run folder in ``out/runs/`` that finished (:func:`is_complete`); None if
    there is none."""
    runs = sorted(
        (p for p in (Path(out) / "runs").glob("*") if p.is_dir() and not p.is_symlink()),
        reverse=True,
    )  # a link inside runs/ may lead anywhere: never followed
    return next((r for r in runs if is_complete(r)), None)


def latest_run(root: str | os.PathLike[str]) -> Path | None:
    """The newest complete run folder of an output folder: where ``latest`` (link) or
    ``latest.txt`` points, if that is a folder directly inside ``root/runs/`` that finished,
    else the newest complete run in ``runs/`` (:func:`last_complete_run`);
    None if there is none. A pointer that leads anywhere else is not followed."""
    root = Path(root)
    runs = (root / "runs").resolve()
    pointers = []
    link = root / "latest"
    if link.is_symlink():
        pointers.append(link)
    txt = root / "latest.txt"
    if txt.is_file():
        try:
            pointers.append(Path(txt.read_text(encoding="utf-8").strip()))
        except (OSError, UnicodeDecodeError):
            pass
    for p in pointers:
        p = (p if p.is_absolute() else root / p).resolve()
        if p.parent == runs and p.is_dir() and is_complete(p):
            return p
    return last_complete_run(root)


def describe_state(run: str | os.PathLike[str]) -> str:
    """Why a run folder is incomplete, in words (for error messages)."""
    state = run_state(run) or {}
    status = state.get("status")
    if status == "running":
        pid, host = state.get("pid"), state.get("host")
        alive = False
        if isinstance(pid, int) and host == socket.gethostname():
            try:
                os.kill(pid, 0)
                alive = True
            except ProcessLookupError:
                alive = False
            except OSError:
                alive = True
        if alive:
            return f"still running (process {pid})"
        return "never finished: its process stopped without marking it (killed, or the machine went down)"
    if status == "interrupted":
        return "interrupted (Ctrl-C) before it finished"
    if status == "aborted":
        return f"aborted: {state.get('error') or 'an error stopped it'}"
    return f"not marked complete ({RUN_FILE} status {status!r})"
