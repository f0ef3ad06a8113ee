"""One training loop and one evaluation for the whole curriculum, open in three parts.

:func:`fit` is the default composition of three pieces that lessons can also use on their own:

* :func:`make_optimizer` - AdamW with linear warm-up and cosine decay (optimizer + scheduler);
* :func:`batches` - a batch source over an in-memory :class:`~medlab.data.Split`: seeded
  shuffling, batch-wise augmentation (one ``grid_sample`` call), images kept uint8 until a batch
  needs floats; any other iterable of ``(x, y)`` or ``(x, y, w)`` batches (a PyTorch
  ``DataLoader``, an Opacus DP data loader, adversarially perturbed batches) works too;
* :func:`train_steps` - ``train_steps(model, batches, optimizer, steps)``: forward, loss,
  backward, step. Calling it again continues from the optimizer's state (FedAvg's k local steps).

>>> opt, sched = make_optimizer(model, lr=3e-3, total_steps=200)              # doctest: +SKIP
>>> src = batches(data.train, batch_size=64, seed=0)                          # doctest: +SKIP
>>> stats = train_steps(model, src, opt, 20, scheduler=sched)                 # doctest: +SKIP

Every random choice comes from a generator seeded by ``seed``: the same seed gives the same
numbers on the same CPU. :func:`predict` and :func:`embeddings` are the one batched inference
helper; they restore the model's train/eval mode even when they raise.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medlab.data import MedMNISTData, Split
from medlab.metrics import medmnist_metrics
from medlab.models import build_model
from medlab.utils import check_int, check_scalar, progress, seed_everything

__all__ = [
    "as_model_input",
    "to_input",
    "check_model",
    "BatchAugment",
    "History",
    "StepStats",
    "make_optimizer",
    "batches",
    "train_steps",
    "fit",
    "train_model",
    "eval_mode",
    "predict",
    "embeddings",
    "evaluate",
]

MULTILABEL = "multi-label, binary-class"


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) in 0..255 -> float32 in [-1, 1], the models' input scale."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(f"to_input expects a uint8 tensor (N, C, H, W), got {got}")
    return images.float().div_(127.5).sub_(1.0)


def as_model_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> [-1, 1] floats; floats are taken as already on the model's scale."""
    x = torch.as_tensor(x)
    if x.dtype == torch.uint8:
        return to_input(x)
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 (0..255) or float on [-1, 1], got {x.dtype}")
    x = x.float()
    if x.numel() and float(x.abs().max()) > MAX_INPUT:  # pixels on 0..255, not [-1, 1]
        raise ValueError(
            f"float images must be on the models' [-1, 1] scale, but these reach "
            f"{float(x.abs().max()):.4g} (0..255 pixels?): pass the uint8 images, or "
            "medlab.train.to_input(uint8_images)"
        )
    return x


#: Float model inputs beyond this magnitude are refused as not on the [-1, 1] scale (room is
#: left for augmentation, corruptions and attacks that step a little outside it).
MAX_INPUT = 4.0


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
            check_scalar(f"BatchAugment.{name}", getattr(self, name), kind=float, lo=0.0, hi=1.0)
        check_scalar("BatchAugment.rotate", self.rotate, kind=float, lo=0.0, hi=180.0,
                     fix="an angle in degrees")  # fmt: skip

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]

        def u(lo: float, hi: float) -> torch.Tensor:
            return torch.rand(n, generator=generator) * (hi - lo) + lo

        angle = u(-self.rotate, self.rotate) * math.pi / 180.0
        zoom = u(1.0 - self.scale, 1.0 + self.scale)
        flip = torch.where(torch.rand(n, generator=generator) < self.flip, -1.0, 1.0)
        tx, ty = u(-self.shift, self.shift) * 2, u(-self.shift, self.shift) * 2
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # pad with the darkest value (-1): MedMNIST backgrounds are dark
        out = (
            F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            - 1.0
        )
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(**{k: d[k] for k in ("epochs", "best_epoch", "seconds", "config") if k in d})


