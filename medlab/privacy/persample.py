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

from medlab.train import as_model_input
from medlab.train.loop import _loss
from medlab.utils import model_device

__all__ = ["per_sample_gradients", "vmap_epochs"]


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


def vmap_epochs(
    model: nn.Module, loader: Any, optimizer: Any, scheduler: Any, epochs: int
) -> list[float]:
    """``epochs`` passes over ``loader`` (Opacus's Poisson loader), each step setting every
    trainable parameter's ``grad_sample`` from :func:`per_sample_gradients` before
    ``optimizer.step()`` (Opacus's DPOptimizer: clip, noise, account). An empty batch is still
    a step, as in :func:`~medlab.train.train_steps`. Returns the mean loss per image of each
    epoch."""
    gradients = per_sample_gradients(model)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    dev = model_device(model)
    model.train()
    losses = []
    for _ in range(epochs):
        total, images = 0.0, 0
        for batch in loader:
            x = as_model_input(torch.as_tensor(batch[0]).to(dev))
            y = torch.as_tensor(batch[1]).to(dev)
            optimizer.zero_grad(set_to_none=True)
            if len(x):
                grads, loss = gradients(x, y)
                total += float(loss.sum())
            else:  # Poisson sampling drew no image: zero gradients, the noise still comes
                grads = {n: p.new_zeros((0, *p.shape)) for n, p in params.items()}
            for n, p in params.items():
                p.grad_sample = grads[n]
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            images += len(x)
        losses.append(total / images if images else float("nan"))
    return losses
