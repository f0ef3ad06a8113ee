"""The algorithms: a client's local steps, FedAvg's weighted average and round, FedProx's
proximal term. The taught ones are written in notebook 05 (the regions at the end)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medlab.data import Split
from medlab.models import build_model
from medlab.train import batches, evaluate, make_optimizer, train_steps
from medlab.utils import check_int, check_scalar, on_device, seed_everything

__all__ = [
    "FedConfig",
    "init_model",
    "client_update",
    "check_states",
    "site_seed",
    "round_lr",
    "accuracy",
    "prox_loss",
    "fedavg",
    "site_round",
    "fedavg_round",
]


@dataclass(frozen=True)
class FedConfig:
    """Settings of a federated run (also of its local-only and centralised baselines).

    rounds: communication rounds; local_steps: optimisation steps per client per round (the
    centralised model takes ``rounds * local_steps`` steps); mu: FedProx's proximal weight
    (0 = FedAvg); width: SmallCNN width."""

    rounds: int = 10
    local_steps: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    mu: float = 0.0
    width: int = 8

    def __post_init__(self) -> None:
        check_int("rounds", self.rounds, 1)
        check_int("local_steps", self.local_steps, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("width", self.width, 1)
        check_scalar("FedConfig.lr", self.lr, kind=float, lo=0, lo_inclusive=False)
        check_scalar("FedConfig.mu", self.mu, kind=float, lo=0, fix="0 = FedAvg")


def init_model(n_classes: int, in_channels: int = 1, *, width: int = 8, seed: int = 0) -> Any:
    """The seeded initial global model (a SmallCNN): every site starts from the same weights."""
    seed_everything(seed)
    return build_model("smallcnn", in_channels, n_classes, width=width)


def client_update(
    model: torch.nn.Module,
    split: Split,
    *,
    steps: int,
    seed: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    mu: float = 0.0,
) -> tuple[dict[str, torch.Tensor], int, float]:
    """One client's round: ``steps`` local steps of AdamW on its own ``split`` (FedProx when
    ``mu > 0``), starting from ``model``'s weights (changed in place).

    Returns (state dict, number of local training images, mean training loss). Seeded by
    ``seed``; a fresh optimizer each round, as a stateless client (Flower's) has. The steps run
    on :func:`medlab.utils.device`; the state dict is on the model's own device (the CPU)."""
    if len(split) == 0:
        raise ValueError(f"site split {split.split} of {split.name} is empty: nothing to train")
    torch.manual_seed(check_int("seed", seed, 0))  # dropout: the same masks in any process
    with on_device(model) as dev:  # medlab.utils.device(); the model comes back afterwards
        opt, _ = make_optimizer(model, total_steps=steps, lr=lr)
        src = batches(split, batch_size=batch_size, epochs=None, seed=seed, device=dev)
        loss_fn = None
        if mu > 0:
            loss_fn = prox_loss(model, [p.detach().clone() for p in model.parameters()], mu)
        stats = train_steps(model, src, opt, steps, loss_fn=loss_fn)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}  # where it was
    return state, len(split), float(stats.loss)


def check_states(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> Any:
    """FedAvg's inputs checked: one weight per state dict, every state dict of the same
    architecture. Returns the weights as a float64 array."""
    if len(states) == 0 or len(states) != len(weights):
        raise ValueError("fedavg needs one weight per state dict and at least one state dict")
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
    if not all(isinstance(s, Mapping) for s in states):
        raise TypeError("fedavg takes state dicts (model.state_dict()), one per client")
    keys = list(states[0])
    for k, s in enumerate(states[1:], 1):
        if list(s) != keys:
            diff = sorted(set(s) ^ set(keys))[:3]
            raise ValueError(
                f"state dict {k} does not have the same keys as state dict 0 (differ: {diff}): "
                "every client must train the same architecture (init_model with the same width)"
            )
        for name in keys:
            a, b = states[0][name], s[name]
            if not isinstance(b, torch.Tensor) or b.shape != a.shape:
                got = tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
                raise ValueError(
                    f"state dict {k}: {name!r} has shape {got} but {tuple(a.shape)} in state "
                    "dict 0: every client must train the same architecture (same width and "
                    "classes)"
                )
    return w


def site_seed(seed: int, round: int, site: int) -> int:
    """The seed of one site's local steps in one round (the same in any process)."""
    return int(np.random.SeedSequence([seed, round, site]).generate_state(1)[0])


def accuracy(model: torch.nn.Module, split: Split) -> float:
    """Test accuracy of ``model`` on ``split`` (MedMNIST ACC)."""
    return float(evaluate(model, split)["acc"])


def round_lr(cfg: FedConfig, r: int) -> float:
    """The learning rate of round ``r`` (1-based): cosine decay from ``lr`` to ``lr / 10``."""
    r = check_scalar("r", r, lo=1, hi=cfg.rounds, fix="rounds are numbered 1..cfg.rounds")
    t = (r - 1) / max(1, cfg.rounds - 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t)))


