"""Training and sampling the generators, through the curriculum's open loop and the model cache."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from medlab.data import Split
from medlab.experiments import cached_model
from medlab.synthetic.conditions import _labels
from medlab.synthetic.ddpm import DDPM
from medlab.synthetic.vae import ConditionalVAE
from medlab.train import batches, make_optimizer, to_uint8, train_steps
from medlab.utils import check_int, on_device, progress

__all__ = ["GENERATORS", "make_generator", "fit_generator", "train_generator", "generate"]

#: The generator families :func:`make_generator` builds.
GENERATORS = ("vae", "ddpm")


def make_generator(kind: str, in_channels: int, n_classes: int, **kwargs: Any) -> nn.Module:
    """A generator of family ``kind`` (one of :data:`GENERATORS`), untrained."""
    if kind == "vae":
        return ConditionalVAE(in_channels, n_classes, **kwargs)
    if kind == "ddpm":
        return DDPM(in_channels, n_classes, **kwargs)
    raise ValueError(f"kind must be one of {GENERATORS}, got {kind!r}")


class _Objective(nn.Module):
    """Hands ``train_steps`` the batch unchanged; the generator's loss is the ``loss_fn``."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fit_generator(
    model: nn.Module,
    train: Split,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    desc: str = "generator",
) -> dict[str, Any]:
    """Train a generator in place for ``steps`` optimisation steps on ``train`` (its labels are
    the conditions): :func:`~medlab.train.make_optimizer`, :func:`~medlab.train.batches` (no
    augmentation), :func:`~medlab.train.train_steps` with ``loss_fn = model.loss``, in ten
    chunks, on :func:`medlab.utils.device` (the model goes back to its device after). Returns ``{"loss": [mean loss per chunk], "steps", "seconds", ...}`` (JSON-able).
    """
    if not isinstance(train, Split):
        raise TypeError(f"train must be a medlab Split, got {type(train).__name__}")
    if len(train) == 0:
        raise ValueError("the training split is empty: nothing to learn from")
    steps = check_int("steps", steps, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    chunk = max(1, math.ceil(steps / 10))
    losses, done, t0 = [], 0, time.perf_counter()
    with on_device(model) as dev:  # sampling (generate) stays on the CPU: see generate
        opt, sched = make_optimizer(model, total_steps=steps, lr=lr, weight_decay=0.0,
                                    warmup=0.05)  # fmt: skip
        src = batches(train, batch_size=batch_size, epochs=None, seed=seed, device=dev)
        for _ in progress(range(math.ceil(steps / chunk)), desc=desc):
            k = min(chunk, steps - done)
            st = train_steps(_Objective(model), src, opt, k, scheduler=sched,
                             loss_fn=lambda x, y: model.loss(x, y))  # fmt: skip
            if not math.isfinite(st.loss):
                raise FloatingPointError(f"generator training diverged (loss {st.loss}); lower lr")
            losses.append(st.loss)
            done += k
    model.eval()
    return {"loss": losses, "steps": steps, "batch_size": batch_size, "lr": lr,
            "seconds": time.perf_counter() - t0}  # fmt: skip


def train_generator(
    kind: str,
    train: Split,
    *,
    data: Any,
    seed: int = 0,
    steps: int = 1000,
    batch_size: int = 64,
    lr: float = 2e-3,
    n_classes: int | None = None,
    cache: Any = None,
    **arch: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """A trained generator of family ``kind`` from the model cache, or trained now
    (:func:`fit_generator`) and cached. ``train.labels`` are the conditions (``n_classes`` of
    them, default ``train.n_classes``); ``arch`` goes to the model (e.g. ``width``, ``steps``
    of the DDPM schedule as ``T``). Returns (model in eval mode, info)."""
    if kind not in GENERATORS:
        raise ValueError(f"kind must be one of {GENERATORS}, got {kind!r}")
    n_classes = train.n_classes if n_classes is None else check_int("n_classes", n_classes, 1)
    arch = dict(arch)
    if "T" in arch:
        arch["steps"] = check_int("T", arch.pop("T"), 2)
    c = int(train.images.shape[1])
    settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "n_classes": n_classes, **arch}

    def run(model: nn.Module) -> dict[str, Any]:
        return fit_generator(model, train, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                             desc=f"{kind} seed {seed}")  # fmt: skip

    return cached_model(
        f"gen-{kind}",
        lambda: make_generator(kind, c, n_classes, **arch),
        run,
        data=data,
        train_split=train,
        seed=seed,
        settings=settings,
        cache=cache,
    )


def generate(
    model: nn.Module, labels: Any, *, seed: int = 0, batch_size: int = 256, **sample_kwargs: Any
) -> torch.Tensor:
    """Samples for the requested classes ``labels`` (N,), as uint8 images (N, C, H, W) in
    0..255 (the real data's format). Seeded: the same seed gives the same images.

    Sampling runs where ``model`` is (the CPU after :func:`fit_generator`): the reverse
    diffusion loop, exported from notebook 07, draws its noise on the CPU."""
    if not hasattr(model, "sample") or not hasattr(model, "n_classes"):
        raise TypeError(
            f"model must be a generator from make_generator (a ConditionalVAE or DDPM), got "
            f"{type(model).__name__}"
        )
    if np.size(labels) == 0:
        raise ValueError(
            "labels is empty: ask for at least one image, e.g. labels=requested_labels(split, n)"
        )
    y = _labels(labels, model.n_classes)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    batch_size = check_int("batch_size", batch_size, 1)
    was = model.training
    model.eval()
    try:
        out = [model.sample(y[i : i + batch_size], generator=gen, **sample_kwargs)
               for i in range(0, len(y), batch_size)]  # fmt: skip
    finally:
        model.train(was)
    x = torch.cat(out) if out else torch.zeros(0, getattr(model, "in_channels", 1), 28, 28)
    return to_uint8(x)
