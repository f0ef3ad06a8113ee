"""OPTIONAL, ONLINE ONLY: torchvision's ResNet-18 with ImageNet weights, for MedMNIST inputs."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["OnlineWeightsUnavailable", "imagenet_resnet18"]


class OnlineWeightsUnavailable(RuntimeError):
    """ImageNet weights could not be fetched (no network): the optional variant cannot run."""


class _ImageNetResNet(nn.Module):
    """torchvision ResNet-18 for MedMNIST inputs: [-1, 1] grayscale/RGB (N, C, 28, 28) ->
    3 channels, ImageNet normalisation, resized to ``size`` px; ``features`` + new ``head``."""

    def __init__(self, backbone: nn.Module, n_classes: int, size: int) -> None:
        super().__init__()
        backbone.fc = nn.Identity()
        self.features = backbone
        self.head = nn.Linear(512, n_classes)
        self.size = size
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = (x + 1.0) / 2.0
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = nn.functional.interpolate(
            x, size=(self.size, self.size), mode="bilinear", align_corners=False
        )
        return self.features((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def imagenet_resnet18(n_classes: int, *, pretrained: bool = True, size: int = 64) -> nn.Module:
    """OPTIONAL, ONLINE ONLY: torchvision's ResNet-18 with ImageNet weights and a new head.

    The weights come from download.pytorch.org through torchvision (the only download in this
    lesson, off by default in the notebook); offline this raises
    :class:`OnlineWeightsUnavailable`. ``pretrained=False`` builds the same network with random
    weights (for tests). Natural photographs are far from X-rays, and 11 M parameters at 64 px
    are slow on a CPU: expect minutes per run.
    """
    from torchvision.models import ResNet18_Weights, resnet18

    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    try:
        backbone = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1 if pretrained else None)
    except Exception as exc:  # URLError, socket errors, hash mismatch ...
        raise OnlineWeightsUnavailable(
            "could not download torchvision's ImageNet ResNet-18 weights "
            f"({type(exc).__name__}: {exc}); this optional variant needs a network connection."
        ) from exc
    return _ImageNetResNet(backbone, n_classes, size)
