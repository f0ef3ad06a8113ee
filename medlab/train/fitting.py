"""Training a model, the default way: :func:`fit` composes :func:`~medlab.train.make_optimizer`,
:func:`~medlab.train.batches` and :func:`~medlab.train.train_steps` one epoch at a time, with
model selection on a validation split, and returns a :class:`History`; :func:`train_model`
builds a model for a dataset and fits it."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from medlab.data import MedMNISTData, Split
from medlab.models import build_model
from medlab.train.batching import batches
from medlab.train.inference import evaluate
from medlab.train.inputs import BatchAugment
from medlab.train.loop import StepStats, make_optimizer, train_steps
from medlab.utils import check_int, check_scalar, on_device, progress, seed_everything

__all__ = ["History", "fit", "train_model"]


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
    one epoch at a time, with model selection on ``val``. It trains on
    :func:`medlab.utils.device` (``$MEDLAB_DEVICE``; the CPU unless a GPU is found) and the
    model goes back to the device it came from (the CPU) when done.

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
    epochs, batch_size, label_smoothing, max_seconds, augment = _check_fit_args(
        train, val, epochs, batch_size, label_smoothing, max_seconds, augment, select_best
    )
    steps_per_epoch = math.ceil(len(train) / batch_size)
    with on_device(model) as dev:  # medlab.utils.device(); the model comes back afterwards
        opt, sched = make_optimizer(
            model, total_steps=epochs * steps_per_epoch, lr=lr, weight_decay=weight_decay
        )
        gen = seed_everything(seed)
        source = batches(train, batch_size=batch_size, epochs=epochs, generator=gen,
                         augment=augment, sample_weight=sample_weight, device=dev)  # fmt: skip
        config = _fit_config(epochs, batch_size, lr, weight_decay, augment, seed,
                             label_smoothing, max_seconds, weighted=sample_weight is not None)  # fmt: skip
        hist = History(config=config)
        t0 = time.perf_counter()
        best_state = _run_epochs(
            model, source, opt, sched, hist, val, steps_per_epoch, epochs=epochs, t0=t0,
            label_smoothing=label_smoothing, max_seconds=max_seconds, select_best=select_best,
            lr=lr, desc=desc,
        )  # fmt: skip
        if best_state is not None:
            model.load_state_dict(best_state)
        else:
            hist.best_epoch = len(hist.epochs)
    model.eval()
    hist.seconds = time.perf_counter() - t0
    return hist


def _check_fit_args(
    train: Any,
    val: Split | None,
    epochs: Any,
    batch_size: Any,
    label_smoothing: Any,
    max_seconds: Any,
    augment: BatchAugment | bool | None,
    select_best: bool,
) -> tuple[int, int, float, float | None, BatchAugment | None]:
    """:func:`fit`'s arguments, checked: (epochs, batch_size, label_smoothing, max_seconds,
    augment as a BatchAugment or None)."""
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
    return epochs, batch_size, label_smoothing, max_seconds, augment


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


def _run_epochs(
    model: nn.Module,
    source: Iterable[Any],
    opt: torch.optim.Optimizer,
    sched: Any,
    hist: History,
    val: Split | None,
    steps_per_epoch: int,
    *,
    epochs: int,
    t0: float,
    label_smoothing: float,
    max_seconds: float | None,
    select_best: bool,
    lr: float,
    desc: str,
) -> dict[str, torch.Tensor] | None:
    """:func:`fit`'s epochs: train, record each in ``hist``, stop after ``max_seconds``.
    Returns the weights of the best epoch by val AUC (None without ``val`` or selection)."""
    best_auc, best_state = -math.inf, None
    for epoch in progress(range(epochs), desc=desc):
        st = train_steps(
            model, source, opt, steps_per_epoch, scheduler=sched, label_smoothing=label_smoothing
        )
        elapsed = time.perf_counter() - t0
        best_auc, state = _end_epoch(
            model, hist, epoch, st, elapsed, val, best_auc, select_best=select_best, lr=lr
        )
        best_state = state if state is not None else best_state
        if max_seconds is not None and elapsed >= max_seconds:
            break
    return best_state


def _end_epoch(
    model: nn.Module,
    hist: History,
    epoch: int,
    st: StepStats,
    elapsed: float,
    val: Split | None,
    best_auc: float,
    *,
    select_best: bool,
    lr: float,
) -> tuple[float, dict[str, torch.Tensor] | None]:
    """Record the epoch's row in ``hist`` (with val AUC/ACC when ``val`` is given). Returns the
    best val AUC so far and a copy of the weights when this epoch is the best so far (else
    None). A diverged loss raises."""
    row = {"epoch": epoch + 1, "train_loss": st.loss, "seconds": elapsed}
    best_state = None
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
    return best_auc, best_state


def _fit_config(
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    augment: BatchAugment | None,
    seed: int,
    label_smoothing: float,
    max_seconds: float | None,
    *,
    weighted: bool,
) -> dict[str, Any]:
    """How :func:`fit` trained, for :attr:`History.config`."""
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "augment": asdict(augment) if augment else None,
        "seed": seed,
        "label_smoothing": label_smoothing,
        "max_seconds": max_seconds,
        "weighted": weighted,
        "optimizer": "AdamW, warm-up + cosine",
    }


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
