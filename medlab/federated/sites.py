"""Simulated hospitals: a scenario's groups as sites (IID, label skew, quantity skew, scanners)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from medlab.data import SPLITS, MedMNISTData
from medlab.scenario import Scenario, assign_groups, from_groups
from medlab.utils import check_int, check_scalar

__all__ = [
    "ScannerProfile",
    "SCANNERS",
    "PARTITIONS",
    "dirichlet_groups",
    "make_sites",
    "skewed_sites",
    "site_table",
]


def _check_uint8_images(name: str, x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a uint8 tensor (N, C, H, W), got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise TypeError(
            f"{name} must be uint8 (N, C, H, W) as in Split.images, got {x.dtype}; "
            "pass the raw images, not model inputs from to_input"
        )
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, C, H, W) with N >= 1, got {tuple(x.shape)}")
    return x


@dataclass(frozen=True)
class ScannerProfile:
    """A site's acquisition: ``x <- contrast * (x - 128) + 128 + brightness``, then a Gaussian
    blur of ``blur`` pixels (sigma) and Gaussian noise of SD ``noise`` (intensity units 0-255).

    Callable as a scenario shift: ``profile(images uint8 (N, C, H, W), labels, *, seed)`` ->
    uint8 (N, C, H, W); the noise is seeded.
    """

    brightness: float = 0.0
    contrast: float = 1.0
    blur: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        check_scalar("ScannerProfile.brightness", self.brightness, kind=float)
        check_scalar("ScannerProfile.contrast", self.contrast, kind=float, lo=0,
                     lo_inclusive=False)  # fmt: skip
        check_scalar("ScannerProfile.blur", self.blur, kind=float, lo=0)
        check_scalar("ScannerProfile.noise", self.noise, kind=float, lo=0)

    def __call__(self, images: torch.Tensor, labels: Any = None, *, seed: int = 0) -> torch.Tensor:
        x = _check_uint8_images("images", images).float()
        x = self.contrast * (x - 128.0) + 128.0 + self.brightness
        if self.blur > 0:
            from torchvision.transforms.functional import gaussian_blur

            k = 2 * math.ceil(3 * self.blur) + 1
            x = gaussian_blur(x, [k, k], [self.blur, self.blur])
        if self.noise > 0:
            g = torch.Generator().manual_seed(check_int("seed", seed, 0))
            x = x + self.noise * torch.randn(x.shape, generator=g)
        return x.round().clamp(0, 255).to(torch.uint8)


#: The acquisition-shift preset: site 0 is the reference scanner, the others differ.
SCANNERS: dict[str, ScannerProfile] = {
    "reference": ScannerProfile(),
    "dark, low contrast": ScannerProfile(brightness=-40.0, contrast=0.6),
    "bright, blurred": ScannerProfile(brightness=35.0, contrast=0.8, blur=0.8),
    "noisy, high contrast": ScannerProfile(contrast=1.4, noise=12.0),
}

PARTITIONS = ("iid", "dirichlet", "quantity", "scanner")


def dirichlet_groups(
    labels: Any, n_sites: int, alpha: float, *, seed: int = 0, min_size: int = 10
) -> np.ndarray:
    """Label skew: site ids (N,) where each class is spread over the sites by proportions drawn
    from Dirichlet(alpha) (small alpha: each site sees mostly one class). Redrawn (seeded) until
    every site has at least ``min_size`` images."""
    y = np.asarray(labels).reshape(-1)
    n_sites = check_int("n_sites", n_sites, 2)
    alpha = check_scalar(
        "alpha", alpha, kind=float, lo=0, lo_inclusive=False, fix="e.g. 0.1 or 1.0"
    )
    min_size = check_int("min_size", min_size, 0)
    if n_sites * min_size > len(y):
        raise ValueError(
            f"{len(y)} images cannot give {n_sites} sites {min_size} images each: "
            "lower n_sites or min_size"
        )
    rng = np.random.default_rng(check_int("seed", seed, 0))
    for _ in range(1000):
        groups = np.empty(len(y), dtype=np.int64)
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            p = rng.dirichlet(np.full(n_sites, float(alpha)))
            cuts = (np.cumsum(p)[:-1] * len(idx)).round().astype(int)
            for k, part in enumerate(np.split(idx, cuts)):
                groups[part] = k
        if np.bincount(groups, minlength=n_sites).min() >= min_size:
            return groups
    raise ValueError(
        f"no Dirichlet({alpha}) draw gave every one of {n_sites} sites {min_size} images in "
        "1000 tries: raise alpha or lower min_size"
    )


def make_sites(
    data: MedMNISTData,
    partition: str = "iid",
    *,
    n_sites: int = 4,
    alpha: float = 0.5,
    small_share: float = 0.005,
    min_size: int = 12,
    seed: int = 0,
) -> Scenario:
    """K simulated hospitals as the groups of a :class:`~medlab.scenario.Scenario`.

    ``partition`` (training split; val and test are split into equal stratified parts per
    site, so each site also has its own test patients):

    * ``"iid"`` - equal stratified shares;
    * ``"dirichlet"`` - label skew, Dirichlet(``alpha``) class proportions per site;
    * ``"quantity"`` - one large site (site 0) and ``n_sites - 1`` small ones of 4, 2, 1 times
      ``small_share`` of the images (at least ``min_size``; the last site is the smallest);
    * ``"scanner"`` - equal shares, site k imaged by the k-th of :data:`SCANNERS` (every split
      of that site, test included, carries its scanner profile).
    """
    if not isinstance(data, MedMNISTData):
        raise TypeError(f"data must come from medlab.load(...), got {type(data).__name__}")
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
    n_sites = check_int("n_sites", n_sites, 2, len(SCANNERS) if partition == "scanner" else 64)
    seed = check_int("seed", seed, 0)
    equal = [1.0 / n_sites] * n_sites
    if partition == "quantity":  # small sites of s, 2s, 4s, ... images (s = small_share * N)
        if not 0 < small_share * (2 ** (n_sites - 1) - 1) < 1:
            raise ValueError(
                f"small_share={small_share} is too large for {n_sites - 1} small sites of "
                f"1, 2, 4, ... times small_share: lower it"
            )
        n = len(data.train)
        sizes = [max(min_size, round(small_share * 2**k * n)) for k in range(n_sites - 1)]
        shares = [1.0 - sum(sizes) / n] + [m / n for m in reversed(sizes)]
    else:
        shares = equal
    groups = {
        s: assign_groups(data[s].labels.numpy(), shares if s == "train" else equal, seed=[seed, k])
        for k, s in enumerate(SPLITS)
    }
    if partition == "dirichlet":
        groups["train"] = dirichlet_groups(
            data.train.labels.numpy(), n_sites, alpha, seed=seed, min_size=min_size
        )
    names = {k: f"site {k}" for k in range(n_sites)}
    shifts = {}
    if partition == "scanner":
        scanners = list(SCANNERS.items())[:n_sites]
        names = {k: f"site {k} ({name})" for k, (name, _) in enumerate(scanners)}
        shifts = {k: prof for k, (_, prof) in enumerate(scanners) if k > 0}
    info = {"partition": partition, "n_sites": n_sites, "alpha": alpha, "small_share": small_share}
    return from_groups(data, groups, names, shifts=shifts, seed=seed, info=info)


def skewed_sites(
    population: Scenario,
    *,
    n_sites: int = 4,
    alpha: float = 0.1,
    min_size: int = 12,
    seed: int = 0,
) -> Scenario:
    """Label-skewed sites over another scenario's images (e.g. the HCM population of
    :func:`medlab.scenario.hcm`, its minority's shift already applied): the training split
    spread over ``n_sites`` by Dirichlet(``alpha``) class proportions, val and test in equal
    stratified parts, as :func:`make_sites` does. The splits are ``population``'s own (same
    images, same order), so ``population.groups[split]`` still says who is in which group."""
    if not isinstance(population, Scenario):
        raise TypeError(f"population must be a Scenario, got {type(population).__name__}")
    n_sites, seed = check_int("n_sites", n_sites, 2, 64), check_int("seed", seed, 0)
    equal = [1.0 / n_sites] * n_sites
    groups = {
        s: assign_groups(population[s].labels.numpy(), equal, seed=[seed, k])
        for k, s in enumerate(SPLITS)
    }
    groups["train"] = dirichlet_groups(
        population.train.labels.numpy(), n_sites, alpha, seed=seed, min_size=min_size
    )
    info = {
        "partition": "dirichlet",
        "n_sites": n_sites,
        "alpha": alpha,
        "population": dict(population.info),
    }
    return Scenario(
        population.name,
        dict(population.splits),
        groups,
        {k: f"site {k}" for k in range(n_sites)},
        population.positive,
        seed,
        info,
        dict(population.provenance),
    )


def site_table(sites: Scenario) -> Any:
    """Training images per site and class (a DataFrame: site, class, images, share of site)."""
    import pandas as pd

    tr = sites.train
    y, g = tr.labels.numpy(), sites.groups["train"]
    rows = [
        {"site": name, "class": tr.label_names[c], "images": int(((g == k) & (y == c)).sum())}
        for k, name in sites.group_names.items()
        for c in tr.label_names
    ]
    df = pd.DataFrame(rows)
    df["share of site"] = df["images"] / df.groupby("site")["images"].transform("sum")
    return df