@dataclass
class StepStats:
    """What :func:`train_steps` did: optimisation steps taken, images seen, mean loss."""

    steps: int = 0
    images: int = 0
    loss: float = math.nan


# --------------------------------------------------------------------------------------------
# argument checks


def check_model(model: nn.Module, x: torch.Tensor | None = None) -> None:
    """One clear error where ``model`` cannot take medlab's inputs: weights that are not float32
    (``model.double()``: TypeError, call ``model.float()``), or weights on another device than
    the inputs ``x`` (CPU when not given) or on the ``meta`` device (no values)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    where = x.device if x is not None else torch.device("cpu")
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.device.type == "meta":
            raise ValueError(
                "the model's weights are on the 'meta' device (shapes only, no values): build "
                "or load it with real weights, then move the model with model.to('cpu')"
            )
        if t.device != where:
            raise ValueError(
                f"the model is on {t.device} but the images are on {where}: move the model "
                f"with model.to('{where}')"
            )
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if dtypes - {torch.float32}:
        got = ", ".join(sorted(str(d).replace("torch.", "") for d in dtypes))
        raise TypeError(
            f"the model's weights are {got} but medlab's images are float32: call "
            "model.float() first"
        )


def _check_weights(sample_weight: Any, n: int) -> torch.Tensor:
    w = torch.as_tensor(np.asarray(sample_weight, dtype=np.float32))
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight must have one weight per training image, shape ({n},), got "
            f"{tuple(w.shape)}"
        )
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(
            "sample_weight must be finite and non-negative (no NaN or inf); compute weights "
            "with medlab.fairness.group_weights or clip them"
        )
    if not bool((w > 0).any()):
        raise ValueError("sample_weight is all zero: at least one image must have a weight > 0")
    return w


# --------------------------------------------------------------------------------------------
# the three parts


def make_optimizer(
    model: nn.Module,
    *,
    total_steps: int,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    warmup: float = 0.1,
    algorithm: str = "adamw",
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over ``model``'s parameters and its learning-rate schedule: linear warm-up over the
    first ``warmup`` share of ``total_steps`` (at least one step), then cosine decay to 0.
    ``algorithm="sgd"``: SGD with momentum 0.9 instead (DP-SGD's usual optimizer: the noise
    keeps the scale of the gradient, where Adam rescales it per parameter).

    Returns ``(optimizer, scheduler)``; call ``scheduler.step()`` once per optimisation step
    (:func:`train_steps` does when given ``scheduler=``). Opacus's ``make_private`` can wrap
    the optimizer: the scheduler keeps acting on the same parameter groups.
    """
    total_steps = check_int("total_steps", total_steps, 1)
    lr = check_scalar("lr", lr, kind=float, lo=1e-8, hi=10.0, fix="e.g. lr=3e-3")
    weight_decay = check_scalar("weight_decay", weight_decay, kind=float, lo=0.0)
    warmup = check_scalar("warmup", warmup, kind=float, lo=0.0, hi=1.0)
    if algorithm == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=lr, weight_decay=weight_decay
        )
    elif algorithm == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        raise ValueError(f"algorithm must be 'adamw' or 'sgd', got {algorithm!r}")
    n_warm = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / n_warm) * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def batches(
    split: Split,
    *,
    batch_size: int = 128,
    epochs: int | None = 1,
    seed: int | None = 0,
    generator: torch.Generator | None = None,
    augment: BatchAugment | None = None,
    sample_weight: Any = None,
    shuffle: bool = True,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Mini-batches of an in-memory split: ``(x, y)`` or ``(x, y, w)`` with ``sample_weight``.

    x: float (B, C, H, W) on [-1, 1] (converted from uint8 one batch at a time), augmented by
    ``augment`` when given; y: int64 (B,) or float (B, L) for multi-label tasks; w: float (B,).
    Each epoch is a new seeded permutation; ``epochs=None`` runs forever (for step-based
    training: take as many steps as you need). The random stream is ``generator`` if given,
    else one seeded by ``seed``.
    """
    if not isinstance(split, Split):
        raise TypeError(f"batches() needs a medlab Split, got {type(split).__name__}")
    n = len(split)
    if n == 0:
        raise ValueError(f"the {split.split} split of {split.name} is empty: nothing to train on")
    batch_size = check_int("batch_size", batch_size, 1)
    if epochs is not None:
        epochs = check_int("epochs", epochs, 1)
    w = _check_weights(sample_weight, n) if sample_weight is not None else None
    gen = generator if generator is not None else torch.Generator().manual_seed(seed or 0)
    return _batch_iter(split, batch_size, epochs, gen, augment, w, shuffle)


def _batch_iter(
    split: Split,
    batch_size: int,
    epochs: int | None,
    gen: torch.Generator,
    augment: BatchAugment | None,
    w: torch.Tensor | None,
    shuffle: bool,
) -> Iterator[tuple[torch.Tensor, ...]]:
    n = len(split)
    epoch = 0
    while epochs is None or epoch < epochs:
        perm = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            x = to_input(split.images[idx])
            if augment is not None:
                x = augment(x, gen)
            yield (x, split.labels[idx]) if w is None else (x, split.labels[idx], w[idx])
        epoch += 1


def _loss(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Per-image loss (B,): cross-entropy for class indices, BCE for multi-label 0/1 floats."""
    if y.is_floating_point():
        return F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(1)
    return F.cross_entropy(logits, y, reduction="none", label_smoothing=label_smoothing)


def train_steps(
    model: nn.Module,
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    steps: int | None = None,
    *,
    scheduler: Any = None,
    label_smoothing: float = 0.0,
    loss_fn: Any = None,
) -> StepStats:
    """Train ``model`` in place for ``steps`` optimisation steps (or until ``batches`` ends).

    Args:
        batches: an iterable/iterator of ``(x, y)`` or ``(x, y, w)``: x uint8 or float images
            (B, C, H, W), y class indices (B,) or multi-label 0/1 floats (B, L), w per-image
            loss weights (B,). Pass the same iterator again to continue where it stopped.
        optimizer: any torch optimizer (e.g. from :func:`make_optimizer`, or Opacus's
            ``DPOptimizer``); its state carries over between calls.
        steps: the number of steps; None = one pass over ``batches``.
        scheduler: stepped once per optimisation step.
        loss_fn: ``(logits, y) -> per-image losses (B,)``; default cross-entropy (BCE for
            multi-label targets) with ``label_smoothing``.
    Puts ``model`` in training mode (``model.train()``; freeze a backbone by turning off its
    parameters' ``requires_grad``, not by its eval mode). Returns :class:`StepStats` (steps,
    images, mean loss per image). An empty batch (possible
    with Opacus's Poisson sampling) is still a step, with a zero loss, as Opacus expects.
    """
    if steps is not None:
        steps = check_int("steps", steps, 0)
    label_smoothing = check_scalar("label_smoothing", label_smoothing, kind=float, lo=0.0, hi=0.5)
    loss_fn = loss_fn or (lambda logits, y: _loss(logits, y, label_smoothing))
    model.train()
    stats = StepStats()
    total = 0.0
    it = iter(batches)
    while steps is None or stats.steps < steps:
        try:
            batch = next(it)
        except StopIteration:
            break
        if not isinstance(batch, tuple | list) or len(batch) not in (2, 3):
            raise TypeError(
                "each batch must be (x, y) or (x, y, w); a DataLoader over a TensorDataset of "
                "images and labels yields that"
            )
        x, y = as_model_input(batch[0]), batch[1]
        if stats.steps == 0:
            check_model(model, x)
        losses = loss_fn(model(x), y)
        if len(x) == 0:  # Poisson sampling (Opacus) can draw an empty batch: still one step,
            loss = losses.sum()  # so the optimizer adds its noise and the accountant counts it
        elif len(batch) == 3:
            wb = torch.as_tensor(batch[2], dtype=losses.dtype)
            loss = (losses * wb).sum() / wb.sum().clamp_min(1e-12)
        else:
            loss = losses.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += float(loss.detach()) * len(x)
        stats.steps += 1
        stats.images += len(x)
    stats.loss = total / stats.images if stats.images else math.nan
    return stats


def _check_val(val: Split | None, select_best: bool) -> None:
    if val is None:
        return
    if not isinstance(val, Split):
        raise TypeError(f"val must be a medlab Split or None, got {type(val).__name__}")
    if len(val) == 0:
        raise ValueError(
            "the validation split is empty: pass val=None to train without model selection"
        )
    if select_best and not val.multilabel and len(torch.unique(val.labels)) < 2:
        raise ValueError(
            f"the validation split of {val.name} holds one class only, so its AUC cannot pick "
            "the best epoch: pass a validation split with every class, or select_best=False"
        )


def fit(
    model: nn.Module,
    train: Split,
    val: Split | None = None,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    augment: BatchAugment | bool | None = True,
    seed: int = 0,
    sample_weight: Any = None,
    label_smoothing: float = 0.0,
    max_seconds: float | None = None,
    select_best: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` in place: :func:`make_optimizer` + :func:`batches` + :func:`train_steps`,
    one epoch at a time, with model selection on ``val``.

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
    if not isinstance(train, Split):
        raise TypeError(f"train must be a medlab Split, got {type(train).__name__}")
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    label_smoothing = check_scalar("label_smoothing", label_smoothing, kind=float, lo=0.0, hi=0.5)
    if max_seconds is not None:
        max_seconds = check_scalar("max_seconds", max_seconds, kind=float, lo=0.0, allow_inf=True)
    if len(train) == 0:
        raise ValueError(f"the training split of {train.name} is empty: nothing to train on")
    _check_val(val, select_best)
    if augment is True:
        augment = BatchAugment()
    elif augment is False:
        augment = None
    if augment is not None and not isinstance(augment, BatchAugment):
        raise TypeError(f"augment must be True/False/None or a BatchAugment, got {augment!r}")
    steps_per_epoch = math.ceil(len(train) / batch_size)
    opt, sched = make_optimizer(
        model, total_steps=epochs * steps_per_epoch, lr=lr, weight_decay=weight_decay
    )
    gen = seed_everything(seed)
    source = batches(
        train,
        batch_size=batch_size,
        epochs=epochs,
        generator=gen,
        augment=augment,
        sample_weight=sample_weight,
    )
    config = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "augment": asdict(augment) if augment else None,
        "seed": seed,
        "label_smoothing": label_smoothing,
        "max_seconds": max_seconds,
        "weighted": sample_weight is not None,
        "optimizer": "AdamW, warm-up + cosine",
    }
    hist = History(config=config)
    best_auc, best_state = -math.inf, None
    t0 = time.perf_counter()
    for epoch in progress(range(epochs), desc=desc):
        st = train_steps(
            model, source, opt, steps_per_epoch, scheduler=sched, label_smoothing=label_smoothing
        )
        elapsed = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "train_loss": st.loss, "seconds": elapsed}
        if val is not None:
            m = evaluate(model, val)
            row.update(val_auc=m["auc"], val_acc=m["acc"])
            if select_best and m["auc"] > best_auc:
                best_auc, hist.best_epoch = m["auc"], epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        hist.epochs.append(row)
        if not math.isfinite(st.loss):
            raise FloatingPointError(
                f"training diverged in epoch {epoch + 1} (loss {st.loss}); lower lr (now {lr})"
            )
        if max_seconds is not None and elapsed >= max_seconds:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        hist.best_epoch = len(hist.epochs)
    model.eval()
    hist.seconds = time.perf_counter() - t0
    return hist


def train_model(
    data: MedMNISTData,
    model: str | nn.Module = "smallcnn",
    *,
    seed: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    **fit_kwargs: Any,
) -> tuple[nn.Module, History]:
    """Seed, build a model for ``data`` (unless one is given) and :func:`fit` it on
    ``data.train`` with ``data.val`` for model selection. Returns (model, history)."""
    if not isinstance(data, MedMNISTData):
        raise TypeError(
            f"train_model needs a dataset from medlab.load(...), got {type(data).__name__}; "
            "for a single Split use medlab.train.fit(model, split)"
        )
    seed_everything(seed)
    if isinstance(model, str):
        model = build_model(model, data.n_channels, data.n_classes, **(model_kwargs or {}))
    hist = fit(model, data.train, data.val, seed=seed, **fit_kwargs)
    return model, hist


# --------------------------------------------------------------------------------------------
# inference: one batched helper


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluation mode (no dropout, frozen norm statistics) inside the block; afterwards every
    submodule gets back its own previous mode (a frozen backbone stays frozen), also when the
    block raises."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, was_training in modes:
            m.training = was_training


def _images(images: Split | torch.Tensor | np.ndarray) -> torch.Tensor:
    x = images.images if isinstance(images, Split) else torch.as_tensor(images)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(x.shape)}")
    return x


@torch.no_grad()
def _batched(fn: Any, model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    batch_size = check_int("batch_size", batch_size, 1)
    check_model(model, x)
    with eval_mode(model):
        out = [fn(as_model_input(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0)


def predict(
    model: nn.Module,
    images: Split | torch.Tensor | np.ndarray,
    *,
    batch_size: int = 256,
    task: str | None = None,
    logits: bool = False,
) -> np.ndarray:
    """Class probabilities, float32 (N, n_classes): softmax, or sigmoid for multi-label tasks
    (``logits=True``: the raw logits).

    ``images`` is a Split, or a tensor (N, C, H, W) of uint8 (0..255) or floats on the model's
    [-1, 1] scale (then give ``task`` for multi-label models)."""
    if isinstance(images, Split):
        task = images.task
    x = _images(images)
    out = _batched(model, model, x, batch_size)
    if len(x) == 0:
        raise ValueError("no images to predict: the split or tensor is empty")
    if not logits:
        out = torch.sigmoid(out) if task == MULTILABEL else torch.softmax(out, 1)
    return out.numpy()


def embeddings(
    model: nn.Module, images: Split | torch.Tensor | np.ndarray, *, batch_size: int = 256
) -> np.ndarray:
    """The model's penultimate features (``model.embed``), float32 (N, D)."""
    if not hasattr(model, "embed"):
        raise TypeError(f"{type(model).__name__} has no .embed(x) method (medlab's models do)")
    x = _images(images)
    if len(x) == 0:
        raise ValueError("no images to embed: the split or tensor is empty")
    return _batched(model.embed, model, x, batch_size).numpy()


def evaluate(
    model: nn.Module, split: Split, *, scores: np.ndarray | None = None
) -> dict[str, float]:
    """MedMNIST ACC and AUC of ``model`` on ``split`` (see :mod:`medlab.metrics`)."""
    if not isinstance(split, Split):
        raise TypeError(f"evaluate needs a medlab Split, got {type(split).__name__}")
    if len(split) == 0:
        raise ValueError(f"the {split.split} split of {split.name} is empty: nothing to evaluate")
    if scores is None:
        scores = predict(model, split)
        if scores.shape[1] != split.n_classes:
            raise ValueError(
                f"the model has {scores.shape[1]} outputs but {split.name} has "
                f"{split.n_classes} classes: build it with n_classes=data.n_classes"
            )
    return medmnist_metrics(split.numpy_labels(), scores, split.task, n_classes=split.n_classes)
