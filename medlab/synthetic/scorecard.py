"""Fidelity and diversity scores of synthetic samples: Fréchet distance, precision / recall /
density / coverage (alone, or together at one sample size with the Fréchet distance's sampling
spread and its extrapolation to infinite n), the class distribution's diversity and within-class variety."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch

from medlab.diversity import gini_coefficient, shannon_index
from medlab.stats import sd
from medlab.synthetic.conditions import _labels
from medlab.synthetic.features import _features
from medlab.utils import check_int

__all__ = [
    "frechet_distance",
    "prdc_scores",
    "fidelity_scores",
    "class_diversity",
    "within_class_variety",
]


def frechet_distance(real: Any, fake: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D):
    ``|mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` (covariances with N - 1, as FID).
    0 = same mean and covariance. The matrix square root's trace is the sum of the square
    roots of the eigenvalues of ``S_r^(1/2) S_f S_r^(1/2)`` (symmetric, so stable)."""
    r, f = _features(real, "real"), _features(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature dimensions differ: {r.shape[1]} vs {f.shape[1]}")
    mu_r, mu_f = r.mean(0), f.mean(0)
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    w, v = np.linalg.eigh(s_r)
    root_r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_r @ s_f @ root_r)
    tr_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(s_r) + np.trace(s_f) - 2 * tr_sqrt)


def prdc_scores(
    real: Any, fake: Any, *, nearest_k: int = 5, max_n: int = 3000, seed: int = 0
) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020; ``prdc`` 0.2) of feature
    sets (N, D), (M, D), each subsampled to at most ``max_n`` rows (prdc builds full N x N
    distance matrices: 3000 rows take ~70 MB each). prdc's prints are silenced."""
    from prdc import compute_prdc

    r, f = _features(real, "real"), _features(fake, "fake")
    nearest_k = check_int("nearest_k", nearest_k, 1)
    max_n = check_int("max_n", max_n, nearest_k + 2)
    if min(len(r), len(f)) <= nearest_k:
        raise ValueError(f"need more than nearest_k={nearest_k} rows in each set")
    rng = np.random.default_rng(seed)
    r = r[rng.choice(len(r), max_n, replace=False)] if len(r) > max_n else r
    f = f[rng.choice(len(f), max_n, replace=False)] if len(f) > max_n else f
    with contextlib.redirect_stdout(io.StringIO()):
        out = compute_prdc(real_features=r, fake_features=f, nearest_k=nearest_k)
    return {k: float(v) for k, v in out.items()}


def fidelity_scores(
    real: Any,
    fake: Any,
    *,
    n: int | None = None,
    nearest_k: int = 5,
    n_half: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """Fréchet distance and precision / recall / density / coverage of feature sets (N, D) and
    (M, D) at one sample size: both sets are cut to ``n`` rows (seeded draw without
    replacement; default ``min(N, M)``); a set with fewer than ``n`` rows is refused. These
    scores depend on n (FD estimated from n images is biased upwards by about c / n), so rows of
    a scorecard compare only at equal n.

    Returns ``n``; ``frechet`` (FD at n); ``frechet_half``, the mean FD over ``n_half``
    half-samples (n // 2 rows of each set, without replacement); ``frechet_spread``, their SD:
    the half-sampling estimate of FD's sampling SD at n (McCarthy 1969; conservative for FD,
    up to ~1.6x in simulations); ``frechet_inf`` = 2 FD(n) - FD(n/2), the line through the two
    sizes extrapolated to 1/n = 0 (Chong & Forsyth 2020 fit a line over many sizes of 5k-50k
    images; two sizes of one sample is the cheap version); the four PRDC at n."""
    r, f = _features(real, "real"), _features(fake, "fake")
    nearest_k = check_int("nearest_k", nearest_k, 1)
    most = min(len(r), len(f))
    n = most if n is None else check_int("n", n, max(4, nearest_k + 2))
    if n > most:
        raise ValueError(
            f"n={n} but the sets have {len(r)} and {len(f)} rows: every row of a scorecard uses "
            f"the same n; pass n <= {most}"
        )
    rng = np.random.default_rng([check_int("seed", seed, 0), 11])
    r = r[np.sort(rng.choice(len(r), n, replace=False))]
    f = f[np.sort(rng.choice(len(f), n, replace=False))]
    half = [frechet_distance(r[rng.choice(n, n // 2, replace=False)],
                             f[rng.choice(n, n // 2, replace=False)])
            for _ in range(check_int("n_half", n_half, 2))]  # fmt: skip
    fd = frechet_distance(r, f)
    return {"n": n, "frechet": fd, "frechet_inf": 2 * fd - float(np.mean(half)),
            "frechet_half": float(np.mean(half)), "frechet_spread": sd(half),
            **prdc_scores(r, f, nearest_k=nearest_k, max_n=n)}  # fmt: skip


def class_diversity(predicted: Any, n_classes: int) -> dict[str, float]:
    """Diversity of a predicted class (or group) distribution, from labels (N,) in
    0..n_classes-1: ``shannon`` H = -sum p_k ln p_k (nats), ``evenness`` H / ln K and
    ``gini``, the Gini coefficient of the class counts (0 = all classes equally often,
    1 - 1/K = one class only); see :mod:`medlab.fairness` for the definitions."""
    k = check_int("n_classes", n_classes, 2)
    y = _labels(torch.as_tensor(np.asarray(predicted)), k)
    if len(y) == 0:
        raise ValueError("no predictions: the distribution of an empty set is undefined")
    counts = np.bincount(y.cpu().numpy(), minlength=k)
    return {
        "shannon": shannon_index(counts),
        "evenness": shannon_index(counts, normalized=True),
        "gini": gini_coefficient(counts),
    }


def within_class_variety(features: Any, labels: Any) -> float:
    """Mean distance between two different samples of the same class, averaged over classes
    (features (N, D), labels (N,)): 0 when every sample of a class is the same image
    (mode collapse). Compare with the same number on real images."""
    x = torch.as_tensor(_features(features, "features"))
    y = np.asarray(labels).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} feature rows but {len(y)} labels")
    per_class = []
    for k in np.unique(y):
        xk = x[torch.from_numpy(y == k)]
        if len(xk) >= 2:
            d = torch.cdist(xk, xk)
            per_class.append(float(d.sum() / (len(xk) * (len(xk) - 1))))
    if not per_class:
        raise ValueError("every class has fewer than two samples: variety is undefined")
    return float(np.mean(per_class))
