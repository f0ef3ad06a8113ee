"""One training loop and one evaluation for the whole curriculum.

Batches are cut from in-memory tensors (no PIL, no per-sample Python), augmentation acts on the
whole batch at once (one ``affine_grid``/``grid_sample`` call), and every random choice comes
from a generator seeded by ``seed``: the same seed gives the same numbers on the same CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medlab.data import MedMNISTData, Split
from medlab.metrics import medmnist_metrics
from medlab.models import build_model
from medlab.utils import progress, seed_everything

__all__ = ["to_input", "BatchAugment", "History", "fit", "train", "predict", "evaluate"]


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) in 0..255 -> float32 in [-1, 1], the models' input scale."""
    if images.dtype != torch.uint8:
        raise TypeError(f"to_input expects uint8 images, got {images.dtype}")
    return images.float().div_(127.5).sub_(1.0)


@dataclass
class BatchAugment:
    """Random augmentation of a whole float batch (N, C, H, W) in one call.

    flip: probability of a horizontal flip; rotate: max rotation in degrees; shift: max
    translation as a fraction of the image side; scale: max relative zoom (0.1 = 0.9..1.1);
    brightness/contrast: max additive/multiplicative jitter on the [-1, 1] scale.
    """

    flip: float = 0.5
    rotate: float = 10.0
    shift: float = 0.08
    scale: float = 0.08
    brightness: float = 0.1
    contrast: float = 0.1

    def __post_init__(self) -> None:
        for name in ("flip", "shift", "scale", "brightness", "contrast"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"BatchAugment.{name} must be in [0, 1], got {v}")
        if not 0.0 <= self.rotate <= 180.0:
            raise ValueError(f"BatchAugment.rotate must be in [0, 180] degrees, got {self.rotate}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]

        def u(lo: float, hi: float) -> torch.Tensor:
            return torch.rand(n, generator=generator) * (hi - lo) + lo

        angle = u(-self.rotate, self.rotate) * math.pi / 180.0
        zoom = u(1.0 - self.scale, 1.0 + self.scale)
        flip = torch.where(torch.rand(n, generator=generator) < self.flip, -1.0, 1.0)
        tx, ty = u(-self.shift, self.shift) * 2, u(-self.shift, self.shift) * 2
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1),
                             torch.stack([sin * flip, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # pad with the darkest value (-1): MedMNIST backgrounds are dark
        out = F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False) - 1.0
        c = u(1.0 - self.contrast, 1.0 + self.contrast).view(n, 1, 1, 1)
        b = u(-self.brightness, self.brightness).view(n, 1, 1, 1)
        return (out * c + b).clamp(-1.0, 1.0)


@dataclass
class History:
    """What :func:`fit` did: one row per epoch plus the totals."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> Any:
        """The epoch rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.epochs)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _loss_fn(task: str, label_smoothing: float):
    if task == "multi-label, binary-class":
        return lambda logits, y: F.binary_cross_entropy_with_logits(logits, y, reduction="none"
                                                                    ).mean(1)
    return lambda logits, y: F.cross_entropy(logits, y, reduction="none",
                                             label_smoothing=label_smoothing)


def _check(name: str, value: float, lo: float, hi: float | None = None) -> None:
    if not (value >= lo and (hi is None or value <= hi)):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {rng}, got {value!r}")


