"""Privacy: membership-inference attacks and the DP-SGD defence.

Attacks (written here, because they are what the lesson teaches):

* :func:`loss_scores` - the loss-threshold attack (Yeom et al. 2018): a training image tends to
  have a lower loss than an unseen one, so the membership score is the negative loss;
* :func:`attack_metrics` - the ROC of any membership score on members against held-out
  non-members: AUC and the true-positive rate at a low false-positive rate (1 %, 0.1 %), which is
  what matters for a single patient (Carlini et al. 2022).

Higher score = more likely a member, everywhere in this module.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medlab.data import Split
from medlab.train import predict
from medlab.utils import check_int

__all__ = ["FPR_LEVELS", "attack_metrics", "loss_scores", "per_example_loss"]

FPR_LEVELS: tuple[float, ...] = (0.01, 0.001)


def _scores(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores (one per image), got {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name} is empty: the attack needs at least one image on each side")
    if not np.isfinite(a).all():
        raise ValueError(
            f"{name} holds NaN or inf: clip the losses (e.g. np.clip) or drop those images"
        )
    return a


def attack_metrics(
    member_scores: Any,
    nonmember_scores: Any,
    *,
    fpr_levels: tuple[float, ...] = FPR_LEVELS,
) -> dict[str, Any]:
    """ROC of a membership attack (higher score = more likely a member).

    Args:
        member_scores: float (M,), scores of training images (positives).
        nonmember_scores: float (K,), scores of held-out images (negatives).
        fpr_levels: false-positive rates at which to read the true-positive rate.
    Returns a dict: ``auc`` (float), ``tpr_at_fpr`` ({fpr level: TPR}, the highest TPR whose
    FPR is <= the level; with K non-members the smallest non-zero FPR is 1/K, so a level below
    1/K reads the TPR at zero false positives), ``fpr`` and ``tpr`` (the ROC, float arrays from
    (0, 0) to (1, 1)), ``n_members``, ``n_nonmembers``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    pos = _scores("member_scores", member_scores)
    neg = _scores("nonmember_scores", nonmember_scores)
    for lvl in fpr_levels:
        if isinstance(lvl, bool) or not isinstance(lvl, numbers.Real) or not 0.0 < lvl < 1.0:
            raise ValueError(f"each fpr level must be a number in (0, 1), got {lvl!r}")
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    s = np.r_[pos, neg]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    tpr_at = {float(lvl): float(tpr[fpr <= lvl + 1e-12].max()) for lvl in fpr_levels}
    return {
        "auc": float(roc_auc_score(y, s)),
        "tpr_at_fpr": tpr_at,
        "fpr": fpr,
        "tpr": tpr,
        "n_members": len(pos),
        "n_nonmembers": len(neg),
    }


def _images_labels(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, Split):
        if data.multilabel:
            raise ValueError(
                f"{data.name} is multi-label: the loss attack here needs one class per image"
            )
        return data.images, data.labels
    if isinstance(data, tuple | list) and len(data) == 2:
        x, y = torch.as_tensor(data[0]), torch.as_tensor(data[1])
        if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                "give (images, labels) as images (N, C, H, W) and labels (N,) of the same N, "
                f"got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        return x, y.long()
    raise TypeError(
        "pass a medlab Split (e.g. data.train) or a tuple (images, labels), got "
        f"{type(data).__name__}"
    )


def per_example_loss(
    model: nn.Module, split_or_images_labels: Any, *, batch_size: int = 256
) -> np.ndarray:
    """Cross-entropy of each image under ``model`` (eval mode), float64 (N,), in nats."""
    x, y = _images_labels(split_or_images_labels)
    if len(x) == 0:
        raise ValueError("no images: the split or tensor is empty")
    batch_size = check_int("batch_size", batch_size, 1)
    logits = torch.as_tensor(predict(model, x, batch_size=batch_size, logits=True))
    if int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise ValueError(
            f"labels must be class indices in [0, {logits.shape[1] - 1}] for this model"
        )
    return F.cross_entropy(logits.double(), y, reduction="none").numpy()


def loss_scores(
    model: nn.Module, split_or_images_labels: Any, *, batch_size: int = 256
) -> np.ndarray:
    """The loss-threshold attack's membership scores: the negative per-image loss, float64
    (N,). Thresholding it at ``-t`` guesses "member" for every image with loss below ``t``."""
    return -per_example_loss(model, split_or_images_labels, batch_size=batch_size)
