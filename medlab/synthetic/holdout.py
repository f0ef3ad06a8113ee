"""Held-out real images for the synthetic lesson: the training split cut into the generators'
training images and ``n`` held-out images of the same source, and equal-n real reference draws."""

from __future__ import annotations

import dataclasses

import numpy as np

from medlab.data import Split
from medlab.utils import check_int, check_scalar

__all__ = ["HeldOut", "hold_out_real"]


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """One split cut in two disjoint parts: ``train`` (what the generators learn from) and
    ``held`` (``n`` images of the same split that no generator sees: membership-attack
    non-members, DCR's new patients, the real-vs-real floor). ``train_idx`` / ``held_idx``:
    their indices (sorted) in the source split."""

    train: Split
    held: Split
    train_idx: np.ndarray
    held_idx: np.ndarray

    @property
    def n(self) -> int:
        """The scorecard's sample size: the number of held-out images."""
        return len(self.held)

    def reference_idx(self, *, seed: int) -> np.ndarray:
        """Indices (n,) into ``train`` of a seeded draw without replacement of ``n`` images."""
        rng = np.random.default_rng([check_int("seed", seed, 0), 7])
        return np.sort(rng.choice(len(self.train), self.n, replace=False))

    def reference(self, *, seed: int) -> Split:
        """``n`` of the generators' training images (seeded draw): the real reference of the
        scorecard at the held-out set's size, and the membership attack's members."""
        return self.train.subset(self.reference_idx(seed=seed))


def hold_out_real(split: Split, n: int, *, seed: int = 0, max_share: float = 0.25) -> HeldOut:
    """Hold ``min(n, round(max_share * len(split)))`` images of ``split`` (seeded, without
    replacement) out of generator training. Both parts come from ``split`` (the same source),
    so a membership attack or a DCR that compares them measures memorisation, not a shift
    between collections (PneumoniaMNIST's test split comes from another collection)."""
    if not isinstance(split, Split):
        raise TypeError(f"split must be a medlab Split (e.g. data.train), got {type(split)}")
    n = check_int("n", n, 2)
    share = check_scalar("max_share", max_share, kind=float, lo=0, hi=0.5)
    k = min(n, round(share * len(split)))
    if k < 2 or len(split) - k < k:
        raise ValueError(
            f"{len(split)} images cannot give {n} held-out images and as many left to train on "
            f"at max_share={share}; pass a larger split or a larger max_share"
        )
    perm = np.random.default_rng([check_int("seed", seed, 0), 27]).permutation(len(split))
    held_idx, train_idx = np.sort(perm[:k]), np.sort(perm[k:])
    return HeldOut(split.subset(train_idx), split.subset(held_idx), train_idx, held_idx)