# fmt: off
# %% exported from notebooks/05_federated.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def fedavg(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict:
    """FedAvg's aggregation: ``sum_k n_k * w_k / sum_k n_k`` for every tensor of the state dicts
    (``weights`` = the clients' numbers of training images)."""
    w = check_states(states, weights)  # one weight per state dict, the same architecture
    share = w / w.sum()
    return {
        k: sum(float(a) * s[k].double() for a, s in zip(share, states, strict=True)).to(
            states[0][k].dtype
        )
        for k in states[0]
    }
# %% end of export


# %% exported from notebooks/05_federated.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def site_round(
    model: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    split: Split,
    *,
    r: int,
    cfg: FedConfig,
    seed: int,
    site: int,
) -> tuple[dict[str, torch.Tensor], int, float]:
    """Site ``site``'s part of round ``r``: start from the global ``state`` and take
    ``cfg.local_steps`` steps on its own images (FedProx when ``cfg.mu > 0``), at the round's
    learning rate. Returns (its weights, its number of training images, its mean loss)."""
    model.load_state_dict(state)
    return client_update(
        model,
        split,
        steps=cfg.local_steps,
        seed=site_seed(seed, r, site),
        batch_size=cfg.batch_size,
        lr=round_lr(cfg, r),
        mu=cfg.mu,
    )
# %% end of export


# %% exported from notebooks/05_federated.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def fedavg_round(
    model: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    splits: Sequence[Split],
    *,
    r: int,
    cfg: FedConfig,
    seed: int,
    sites: Sequence[int] | None = None,
) -> dict:
    """Round ``r`` of FedAvg (McMahan et al. 2017): every site trains from the global ``state``
    on its own images (in parallel in a real federation), then the server averages their
    weights, weighted by their numbers of images. ``sites``: their ids (default 0, 1, ...)."""
    updates, sizes = [], []
    for k, split in zip(range(len(splits)) if sites is None else sites, splits, strict=True):
        w_k, n_k, _ = site_round(model, state, split, r=r, cfg=cfg, seed=seed, site=k)
        updates.append(w_k)
        sizes.append(n_k)
    return fedavg(updates, sizes)
# %% end of export


# %% exported from notebooks/05_federated.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def prox_loss(model: torch.nn.Module, global_params: list[torch.Tensor], mu: float) -> Any:
    """FedProx's loss (Li et al. 2020): cross-entropy per image plus ``mu / 2 * ||w -
    w_global||^2`` (the same for every image, so the batch mean gains it once). A ``loss_fn``
    for ``train_steps``."""
    mu = check_scalar(
        "mu", mu, kind=float, lo=0, fix="FedProx's proximal weight is >= 0 (0 = FedAvg), e.g. 0.01"
    )
    params = [p for p in model.parameters() if p.requires_grad]
    if len(params) != len(global_params):
        raise ValueError("global_params must hold one tensor per trainable model parameter")

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, y, reduction="none")
        prox = sum(((p - g) ** 2).sum() for p, g in zip(params, global_params, strict=True))
        return ce + 0.5 * mu * prox

    return loss_fn
# %% end of export
