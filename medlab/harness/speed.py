"""This machine's speed at the curriculum's typical work: a reference for the benchmarks, which
report their times in units of it (``benchmarks/bench_curriculum.py``)."""

from __future__ import annotations

import time
from typing import Any

import torch

from medlab.models import build_model
from medlab.train import batches, make_optimizer, train_steps
from medlab.utils import check_int, seed_everything

__all__ = ["speed_reference"]


def speed_reference(split: Any, *, steps: int = 40, batch_size: int = 64, seed: int = 0) -> float:
    """This machine's speed at the curriculum's typical work, in seconds: ``steps`` training
    steps of the small CNN (batch ``batch_size``, AdamW) on the real images of ``split`` (a
    :class:`medlab.data.Split`), after one warm-up step, with torch's current thread count.

    The same two cores can differ twofold from one machine (or hour) to the next; a benchmark
    that reports its times divided by this reference, measured in the same run, compares across
    machines where seconds do not.
    """
    steps = check_int("steps", steps, 1)
    seed_everything(seed)
    model = build_model("smallcnn", split.images.shape[1], split.n_classes)
    opt, _ = make_optimizer(model, total_steps=steps + 1)
    src = batches(split, batch_size=batch_size, epochs=None, seed=seed)
    with torch.enable_grad():
        train_steps(model, src, opt, 1)
        t0 = time.perf_counter()
        train_steps(model, src, opt, steps)
    return time.perf_counter() - t0
