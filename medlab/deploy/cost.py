"""What a model costs on this CPU: size on disk (bytes of the saved ``state_dict``),
parameters, latency per image (batch of 1, median after warm-up runs), throughput (images/s),
a fair latency race between models (:func:`compare_latency`) and the FLOPs of one forward pass.

Everything here runs on the CPU, whatever :func:`medlab.utils.device` says: the int8 model runs
only there, and the lesson compares it with the float model on the same hardware. The models
given must be on the CPU (those from :func:`medlab.train.fit` are)."""

from __future__ import annotations

import io
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from torch import nn

from medlab.deploy.compression import _quantized_ok
from medlab.train import to_input
from medlab.utils import check_int


@dataclass
class Cost:
    """What one model costs on this CPU.

    params: stored weights (parameters and buffers such as int8 weights), count;
    size_mb: bytes of ``torch.save(state_dict)`` / 1e6 (the file a deployment would ship);
    latency_ms: median milliseconds for one image (batch of 1);
    throughput: images per second at ``batch_size`` (median of the repeats).
    """

    params: int
    size_mb: float
    latency_ms: float
    throughput: float
    batch_size: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def state_dict_bytes(model: nn.Module) -> int:
    """Size in bytes of ``torch.save(model.state_dict())``: exactly the file it would write
    (serialised in memory, so nothing is left on disk)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return len(buf.getvalue())


def _stored_values(model: nn.Module) -> int:
    """Number of weights and biases, counted the same way for float and quantised modules
    (whose int8 weights are packed and reached through ``.weight()`` / ``.bias()``)."""
    total = 0
    for m in model.modules():
        for attr in ("weight", "bias"):
            v = getattr(m, attr, None)
            if callable(v) and not isinstance(v, torch.Tensor):
                try:
                    v = v()
                except (RuntimeError, TypeError):
                    v = None
            if isinstance(v, torch.Tensor):
                total += v.numel()
    return total


@torch.no_grad()
def _median_seconds(model: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_cost(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 64,
    warmup: int = 3,
    repeats: int = 15,
) -> Cost:
    """Measure a model's :class:`Cost` on real images.

    Args:
        model: any module taking float input on medlab's [-1, 1] scale (float or int8).
        images: uint8 (N, C, H, W), N >= batch_size (e.g. ``data.test.images``).
        batch_size: images per forward pass for the throughput.
        warmup, repeats: untimed runs first, then the median of ``repeats`` timed runs.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    warmup = check_int("warmup", warmup, 0)
    repeats = check_int("repeats", repeats, 1)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError("images must be a uint8 tensor (N, C, H, W), e.g. data.test.images")
    if len(images) < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} images, got {len(images)}")
    model.eval()
    one = to_input(images[:1])
    batch = to_input(images[:batch_size])
    with _quantized_ok():
        latency = _median_seconds(model, one, warmup, repeats)
        per_batch = _median_seconds(model, batch, warmup, max(3, repeats // 3))
    return Cost(
        params=_stored_values(model),
        size_mb=state_dict_bytes(model) / 1e6,
        latency_ms=1000 * latency,
        throughput=batch_size / per_batch,
        batch_size=batch_size,
    )


def _first_image(images: torch.Tensor) -> torch.Tensor:
    """The first of uint8 images (N, C, H, W), N >= 1, as model input (1, C, H, W)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) < 1:
        raise ValueError("images must be a uint8 tensor (N, C, H, W), e.g. data.test.images")
    return to_input(images[:1])


def forward_flops(model: nn.Module, images: torch.Tensor) -> int:
    """Floating-point operations of one forward pass on one image, counted by PyTorch's
    ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2; convolutions and
    matrix products only, which dominate these models). Training costs about 3 times this per
    image (forward and backward): a count of work, unlike a time, it does not depend on the
    machine or its load.

    Args:
        model: a float model taking medlab's [-1, 1] input.
        images: uint8 (N, C, H, W), N >= 1; the first image is used.
    """
    from torch.utils.flop_counter import FlopCounterMode

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(_first_image(images))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def compare_latency(
    models: Mapping[str, nn.Module],
    images: torch.Tensor,
    *,
    rounds: int = 7,
    repeats: int = 5,
    warmup: int = 3,
) -> pd.DataFrame:
    """Latency of several models for one image, measured so that the machine's load cannot
    decide a comparison: the models take turns (interleaved, in an order rotated every round),
    and each round keeps the fastest of ``repeats`` runs (load only ever adds time).

    Args:
        models: name -> model taking float input on medlab's [-1, 1] scale (float or int8).
        images: uint8 (N, C, H, W), N >= 1; the first image is timed.
        rounds: turns per model; repeats: timed runs per turn; warmup: untimed runs first.

    Returns:
        one row per model: ``min_ms`` (fastest turn), ``median_ms`` (median over turns) and
        ``rounds_fastest`` (turns in which it was the fastest model), in milliseconds.
    """
    rounds = check_int("rounds", rounds, 1)
    repeats = check_int("repeats", repeats, 1)
    warmup = check_int("warmup", warmup, 0)
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping name -> nn.Module")
    for name, m in models.items():
        if not isinstance(m, nn.Module):
            raise TypeError(f"models[{name!r}] must be a torch.nn.Module, got {type(m).__name__}")
    one = _first_image(images)
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    fastest = dict.fromkeys(names, 0)
    with _quantized_ok(), torch.no_grad():
        for n in names:
            models[n].eval()
            for _ in range(warmup):
                models[n](one)
        for r in range(rounds):
            turn = {}
            for n in names[r % len(names) :] + names[: r % len(names)]:
                best = math.inf
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    models[n](one)
                    best = min(best, time.perf_counter() - t0)
                turn[n] = 1000 * best
                times[n].append(turn[n])
            fastest[min(turn, key=turn.get)] += 1
    return pd.DataFrame(
        {
            "model": names,
            "min_ms": [min(times[n]) for n in names],
            "median_ms": [statistics.median(times[n]) for n in names],
            "rounds_fastest": [fastest[n] for n in names],
            "rounds": rounds,
        }
    ).set_index("model")
