"""Making groups: stratified assignment at given shares (:func:`assign_groups`), a scenario from
group ids you computed (:func:`from_groups`) and groups at shares in train/val and in test, each
passed through its shift (:func:`make_scenario`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from medlab.data import SPLITS, MedMNISTData, Split
from medlab.scenario.population import Scenario
from medlab.scenario.shift import ShiftFn
from medlab.utils import check_int

__all__ = ["assign_groups", "from_groups", "make_scenario"]


def _check_shares(shares: Any, name: str) -> np.ndarray:
    if isinstance(shares, str) or not isinstance(shares, Sequence | np.ndarray):
        raise ValueError(
            f"{name} must be a list of group shares such as [0.95, 0.05], got {shares!r}"
        )
    p = np.asarray(shares, dtype=float)
    if p.ndim != 1 or len(p) < 1 or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{name} must be non-negative numbers, one per group, got {shares!r}")
    if abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"{name} must sum to 1 (one share per group), got {shares!r} (sum {p.sum():g})"
        )
    return p


def assign_groups(
    labels: np.ndarray | torch.Tensor, shares: Sequence[float], *, seed: int | Sequence[int] = 0
) -> np.ndarray:
    """Group ids (N,) with group k holding a share ``shares[k]`` of every class (stratified).

    Per class, the images are shuffled (seeded) and cut into consecutive blocks of
    ``round(share * n_class)`` images (largest-remainder rounding, ties broken at random), the
    non-reference groups (1, 2, ...) first and group 0 last. For multi-label labels (N, L) the
    first label stratifies."""
    p = _check_shares(shares, "shares")
    p = p / p.sum()  # exactly 1, so the rounding below never over- or under-fills a class
    y = np.asarray(labels)
    y = y[:, 0] if y.ndim == 2 else y.reshape(-1)
    rng = np.random.default_rng(seed)
    groups = np.zeros(len(y), dtype=np.int64)
    order = list(range(1, len(p))) + [0]
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        raw = p * len(idx)
        n = np.floor(raw).astype(int)
        rest = len(idx) - n.sum()
        if rest:
            frac = raw - n + rng.random(len(p)) * 1e-9  # random tie-break
            n[np.argsort(-frac)[:rest]] += 1
        start = 0
        for k in order:
            groups[idx[start : start + n[k]]] = k
            start += n[k]
    return groups


def from_groups(
    data: MedMNISTData,
    groups: Mapping[str, np.ndarray],
    names: Mapping[int, str],
    *,
    shifts: Mapping[int, ShiftFn] | None = None,
    seed: int = 0,
    positive: int | None = None,
    info: dict[str, Any] | None = None,
    pattern: torch.Tensor | None = None,
) -> Scenario:
    """A scenario from group ids you computed: ``groups[split]`` int (N_split,) for each of
    train/val/test, ``names`` ``{id: name}``. ``shifts[id]`` is called as
    ``shift(images_uint8, labels, seed=...)`` on that group's images in every split and must
    return uint8 images of the same shape (seeded per split)."""
    if not isinstance(data, MedMNISTData):
        raise TypeError(f"data must come from medlab.load(...), got {type(data).__name__}")
    if not isinstance(names, Mapping) or not names:
        raise ValueError("names must be a dict {group id: name}, e.g. {0: 'site A', 1: 'site B'}")
    names = {check_int("group id", k, 0): str(v) for k, v in names.items()}
    seed = check_int("seed", seed, 0)
    shifts = dict(shifts or {})
    for k, fn in shifts.items():
        if k not in names or not callable(fn):
            raise ValueError(f"shifts must map group ids in {list(names)} to callables, got {k!r}")
    out_groups, splits = {}, {}
    for k, s in enumerate(SPLITS):
        if s not in groups:
            raise ValueError(f"groups needs an array for each split {SPLITS}; {s!r} is missing")
        split = data[s]
        g = _check_group_ids(np.asarray(groups[s]).reshape(-1), split, names, s)
        images = _shifted_images(split, g, shifts, seed=seed * 3 + k)
        out_groups[s] = g.astype(np.int64)
        splits[s] = Split(
            split.name, s, images, split.labels.clone(), split.task, dict(split.label_names)
        )
    return Scenario(
        data.name,
        splits,
        out_groups,
        names,
        positive,
        seed,
        dict(info or {}),
        dict(data.provenance),
        pattern,
    )


def _check_group_ids(g: np.ndarray, split: Split, names: Mapping[int, str], s: str) -> np.ndarray:
    """``g``: one group id per image of ``split``, each one that ``names`` names."""
    if len(g) != len(split):
        raise ValueError(f"groups[{s!r}] has {len(g)} entries but the split has {len(split)}")
    if len(g) and not np.isin(g, list(names)).all():
        raise ValueError(
            f"groups[{s!r}] holds ids {sorted(set(g.tolist()) - set(names))} "
            f"that names does not name"
        )
    return g


def _shifted_images(
    split: Split, g: np.ndarray, shifts: Mapping[int, ShiftFn], *, seed: int
) -> torch.Tensor:
    """The split's images with each group's shift applied to that group's images (a copy)."""
    images = split.images.clone()
    for gid, fn in shifts.items():
        m = torch.from_numpy(g == gid)
        if bool(m.any()):
            shifted = fn(split.images[m], split.labels[m], seed=seed)
            if shifted.shape != images[m].shape or shifted.dtype != torch.uint8:
                raise ValueError(
                    f"the shift of group {gid} must return uint8 images of the "
                    f"same shape, got {shifted.dtype} {tuple(shifted.shape)}"
                )
            images[m] = shifted
    return images


def make_scenario(
    data: MedMNISTData,
    shares: Sequence[float],
    *,
    names: Mapping[int, str] | None = None,
    test_shares: Sequence[float] | None = None,
    shifts: Mapping[int, ShiftFn] | None = None,
    seed: int = 0,
    positive: int | None = None,
    info: dict[str, Any] | None = None,
    pattern: torch.Tensor | None = None,
) -> Scenario:
    """Groups at ``shares`` (one per group, summing to 1) in train and val, stratified by class
    (:func:`assign_groups`), and at ``test_shares`` in test (default: equal shares, so every
    group is tested on as many patients). The split sizes never change: only who is in which
    group. Each split is seeded by ``[seed, split index]``."""
    seed = check_int("seed", seed, 0)
    p = _check_shares(shares, "shares")
    q = (
        _check_shares(test_shares, "test_shares")
        if test_shares is not None
        else np.full(len(p), 1.0 / len(p))
    )
    if len(q) != len(p):
        raise ValueError(f"test_shares has {len(q)} groups but shares has {len(p)}")
    names = dict(names) if names is not None else {k: f"group {k}" for k in range(len(p))}
    if sorted(names) != list(range(len(p))):
        raise ValueError(f"names must name groups 0..{len(p) - 1}, got {sorted(names)}")
    groups = {
        s: assign_groups(data[s].labels.numpy(), q if s == "test" else p, seed=[seed, k])
        for k, s in enumerate(SPLITS)
    }
    info = {"shares": p.tolist(), "test_shares": q.tolist(), **(info or {})}
    return from_groups(
        data, groups, names, shifts=shifts, seed=seed, positive=positive, info=info, pattern=pattern
    )
