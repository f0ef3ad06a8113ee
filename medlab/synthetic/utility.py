"""Utility and misuse: classifiers trained on real or synthetic images (TSTR / TRTR) and a
real-versus-synthetic detector."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medlab.data import Split
from medlab.experiments import cached_model
from medlab.models import SmallCNN
from medlab.train import fit, predict
from medlab.utils import check_int

__all__ = ["train_classifier", "detector_auc"]


def train_classifier(
    train: Split,
    *,
    data: Any,
    seed: int = 0,
    width: int = 16,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 3e-3,
    augment: bool = True,
    kind: str = "smallcnn-synthetic",
    cache: Any = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """A :class:`~medlab.models.SmallCNN` trained with :func:`medlab.train.fit` on ``train``
    (real or synthetic) without validation-based selection (the last epoch is kept, so no real
    image leaks into a train-on-synthetic model), through the model cache. Returns
    (model in eval mode, history dict)."""
    if not isinstance(train, Split):
        raise TypeError(f"train must be a medlab Split, got {type(train).__name__}")
    c = int(train.images.shape[1])
    cfg = dict(epochs=epochs, batch_size=batch_size, lr=lr, augment=augment)

    def run(model: nn.Module) -> dict[str, Any]:
        hist = fit(model, train, None, seed=seed, select_best=False, desc=kind, **cfg)
        return hist.as_dict()

    return cached_model(
        kind,
        lambda: SmallCNN(c, train.n_classes, width=width),
        run,
        data=data,
        train_split=train,
        seed=seed,
        settings={**cfg, "width": width},
        cache=cache,
    )


def detector_auc(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    data: Any,
    seed: int = 0,
    **classifier_kwargs: Any,
) -> float:
    """AUC of a real-versus-synthetic detector: a SmallCNN (:func:`train_classifier`) trained
    on one half of ``real`` (label 0) and ``fake`` (label 1) uint8 images (N, C, H, W), tested
    on the other half (equal numbers of each, seeded split). 0.5 = indistinguishable."""
    from sklearn.metrics import roc_auc_score

    n = min(len(real), len(fake))
    if n < 8:
        raise ValueError(
            f"need at least 8 real and 8 synthetic images, got {len(real)} and {len(fake)}"
        )
    g = torch.Generator().manual_seed(check_int("seed", seed, 0))
    real = real[torch.randperm(len(real), generator=g)[:n]]
    fake = fake[torch.randperm(len(fake), generator=g)[:n]]
    h = n // 2
    names = {0: "real", 1: "synthetic"}

    def split(a: torch.Tensor, b: torch.Tensor, name: str) -> Split:
        y = torch.cat([torch.zeros(len(a)), torch.ones(len(b))]).long()
        return Split("real-vs-synthetic", name, torch.cat([a, b]), y, "binary-class", names)

    tr, te = split(real[:h], fake[:h], "train"), split(real[h:], fake[h:], "test")
    classifier_kwargs.setdefault("kind", "smallcnn-detector")
    model, _ = train_classifier(tr, data=data, seed=seed, **classifier_kwargs)
    return float(roc_auc_score(te.labels.numpy(), predict(model, te)[:, 1]))
