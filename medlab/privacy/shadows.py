"""The lesson's models: a target trained on the population's members (non-private and
overfitted, or DP-SGD), and the attacker's shadow models trained the same way on other random
halves (non-private, or DP-SGD at a DP target's settings), all through the model cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from medlab.data import Split
from medlab.experiments import cached_model, run_grid
from medlab.models import SmallCNN
from medlab.privacy.accounting import noise_for
from medlab.privacy.dpsgd import train_dp
from medlab.privacy.membership import true_class_logit
from medlab.train import fit
from medlab.utils import check_int

if TYPE_CHECKING:
    from medlab.privacy.lesson import Population

__all__ = ["shadow_splits", "train_target", "train_shadows"]


def shadow_splits(n: int, n_shadows: int, *, seed: int = 0) -> np.ndarray:
    """Random halves for shadow models: bool (K, n), True = shadow k trains on image i. Each
    image is IN exactly half of the shadows when K is even (balanced, as in Carlini et al.)."""
    n = check_int("n", n, 2)
    k = check_int("n_shadows", n_shadows, 2)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    order = np.argsort(rng.random((k, n)), axis=0)  # per image a random ranking of shadows
    return order < k // 2


def _target_settings(
    cfg: Any, private: bool, *, epsilon: float | None, noise_multiplier: float | None,
    max_grad_norm: float | None, dp_epochs: int | None, grad_sample_mode: str,
) -> dict[str, Any]:  # fmt: skip
    """How one target trains (the model cache's settings): ``cfg``'s recipe, DP or not."""
    settings: dict[str, Any] = {"width": cfg["width"]}
    if private:
        settings.update(
            epsilon=epsilon,
            noise_multiplier=noise_multiplier,
            max_grad_norm=cfg["max_grad_norm"] if max_grad_norm is None else max_grad_norm,
            epochs=cfg["dp_epochs"] if dp_epochs is None else dp_epochs,
            batch_size=cfg["dp_batch_size"],
            lr=cfg["dp_lr"],
            mode=grad_sample_mode,
        )
    else:
        settings.update(epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"])
    return settings


def _trainer(
    train: Split, settings: dict[str, Any], *, private: bool, seed: int,
    epsilon: float | None, noise_multiplier: float | None, step: Callable[..., None] | None,
) -> Callable[[nn.Module], dict[str, Any]]:  # fmt: skip
    """``run(model)`` for :func:`~medlab.experiments.cached_model`: trains in place, returns
    its JSON-able info."""

    def run(model: nn.Module) -> dict[str, Any]:
        if not private:
            hist = fit(
                model, train, None, epochs=settings["epochs"], batch_size=settings["batch_size"],
                lr=settings["lr"], augment=False, seed=seed, desc="non-private",
            )  # fmt: skip
            return {"seconds": hist.seconds, "train_loss": hist.epochs[-1]["train_loss"]}
        res = train_dp(
            model,
            train,
            epochs=settings["epochs"],
            batch_size=min(settings["batch_size"], len(train)),
            lr=settings["lr"],
            max_grad_norm=settings["max_grad_norm"],
            target_epsilon=epsilon,
            noise_multiplier=noise_multiplier,
            seed=seed,
            grad_sample_mode=settings["mode"],
            step=step,
        )
        return res.as_dict()

    return run


def train_target(
    pop: Population,
    cfg: Any,
    members: np.ndarray,
    *,
    seed: int,
    epsilon: float | None = None,
    noise_multiplier: float | None = None,
    max_grad_norm: float | None = None,
    dp_epochs: int | None = None,
    grad_sample_mode: str = "hooks",
    cache: Any = None,
    step: Callable[..., None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """A SmallCNN trained on ``pop.split[members]`` through the model cache: non-private
    (:func:`medlab.train.fit`, no augmentation or dropout, ``cfg["epochs"]``: it overfits) when
    ``epsilon`` and ``noise_multiplier`` are None, else DP-SGD (:func:`train_dp`, with ``step``
    as DP-SGD's step). Returns ``(model, info)``; for DP, ``info`` holds the
    :class:`DPResult` fields."""
    train = pop.split.subset(np.flatnonzero(members))
    private = epsilon is not None or noise_multiplier is not None
    c, k = int(train.images.shape[1]), len(train.label_names)
    settings = _target_settings(
        cfg, private, epsilon=epsilon, noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm, dp_epochs=dp_epochs, grad_sample_mode=grad_sample_mode,
    )  # fmt: skip
    run = _trainer(train, settings, private=private, seed=seed, epsilon=epsilon,
                   noise_multiplier=noise_multiplier, step=step)  # fmt: skip
    return cached_model(
        "privacy-dp" if private else "privacy-nondp",
        lambda: SmallCNN(c, k, width=cfg["width"], dropout=0.0),
        run,
        data=pop.scenario,
        train_split=train,
        seed=seed,
        settings=settings,
        cache=cache,
    )


def train_shadows(
    pop: Population,
    cfg: Any,
    *,
    seed: int = 0,
    cache: Any = None,
    epsilon: float | None = None,
    n_shadows: int | None = None,
    step: Callable[..., None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The attacker's shadow models, trained the way the target was on random halves of the
    population (:func:`shadow_splits`), through :func:`medlab.run_grid` and the model cache:
    non-private (``cfg["n_shadows"]``) when ``epsilon`` is None, else DP-SGD with the DP
    target's settings at ``epsilon`` (``n_shadows``, default ``cfg["n_dp_shadows"]``): its
    clipping norm, batch size, epochs, learning rate and the noise multiplier
    :func:`~medlab.privacy.accounting.noise_for` finds for a target of ``len(pop) // 2`` images.
    Returns ``(phi, inside)``: float (K, N) :func:`true_class_logit` of every population image
    (and :attr:`Population.extra` non-member, never trained on) under each shadow, bool (K, N)."""
    k = n_shadows or cfg["n_shadows" if epsilon is None else "n_dp_shadows"]
    inside = shadow_splits(len(pop), k, seed=20_000 + seed)
    sigma = None
    if epsilon is not None:
        sigma, _ = noise_for(epsilon, n_train=len(pop) // 2, batch_size=cfg["dp_batch_size"],
                             epochs=cfg["dp_epochs"])  # fmt: skip
    images = pop.attack_split()

    def one(k: int, seed: int) -> dict[str, Any]:
        model, _ = train_target(pop, cfg, inside[k], seed=30_000 + 100 * seed + k, cache=cache,
                                noise_multiplier=sigma, step=step)  # fmt: skip
        return {"phi": true_class_logit(model, images)}

    desc = "shadow models" if epsilon is None else f"DP shadow models (epsilon {epsilon:g})"
    df = run_grid(one, {"k": list(range(k))}, [seed], desc=desc)
    n_extra = len(images) - len(pop)
    return np.stack(list(df["phi"])), np.pad(inside, ((0, 0), (0, n_extra)))