def fit(model: nn.Module, train: Split, val: Split | None = None, *, epochs: int = 20,
        batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 1e-4,
        augment: BatchAugment | bool | None = True, seed: int = 0,
        sample_weight: torch.Tensor | None = None, label_smoothing: float = 0.0,
        max_seconds: float | None = None, select_best: bool = True,
        desc: str = "training") -> History:
    """Train ``model`` in place with AdamW, linear warm-up (10 % of steps) and cosine decay.

    Args:
        train, val: :class:`~medlab.data.Split`; ``val`` picks the best epoch by val AUC.
        epochs: passes over ``train``; batch_size: images per step.
        augment: True for the default :class:`BatchAugment`, False/None for none, or your own.
        seed: seeds shuffling, augmentation and dropout.
        sample_weight: optional float (N,) per-image loss weights (e.g. group reweighting).
        max_seconds: stop after the epoch in which this much training time has passed.
        select_best: restore the weights of the epoch with the best val AUC.
    Returns a :class:`History` (per-epoch train loss, val ACC/AUC, elapsed seconds).
    """
    _check("epochs", epochs, 1)
    _check("batch_size", batch_size, 1)
    _check("lr", lr, 1e-8, 10.0)
    _check("weight_decay", weight_decay, 0.0)
    _check("label_smoothing", label_smoothing, 0.0, 0.5)
    if len(train) == 0:
        raise ValueError("the training split is empty")
    if augment is True:
        augment = BatchAugment()
    elif augment is False:
        augment = None
    if sample_weight is not None:
        sample_weight = torch.as_tensor(sample_weight, dtype=torch.float32)
        if sample_weight.shape != (len(train),) or (sample_weight < 0).any():
            raise ValueError(f"sample_weight must be non-negative with shape ({len(train)},), "
                             f"got {tuple(sample_weight.shape)}")
    gen = seed_everything(seed)
    x_all, y_all = to_input(train.images), train.labels
    n = len(train)
    steps_per_epoch = math.ceil(n / batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    total_steps = epochs * steps_per_epoch
    warmup = max(1, total_steps // 10)

    def lr_factor(step: int) -> float:  # linear warm-up, then cosine decay to 0
        return min(1.0, (step + 1) / warmup) * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    loss_fn = _loss_fn(train.task, label_smoothing)
    config = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
              "augment": asdict(augment) if augment else None, "seed": seed,
              "label_smoothing": label_smoothing, "max_seconds": max_seconds,
              "weighted": sample_weight is not None, "optimizer": "AdamW, warm-up + cosine"}
    hist = History(config=config)
    best_auc, best_state = -math.inf, None
    t0 = time.perf_counter()
    for epoch in progress(range(epochs), desc=desc):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            xb, yb = x_all[idx], y_all[idx]
            if augment is not None:
                xb = augment(xb, gen)
            losses = loss_fn(model(xb), yb)
            if sample_weight is not None:
                w = sample_weight[idx]
                loss = (losses * w).sum() / w.sum().clamp_min(1e-12)
            else:
                loss = losses.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        elapsed = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": total / count, "seconds": elapsed}
        if val is not None and len(val):
            m = evaluate(model, val)
            row.update(val_auc=m["auc"], val_acc=m["acc"])
            if select_best and m["auc"] > best_auc:
                best_auc, hist.best_epoch = m["auc"], epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        hist.epochs.append(row)
        if max_seconds is not None and elapsed >= max_seconds:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        hist.best_epoch = len(hist.epochs)
    hist.seconds = time.perf_counter() - t0
    return hist


def train(data: MedMNISTData, model: str | nn.Module = "smallcnn", *, seed: int = 0,
          model_kwargs: dict[str, Any] | None = None, **fit_kwargs: Any
          ) -> tuple[nn.Module, History]:
    """Seed, build a model for ``data`` (unless one is given) and :func:`fit` it on
    ``data.train`` with ``data.val`` for model selection. Returns (model, history)."""
    seed_everything(seed)
    if isinstance(model, str):
        model = build_model(model, data.n_channels, data.n_classes, **(model_kwargs or {}))
    hist = fit(model, data.train, data.val, seed=seed, **fit_kwargs)
    return model, hist


@torch.no_grad()
def predict(model: nn.Module, images: Split | torch.Tensor, *, batch_size: int = 1024,
            task: str | None = None) -> np.ndarray:
    """Class probabilities, shape (N, n_classes): softmax, or sigmoid for multi-label tasks.

    ``images`` is a Split or a uint8 tensor (N, C, H, W) (then give ``task``)."""
    if isinstance(images, Split):
        task, x = images.task, images.images
    else:
        x = images
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        logits = model(to_input(x[i:i + batch_size]))
        out.append(torch.sigmoid(logits) if task == "multi-label, binary-class"
                   else torch.softmax(logits, 1))
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def evaluate(model: nn.Module, split: Split, *, scores: np.ndarray | None = None
             ) -> dict[str, float]:
    """MedMNIST ACC and AUC of ``model`` on ``split`` (see :mod:`medlab.metrics`)."""
    if scores is None:
        scores = predict(model, split)
    return medmnist_metrics(split.numpy_labels(), scores, split.task)
