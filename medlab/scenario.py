"""Simulated populations: a dataset whose images belong to K named groups, some shifted.

Hospitals in a federation, a majority and a minority of patients, members and non-members of a
training set, real and synthetic images: all are *groups* of one population. A
:class:`Scenario` holds, for each split (train/val/test), the images (with each group's shift
applied), the labels and one group id per image, plus the group names.

* :func:`assign_groups` - stratified by class, K groups at given shares (seeded).
* :func:`make_scenario` - groups at given shares in train/val and in test, each group's images
  passed through its shift (any callable ``(images uint8, labels, *, seed) -> images``).
* :func:`from_groups` - a scenario from group ids you computed yourself (e.g. a Dirichlet label
  skew over hospital sites).
* :func:`hcm` - the preset of the bias lesson: the hypertrophic-cardiomyopathy sex-imbalance
  scenario. The minority (simulated "female") presents its disease differently
  (:class:`PresentationShift`: smaller anatomy, subtler disease signal); the test set is
  balanced by group. The per-dataset default shift strength lives here.

MedMNIST has no sex, site or age metadata: every group here is *simulated*, openly and with
seeds, and results on it are about the mechanism, not about the people in the dataset.

>>> sc = hcm(data, share=0.05, seed=0)                 # doctest: +SKIP
>>> sc.counts()                                        # images per split, group and class
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medlab.data import SPLITS, MedMNISTData, Split
from medlab.utils import check_int, check_scalar

__all__ = [
    "GROUP_NAMES",
    "DEFAULT_STRENGTH",
    "PresentationShift",
    "disease_pattern",
    "apply_shift",
    "disease_class",
    "disease_scores",
    "Scenario",
    "assign_groups",
    "make_scenario",
    "from_groups",
    "hcm",
    "default_strength",
]

#: Group names of the HCM preset (the simulated sensitive attribute "sex").
GROUP_NAMES: dict[int, str] = {0: "male (simulated majority)", 1: "female (simulated minority)"}

#: Default minority shift strength of the HCM preset, per dataset (others: 1.0). BreastMNIST's
#: disease signal is mostly lesion shape and texture, which the average disease pattern captures
#: less than pneumonia's opacity, so the same mechanism needs a stronger setting to show.
DEFAULT_STRENGTH: dict[str, float] = {"breastmnist": 2.0}

# Per-image zoom jitter, as a fraction of the zoom-out (0.8 -> zooms drawn from 0.75..0.85).
_ZOOM_JITTER = 0.25

ShiftFn = Callable[..., torch.Tensor]


# --------------------------------------------------------------------------------------------
# the simulated presentation shift (HCM preset)


@dataclass(frozen=True)
class PresentationShift:
    """How the minority group's disease presents differently (the simulated mechanism).

    Attributes:
        zoom: anatomy scale of minority images (1 = unchanged, 0.8 = 20 % smaller, range
            [0.5, 1.5]). Each image gets a seeded jitter of +/- 25 % of the zoom-out.
        contrast: share of the average disease pattern a diseased minority image keeps
            (1 = unchanged, 0.5 = half as strong, 0 = none; range [0, 1]). The pattern is the
            pixel-wise mean diseased minus mean healthy training image.
    """

    zoom: float = 0.8
    contrast: float = 0.5

    def __post_init__(self) -> None:
        check_scalar("PresentationShift.zoom", self.zoom, kind=float, lo=0.5, hi=1.5,
                     fix="1 = no change, < 1 = smaller anatomy")  # fmt: skip
        check_scalar("PresentationShift.contrast", self.contrast, kind=float, lo=0, hi=1,
                     fix="1 = full disease signal, 0 = none")  # fmt: skip

    @classmethod
    def from_strength(cls, strength: float) -> PresentationShift:
        """One knob for sliders: ``strength`` in [0, 2]; 0 = no shift, 1 = zoom 0.8 and half
        the average disease pattern, 2 = zoom 0.6 and none of the average disease pattern."""
        strength = check_scalar("strength", strength, kind=float, lo=0, hi=2,
                                fix="0 = no shift, 1 = default")  # fmt: skip
        return cls(zoom=round(1.0 - 0.2 * strength, 6), contrast=round(1.0 - 0.5 * strength, 6))

    @property
    def is_identity(self) -> bool:
        return self.zoom == 1.0 and self.contrast == 1.0


def _zoom(x: torch.Tensor, zooms: torch.Tensor) -> torch.Tensor:
    """Scale each image (N, C, H, W float 0..255) about its centre by ``zooms`` (N,); the area
    uncovered by a zoom-out is filled with that image's border mean (its background)."""
    n = x.shape[0]
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)
    bg = border.mean(dim=(1, 2)).view(n, 1, 1, 1)
    inv = 1.0 / zooms
    zero = torch.zeros_like(inv)
    theta = torch.stack([torch.stack([inv, zero, zero], 1), torch.stack([zero, inv, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x - bg, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + bg


def disease_pattern(
    images: torch.Tensor, labels: torch.Tensor, *, positive: int = 1
) -> torch.Tensor:
    """The average disease pattern: mean diseased minus mean healthy image, float (C, H, W) in
    grey levels (-255..255)."""
    labels = torch.as_tensor(labels).reshape(-1)
    pos = labels == positive
    if not bool(pos.any()) or bool(pos.all()):
        raise ValueError(
            "disease_pattern needs both diseased and healthy images; pass "
            "pattern=<mean diseased - mean healthy image (C, H, W)> instead"
        )
    x = images.float()
    return x[pos].mean(0) - x[~pos].mean(0)


def apply_shift(
    images: torch.Tensor,
    labels: torch.Tensor,
    shift: PresentationShift,
    *,
    seed: int = 0,
    positive: int = 1,
    pattern: torch.Tensor | None = None,
) -> torch.Tensor:
    """Give images the minority group's presentation (the caller picks the minority's images).

    1. Subtler disease (diseased images only): ``x <- x - (1 - contrast) * pattern``, where
       ``pattern`` is the average disease pattern (:func:`disease_pattern`), so a diseased
       image keeps only ``contrast`` of the typical difference between disease and health
       (its individual variation is kept).
    2. Smaller anatomy (every image): zoom about the centre by ``shift.zoom`` (each image
       jittered by +/- 25 % of the zoom-out, seeded), the uncovered border filled with the
       image's own background (border mean).

    Args:
        images: uint8 (N, C, H, W); labels: int (N,) class indices.
        shift: the :class:`PresentationShift`; seed: seeds the per-image zoom jitter.
        positive: the class that is "disease".
        pattern: float (C, H, W); default: :func:`disease_pattern` of ``images`` (pass the
            training split's so every split uses the same pattern).
    Returns uint8 (N, C, H, W), a new tensor.
    """
    if not isinstance(shift, PresentationShift):
        raise TypeError(f"shift must be a PresentationShift, got {type(shift).__name__}")
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = (images.dtype, tuple(images.shape)) if isinstance(images, torch.Tensor) else images
        raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {got}")
    labels = torch.as_tensor(labels).reshape(-1)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries but images has {images.shape[0]}")
    seed = check_int("seed", seed, 0)
    x = images.float()
    if len(x) == 0 or shift.is_identity:
        return images.clone()
    pos = labels == positive
    if shift.contrast < 1.0 and bool(pos.any()):
        if pattern is None:
            pattern = disease_pattern(images, labels, positive=positive)
        pattern = torch.as_tensor(pattern).float()
        if pattern.shape != x.shape[1:]:
            raise ValueError(
                f"pattern must have shape {tuple(x.shape[1:])} (C, H, W), got "
                f"{tuple(pattern.shape)}"
            )
        x[pos] = x[pos] - (1.0 - shift.contrast) * pattern
    if shift.zoom != 1.0:
        gen = torch.Generator().manual_seed(seed)
        u = torch.rand(len(x), generator=gen) * 2.0 - 1.0
        zooms = shift.zoom + (1.0 - shift.zoom) * _ZOOM_JITTER * u
        x = _zoom(x, zooms)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def disease_class(data: MedMNISTData | Split) -> int:
    """The class index that means "disease" for a binary task: the one whose label name says
    malignant/pneumonia/abnormal/disease/positive, else 1 (BreastMNIST: 0 = malignant)."""
    names = {k: v.lower() for k, v in data.label_names.items()}
    for word in ("malignant", "pneumonia", "abnormal", "disease", "positive", "tumor"):
        hits = [k for k, v in names.items() if word in v]
        if len(hits) == 1:
            return hits[0]
    return 1


# --------------------------------------------------------------------------------------------
# the scenario


@dataclass
class Scenario:
    """A dataset whose images belong to K named groups, per split.

    Attributes:
        name: the dataset's name; splits: ``{"train"|"val"|"test": Split}`` with each group's
            shift already applied; groups: ``{split: int array (N_split,)}`` of group ids;
        group_names: ``{id: name}`` in display order; positive: the disease class (binary
            tasks) or None; seed: what the assignment and shifts were seeded with; info: the
            settings (preset, shares, shift) for the record; provenance: the source dataset's.
    """

    name: str
    splits: dict[str, Split]
    groups: dict[str, np.ndarray]
    group_names: dict[int, str]
    positive: int | None = None
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)
    pattern: torch.Tensor | None = field(default=None, repr=False)

    def __getitem__(self, split: str) -> Split:
        if split not in self.splits:
            raise KeyError(f"unknown split {split!r}; choose one of {list(self.splits)}")
        return self.splits[split]

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def val(self) -> Split:
        return self.splits["val"]

    @property
    def test(self) -> Split:
        return self.splits["test"]

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def minority_share(self) -> float:
        """HCM preset: the minority's share of the training set."""
        return float(self.info["share"])

    @property
    def shift(self) -> PresentationShift:
        """HCM preset: the minority's presentation shift."""
        return PresentationShift(**self.info["shift"])

    def y(self, split: str = "test") -> np.ndarray:
        """0/1 disease indicator (N,) of a split (1 = the ``positive`` class)."""
        if self.positive is None:
            raise ValueError(f"scenario {self.name!r} has no disease class (positive=None)")
        return (self[split].labels.numpy() == self.positive).astype(np.int64)

    @property
    def test_y(self) -> np.ndarray:
        return self.y("test")

    def group(self, split: str, group: int | str) -> Split:
        """The images of one group in one split (e.g. one hospital's training data)."""
        gid = self._gid(group)
        return self[split].subset(np.flatnonzero(self.groups[split] == gid))

    def _gid(self, group: int | str) -> int:
        if isinstance(group, str):
            ids = [k for k, v in self.group_names.items() if v == group]
            if not ids:
                raise KeyError(
                    f"no group named {group!r}; groups: {list(self.group_names.values())}"
                )
            return ids[0]
        gid = check_int("group", group)
        if gid not in self.group_names:
            raise KeyError(f"no group {gid}; groups: {self.group_names}")
        return gid

    def shares(self, split: str = "train") -> dict[str, float]:
        """Each group's share of a split."""
        g = self.groups[split]
        return {n: float(np.mean(g == k)) if len(g) else 0.0 for k, n in self.group_names.items()}

    def counts(self) -> Any:
        """Images per split, group and class, as a pandas DataFrame."""
        import pandas as pd

        rows = []
        for s, split in self.splits.items():
            labels = split.labels.numpy()
            for k, gname in self.group_names.items():
                m = self.groups[s] == k
                row: dict[str, Any] = {"split": s, "group": gname, "images": int(m.sum())}
                if self.positive is not None:
                    row["diseased"] = int((labels[m] == self.positive).sum())
                    row["healthy"] = int(m.sum() - row["diseased"])
                elif not split.multilabel:
                    for c, cname in split.label_names.items():
                        row[cname] = int((labels[m] == c).sum())
                row["share of split"] = float(m.mean()) if len(m) else 0.0
                rows.append(row)
        return pd.DataFrame(rows)


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
        g = np.asarray(groups[s]).reshape(-1)
        split = data[s]
        if len(g) != len(split):
            raise ValueError(f"groups[{s!r}] has {len(g)} entries but the split has {len(split)}")
        if len(g) and not np.isin(g, list(names)).all():
            raise ValueError(
                f"groups[{s!r}] holds ids {sorted(set(g.tolist()) - set(names))} "
                f"that names does not name"
            )
        images = split.images.clone()
        for gid, fn in shifts.items():
            m = torch.from_numpy(g == gid)
            if bool(m.any()):
                shifted = fn(split.images[m], split.labels[m], seed=seed * 3 + k)
                if shifted.shape != images[m].shape or shifted.dtype != torch.uint8:
                    raise ValueError(
                        f"the shift of group {gid} must return uint8 images of the "
                        f"same shape, got {shifted.dtype} {tuple(shifted.shape)}"
                    )
                images[m] = shifted
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


def default_strength(data: MedMNISTData | str) -> float:
    """The HCM preset's minority shift strength for a dataset (see :data:`DEFAULT_STRENGTH`)."""
    name = data if isinstance(data, str) else data.name
    like = name
    try:
        from medlab import cards

        c = cards.card(name)
        like = c.get("like", name) if c["kind"] == "custom" else name
    except KeyError:
        pass
    return DEFAULT_STRENGTH.get(name, DEFAULT_STRENGTH.get(like, 1.0))


def hcm(
    data: MedMNISTData,
    share: float = 0.05,
    *,
    strength: float | None = None,
    seed: int = 0,
    positive: int | None = None,
) -> Scenario:
    """The bias lesson's population: the HCM sex-imbalance scenario, simulated on a binary task.

    Group 0 is the simulated majority ("male"), group 1 the minority ("female") at ``share`` of
    train and val (each class alike; the training set keeps all its images), 50/50 in test.
    Minority images in every split get :meth:`PresentationShift.from_strength` (``strength``;
    default :func:`default_strength`), with the *training* split's average disease pattern.

    Args:
        data: a binary-class dataset (pneumoniamnist, breastmnist, ...).
        share: the minority's share of train and val, in [0, 0.5].
        strength: shift strength in [0, 2] (0 = none, 1 = zoom 0.8 and half the pattern).
        seed: seeds the group assignment and the zoom jitter.
        positive: the disease class (default :func:`disease_class`).
    """
    if not isinstance(data, MedMNISTData):
        raise TypeError(f"data must come from medlab.load(...), got {type(data).__name__}")
    if data.task != "binary-class":
        raise ValueError(
            f"the HCM scenario needs a binary-class dataset (e.g. pneumoniamnist, "
            f"breastmnist); {data.name} is {data.task!r}"
        )
    share = check_scalar("share", share, kind=float, lo=0, hi=0.5,
                         fix="the minority is at most half")  # fmt: skip
    strength = default_strength(data) if strength is None else strength
    shift = PresentationShift.from_strength(strength)
    positive = disease_class(data) if positive is None else check_int("positive", positive, 0)
    if positive not in data.label_names:
        raise ValueError(f"positive={positive} is not a class of {data.name} ({data.label_names})")
    pattern = disease_pattern(data.train.images, data.train.labels, positive=positive)
    fn = functools.partial(apply_shift, shift=shift, positive=positive, pattern=pattern)
    info = {
        "preset": "hcm",
        "share": float(share),
        "strength": float(strength),
        "shift": {"zoom": shift.zoom, "contrast": shift.contrast},
    }
    return make_scenario(
        data,
        [1.0 - float(share), float(share)],
        names=GROUP_NAMES,
        test_shares=[0.5, 0.5],
        shifts={1: fn},
        seed=seed,
        positive=positive,
        info=info,
        pattern=pattern,
    )


def disease_scores(
    model: torch.nn.Module,
    scenario: Scenario | Split,
    split: str = "test",
    *,
    positive: int | None = None,
) -> np.ndarray:
    """Predicted probability of disease, float64 (N,), for a scenario split (or a Split)."""
    from medlab.train import predict

    if isinstance(scenario, Scenario):
        positive = scenario.positive if positive is None else positive
        scenario = scenario[split]
    return predict(model, scenario)[:, 1 if positive is None else positive].astype(np.float64)
