"""Process helpers shared by the fault tests (imported by test_faults.py and test_parallel.py;
not a test module)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: only a net against a hung test: no check depends on the machine's speed
SAFETY_S = 300


def wait_for(predicate: Callable[[], T], what: str, *, limit: float = SAFETY_S) -> T:
    """Poll ``predicate`` every 0.1 s until it returns something true; that value. Fails after
    ``limit`` seconds, naming ``what`` it waited for."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what} after {limit} s")


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is neither a zombie nor dead."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
