"""Seeds, threads, the device and progress bars: the small things every lesson needs the same way."""

from __future__ import annotations

import math
import numbers
import os
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

__all__ = [
    "seed_everything",
    "deterministic",
    "device",
    "model_device",
    "on_device",
    "quiet",
    "progress",
    "set_threads",
    "default_threads",
    "check_scalar",
    "check_int",
    "check_seeds",
]

T = TypeVar("T")


def _bound(lo: Any, hi: Any, lo_inclusive: bool, hi_inclusive: bool) -> str:
    """The range part of a scalar check's message, e.g. ' >= 1' or ' in [0, 1)'."""
    if lo is not None and hi is not None:
        return f" in {'[' if lo_inclusive else '('}{lo}, {hi}{']' if hi_inclusive else ')'}"
    if lo is not None:
        return f" {'>=' if lo_inclusive else '>'} {lo}"
    if hi is not None:
        return f" {'<=' if hi_inclusive else '<'} {hi}"
    return ""


def check_scalar(
    name: str,
    value: Any,
    *,
    kind: type = int,
    lo: float | None = None,
    hi: float | None = None,
    lo_inclusive: bool = True,
    hi_inclusive: bool = True,
    allow_inf: bool = False,
    fix: str | None = None,
    error: type[Exception] = ValueError,
) -> Any:
    """``value`` as a Python ``int`` (``kind=int``) or ``float`` (``kind=float``) if it is one
    (numpy scalars too; never a bool, a string or, for floats, NaN or +/-inf unless
    ``allow_inf``) and lies in the range [``lo``, ``hi``] (open ends with ``lo_inclusive`` /
    ``hi_inclusive`` False); otherwise an ``error`` (ValueError) such as ``"epochs must be an
    integer >= 1, got 0; <fix>"``. The one scalar check of medlab, in the style of
    scikit-learn's ``check_scalar``."""
    if kind not in (int, float):
        raise TypeError(f"check_scalar: kind must be int or float, got {kind!r}")
    what = "an integer" if kind is int else "a number"
    rng = _bound(lo, hi, lo_inclusive, hi_inclusive)
    tail = f"; {fix}" if fix else ""
    wanted = numbers.Integral if kind is int else numbers.Real
    if isinstance(value, bool | np.bool_) or not isinstance(value, wanted):
        hint = ""
        if kind is int and isinstance(value, float | np.floating) and float(value).is_integer():
            hint = f" (use {int(value)})"
        raise error(f"{name} must be {what}{rng}, got {value!r}{hint}{tail}")
    v = int(value) if kind is int else float(value)
    if kind is float and (math.isnan(v) or (math.isinf(v) and not allow_inf)):
        raise error(f"{name} must be a finite number{rng}, got {v}{tail}")
    too_low = lo is not None and (v < lo if lo_inclusive else v <= lo)
    too_high = hi is not None and (v > hi if hi_inclusive else v >= hi)
    if too_low or too_high:
        raise error(f"{name} must be {what}{rng}, got {v!r}{tail}")
    return v


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as a Python int if it is integral (int, numpy integer; not bool, not float)
    and within [lo, hi]; otherwise a ValueError that says what is expected
    (:func:`check_scalar` with ``kind=int``)."""
    return check_scalar(name, value, kind=int, lo=lo, hi=hi)


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
    """Seed Python, NumPy and torch (``torch.manual_seed`` seeds the CPU, every CUDA device and
    MPS); make kernels deterministic (on CUDA, cuBLAS too: ``CUBLAS_WORKSPACE_CONFIG`` is set
    unless it already is); return a CPU torch Generator seeded with ``seed`` for code that wants
    its own stream (shuffling, augmentation: drawn on the CPU, so the same on any device)."""
    seed = check_int("seed", seed, 0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # also set at import, below
    deterministic(True, warn_only=True)
    return torch.Generator().manual_seed(seed)


def deterministic(mode: bool, *, warn_only: bool = False) -> None:
    """PyTorch's deterministic-algorithms switch (``torch.use_deterministic_algorithms``)
    without importing the compiler stack: that function also sets ``torch._inductor``'s
    ``deterministic`` flag and so imports ``torch._dynamo``, 2-4 s in every fresh kernel on
    2 cores. medlab never compiles, so while the compiler is not loaded only the operator switch
    is set; once it is (your own ``torch.compile``), the public function sets both."""
    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


# deterministic cuBLAS reads this when its handle is made, which can be before the first
# seed_everything (a cached model evaluated first): set it as soon as medlab is imported
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

#: The values ``$MEDLAB_DEVICE`` may take (``cuda:N`` for any device number N).
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def device(name: str | None = None) -> torch.device:
    """The device medlab trains and predicts on: ``name``, else ``$MEDLAB_DEVICE``, one of
    ``auto`` (the default: ``cuda`` when ``torch.cuda.is_available()``, else ``mps`` when
    available, else ``cpu``), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. A value that is none of
    these, or a device this machine does not have, is a ValueError that says what to set."""
    raw = os.environ.get("MEDLAB_DEVICE", "") if name is None else name
    if not isinstance(raw, str):
        raise TypeError(f"the device must be a string such as 'cpu', got {type(raw).__name__}")
    spec = raw.strip().lower() or "auto"
    where = "MEDLAB_DEVICE" if name is None else "device"
    fix = "set MEDLAB_DEVICE=auto (or unset it) to use what this machine has, or cpu"
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise ValueError(f"{where}={raw!r}, but this machine has no MPS device; {fix}")
        return torch.device("mps")
    m = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if m is None:
        raise ValueError(f"{where} must be one of {', '.join(DEVICES)}, got {raw!r}; {fix}")
    if not torch.cuda.is_available():
        raise ValueError(
            f"{where}={raw!r}, but torch finds no CUDA device (torch.cuda.is_available() is "
            f"False: no GPU, or a CPU-only torch build); {fix}"
        )
    if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise ValueError(
            f"{where}={raw!r}, but this machine has {n} CUDA device{'s' * (n != 1)} "
            f"(cuda:0..cuda:{n - 1}); {fix}"
        )
    return torch.device(spec)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); the CPU for a model with none."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


@contextmanager
def on_device(model: nn.Module, where: torch.device | None = None) -> Iterator[torch.device]:
    """``model`` moved (in place, ``model.to``) to ``where`` (default :func:`device`) inside the
    block, which gets that device; afterwards, also when the block raises, the model goes back
    to the device it came from, so that code after it (the attacks, Grad-CAM, sampling) finds
    it where it was. A model on the ``meta`` device (no values) stays there, for
    :func:`medlab.train.check_model`'s error."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    dev = device() if where is None else where
    dev = dev if isinstance(dev, torch.device) else torch.device(dev)
    was = model_device(model)
    if was.type == "meta":
        yield dev
        return
    model.to(dev)
    try:
        yield dev
    finally:
        model.to(was)


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


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(iterable: Iterable[T], **kwargs: Any) -> Iterator[T]:
    """A tqdm.auto progress bar, shown only in a notebook or on a terminal (disabled when
    :func:`quiet` is true or stderr is piped into a file), that leaves one static
    line when a loop with a ``desc`` ends (``desc: 12 of 12 in 3.4 s``; stdout in a notebook,
    stderr elsewhere), even where the bar was silent or is gone: an executed notebook then
    shows what ran instead of a bar frozen at 0 %."""
    from tqdm.auto import tqdm

    ip = sys.modules.get("IPython")
    in_kernel = ip is not None and ip.get_ipython() is not None
    # a bar only where someone watches it: a notebook, or a terminal; a benchmark piped into a
    # file or a table keeps clean lines (the static line below still says what ran)
    watched = in_kernel or _isatty(sys.stderr)
    kwargs.setdefault("disable", quiet() or not watched)
    kwargs.setdefault("leave", False)
    desc = kwargs.get("desc")
    total = kwargs.get("total", len(iterable) if hasattr(iterable, "__len__") else None)
    done, t0 = 0, time.perf_counter()
    try:
        for item in tqdm(iterable, **kwargs):
            done += 1
            yield item
    finally:  # also when the loop stops early (break): the generator is closed at once
        if desc:
            of = f" of {total}" if total is not None else ""
            # in a notebook the line stays in the cell's output; elsewhere (a benchmark, a
            # script) it goes to stderr, so that stdout keeps only results
            out = sys.stdout if in_kernel else sys.stderr
            print(f"{desc}: {done}{of} in {time.perf_counter() - t0:.1f} s", file=out, flush=True)
