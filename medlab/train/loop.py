"""The training steps: :func:`make_optimizer` (AdamW, or SGD, with linear warm-up and cosine
decay) and :func:`train_steps` (forward, loss, backward, step over any iterable of batches; a
second call continues from the optimizer's state)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medlab.train.inputs import as_model_input, check_model
from medlab.utils import check_int, check_scalar, model_device

__all__ = [
    "StepStats",
    "make_optimizer",
    "train_steps",
    "train_step",
    "batch_loss",
    "batch_tensors",
]


@dataclass
class StepStats:
    """What :func:`train_steps` did: optimisation steps taken, images seen, mean loss."""

    steps: int = 0
    images: int = 0
    loss: float = math.nan


def make_optimizer(
    model: nn.Module,
    *,
    total_steps: int,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    warmup: float = 0.1,
    algorithm: str = "adamw",
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over ``model``'s parameters and its learning-rate schedule: linear warm-up over the
    first ``warmup`` share of ``total_steps`` (at least one step), then cosine decay to 0.
    ``algorithm="sgd"``: SGD with momentum 0.9 instead (DP-SGD's usual optimizer: the noise
    keeps the scale of the gradient, where Adam rescales it per parameter).

    Returns ``(optimizer, scheduler)``; call ``scheduler.step()`` once per optimisation step
    (:func:`train_steps` does when given ``scheduler=``). Opacus's ``make_private`` can wrap
    the optimizer: the scheduler keeps acting on the same parameter groups.
    """
    total_steps = check_int("total_steps", total_steps, 1)
    lr = check_scalar("lr", lr, kind=float, lo=1e-8, hi=10.0, fix="e.g. lr=3e-3")
    weight_decay = check_scalar("weight_decay", weight_decay, kind=float, lo=0.0)
    warmup = check_scalar("warmup", warmup, kind=float, lo=0.0, hi=1.0)
    if algorithm == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=lr, weight_decay=weight_decay
        )
    elif algorithm == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        raise ValueError(f"algorithm must be 'adamw' or 'sgd', got {algorithm!r}")
    n_warm = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / n_warm) * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _loss(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Per-image loss (B,): cross-entropy for class indices, BCE for multi-label 0/1 floats."""
    if y.is_floating_point():
        return F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(1)
    return F.cross_entropy(logits, y, reduction="none", label_smoothing=label_smoothing)


def train_steps(
    model: nn.Module,
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    steps: int | None = None,
    *,
    scheduler: Any = None,
    label_smoothing: float = 0.0,
    loss_fn: Any = None,
    step: Any = None,
) -> StepStats:
    """Train ``model`` in place for ``steps`` optimisation steps (or until ``batches`` ends).

    Args:
        batches: an iterable/iterator of ``(x, y)`` or ``(x, y, w)``: x uint8 or float images
            (B, C, H, W), y class indices (B,) or multi-label 0/1 floats (B, L), w per-image
            loss weights (B,). Pass the same iterator again to continue where it stopped.
        optimizer: any torch optimizer (e.g. from :func:`make_optimizer`, or Opacus's
            ``DPOptimizer``); its state carries over between calls.
        steps: the number of steps; None = one pass over ``batches``.
        scheduler: stepped once per optimisation step.
        loss_fn: ``(logits, y) -> per-image losses (B,)``; default cross-entropy (BCE for
            multi-label targets) with ``label_smoothing``.
        step: the function that takes one step, with :func:`train_step`'s signature and
            result (the default); e.g. :func:`medlab.privacy.persample.vmap_step`'s per-sample step.
    Puts ``model`` in training mode (``model.train()``; freeze a backbone by turning off its
    parameters' ``requires_grad``, not by its eval mode). Returns :class:`StepStats` (steps,
    images, mean loss per image). An empty batch (possible
    with Opacus's Poisson sampling) is still a step, with a zero loss, as Opacus expects.
    """
    if steps is not None:
        steps = check_int("steps", steps, 0)
    label_smoothing = check_scalar("label_smoothing", label_smoothing, kind=float, lo=0.0, hi=0.5)
    loss_fn = loss_fn or (lambda logits, y: _loss(logits, y, label_smoothing))
    step = step or train_step
    model.train()
    stats = StepStats()
    total = 0.0
    it = iter(batches)
    while steps is None or stats.steps < steps:
        try:
            batch = next(it)
        except StopIteration:
            break
        n, loss = step(
            model, batch, optimizer, loss_fn, scheduler=scheduler, first=stats.steps == 0
        )
        total += loss * n
        stats.steps += 1
        stats.images += n
    stats.loss = total / stats.images if stats.images else math.nan
    return stats


def batch_tensors(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of a batch ``(x, y)`` or ``(x, y, w)`` on the model's device (a batch already
    there stays as it is): x as float model input (N, C, H, W), y the labels as given."""
    if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
        raise TypeError(
            "each batch must be (x, y) or (x, y, w); a DataLoader over a TensorDataset of "
            "images and labels yields that"
        )
    dev = model_device(model)
    x = as_model_input(torch.as_tensor(batch[0]).to(dev))  # uint8 moves before conversion
    return x, torch.as_tensor(batch[1]).to(dev)


def batch_loss(model: nn.Module, batch: Any, loss_fn: Any, *, first: bool) -> tuple[int, Any]:
    """(images in the batch, the loss to minimise): the mean per-image loss, weighted by
    ``w`` for ``(x, y, w)`` batches. The batch moves to the model's device
    (:func:`batch_tensors`). ``first``: check the model against the first batch."""
    x, y = batch_tensors(model, batch)
    if first:
        check_model(model, x)
    losses = loss_fn(model(x), y)
    if len(x) == 0:  # Poisson sampling (Opacus) can draw an empty batch: still one step,
        loss = losses.sum()  # so the optimizer adds its noise and the accountant counts it
    elif len(batch) == 3:
        wb = torch.as_tensor(batch[2], dtype=losses.dtype, device=losses.device)
        loss = (losses * wb).sum() / wb.sum().clamp_min(1e-12)
    else:
        loss = losses.mean()
    return len(x), loss


# fmt: off
# %% exported from notebooks/01_baseline.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def train_step(model, batch, optimizer, loss_fn, *, scheduler=None, first=False):
    """One optimisation step on one batch (x, y[, w]): returns (images, mean loss)."""
    n, loss = batch_loss(model, batch, loss_fn, first=first)  # forward, then the mean loss
    optimizer.zero_grad(set_to_none=True)  # forget the previous step's gradients
    loss.backward()                        # d loss / d every weight, by backpropagation
    optimizer.step()                       # move every weight a little against its gradient
    if scheduler is not None:
        scheduler.step()                   # the learning rate's schedule: once per step
    return n, float(loss.detach())
# %% end of export
# fmt: on
