"""medlab.federated: harmonisation, FedAvg/FedProx, secure aggregation, checked on real images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlab.federated import harmonise


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the value distributions of two uint8 arrays."""
    ca = np.cumsum(np.bincount(a.ravel(), minlength=256)) / a.size
    cb = np.cumsum(np.bincount(b.ravel(), minlength=256)) / b.size
    return float(np.abs(ca - cb).max())


def test_harmonise_histogram_matches_reference_and_keeps_order(breast):
    x, ref = breast.train.images[:40], breast.train.images[100:300]
    scanner = (x.float() * 0.5 + 90).round().to(torch.uint8)  # a low-contrast, bright scanner
    out = harmonise(scanner, ref)
    assert out.dtype == torch.uint8 and out.shape == scanner.shape
    r = ref.numpy()
    before = np.mean([_ks(s, r) for s in scanner.numpy()])
    after = np.mean([_ks(s, r) for s in out.numpy()])
    assert after < 0.5 * before, (before, after)
    # a monotone map of each image: pixel order is kept (ties may merge, never swap)
    for s, o in zip(scanner.numpy().reshape(40, -1), out.numpy().reshape(40, -1), strict=True):
        idx = np.argsort(s, kind="stable")
        assert (np.diff(o[idx].astype(int)) >= 0).all()


def test_harmonise_zscore_gives_reference_moments(pneumonia):
    x, ref = pneumonia.train.images[:30], pneumonia.train.images[30:230]
    dark = (x.float() * 0.6).round().to(torch.uint8)
    out = harmonise(dark, ref, method="zscore").float()
    mu, sigma = ref.float().mean(), ref.float().std(unbiased=False)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), mu.expand(30), atol=3.0)
    assert torch.allclose(out.std(dim=(1, 2, 3), unbiased=False), sigma.expand(30), atol=4.0)


def test_harmonise_bad_inputs(breast):
    x = breast.train.images[:4]
    with pytest.raises(TypeError, match="uint8"):
        harmonise(x.float(), x)
    with pytest.raises(ValueError, match="channels"):
        harmonise(x, x.repeat(1, 3, 1, 1))
    with pytest.raises(ValueError, match="method"):
        harmonise(x, x, method="clahe")
    with pytest.raises(ValueError, match="N, C, H, W"):
        harmonise(x[0], x)
