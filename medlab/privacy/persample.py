"""Per-sample gradients of a whole model in one ``torch.func.vmap`` (:func:`train_dp`'s
``grad_sample_mode="vmap"``).

Opacus's hooks mode computes each layer's per-sample gradients in a hook, layer by layer, after
an ordinary backward pass. Here ``vmap(grad(loss of one image))`` runs the model as a function
of its parameters (``torch.func.functional_call``) once over the batch, as in PyTorch's
per-sample-gradients tutorial. The result is the same ``p.grad_sample`` (B, *p.shape) that
Opacus's optimizer clips and noises, so Poisson sampling, the accountant and the step
(:func:`~medlab.privacy.dp_sgd_step`) are unchanged. ``benchmarks/bench_privacy.py`` times it
against Opacus's modes, and ``tests/test_privacy_vmap.py`` checks it against Opacus's hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from medlab.train import batch_tensors
from medlab.train.loop import _loss

__all__ = ["per_sample_gradients", "vmap_step"]


def per_sample_gradients(
    model: nn.Module,
) -> Callable[[torch.Tensor, torch.Tensor], tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """A function ``(x (B, C, H, W) float, y) -> (gradients, losses)``: for every trainable
    parameter ``name``, ``gradients[name]`` (B, *shape) holds each image's gradient of its own
    loss, and ``losses`` (B,) the losses. The loss is :func:`~medlab.train.train_steps`'s:
    cross-entropy for class indices ``y`` (B,), binary cross-entropy for multi-label 0/1
    targets (B, L). It uses the model's current parameters. The model must carry no module
    hooks (Opacus's are removed first). Dropout draws independently for each image
    (``randomness="different"``)."""

    def one(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, params, (x.unsqueeze(0),))
        return _loss(logits, y.unsqueeze(0), 0.0).sum()

    batched = vmap(grad_and_value(one), in_dims=(None, 0, 0), randomness="different")

    def gradients(x: torch.Tensor, y: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
        return batched(params, x, y)

    return gradients


def vmap_step(model: nn.Module) -> Callable[..., tuple[int, float]]:
    """A step function for :func:`~medlab.train.train_steps` (``step=``, with
    :func:`~medlab.train.train_step`'s signature) that sets every trainable parameter's
    ``grad_sample`` from :func:`per_sample_gradients` before ``optimizer.step()`` (Opacus's
    DPOptimizer: clip, noise, account), in place of a backward pass. Batches are ``(x, y)``
    from Opacus's Poisson loader; an empty batch is still a step (zero gradients, the noise
    still comes). ``loss_fn`` is ignored: the loss is :func:`per_sample_gradients`'s."""
    gradients = per_sample_gradients(model)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}

    def step(
        model_: nn.Module, batch: Any, optimizer: Any, loss_fn: Any = None, *,
        scheduler: Any = None, first: bool = False,
    ) -> tuple[int, float]:  # fmt: skip
        if model_ is not model:
            raise ValueError("this step computes the gradients of the model vmap_step was given")
        x, y = batch_tensors(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        if len(x):
            grads, losses = gradients(x, y)
            loss = float(losses.mean())
        else:  # Poisson sampling drew no image
            grads = {n: p.new_zeros((0, *p.shape)) for n, p in params.items()}
        for n, p in params.items():
            p.grad_sample = grads[n]
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return len(x), loss

    return step
