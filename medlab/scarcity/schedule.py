"""Label budgets and the training schedule: the same rule for every budget and variant."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from medlab.data import Split
from medlab.train import predict
from medlab.utils import check_int, check_scalar

__all__ = [
    "VARIANTS",
    "Schedule",
    "check_budgets",
    "per_class_indices",
    "subsample_per_class",
    "epochs_for",
    "output_spread",
    "COLLAPSE_SPREAD",
    "RESTART_LR_DIVISOR",
]

#: Training variants of :func:`learning_curve`.
#: scratch: random init, no augmentation; augment: random init + :class:`BatchAugment`;
#: transfer: backbone pretrained (supervised) on another dataset, no augmentation;
#: selfsup: backbone pretrained by rotation prediction on the target's own unlabelled training
#: images, no augmentation; transfer+augment: both; imagenet: torchvision ResNet-18 with
#: ImageNet weights (online only, see :func:`imagenet_resnet18`).
VARIANTS: tuple[str, ...] = (
    "scratch",
    "augment",
    "transfer",
    "selfsup",
    "transfer+augment",
    "imagenet",
)
_NEEDS_PRETRAINED = {"transfer": "transfer", "transfer+augment": "transfer", "selfsup": "selfsup"}
_AUGMENTED = {"augment", "transfer+augment"}


@dataclass(frozen=True)
class Schedule:
    """How every run is trained: the same rule for all budgets and variants.

    epochs: passes over the labelled images; min_steps: at least this many optimisation steps
    (mini-batches), so a run on 20 images is not over after 10 steps; batch_size: images per
    step (at most the training-set size); lr: peak AdamW learning rate; width: SmallCNN width
    (channels of its first stage).
    """

    epochs: int = 10
    min_steps: int = 150
    batch_size: int = 64
    lr: float = 3e-3
    width: int = 16

    def __post_init__(self) -> None:
        for name in ("epochs", "min_steps", "batch_size", "width"):
            object.__setattr__(self, name, check_int(f"Schedule.{name}", getattr(self, name), 1))
        if not 1e-6 <= self.lr <= 1.0:
            raise ValueError(f"Schedule.lr must be in [1e-6, 1], got {self.lr!r}")


#: The default schedule (one instance, shared as a default argument).
DEFAULT_SCHEDULE = Schedule()


def check_budgets(budgets: Iterable[int | str]) -> list[int | str]:
    """Validate label budgets (labelled images per class): positive ints, or ``"all"``.

    Returns them sorted ascending with ``"all"`` last and duplicates removed."""
    out: list[int | str] = []
    for b in budgets:
        if isinstance(b, str):
            if b != "all":
                raise ValueError(
                    f"budget {b!r} is not understood; use a positive integer "
                    "(labelled images per class) or 'all'"
                )
        else:
            b = check_scalar("budget", b, lo=1, fix="labelled images per class, or 'all'")
        if b not in out:
            out.append(b if isinstance(b, str) else int(b))
    if not out:
        raise ValueError("give at least one budget, e.g. budgets=(10, 50, 'all')")
    return sorted(out, key=lambda b: math.inf if b == "all" else b)


# fmt: off
# %% exported from notebooks/02_data_scarcity.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def per_class_indices(labels: torch.Tensor, n_classes: int, per_class: int, *,
                      seed: int = 0) -> torch.Tensor:
    """Row numbers of at most `per_class` random images of each class (all of a class that has
    fewer): labels (N,) int64 in 0..n_classes-1 -> (M,) int64, ascending. Recipe: one
    `torch.Generator` seeded with `seed`; for class 0, 1, ... in turn, shuffle the rows of that
    class with `torch.randperm(n_c, generator=gen)` and keep the first `per_class`."""
    ### BEGIN SOLUTION
    gen = torch.Generator().manual_seed(int(seed))
    keep = []
    for c in range(n_classes):
        idx = (labels == c).nonzero().flatten()                      # rows of class c
        keep.append(idx[torch.randperm(len(idx), generator=gen)][:per_class])  # first k of a shuffle
    return torch.cat(keep).sort().values
    ### END SOLUTION
# %% end of export


# %% exported from notebooks/02_data_scarcity.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def subsample_per_class(split: Split, per_class: int | str, *, seed: int = 0) -> Split:
    """At most `per_class` random images of each class (all of a class that has fewer); for one
    seed the subsets are nested (the 10-per-class images are among the 50-per-class ones)."""
    check_budgets([per_class])
    if split.multilabel:
        raise ValueError("subsample_per_class needs a single-label task; a multi-label split has "
                         "no 'images per class' (subsample images instead)")
    if per_class == "all":
        return split.subset(torch.arange(len(split)))
    return split.subset(per_class_indices(split.labels, split.n_classes, per_class, seed=seed))
# %% end of export
# fmt: on


#: A model whose predicted probabilities vary by less than this (SD over its own training
#: images) gives one constant answer whatever the image: its training collapsed.
COLLAPSE_SPREAD: float = 0.01
#: A collapsed run is trained once more from the same initialisation and seed at the learning
#: rate divided by this.
RESTART_LR_DIVISOR: float = 3.0


def output_spread(model: nn.Module, split: Split) -> float:
    """How much ``model``'s answer depends on the image: the largest, over classes, sample SD
    (ddof=1) of the predicted probability over ``split``'s images (unitless; 0 for a
    constant output, about 0.5 for confident answers split evenly between two classes).

    A healthy classifier scores its own training images differently (SD well above 0.1); one
    that has collapsed to a constant output (the class prior, whatever the image) scores
    below :data:`COLLAPSE_SPREAD`. Small from-scratch runs with strong augmentation can end
    there: the loss sits at chance level (ln 2 for two balanced classes) and the test AUC at
    0.5. A barely trained model (a few steps from initialisation) also scores below it."""
    if len(split) < 2:
        raise ValueError(f"output_spread needs at least 2 images, got {len(split)}")
    p = predict(model, split)
    return float(p.std(axis=0, ddof=1).max())


def epochs_for(n: int, schedule: Schedule) -> tuple[int, int, int]:
    """(epochs, batch size, steps) of one run on ``n`` labelled images under ``schedule``.

    batch = ``min(batch_size, n)``; epochs = ``max(schedule.epochs, ceil(min_steps / steps per
    epoch))``; steps = epochs * ceil(n / batch). Small budgets get many epochs, large ones at
    least ``schedule.epochs``."""
    if n < 1:
        raise ValueError(f"need at least one training image, got n={n}")
    bs = min(schedule.batch_size, n)
    per_epoch = math.ceil(n / bs)
    epochs = max(schedule.epochs, math.ceil(schedule.min_steps / per_epoch))
    return epochs, bs, epochs * per_epoch
