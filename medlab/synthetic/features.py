"""The ruler's feature space: a trained classifier's penultimate features, and the checks every
feature-based score applies to its inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from medlab.train import _batched, as_model_input

__all__ = ["FeatureExtractor"]


class FeatureExtractor(nn.Module):
    """A trained classifier's penultimate features as a feature map for fidelity metrics.

    forward(uint8 images (N, C, H, W)) -> float features (N, num_features); ``num_features``
    is an int, as torchmetrics' ``FrechetInceptionDistance(feature=...)`` requires."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        if not hasattr(classifier, "embed"):
            raise TypeError(f"{type(classifier).__name__} has no .embed(x) (medlab's models do)")
        self.classifier = classifier.eval()
        with torch.no_grad():
            probe = classifier.embed(torch.zeros(1, _in_channels(classifier), 28, 28))
        self.num_features = int(probe.shape[1])

    #: images per forward pass (medlab.train's batching): memory stays that of one batch
    batch_size = 256

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if len(images) == 0:
            return self.classifier.embed(as_model_input(images))
        return _batched(self.classifier.embed, self.classifier, images, self.batch_size)


def _in_channels(model: nn.Module) -> int:
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return int(conv.in_channels)


def _features(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2:
        raise ValueError(f"{name} must be features of shape (N >= 2, D), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a
