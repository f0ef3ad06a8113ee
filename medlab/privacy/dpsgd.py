"""DP-SGD with Opacus through medlab's open training loop (:func:`train_dp`): Opacus wraps the
model (per-sample gradients ``p.grad_sample``; ``vmap`` mode: :mod:`.persample`), the optimizer
and the loader (Poisson sampling); the step (clip, add Gaussian noise, divide by the expected
batch size) is notebook 06's :func:`dp_sgd_step` (ghost clipping keeps Opacus's)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from medlab.data import Split
from medlab.privacy.accounting import (
    _accountant,
    _quiet,
    check_dp_params,
    check_private,
    default_delta,
    epsilon_for,
    search_noise,
)
from medlab.privacy.persample import vmap_step
from medlab.train import make_optimizer, to_input, train_steps
from medlab.utils import check_int, model_device, on_device, seed_everything

__all__ = ["GRAD_SAMPLE_MODES", "DPResult", "train_dp", "dp_sgd_step", "clip_and_noise",
           "step_from"]  # fmt: skip

GRAD_SAMPLE_MODES = ("hooks", "functorch", "ghost", "vmap")  # vmap: medlab.privacy.persample


@dataclass
class DPResult:
    """What :func:`train_dp` did: the (epsilon, delta) guarantee and how it was reached."""

    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    accountant: str
    epsilon_rdp: float
    target_epsilon: float | None = None
    grad_sample_mode: str = "hooks"
    message: str = ""
    seconds: float = 0.0
    loss: float = float("nan")
    n_train: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _GhostLoss:
    """Adapter for Opacus's fast gradient clipping: its criterion returns a tensor-like object
    whose ``backward`` runs the two passes; :func:`~medlab.train.train_steps` takes ``.mean()``
    of per-image losses, so the object is handed back as its own mean."""

    def __init__(self, criterion: Any) -> None:
        self.criterion = criterion

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> Any:
        return _GhostMean(self.criterion(logits, y))


class _GhostMean:
    def __init__(self, loss: Any) -> None:
        self.loss = loss

    def mean(self) -> Any:
        return self.loss

    def sum(self) -> Any:
        return self.loss


def _make_private(
    engine: Any,
    kw: dict[str, Any],
    target_epsilon: float | None,
    noise_multiplier: float | None,
    delta: float,
    epochs: int,
) -> Any:
    """``make_private`` with the noise multiplier given, or the one ``make_private_with_epsilon``
    finds (:func:`search_noise`); None when PRV fails with "Discrete mean differs" searching it."""
    q, mech = 1 / len(kw["data_loader"]), engine.accountant.mechanism()
    sigma = noise_multiplier if target_epsilon is None else search_noise(  # memoised search
        float(target_epsilon), float(delta), q, epochs, mech)  # fmt: skip
    return None if sigma is None else engine.make_private(**kw, noise_multiplier=float(sigma))


def _pre_step(opt: Any, step: Callable[..., None], closure: Any = None) -> bool:
    """Opacus's ``DPOptimizer.pre_step`` with its clip, noise and scale done by ``step``; the
    accountant's hook still counts every step."""
    if opt.grad_samples is None or len(opt.grad_samples) == 0:
        return True
    batch = opt.expected_batch_size * opt.accumulated_iterations
    step(opt.params, opt.max_grad_norm, opt.noise_multiplier, batch, opt.generator)
    if opt.step_hook:
        opt.step_hook(opt)
    opt._is_last_step_skipped = False
    return True


def _use_step(dp_opt: Any, step: Callable[..., None]) -> None:
    """Make Opacus's flat-clipping ``DPOptimizer`` (mean loss, no secure RNG) run ``step``."""
    from opacus.optimizers import DPOptimizer

    if type(dp_opt) is DPOptimizer and dp_opt.loss_reduction == "mean" and not dp_opt.secure_mode:
        dp_opt.pre_step = functools.partial(_pre_step, dp_opt, step)


def _check_args(
    model: nn.Module, split: Any, *, epochs: int, batch_size: int, max_grad_norm: float,
    target_epsilon: float | None, noise_multiplier: float | None, delta: float | None,
    grad_sample_mode: str, accountant: str,
) -> tuple[float, int, int]:  # fmt: skip
    """:func:`train_dp`'s checks; returns ``(delta, epochs, batch_size)``."""
    n = len(_tensors(split)[1])
    if n < 2:
        raise ValueError(f"DP training needs at least 2 training images, got {n}")
    if (target_epsilon is None) == (noise_multiplier is None):
        raise ValueError(
            "give exactly one of target_epsilon (e.g. 3.0) or noise_multiplier (e.g. 1.0)"
        )
    delta = default_delta(n) if delta is None else delta
    check_dp_params(
        n_train=n,
        epsilon=target_epsilon,
        delta=delta,
        max_grad_norm=max_grad_norm,
        noise_multiplier=noise_multiplier,
    )
    if grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise ValueError(
            f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}, got {grad_sample_mode!r}"
        )
    _accountant(accountant)
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1, n)
    check_private(model)
    return delta, epochs, batch_size


