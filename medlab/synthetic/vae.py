"""Generator 1: a class-conditional variational autoencoder (negative ELBO, Bernoulli pixels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medlab.synthetic.conditions import _labels
from medlab.utils import check_int

__all__ = ["ConditionalVAE"]


class ConditionalVAE(nn.Module):
    """A class-conditional variational autoencoder for small images (28 px).

    Encoder: image (N, C, 28, 28) plus one-hot class planes -> two stride-2 convolutions ->
    ``mu, logvar`` (N, latent). Decoder: ``[z, one-hot y]`` -> linear -> two transposed
    convolutions -> pixel logits (N, C, 28, 28) (Bernoulli likelihood on [0, 1] grey levels).
    """

    def __init__(
        self, in_channels: int = 1, n_classes: int = 2, *, latent: int = 16, width: int = 32
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.n_classes = check_int("n_classes", n_classes, 1)
        self.latent = check_int("latent", latent, 1)
        w = check_int("width", width, 4)
        self.enc = nn.Sequential(
            nn.Conv2d(in_channels + n_classes, w, 4, 2, 1),  # 28 -> 14
            nn.SiLU(),
            nn.Conv2d(w, 2 * w, 4, 2, 1),  # 14 -> 7
            nn.SiLU(),
            nn.Flatten(),
        )
        self.to_stats = nn.Linear(2 * w * 49, 2 * latent)
        self.from_z = nn.Sequential(nn.Linear(latent + n_classes, 2 * w * 49), nn.SiLU())
        self.dec = nn.Sequential(
            nn.Unflatten(1, (2 * w, 7, 7)),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1),  # 7 -> 14
            nn.SiLU(),
            nn.ConvTranspose2d(w, in_channels, 4, 2, 1),  # 14 -> 28 (logits)
        )

    def _onehot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(_labels(y, self.n_classes), self.n_classes).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x, y): ``mu, logvar`` (N, latent); x on [-1, 1]."""
        planes = self._onehot(y)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        mu, logvar = self.to_stats(self.enc(torch.cat([x, planes], 1))).chunk(2, 1)
        return mu, logvar.clamp(-10.0, 10.0)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """p(x | z, y): pixel logits (N, C, 28, 28); sigmoid gives grey levels on [0, 1]."""
        return self.dec(self.from_z(torch.cat([z, self._onehot(y)], 1)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mu, logvar = self.encode(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # the reparameterisation trick
        return self.decode(z, y), mu, logvar

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Negative ELBO per image (N,), in nats: Bernoulli reconstruction + KL(q || N(0, I))."""
        logits, mu, logvar = self(x, y)
        target = (x + 1.0) / 2.0
        rec = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return rec.sum(1) + kl

    @torch.no_grad()
    def sample(self, y: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images for classes ``y`` (N,): z ~ N(0, I), decoded to the mean image, on [-1, 1]."""
        y = _labels(y, self.n_classes)
        z = torch.randn(len(y), self.latent, generator=generator)
        return torch.sigmoid(self.decode(z, y)) * 2.0 - 1.0
