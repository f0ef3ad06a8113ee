"""The lesson's runs: FedAvg, FedProx, local-only and centralised training on the sites, and one
cell of the lesson's grid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from medlab.data import MedMNISTData, Split
from medlab.federated.algorithms import FedConfig, accuracy, fedavg_round, init_model
from medlab.federated.harmonise import harmonise_sites
from medlab.federated.sites import make_sites
from medlab.scenario import Scenario
from medlab.utils import check_int

__all__ = ["run_federated", "experiment"]

#: One round: ``round_fn(model, state, splits, *, r, cfg, seed, sites)`` -> the new global state.
RoundFn = Callable[..., dict]


def run_federated(
    sites: Scenario,
    method: str = "fedavg",
    *,
    config: FedConfig | None = None,
    seed: int = 0,
    eval_every: int = 1,
    round_fn: RoundFn = fedavg_round,
) -> dict[str, Any]:
    """Train on the sites of ``sites`` with ``method`` and evaluate on its test split.

    ``method``: ``"fedavg"``, ``"fedprox"`` (``config.mu``, default 0.01 if 0), ``"local"``
    (each site alone, the same rounds of steps without averaging) or ``"central"`` (all
    training images pooled, ``n_sites * local_steps`` steps per round: as many images seen in
    all as the federation). Every method follows the per-round learning rate of
    :func:`round_lr`; ``round_fn`` runs one round (:func:`fedavg_round`; notebook 05 passes
    its own). Returns a dict with ``acc`` (the
    test accuracy of the global model; for ``"local"`` the mean over the sites' models),
    ``site_acc`` (list: each site's test patients), ``curve`` (list of (round, acc)) and
    ``model`` (the global model; for ``"local"`` the list of site models).
    """
    cfg = config or FedConfig()
    if method not in ("fedavg", "fedprox", "local", "central"):
        raise ValueError(f"method must be fedavg, fedprox, local or central, got {method!r}")
    if not isinstance(sites, Scenario):
        raise TypeError(f"sites must be a Scenario (make_sites), got {type(sites).__name__}")
    seed = check_int("seed", seed, 0)
    eval_every = check_int("eval_every", eval_every, 1)
    tr, K, test = sites.train, sites.n_groups, sites.test
    site_tests = [sites.group("test", k) for k in range(K)]
    site_trains = [sites.group("train", k) for k in range(K)]
    mu = cfg.mu if method == "fedprox" and cfg.mu > 0 else (0.01 if method == "fedprox" else 0.0)
    steps = cfg.local_steps * K if method == "central" else cfg.local_steps
    run = _Run(replace(cfg, local_steps=steps, mu=mu), seed, tr.n_classes, tr.images.shape[1])
    if method == "local":
        models = [
            run.train([sc_train], round_fn, None, sites=[k])
            for k, sc_train in enumerate(site_trains)
        ]
        site_acc = [accuracy(m, s) for m, s in zip(models, site_tests, strict=True)]
        acc = float(np.mean([accuracy(m, test) for m in models]))
        return {"acc": acc, "site_acc": site_acc, "curve": [(cfg.rounds, acc)], "model": models}
    if method == "central":  # one site holding every image, the same images seen in total
        site_trains = [tr]
    curve: list[tuple[int, float]] = []
    model = run.train(site_trains, round_fn, (test, curve, eval_every))
    return {
        "acc": curve[-1][1],
        "site_acc": [accuracy(model, s) for s in site_tests],
        "curve": curve,
        "model": model,
    }


@dataclass(frozen=True)
class _Run:
    """One run's settings (``cfg``: its steps per round and proximal weight) and model shape."""

    cfg: FedConfig
    seed: int
    n_classes: int
    in_ch: int

    def train(
        self,
        splits: list[Split],
        round_fn: RoundFn,
        evaluation: tuple[Split, list[tuple[int, float]], int] | None,
        sites: list[int] | None = None,
    ) -> torch.nn.Module:
        """``cfg.rounds`` rounds of ``round_fn`` on ``splits`` (a single split: plain training
        with the same schedule; ``sites``: the sites' ids); ``evaluation``: (test split, curve
        list to append (round, acc) to, every how many rounds) or None."""
        cfg = self.cfg
        model = init_model(self.n_classes, self.in_ch, width=cfg.width, seed=self.seed)
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        for r in range(1, cfg.rounds + 1):
            state = round_fn(model, state, splits, r=r, cfg=cfg, seed=self.seed, sites=sites)
            if evaluation is not None:
                test, curve, every = evaluation
                if r % every == 0 or r == cfg.rounds:
                    model.load_state_dict(state)
                    curve.append((r, accuracy(model, test)))
        model.load_state_dict(state)
        return model


def experiment(
    data: MedMNISTData,
    *,
    partition: str,
    method: str,
    seed: int,
    config: FedConfig,
    n_sites: int = 4,
    alpha: float = 0.5,
    harmonised: bool = False,
    eval_every: int = 1,
    round_fn: RoundFn = fedavg_round,
) -> dict[str, Any]:
    """One cell of the lesson's grid (for :func:`medlab.experiments.run_grid`): the sites of
    ``partition`` for ``seed``, trained with ``method``. Returns test accuracy ``acc``, the
    mean accuracy over the evaluated rounds ``auc_rounds`` (convergence), the smallest site's
    accuracy on its own test patients ``smallest_site_acc`` (measured on ``smallest_site_n``
    patients), ``site_acc`` (list), ``curve``
    (list: the global test accuracy after every ``eval_every``-th round and the last) and
    ``rounds`` (list: those rounds, 1-based). ``round_fn``: as in :func:`run_federated`."""
    sites = make_sites(data, partition, n_sites=n_sites, alpha=alpha, seed=seed)
    if harmonised:
        sites = harmonise_sites(sites)
    out = run_federated(
        sites, method, config=config, seed=seed, eval_every=eval_every, round_fn=round_fn
    )
    sizes = np.bincount(sites.groups["train"], minlength=sites.n_groups)
    accs = [a for _, a in out["curve"]]
    return {
        "acc": out["acc"],
        "auc_rounds": float(np.mean(accs)),
        "smallest_site_acc": out["site_acc"][int(np.argmin(sizes))],
        "smallest_site_n": int(
            np.bincount(sites.groups["test"], minlength=sites.n_groups)[int(np.argmin(sizes))]
        ),
        "site_acc": out["site_acc"],
        "curve": accs,
        "rounds": [r for r, _ in out["curve"]],
    }
