"""Models written for teaching: no in-place operations, so Opacus and the attribution libraries
can wrap them, and GroupNorm by default, so differential privacy can be added without changes.

* :class:`SmallCNN` - the default: ~0.3 M parameters at width 32 (0.07 M at width 16), trains in
  seconds on a CPU. :data:`BASELINE` is its baseline configuration (notebook 01).
* :class:`ResNet18` - the MedMNIST v2 "ResNet-18 (28)" reference (3x3 stem, no max-pool), for
  comparison with the paper; BatchNorm as in the paper or GroupNorm for DP.
"""

from __future__ import annotations

import torch
from torch import nn

from medlab.utils import check_scalar

__all__ = ["SmallCNN", "ResNet18", "build_model", "MODELS", "BASELINE", "count_parameters"]

#: medlab's baseline for a dataset of its own (notebook 01, ``benchmarks/bench_training.py``):
#: ``SmallCNN(**BASELINE)``, width 16 with BatchNorm. ``bench_training.py --ablations`` on the
#: shared BreastMNIST copy (2 CPU cores, 2026-12-07): test AUC 0.899 +- 0.012 after 128 epochs
#: (22 s; seeds 0-9), where width 32 with GroupNorm, medlab's model before, gave 0.845-0.865
#: after 64 (24 s; seeds 0-2); the paper's ResNet-18 (28) reports 0.901. GroupNorm stays
#: SmallCNN's default: DP-SGD (Opacus) and federated averaging cannot use BatchNorm's batch
#: statistics (notebooks 05 and 06).
BASELINE: dict[str, object] = {"width": 16, "norm": "batch"}


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        if channels > 8 and channels % 8:
            raise ValueError(
                f"GroupNorm's 8 groups cannot split {channels} channels: pick a width whose "
                "layers have <= 8 or a multiple of 8 channels, e.g. width=4, 8, 16 or 32"
            )
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be 'group' or 'batch', got {kind!r}")


def _check_shape(in_channels: int, n_classes: int) -> None:
    check_scalar("in_channels", in_channels, lo=1, fix="pass the images' channels, data.n_channels")
    check_scalar("n_classes", n_classes, lo=1, fix="pass the dataset's classes, data.n_classes")


class ConvBlock(nn.Sequential):
    """3x3 conv -> norm -> ReLU (out-of-place)."""

    def __init__(self, c_in: int, c_out: int, norm: str = "group") -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            _norm(norm, c_out),
            nn.ReLU(inplace=False),
        )


class SmallCNN(nn.Module):
    """Three stages of two conv blocks (width w, 2w, 4w) with 2x2 max-pooling, global average
    pooling and a linear head.

    Input: float tensor (N, in_channels, H, W), H = W = 28 (any size >= 8 works).
    Output: logits (N, n_classes).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        width: int = 32,
        norm: str = "group",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        _check_shape(in_channels, n_classes)
        w = check_scalar("width", width, lo=1, fix="e.g. width=8 or 32")
        dropout = check_scalar("dropout", dropout, kind=float, lo=0, hi=1, hi_inclusive=False)
        self.features = nn.Sequential(
            ConvBlock(in_channels, w, norm),
            ConvBlock(w, w, norm),
            nn.MaxPool2d(2),
            ConvBlock(w, 2 * w, norm),
            ConvBlock(2 * w, 2 * w, norm),
            nn.MaxPool2d(2),
            ConvBlock(2 * w, 4 * w, norm),
            ConvBlock(4 * w, 4 * w, norm),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * w, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, shape (N, 4 * width)."""
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))

    @property
    def last_conv(self) -> nn.Module:
        """The last convolutional block (the usual Grad-CAM layer)."""
        return self.features[-1]


class BasicBlock(nn.Module):
    """ResNet basic block without in-place additions (``out = out + shortcut``)."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.n1 = _norm(norm, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.n2 = _norm(norm, c_out)
        self.relu1 = nn.ReLU(inplace=False)
        self.relu2 = nn.ReLU(inplace=False)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), _norm(norm, c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.n1(self.conv1(x)))
        out = self.n2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 as in MedMNIST v2's 28 px experiments: 3x3 stride-1 stem, no max-pool, four
    stages of two basic blocks (64, 128, 256, 512 channels), global average pooling.

    Input (N, in_channels, 28, 28) float; output logits (N, n_classes). ~11.2 M parameters.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 2, norm: str = "batch") -> None:
        super().__init__()
        _check_shape(in_channels, n_classes)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), _norm(norm, 64), nn.ReLU(inplace=False)
        )
        layers, c_in = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(c_in, c_out, stride, norm), BasicBlock(c_out, c_out, 1, norm)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(512, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(self.stem(x))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    @property
    def last_conv(self) -> nn.Module:
        return self.features[-1]


MODELS = {"smallcnn": SmallCNN, "resnet18": ResNet18}


def build_model(name: str, in_channels: int, n_classes: int, **kwargs: object) -> nn.Module:
    """Build ``"smallcnn"`` or ``"resnet18"`` for a dataset's channels and classes."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](in_channels=in_channels, n_classes=n_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
