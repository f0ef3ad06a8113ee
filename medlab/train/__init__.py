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

:func:`fit`, :func:`predict`, :func:`embeddings` and :func:`evaluate` run on
:func:`medlab.utils.device` (``$MEDLAB_DEVICE``: a GPU when there is one, else the CPU) and give
the model back on the device it came from; :func:`train_steps` moves each batch to the model.

One idea per module: :mod:`~medlab.train.inputs` (model inputs, augmentation),
:mod:`~medlab.train.batching` (:func:`batches`), :mod:`~medlab.train.loop` (the optimizer and
the steps), :mod:`~medlab.train.fitting` (:func:`fit`, :func:`train_model`) and
:mod:`~medlab.train.inference` (:func:`predict`, :func:`embeddings`, :func:`evaluate`).
"""

from __future__ import annotations

from medlab.train.batching import batches
from medlab.train.fitting import History, fit, train_model
from medlab.train.inference import MULTILABEL as MULTILABEL
from medlab.train.inference import _batched as _batched
from medlab.train.inference import embeddings, eval_mode, evaluate, predict
from medlab.train.inputs import MAX_INPUT as MAX_INPUT
from medlab.train.inputs import BatchAugment, as_model_input, check_model, to_input, to_uint8
from medlab.train.loop import (
    StepStats,
    batch_loss,
    batch_tensors,
    make_optimizer,
    train_step,
    train_steps,
)

__all__ = [
    "as_model_input",
    "to_input",
    "to_uint8",
    "check_model",
    "BatchAugment",
    "History",
    "StepStats",
    "make_optimizer",
    "batches",
    "train_steps",
    "train_step",
    "batch_loss",
    "batch_tensors",
    "fit",
    "train_model",
    "eval_mode",
    "predict",
    "embeddings",
    "evaluate",
]
