"""Data scarcity (notebook 02): label budgets, learning curves, augmentation and transfer.

The lesson: with a few dozen labelled images per class a model is much worse than with
thousands, and the field's remedies (augmentation, transfer from a large dataset,
self-supervised pretraining on unlabelled images) can be measured, not assumed.

>>> small = subsample_per_class(data.train, 10, seed=0)           # doctest: +SKIP
>>> df = learning_curve(data, budgets=(10, 50, "all"), seeds=(0, 1),
...                     variants=("scratch", "augment"))           # doctest: +SKIP

Every run uses :func:`medlab.train.fit` (the curriculum's one training loop) for the same
number of optimisation steps, whatever the label budget, so the curves compare data, not
compute. Every run and both pretrained backbones go through the model cache
(:func:`medlab.experiments.cached_model`: keyed by the dataset's MD5, the exact training images
and labels, the seed and the settings; read back with ``weights_only=True``); nothing is
downloaded from a model hub. Spreads are sample SDs over seeds (ddof=1).

One idea per module: :mod:`~medlab.scarcity.schedule` (label budgets, the training schedule),
:mod:`~medlab.scarcity.pretrain` (backbones; the rotation pretext task is written in notebook
02), :mod:`~medlab.scarcity.sources`, :mod:`~medlab.scarcity.curves` (learning curves and
their summaries), :mod:`~medlab.scarcity.figures` and :mod:`~medlab.scarcity.imagenet` (the
optional online variant).
"""

from __future__ import annotations

from medlab.scarcity.curves import curve_table, gain_at, learning_curve
from medlab.scarcity.figures import curve_figure
from medlab.scarcity.imagenet import OnlineWeightsUnavailable, imagenet_resnet18
from medlab.scarcity.pretrain import (
    Pretrained,
    fresh_model,
    load_features,
    pretrain_rotation,
    pretrain_supervised,
    rotation_split,
)
from medlab.scarcity.schedule import (
    COLLAPSE_SPREAD,
    RESTART_LR_DIVISOR,
    VARIANTS,
    Schedule,
    check_budgets,
    epochs_for,
    output_spread,
    per_class_indices,
    subsample_per_class,
)
from medlab.scarcity.sources import choose_source

__all__ = [
    "VARIANTS",
    "Schedule",
    "Pretrained",
    "OnlineWeightsUnavailable",
    "check_budgets",
    "per_class_indices",
    "subsample_per_class",
    "epochs_for",
    "output_spread",
    "COLLAPSE_SPREAD",
    "RESTART_LR_DIVISOR",
    "rotation_split",
    "pretrain_supervised",
    "pretrain_rotation",
    "fresh_model",
    "load_features",
    "choose_source",
    "learning_curve",
    "curve_table",
    "gain_at",
    "curve_figure",
    "imagenet_resnet18",
]
