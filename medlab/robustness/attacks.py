"""The attacks: FGSM and PGD under the L-infinity norm in pixel space (written in notebook 08 and
copied below), batched over a split, and the accuracy under attack."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from medlab.data import Split
from medlab.robustness.pixels import (
    PixelModel,
    _check_xy,
    _pixel_model,
    _predict_pixels,
    to_pixels,
)
from medlab.train import check_model, eval_mode
from medlab.utils import check_int, check_scalar

__all__ = [
    "check_eps",
    "attack_inputs",
    "check_labels",
    "input_gradient",
    "fgsm",
    "pgd_run",
    "pgd",
    "attack",
    "robust_accuracy",
]


def check_eps(name: str, eps: Any) -> float:
    """An attack budget (or step) on the [0, 1] pixel scale, checked."""
    return check_scalar(
        name, eps, kind=float, lo=0, hi=1,
        fix=f"on the [0, 1] pixel scale: for 8 grey levels of 255 pass {name}=8/255",
    )  # fmt: skip


def attack_inputs(
    model: nn.Module, x: Any, y: Any
) -> tuple[PixelModel, torch.Tensor, torch.Tensor]:
    """The checked inputs of an attack: ``model`` as a classifier of [0, 1] pixels
    (:class:`PixelModel`; a medlab model is wrapped) that can take ``x``, x as float pixels
    (N, C, H, W) on [0, 1] and y as integer labels (N,)."""
    x, y = _check_xy(x, y)
    net = _pixel_model(model)
    check_model(net, x)
    return net, x, y


def check_labels(logits: torch.Tensor, y: torch.Tensor) -> None:
    """One clear error for labels outside the model's classes (``logits`` (N, K))."""
    k = logits.shape[1]
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
        raise ValueError(
            f"labels must be class indices 0..{k - 1} for this {k}-class model, got "
            f"{torch.unique(y)[:5].tolist()}: pass the split's own labels (split.labels)"
        )


def attack(
    model: nn.Module,
    images: Split | torch.Tensor,
    labels: Any = None,
    *,
    eps: float,
    method: str = "pgd",
    batch_size: int = 256,
    **kwargs: Any,
) -> torch.Tensor:
    """Attack a whole split (or uint8/[0, 1] images with ``labels``) in batches.

    method: ``"pgd"`` or ``"fgsm"``; kwargs go to :func:`pgd`. Returns float (N, C, H, W) on
    [0, 1]. ``eps=0`` returns the clean pixels.
    """
    if method not in ("pgd", "fgsm"):
        raise ValueError(f"method must be 'pgd' or 'fgsm', got {method!r}")
    if isinstance(images, Split):
        x, y = to_pixels(images), images.labels
    else:
        if labels is None:
            raise ValueError("give labels= with images (or pass a Split)")
        images = torch.as_tensor(images)
        x = to_pixels(images) if images.dtype == torch.uint8 else images
        y = torch.as_tensor(labels)
    x, y = _check_xy(x, y)
    batch_size = check_int("batch_size", batch_size, 1)
    eps = check_eps("eps", eps)
    if eps == 0:
        return x.clone()
    net = _pixel_model(model)
    out = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        adv = (
            fgsm(net, xb, yb, eps=eps) if method == "fgsm" else pgd(net, xb, yb, eps=eps, **kwargs)
        )
        out.append(adv)
    return torch.cat(out)


def robust_accuracy(
    model: nn.Module, split: Split, *, eps: float, method: str = "pgd", **kwargs: Any
) -> float:
    """Accuracy (0-1) of ``model`` on ``split`` with every image attacked at ``eps``."""
    if not isinstance(split, Split):
        raise TypeError(f"robust_accuracy needs a medlab Split, got {type(split).__name__}")
    adv = attack(model, split, eps=eps, method=method, **kwargs)
    pred = _predict_pixels(model, adv).argmax(1)
    return float((pred == split.labels).float().mean())


