"""Seeds, threads and progress bars: the small things every lesson needs the same way."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterable
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = ["seed_everything", "quiet", "progress", "set_threads"]

T = TypeVar("T")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; make CPU kernels deterministic; return a torch Generator
    seeded with ``seed`` for code that wants its own stream (shuffling, augmentation)."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def set_threads(n: int | None = None) -> int:
    """Use ``n`` torch threads (default: the CPUs this process may use). Returns the count."""
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(max(1, int(n or 1)))
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
