"""What every part of the reproduce harness shares: its errors, one notebook run, one compared
number, and small helpers.
"""

from __future__ import annotations

import errno
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ReproduceError",
    "ExpectedFileError",
    "DiskFullError",
    "RunInterrupted",
    "NotebookRun",
    "Row",
    "one_line",
    "no_space",
    "is_number",
    "NO_SPACE",
]

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class ReproduceError(ValueError):
    """A rejected ``medlab reproduce`` request (bad input); nothing was run or written (except
    for :class:`DiskFullError`, whose partial run is marked)."""


class ExpectedFileError(ReproduceError):
    """The expected-results file is unreadable or malformed."""


class DiskFullError(ReproduceError):
    """The disk filled up during a run; the partial run folder is marked incomplete."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``str()`` is the one line to show (the run is marked
    ``interrupted`` and ``latest`` did not move)."""


@dataclass
class NotebookRun:
    """Outcome of executing one notebook (once, with one seed)."""

    notebook: str
    ok: bool
    seconds: float
    executed: Path
    error: str = ""
    seed: int | None = None
    log: Path | None = None
    peak_mb: float | None = None  # the kernel's peak resident memory (MB), if measured


@dataclass
class Row:
    """One recorded number compared with its expected value (``value`` None: MISSING)."""

    notebook: str
    dataset: str
    key: str
    value: float | None
    origin: str  # "official" / "unofficial"
    expected: float | None = None
    tol: float | None = None
    status: str = "new"
    unit: str = ""
    seed: int | None = None
    hint: float | None = None  # the author's tolerance hint
    note: str = ""
    machine: bool = False  # a measurement of this machine (status "measured"), not compared


def one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))
