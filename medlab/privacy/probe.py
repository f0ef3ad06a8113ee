"""DP that learns: DP-SGD on a linear probe over the features of a frozen encoder pretrained on
another dataset treated as public (Tramèr & Boneh 2021: DP on good features; De et al. 2022:
large batches). Only the probe sees the private images' labels, and only the probe is noised.

>>> enc = public_encoder(data, quick=True, seed=0)                # doctest: +SKIP
>>> x, y = enc.features(sc.train)                                # doctest: +SKIP
>>> probe, info = train_probe(x, y, cfg, epsilon=8.0, seed=0)     # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from medlab.data import MedMNISTData, Split
from medlab.privacy.accounting import noise_for
from medlab.privacy.dpsgd import train_dp
from medlab.privacy.lesson import setting_name
from medlab.scarcity import Pretrained, Schedule, choose_source, fresh_model, pretrain_supervised
from medlab.train import embeddings, evaluate, make_optimizer, train_steps
from medlab.utils import on_device, seed_everything

__all__ = ["PUBLIC_FOR", "PublicEncoder", "public_encoder", "train_probe", "probe_point"]

#: The dataset treated as public for each private one (the other shared file; any dataset of
#: other patients would do): the X-rays for the ultrasound set, the ultrasound set otherwise.
PUBLIC_FOR = {"breastmnist": "pneumoniamnist_balanced_subset"}


@dataclass
class PublicEncoder:
    """A frozen encoder pretrained on a public dataset, and how it turns images into a probe's
    inputs: features standardised with the mean and SD (float (D,)) of the public training
    images' features, then scaled to unit L2 norm. Neither step reads a private image, so
    neither costs privacy."""

    model: nn.Module
    public: MedMNISTData
    note: str
    mean: torch.Tensor
    sd: torch.Tensor
    pretrained: Pretrained

    def features(self, split: Split) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 (N, D) probe inputs of ``split``'s images, and its labels int64 (N,)."""
        f = (torch.as_tensor(embeddings(self.model, split)) - self.mean) / self.sd
        return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12), split.labels


def public_encoder(
    data: MedMNISTData, *, quick: bool, seed: int, data_dir: str | os.PathLike[str] | None = None
) -> PublicEncoder | str:
    """A SmallCNN pretrained (supervised, :func:`medlab.scarcity.pretrain_supervised`, through
    the model cache) on the public dataset for ``data`` (:data:`PUBLIC_FOR`, else breastmnist;
    the largest other file when it is missing), with notebook 02's schedule (quick: width 8, 60
    steps; full: width 16, 300 steps), so 02's cached encoder is reused. Returns the
    :class:`PublicEncoder`, or a sentence saying why there is none."""
    wanted = PUBLIC_FOR.get(data.name, "breastmnist")
    source, note = choose_source(wanted, data, data_dir=data_dir, download=False)
    if source is None:
        return note
    if quick:
        sched, n_max = Schedule(epochs=1, min_steps=60, batch_size=64, lr=3e-3, width=8), 3000
    else:
        sched, n_max = Schedule(epochs=5, min_steps=300, batch_size=64, lr=3e-3, width=16), 10000
    pre = pretrain_supervised(source, schedule=sched, seed=seed, max_images=n_max)
    model = fresh_model(data, width=sched.width, pretrained=pre).eval()
    f = torch.as_tensor(embeddings(model, source.train))
    return PublicEncoder(model, source, note, f.mean(0), f.std(0).clamp_min(1e-6), pre)


def _fit_plain(probe: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: Any, seed: int) -> dict:
    """The same probe, optimizer and epochs without clipping or noise (the reference), on the
    same device as :func:`~medlab.privacy.dpsgd.train_dp` (:func:`medlab.utils.device`)."""
    gen = seed_everything(seed)
    loader = DataLoader(TensorDataset(x, y), batch_size=cfg["probe_batch_size"], shuffle=True,
                        generator=gen)  # fmt: skip
    with on_device(probe):  # the batches follow the probe (train_steps)
        opt, sched = make_optimizer(probe, total_steps=cfg["probe_epochs"] * len(loader),
                                    lr=cfg["probe_lr"], weight_decay=0.0, algorithm="sgd")  # fmt: skip
        for _ in range(cfg["probe_epochs"]):
            loss = train_steps(probe, loader, opt, None, scheduler=sched).loss
    return {"loss": loss}


def train_probe(
    x: torch.Tensor, y: torch.Tensor, cfg: Any, *, epsilon: float | None, seed: int
) -> tuple[nn.Linear, dict[str, Any]]:
    """A linear probe (``nn.Linear``) on features ``x`` (N, D) and labels ``y`` (N,): DP-SGD at
    ``epsilon`` (:func:`~medlab.privacy.dpsgd.train_dp` with the noise multiplier
    :func:`~medlab.privacy.accounting.noise_for` finds, searched once per setting; epsilon read
    back from the accountant at the default delta), or without DP when None; ``cfg``'s ``probe_*`` batch size, epochs,
    learning rate and clipping norm. Returns ``(probe in eval mode, info)``."""
    torch.manual_seed(seed)
    probe = nn.Linear(x.shape[1], int(y.max()) + 1)  # the head: logits (N, K)
    if epsilon is None:
        info = _fit_plain(probe, x, y, cfg, seed)
    else:
        bs, epochs = min(cfg["probe_batch_size"], len(y)), cfg["probe_epochs"]
        sigma, acc = noise_for(epsilon, n_train=len(y), batch_size=bs, epochs=epochs)
        info = train_dp(
            probe, (x, y), epochs=epochs, batch_size=bs, lr=cfg["probe_lr"],
            max_grad_norm=cfg["probe_clip"], noise_multiplier=sigma, seed=seed, accountant=acc,
        ).as_dict()  # fmt: skip
    return probe.eval(), info


def probe_point(
    setting: str, seed: int, *, train: tuple[torch.Tensor, torch.Tensor], test: Split,
    test_x: torch.Tensor, cfg: Any,
) -> dict[str, Any]:  # fmt: skip
    """One probe (``setting`` "nondp" or "eps<E>" for E in ``cfg["epsilons"]``) trained on
    ``train`` = (features, labels) and scored on ``test`` (its features ``test_x``): test AUC
    and accuracy (MedMNIST's metrics), and for DP the accountant's epsilon. One grid row."""
    eps = {setting_name(e): e for e in cfg["epsilons"]}
    if setting != "nondp" and setting not in eps:
        raise ValueError(f"setting must be 'nondp' or one of {sorted(eps)}, got {setting!r}")
    probe, info = train_probe(*train, cfg, epsilon=eps.get(setting), seed=seed)
    with torch.no_grad():
        p = torch.softmax(probe(test_x), 1).cpu().numpy()
    m = evaluate(probe, test, scores=p)
    return {"test_auc": m["auc"], "test_acc": m["acc"], "n_train": len(train[1]),
            "epsilon": float(info.get("epsilon", np.nan)),
            "noise_multiplier": float(info.get("noise_multiplier", 0.0))}  # fmt: skip
