"""A detector for human review: how suspicious each input looks, and its operating point."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medlab.data import Split
from medlab.robustness.pixels import MEAN, STD, PixelModel, _check_xy, _predict_pixels
from medlab.train import embeddings
from medlab.utils import check_scalar

__all__ = ["detector_scores", "feature_gaussians", "mahalanobis_score", "operating_point"]


def detector_scores(
    model: nn.Module,
    x: torch.Tensor,
    *,
    kind: str = "mahalanobis",
    reference: Split | tuple[torch.Tensor, torch.Tensor] | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """How suspicious each input looks, float (N,), higher = more suspicious.

    x: float (N, C, H, W) pixels on [0, 1]. kind:

    * ``"mahalanobis"`` (Lee et al. 2018): the squared Mahalanobis distance of the model's
      penultimate features (``model.embed``) to the nearest class mean, with class means and one
      shared covariance fitted on the clean images of ``reference`` (the training split) with
      their true labels, or given already fitted (:func:`feature_gaussians`). An attack drags the
      features off the clean classes' clouds.
    * ``"squeeze"``: feature squeezing (Xu et al. 2018): the L1 distance between the softmax
      outputs on x and on x smoothed by a 3x3 median filter and reduced to 5 bits (an attack's
      pixel-level pattern does not survive smoothing; the anatomy does).
    * ``"confidence"``: 1 - the top softmax probability.
    """
    if kind not in ("mahalanobis", "confidence", "squeeze"):
        raise ValueError(f"kind must be 'mahalanobis', 'squeeze' or 'confidence', got {kind!r}")
    x, _ = _check_xy(x, torch.zeros(len(x), dtype=torch.long))
    if kind == "mahalanobis":
        if isinstance(reference, Split):
            reference = feature_gaussians(model, reference, batch_size=batch_size)
        if not (isinstance(reference, tuple) and len(reference) == 2):
            raise TypeError(
                "kind='mahalanobis' needs reference=<the training Split>, or its "
                f"feature_gaussians(model, split), got {type(reference).__name__}"
            )
        f = torch.from_numpy(embeddings(model, (x - MEAN) / STD, batch_size=batch_size))
        return _nearest_class_distance(f, reference).cpu().numpy()
    p = _predict_pixels(model, x, batch_size)
    if kind == "confidence":
        return (1.0 - p.max(1).values).cpu().numpy()
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    med = padded.unfold(2, 3, 1).unfold(3, 3, 1).reshape(*x.shape, 9).median(-1).values
    squeezed = torch.round(med * 31) / 31
    return (p - _predict_pixels(model, squeezed, batch_size)).abs().sum(1).cpu().numpy()


def _nearest_class_distance(
    f: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """Squared Mahalanobis distance (N,) float64 of features f (N, D) to the nearest class mean."""
    means, precision = reference
    d = f.double()[:, None, :] - means[None]  # (N, K, D)
    return torch.einsum("nkd,de,nke->nk", d, precision, d).min(1).values


def mahalanobis_score(
    model: nn.Module, x: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """The ``"mahalanobis"`` score of :func:`detector_scores` as a differentiable tensor (N,),
    float64, of pixels x (N, C, H, W) on [0, 1] (a batch; ``model`` in eval mode): what an
    attacker who knows the detector differentiates. reference: :func:`feature_gaussians`."""
    net = model.model if isinstance(model, PixelModel) else model
    return _nearest_class_distance(net.embed((x - MEAN) / STD), reference)


def feature_gaussians(
    model: nn.Module, split: Split, *, batch_size: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lee et al. 2018's generative classifier on the features: the class means (K, D) and the
    pseudo-inverse of the shared covariance (D, D), float64, of ``model``'s penultimate features
    (:func:`medlab.train.embeddings`) on the clean images of ``split`` with their true labels.
    Fit once per model and pass it as ``detector_scores(..., reference=)``."""
    f = torch.from_numpy(embeddings(model, split, batch_size=batch_size)).double()
    y = torch.as_tensor(split.labels).long().view(-1)
    classes = torch.unique(y)
    means = torch.stack([f[y == c].mean(0) for c in classes])
    centred = f - means[torch.searchsorted(classes, y)]
    cov = centred.T @ centred / len(f)
    return means, torch.linalg.pinv(cov, hermitian=True)  # dead ReLU features: variance 0


def operating_point(clean: np.ndarray, adversarial: np.ndarray, *, detect: float = 0.9) -> float:
    """The score threshold that flags a share ``detect`` of the ``adversarial`` scores (choose it
    on validation images); a case is flagged for review when its score >= threshold. The
    threshold is an observed score (the lower neighbour of the quantile), so at least ``detect``
    of ``adversarial`` is flagged, also with few scores."""
    detect = check_scalar(
        "detect", detect, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False,
        fix="the share of attacks to flag, e.g. 0.9",
    )  # fmt: skip
    for name, a in (("clean", clean), ("adversarial", adversarial)):
        a = np.asarray(a, dtype=float)
        if a.ndim != 1 or len(a) == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array of scores, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(
                f"{name} scores hold NaN or inf: drop those images or check detector_scores"
            )
    adversarial = np.asarray(adversarial, dtype=float)
    return float(np.quantile(adversarial, 1 - detect, method="lower"))
