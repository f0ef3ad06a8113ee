"""Seeds, threads and progress bars: the small things every lesson needs the same way."""

from __future__ import annotations

import numbers
import os
import random
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "seed_everything",
    "quiet",
    "progress",
    "set_threads",
    "default_threads",
    "check_int",
    "check_seeds",
]

T = TypeVar("T")


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as a Python int if it is integral (int, numpy integer; not bool, not float)
    and within [lo, hi]; otherwise a ValueError that says what is expected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = f" (use {int(value)})" if isinstance(value, float) and value.is_integer() else ""
        raise ValueError(f"{name} must be an integer, got {value!r}{hint}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else (f"<= {hi}" if lo is None else f"in [{lo}, {hi}]")
        raise ValueError(f"{name} must be an integer {rng}, got {v}")
    return v


def check_seeds(seeds: Any, *, name: str = "seeds") -> list[int]:
    """A non-empty list of distinct non-negative integer seeds (a bare int or string is refused:
    pass a list such as ``[0, 1, 2]``)."""
    if isinstance(seeds, str | bytes) or isinstance(seeds, numbers.Number):
        raise ValueError(f"{name} must be a list of integers such as [0, 1, 2], got {seeds!r}")
    if not isinstance(seeds, Sequence | Iterable):
        raise ValueError(f"{name} must be a list of integers such as [0, 1, 2], got {seeds!r}")
    out = [check_int(f"each of {name}", s, 0) for s in seeds]
    if not out:
        raise ValueError(f"{name} is empty: give at least one seed, e.g. [0, 1, 2]")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has repeated values {out}: each seed must appear once")
    return out


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; make CPU kernels deterministic; return a torch Generator
    seeded with ``seed`` for code that wants its own stream (shuffling, augmentation)."""
    seed = check_int("seed", seed, 0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def default_threads() -> int:
    """``$MEDLAB_THREADS`` if set, else the number of CPUs this process may use."""
    env = os.environ.get("MEDLAB_THREADS", "").strip()
    if env:
        try:
            return check_int("MEDLAB_THREADS", int(env), 1)
        except ValueError:
            raise ValueError(
                f"MEDLAB_THREADS must be a positive integer, got {env!r}; unset it to use "
                "every CPU this process may use"
            ) from None
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def set_threads(n: int | None = None) -> int:
    """Use ``n`` torch threads (default :func:`default_threads`). Returns the count."""
    n = default_threads() if n is None else check_int("threads", n, 1)
    torch.set_num_threads(n)
    return torch.get_num_threads()


def quiet() -> bool:
    """True in CI, under papermill, or when MEDLAB_QUIET=1: progress bars stay silent there."""
    if os.environ.get("MEDLAB_QUIET", "") not in ("", "0"):
        return True
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return True
    return "papermill" in sys.modules or os.environ.get("PAPERMILL_EXECUTION") == "1"


def progress(iterable: Iterable[T], **kwargs: Any) -> Iterable[T]:
    """A tqdm.auto progress bar that is disabled when :func:`quiet` is true."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", quiet())
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)