# fmt: off
# %% exported from notebooks/08_robustness.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def input_gradient(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                   loss: Callable | None = None) -> torch.Tensor:
    """The gradient of the mean cross-entropy over the batch with respect to the pixels x (or of
    loss(net, x, y) -> a scalar, another attacker's objective, e.g. one that also fools a detector)."""
    x = x.detach().requires_grad_(True)
    if loss is None:
        logits = net(x)
        check_labels(logits, y)  # one clear error for a label the model does not have
        value = torch.nn.functional.cross_entropy(logits, y)
    else:
        value = loss(net, x, y)
    (grad,) = torch.autograd.grad(value, x)
    return grad
# %% end of export


# %% exported from notebooks/08_robustness.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): x + eps * sign(grad_x loss(x, y)),
    clipped to [0, 1]. model: a classifier (wrapped in a PixelModel unless it is one); x: float
    pixels (N, C, H, W) on [0, 1]; y: the true classes (N,); eps: the L-infinity budget on the
    [0, 1] scale. The model runs in eval mode."""
    eps = check_eps("eps", eps)
    net, x, y = attack_inputs(model, x, y)  # a PixelModel, float pixels, integer labels
    with eval_mode(net):
        grad = input_gradient(net, x, y)
    return (x + eps * grad.sign()).clamp(0.0, 1.0).detach()
# %% end of export
# fmt: on


# fmt: off
# %% exported from notebooks/08_robustness.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def pgd_run(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, step: float,
            steps: int, random_start: bool = False, generator: torch.Generator | None = None,
            stop_when_fooled: bool = False, loss: Callable | None = None) -> tuple[Any, Any]:
    """One PGD run from x (random_start: from a uniform random point of the eps-box): `steps`
    times a `step` along the sign of the loss gradient, clip to [0, 1], project back into
    |adv - x| <= eps. Returns the attacked images and the indices of those still classified
    right; with stop_when_fooled an image stops at its first step that fools the model (the same
    or a lower robust accuracy for far fewer gradients). net: a PixelModel in eval mode."""
    noise = torch.rand(x.shape, generator=generator) * 2 - 1 if random_start else 0.0
    adv = (x + eps * noise).clamp(0.0, 1.0)
    out, todo = x.clone(), torch.arange(len(x))  # todo: the images not fooled so far
    for i in range(steps):
        x0, y0 = x[todo], y[todo]
        adv = (adv + step * input_gradient(net, adv, y0, loss).sign()).clamp(0.0, 1.0)  # ascend
        adv = x0 + (adv - x0).clamp(-eps, eps)  # project onto the eps-box around x
        if stop_when_fooled or i == steps - 1:
            out[todo] = adv.detach()  # every image keeps its attack so far ...
            with torch.no_grad():
                right = net(adv).argmax(1) == y0
            todo, adv = todo[right], adv[right].detach()  # ... those still right go on
        if len(todo) == 0:
            break
    return out, todo
# %% end of export
# fmt: on


# fmt: off
# %% exported from notebooks/08_robustness.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
        step: float | None = None, steps: int = 10, random_start: bool = False,
        restarts: int = 1, **run: Any) -> torch.Tensor:
    """Projected gradient descent under the L-infinity norm (Madry et al. 2018): pgd_run; x, y
    and eps as for fgsm; step: 2.5 eps / steps unless given (the Madry lab's `robustness`
    library, Engstrom et al. 2019). restarts (with random_start): the images still right are
    attacked again from a new random start, so an image counts as robust only if it survives
    every restart (ART's num_random_init). run: pgd_run's other options (generator, ...)."""
    eps = check_eps("eps", eps)
    step = 2.5 * eps / max(1, steps) if step is None else check_eps("step", step)
    steps, restarts = check_int("steps", steps, 1), check_int("restarts", restarts, 1)
    if restarts > 1 and not random_start:
        raise ValueError("restarts > 1 repeat the same attack: pass random_start=True")
    net, x, y = attack_inputs(model, x, y)
    best, todo = x.clone(), torch.arange(len(x))  # todo: the images no restart has fooled
    with eval_mode(net):
        for _ in range(restarts):
            if len(todo):
                adv, right = pgd_run(net, x[todo], y[todo], eps=eps, step=step, steps=steps,
                                     random_start=random_start, **run)
                best[todo] = adv
                todo = todo[right]  # the survivors try again from a new random start
    return best.detach()
# %% end of export
# fmt: on