def _tensors(split: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` to train on: a Split's images on the model's scale, or a pair ``(features
    float (N, D) within the models' input scale |x| <= 4, labels int (N,))`` (e.g. a frozen
    encoder's unit-norm features for a linear probe)."""
    if isinstance(split, Split):
        return to_input(split.images), split.labels
    if isinstance(split, tuple) and len(split) == 2:
        x, y = torch.as_tensor(split[0]).float(), torch.as_tensor(split[1]).long()
        if x.ndim >= 2 and y.ndim == 1 and len(x) == len(y):
            return x, y
    raise TypeError(
        "train_dp needs a medlab Split or a pair (features float (N, D), labels int (N,)), got "
        f"{type(split).__name__}"
    )


def _setup(
    model: nn.Module, split: Any, *, epochs: int, batch_size: int, lr: float,
    weight_decay: float, algorithm: str, max_grad_norm: float, seed: int, grad_sample_mode: str,
) -> tuple[DataLoader, Any, dict[str, Any]]:  # fmt: skip
    """The seeded DataLoader over ``split`` (on the CPU: :func:`~medlab.train.train_steps`
    moves each batch to the model), the optimizer's scheduler, and the keywords of Opacus's
    ``make_private`` (model, optimizer, loader, clipping norm, seeded noise drawn on the
    model's device, where the gradients are: another stream on a GPU than on the CPU)."""
    x, y = _tensors(split)
    if grad_sample_mode == "ghost" and y.is_floating_point():  # Opacus's criterion below
        raise ValueError("grad_sample_mode='ghost' clips with a cross-entropy criterion, wrong for "
                         "multi-label 0/1 targets: use grad_sample_mode='hooks' or 'vmap'")  # fmt: skip
    gen = seed_everything(seed)
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=batch_size,
        shuffle=True,
        generator=gen,
    )
    opt, sched = make_optimizer(
        model, total_steps=epochs * len(loader), lr=lr, weight_decay=weight_decay,
        algorithm=algorithm,
    )  # fmt: skip
    kw: dict[str, Any] = dict(
        module=model,
        optimizer=opt,
        data_loader=loader,
        max_grad_norm=float(max_grad_norm),
        noise_generator=torch.Generator(model_device(model)).manual_seed(seed + 1),
        grad_sample_mode="hooks" if grad_sample_mode == "vmap" else grad_sample_mode,
    )
    if grad_sample_mode == "ghost":
        kw["criterion"] = nn.CrossEntropyLoss()
    return loader, sched, kw


def _wrap(
    kw: dict[str, Any], accountant: str, target_epsilon: float | None,
    noise_multiplier: float | None, delta: float, epochs: int,
) -> tuple[Any, Any, str, str]:  # fmt: skip
    """A ``PrivacyEngine`` and its ``make_private`` output, with PRV's fallback to RDP while
    searching the noise. Returns ``(engine, output, accountant, message)``."""
    from opacus import PrivacyEngine

    with _quiet():
        engine = PrivacyEngine(accountant=accountant)
        out = _make_private(engine, kw, target_epsilon, noise_multiplier, delta, epochs)
    if out is not None:
        return engine, out, accountant, ""
    message = (  # PRV failed while searching the noise: RDP
        "the PRV accountant failed ('Discrete mean differs significantly') while "
        f"searching the noise for epsilon={target_epsilon}: the RDP accountant is used"
    )
    with _quiet():
        engine = PrivacyEngine(accountant="rdp")
        out = _make_private(engine, kw, target_epsilon, noise_multiplier, delta, epochs)
    return engine, out, "rdp", message


def _run_epochs(
    gsm: Any, dp_loader: Any, dp_opt: Any, sched: Any, loss_fn: Any, epochs: int, mode: str
) -> tuple[list[float], float]:
    """``epochs`` passes of :func:`~medlab.train.train_steps` (``vmap``: :func:`vmap_step`'s
    steps); Opacus's hooks are removed afterwards. Returns ``(losses per epoch, seconds)``."""
    t0 = time.perf_counter()
    try:
        with _quiet():
            model, step = gsm, None
            if mode == "vmap":
                gsm._close()  # torch.func traces the plain model
                model, step = gsm._module, vmap_step(gsm._module)
            run = functools.partial(train_steps, model, dp_loader, dp_opt, None, step=step)
            losses = [run(scheduler=sched, loss_fn=loss_fn).loss for _ in range(epochs)]
    finally:
        seconds = time.perf_counter() - t0
        gsm._close()  # remove Opacus's hooks: the caller's model is plain again
    return losses, seconds


def train_dp(
    model: nn.Module,
    split: Split | tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 5e-3,
    max_grad_norm: float = 1.0,
    target_epsilon: float | None = None,
    noise_multiplier: float | None = None,
    delta: float | None = None,
    seed: int = 0,
    grad_sample_mode: str = "hooks",
    accountant: str = "prv",
    weight_decay: float = 0.0,
    algorithm: str = "sgd",
    step: Callable[..., None] | None = None,
) -> DPResult:
    """Train ``model`` in place with DP-SGD: Opacus's ``PrivacyEngine`` wraps the model, the
    optimizer of :func:`~medlab.train.make_optimizer` (SGD, momentum 0.9 by default) and a
    DataLoader over ``split`` (a Split, or ``(features (N, D), labels (N,))`` for a probe on
    frozen features) made Poisson, rate ``q = 1 / ceil(N / batch_size)``; ``train_steps`` runs
    the steps (``grad_sample_mode``: Opacus's ``hooks``, ``functorch`` or ``ghost``, or
    ``vmap``, one ``torch.func.vmap`` over the model, the fastest on a CPU). Give exactly one of ``target_epsilon`` (``make_private_with_epsilon`` finds the noise
    multiplier) or ``noise_multiplier`` (``make_private``). ``delta`` defaults to
    :func:`default_delta` of N. ``step`` (default :func:`dp_sgd_step`) clips each per-sample
    gradient to L2 norm ``max_grad_norm``, adds Gaussian noise of SD ``noise_multiplier *
    max_grad_norm`` to their sum and averages (ghost clipping keeps Opacus's own). Returns a
    :class:`DPResult`; epsilon comes from the engine's accountant (PRV; RDP when PRV fails, with
    a message), with RDP as a cross-check. The steps run on :func:`medlab.utils.device` (the
    model goes back to its device afterwards).
    """
    delta, epochs, batch_size = _check_args(
        model, split, epochs=epochs, batch_size=batch_size, max_grad_norm=max_grad_norm,
        target_epsilon=target_epsilon, noise_multiplier=noise_multiplier, delta=delta,
        grad_sample_mode=grad_sample_mode, accountant=accountant,
    )  # fmt: skip
    with on_device(model):  # medlab.utils.device(); the model comes back afterwards
        loader, sched, kw = _setup(
            model, split, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
            algorithm=algorithm, max_grad_norm=max_grad_norm, seed=seed,
            grad_sample_mode=grad_sample_mode,
        )  # fmt: skip
        engine, out, accountant, message = _wrap(
            kw, accountant, target_epsilon, noise_multiplier, delta, epochs
        )
        if grad_sample_mode == "ghost":
            gsm, dp_opt, criterion, dp_loader = out
            loss_fn: Any = _GhostLoss(criterion)
        else:
            (gsm, dp_opt, dp_loader), loss_fn = out, None
            _use_step(dp_opt, step or dp_sgd_step)
        run = (gsm, dp_loader, dp_opt, sched, loss_fn, epochs, grad_sample_mode)
        losses, seconds = _run_epochs(*run)
    model.eval()
    sigma, q = float(dp_opt.noise_multiplier), 1.0 / len(loader)
    steps = sum(h[2] for h in engine.accountant.history)
    return _result(sigma, q, steps, delta, accountant, message, losses, seconds,
                   max_grad_norm=max_grad_norm, target_epsilon=target_epsilon,
                   grad_sample_mode=grad_sample_mode, n=len(loader.dataset))  # fmt: skip


def _result(
    sigma: float, q: float, steps: int, delta: float, accountant: str, message: str,
    losses: list[float], seconds: float, *, max_grad_norm: float,
    target_epsilon: float | None, grad_sample_mode: str, n: int,
) -> DPResult:  # fmt: skip
    """The :class:`DPResult` of a run: epsilon recomputed from a fresh accountant (and RDP)."""
    eps, used, msg = epsilon_for(sigma, q, steps, delta, accountant=accountant)
    eps_rdp = epsilon_for(sigma, q, steps, delta, accountant="rdp")[0]
    return DPResult(
        epsilon=eps,
        delta=float(delta),
        noise_multiplier=sigma,
        max_grad_norm=float(max_grad_norm),
        sample_rate=q,
        steps=int(steps),
        accountant=used,
        epsilon_rdp=eps_rdp,
        target_epsilon=None if target_epsilon is None else float(target_epsilon),
        grad_sample_mode=grad_sample_mode,
        message="; ".join(m for m in (message, msg) if m),
        seconds=seconds,
        loss=float(losses[-1]) if losses else float("nan"),
        n_train=n,
    )


def clip_and_noise(
    per_sample: Sequence[torch.Tensor], max_grad_norm: float, noise_multiplier: float,
    batch_size: int, generator: torch.Generator | None = None,
    *, step: Callable[..., None] | None = None,
) -> list[torch.Tensor]:  # fmt: skip
    """One DP-SGD aggregation as a function of per-sample gradients (one ``(B, *shape)`` tensor
    per parameter): what ``step`` (default :func:`dp_sgd_step`) writes into ``p.grad``, returned
    as one ``(*shape)`` tensor per parameter: (sum_i min(1, C / ||g_i||) g_i + N(0, (sigma C)^2))
    / batch_size, the noise drawn from ``generator`` parameter by parameter. The reference of
    notebook 06's exercise, whose function has this signature."""
    params = [nn.Parameter(torch.zeros(g.shape[1:], dtype=g.dtype)) for g in per_sample]
    for p, g in zip(params, per_sample, strict=True):
        p.grad_sample = g
    (step or dp_sgd_step)(params, max_grad_norm, noise_multiplier, batch_size, generator)
    return [p.grad for p in params]


def step_from(aggregate: Callable[..., Sequence[torch.Tensor]]) -> Callable[..., None]:
    """A DP-SGD step for :func:`train_dp` (``step(params, C, sigma, B, generator)``, writing
    ``p.grad`` from ``p.grad_sample``) made of an aggregation with :func:`clip_and_noise`'s
    signature, e.g. the one a student writes in notebook 06. It runs on the CPU (a student's
    ``torch.normal(..., generator=g)`` names no device), with a CPU twin of a GPU generator."""
    twins: dict[int, torch.Generator] = {}

    def step(params: list[torch.Tensor], max_grad_norm: float, noise_multiplier: float,
             batch_size: int, generator: torch.Generator | None = None) -> None:  # fmt: skip
        per_sample, gen = [p.grad_sample for p in params], generator
        if params and params[0].device.type != "cpu":
            per_sample = [g.detach().cpu() for g in per_sample]
            if generator is not None:
                seed = generator.initial_seed()
                gen = twins.setdefault(id(generator), torch.Generator().manual_seed(seed))
        grads = aggregate(per_sample, max_grad_norm, noise_multiplier, batch_size, gen)
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.as_tensor(g, dtype=p.dtype).reshape(p.shape).to(p.device)

    step.__name__ = f"step_from({getattr(aggregate, '__name__', 'aggregate')})"
    return step


# fmt: off
# %% exported from notebooks/06_privacy.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def dp_sgd_step(params: list[torch.Tensor], max_grad_norm: float, noise_multiplier: float,
                batch_size: int, generator: torch.Generator | None = None) -> None:
    """DP-SGD's gradient (Abadi et al. 2016), as Opacus's DPOptimizer computes it: from the
    per-sample gradients p.grad_sample (B, *p.shape), clip each image's whole gradient to L2
    norm C = max_grad_norm, sum over the batch, add Gaussian noise N(0, (sigma C)^2), divide by
    the expected batch size. Writes p.grad for the optimizer's step."""
    per_image = [p.grad_sample.flatten(1) for p in params]                  # (B, n_p) each
    norms = torch.stack([g.norm(2, dim=-1) for g in per_image], 1).norm(2, dim=1)  # ||g_i||
    factor = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)                # min(1, C / ||g_i||)
    std = noise_multiplier * max_grad_norm                                  # noise SD: sigma C
    for p in params:
        summed = torch.einsum("i,i...", factor, p.grad_sample)             # sum_i factor_i g_i
        noise = (torch.normal(0.0, std, summed.shape, generator=generator, dtype=summed.dtype,
                              device=summed.device) if std > 0 else torch.zeros_like(summed))
        p.grad = (summed + noise).view_as(p) / batch_size
# %% end of export
