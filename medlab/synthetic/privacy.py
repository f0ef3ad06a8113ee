"""Privacy scores of a generator: distance to the closest training record and a loss-based
membership-inference score."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medlab.data import Split
from medlab.train import as_model_input
from medlab.utils import check_int

__all__ = ["dcr", "attack_scores"]


def dcr(
    queries: torch.Tensor, reference: torch.Tensor, *, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the closest record: for each query image (N, C, H, W), the Euclidean
    distance in pixel space (grey levels scaled to [0, 1]) to its nearest image in
    ``reference`` (M, C, H, W), and that image's index. Returns (distances (N,), index (N,))."""
    for name, t in (("queries", queries), ("reference", reference)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8 or t.ndim != 4 or len(t) == 0:
            raise TypeError(f"{name} must be a non-empty uint8 tensor (N, C, H, W)")
    if queries.shape[1:] != reference.shape[1:]:
        raise ValueError(
            f"image shapes differ: {tuple(queries.shape[1:])} vs {tuple(reference.shape[1:])}"
        )
    ref = reference.flatten(1).float() / 255.0
    dist, idx = [], []
    for i in range(0, len(queries), check_int("batch_size", batch_size, 1)):
        d = torch.cdist(queries[i : i + batch_size].flatten(1).float() / 255.0, ref)
        m = d.min(1)
        dist.append(m.values)
        idx.append(m.indices)
    return torch.cat(dist).cpu().numpy(), torch.cat(idx).cpu().numpy()


@torch.no_grad()
def attack_scores(model: nn.Module, split: Split, *, seed: int = 0, draws: int = 4) -> np.ndarray:
    """Membership score per image (N,) for a loss attack on a generator: minus the
    generator's own training loss on that image (negative ELBO for the VAE, noise-prediction
    error for the DDPM), averaged over ``draws`` seeded draws of its randomness. Training
    images (members) tend to score higher."""
    if not isinstance(split, Split):
        raise TypeError(f"split must be a medlab Split, got {type(split).__name__}")
    draws = check_int("draws", draws, 1)
    was = model.training
    model.eval()
    try:
        torch.manual_seed(check_int("seed", seed, 0))
        total = torch.zeros(len(split))
        for _ in range(draws):
            parts = [model.loss(as_model_input(split.images[i : i + 512]), split.labels[i : i + 512])
                     for i in range(0, len(split), 512)]  # fmt: skip
            total += torch.cat(parts)
    finally:
        model.train(was)
    return (-total / draws).cpu().numpy()
