"""Lesson 03 (bias): the HCM sex-imbalance scenario, simulated on a binary MedMNIST task.

The seed paper's example: a model trained mostly on male patients misses hypertrophic
cardiomyopathy (HCM) in women, whose disease presents differently (smaller hearts, so a fixed
wall-thickness threshold flags mostly men). MedMNIST has no sex metadata, so this module
*simulates* it, openly and with seeds:

1. every image gets a simulated group, ``0`` (majority) or ``1`` (minority), at a chosen share;
2. the minority's images get a group-specific :class:`PresentationShift` (:func:`apply_shift`):
   smaller anatomy (zoom-out) and a subtler disease signal (part of the average disease pattern
   taken out of diseased images). This is a stand-in for the HCM mechanism, not a claim
   about the anatomy of the people in the dataset;
3. a model is trained (:func:`train_scenario`, optionally with a mitigation) and measured per
   group with fairlearn (:func:`group_metrics`), with group-specific thresholds from fairlearn's
   ``ThresholdOptimizer`` (:func:`group_thresholds`) as a post-processing mitigation.

>>> sc = make_scenario(data, 0.05, shift=PresentationShift(zoom=0.8, contrast=0.5), seed=0)
>>> model, hist = train_scenario(sc, seed=0, epochs=6)                       # doctest: +SKIP
>>> gm = group_metrics(sc.test_y, disease_scores(model, sc), sc.groups["test"])  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin

from medlab.data import MedMNISTData, Split
from medlab.models import SmallCNN
from medlab.train import History, fit, predict
from medlab.utils import progress, seed_everything

__all__ = [
    "GROUP_NAMES",
    "MITIGATIONS",
    "PresentationShift",
    "disease_pattern",
    "apply_shift",
    "disease_class",
    "Scenario",
    "make_scenario",
    "group_weights",
    "group_balanced_index",
    "train_scenario",
    "disease_scores",
    "youden_threshold",
    "GroupMetrics",
    "group_metrics",
    "ScoreClassifier",
    "group_thresholds",
    "shannon_index",
    "gini_simpson",
    "gini_coefficient",
    "composition",
    "Sweep",
    "run_sweep",
    "summarize",
    "score_distributions",
    "calibration_curves",
    "gap_vs_share",
    "shift_examples",
    "explorer",
]

#: Names of the simulated sensitive attribute ("sex") values.
GROUP_NAMES: dict[int, str] = {0: "male (simulated majority)", 1: "female (simulated minority)"}

#: Training-time mitigations understood by :func:`train_scenario`.
MITIGATIONS: tuple[str | None, ...] = (None, "reweight", "resample")

# Per-image zoom jitter, as a fraction of the zoom-out (0.8 -> zooms drawn from 0.75..0.85).
_ZOOM_JITTER = 0.25


# --------------------------------------------------------------------------------------------
# the simulated presentation shift


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
        if not (isinstance(self.zoom, (int, float)) and 0.5 <= self.zoom <= 1.5):
            raise ValueError(
                f"PresentationShift.zoom must be in [0.5, 1.5] (1 = no change, "
                f"< 1 = smaller anatomy), got {self.zoom!r}"
            )
        if not (isinstance(self.contrast, (int, float)) and 0.0 <= self.contrast <= 1.0):
            raise ValueError(
                f"PresentationShift.contrast must be in [0, 1] (1 = full disease "
                f"signal, 0 = none), got {self.contrast!r}"
            )

    @classmethod
    def from_strength(cls, strength: float) -> PresentationShift:
        """One knob for sliders: ``strength`` in [0, 2]; 0 = no shift, 1 = the default
        (zoom 0.8, contrast 0.5), 2 = zoom 0.6 and none of the average disease pattern left."""
        if not (isinstance(strength, (int, float)) and 0.0 <= strength <= 2.0):
            raise ValueError(
                f"strength must be in [0, 2] (0 = no shift, 1 = default), got {strength!r}"
            )
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
       ``pattern`` is the average disease pattern (:func:`disease_pattern`: mean diseased minus
       mean healthy image), so a diseased image keeps only ``contrast`` of the typical
       difference between disease and health (its individual variation is kept).
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
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
        )
    labels = torch.as_tensor(labels).reshape(-1)
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} entries but images has {images.shape[0]}")
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
        gen = torch.Generator().manual_seed(int(seed))
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
# scenarios: group assignment, shares, shifted splits


@dataclass
class Scenario:
    """A dataset with a simulated sensitive attribute and a shifted minority.

    ``groups[s]`` is an int array (N_s,) of 0 (majority) / 1 (minority) aligned with split ``s``;
    the minority's images in every split are already shifted. ``positive`` is the disease class.
    """

    name: str
    train: Split
    val: Split
    test: Split
    groups: dict[str, np.ndarray]
    minority_share: float
    shift: PresentationShift
    seed: int
    positive: int = 1
    pattern: torch.Tensor | None = field(default=None, repr=False)

    def __getitem__(self, split: str) -> Split:
        return getattr(self, split)

    def y(self, split: str = "test") -> np.ndarray:
        """0/1 disease indicator (N,) of a split (1 = the ``positive`` class)."""
        return (self[split].labels.numpy() == self.positive).astype(np.int64)

    @property
    def test_y(self) -> np.ndarray:
        return self.y("test")

    def counts(self) -> Any:
        """Images per split, group and class, as a pandas DataFrame."""
        import pandas as pd

        rows = []
        for s in ("train", "val", "test"):
            y = self.y(s)
            for g, gname in GROUP_NAMES.items():
                m = self.groups[s] == g
                rows.append(
                    {
                        "split": s,
                        "group": gname,
                        "images": int(m.sum()),
                        "diseased": int(y[m].sum()),
                        "healthy": int((1 - y[m]).sum()),
                        "share of split": float(m.mean()) if len(m) else 0.0,
                    }
                )
        return pd.DataFrame(rows)


def _assign(labels: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Groups (N,) with ``round(share * n_c)`` minority images in every class c (stratified)."""
    groups = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_min = int(round(share * len(idx)))
        if share == 0.5 and len(idx) % 2:  # odd class size: coin flip for the last image
            n_min = len(idx) // 2 + int(rng.integers(2))
        groups[idx[:n_min]] = 1
    return groups


def _pattern(data: MedMNISTData, positive: int) -> torch.Tensor:
    """The training split's average disease pattern (see :func:`disease_pattern`)."""
    return disease_pattern(data.train.images, data.train.labels, positive=positive)


def _scenario_split(
    data: MedMNISTData,
    s: str,
    share: float,
    shift: PresentationShift,
    seed: int,
    positive: int,
    pattern: torch.Tensor,
) -> tuple[np.ndarray, Split]:
    """Groups and shifted images of one split (test: 50/50, independent of ``share``)."""
    k = ("train", "val", "test").index(s)
    split = data[s]
    rng = np.random.default_rng([seed, k])
    g = _assign(split.labels.numpy(), 0.5 if s == "test" else float(share), rng)
    images = split.images.clone()
    m = torch.from_numpy(g == 1)
    if bool(m.any()):
        images[m] = apply_shift(
            split.images[m],
            split.labels[m],
            shift,
            seed=seed * 3 + k,
            positive=positive,
            pattern=pattern,
        )
    return g, Split(
        split.name, s, images, split.labels.clone(), split.task, dict(split.label_names)
    )


def make_scenario(
    data: MedMNISTData,
    minority_share: float = 0.05,
    *,
    shift: PresentationShift = PresentationShift(),
    seed: int = 0,
    positive: int | None = None,
) -> Scenario:
    """Simulate the sensitive attribute and the minority's presentation on a binary dataset.

    Train and val keep all their images; a share ``minority_share`` of each class becomes the
    minority (so the training-set size is the same at every share, only its make-up changes).
    The test split is split 50/50 by group within each class (balanced by group, same class mix
    in both groups), independently of the share, so every share is tested on the same patients.
    The *training* split's average disease pattern is used for all splits.

    Args:
        data: a binary-class dataset (e.g. pneumoniamnist, breastmnist).
        minority_share: share of the minority in train and val, in [0, 0.5].
        shift: the minority's :class:`PresentationShift`.
        seed: seeds the group assignment and the zoom jitter.
        positive: disease class (default :func:`disease_class`).
    """
    if data.task != "binary-class":
        raise ValueError(
            f"make_scenario needs a binary-class dataset (e.g. pneumoniamnist, "
            f"breastmnist); {data.name} is {data.task!r}"
        )
    if not (isinstance(minority_share, (int, float)) and 0.0 <= minority_share <= 0.5):
        raise ValueError(
            f"minority_share must be in [0, 0.5] (the minority is at most half), "
            f"got {minority_share!r}"
        )
    if not isinstance(shift, PresentationShift):
        raise TypeError(f"shift must be a PresentationShift, got {type(shift).__name__}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    positive = disease_class(data) if positive is None else int(positive)
    if positive not in data.label_names:
        raise ValueError(f"positive={positive} is not a class of {data.name} ({data.label_names})")
    pattern = _pattern(data, positive)
    groups, splits = {}, {}
    for s in ("train", "val", "test"):
        groups[s], splits[s] = _scenario_split(
            data, s, minority_share, shift, seed, positive, pattern
        )
    return Scenario(
        data.name,
        splits["train"],
        splits["val"],
        splits["test"],
        groups,
        float(minority_share),
        shift,
        seed,
        positive,
        pattern,
    )


# --------------------------------------------------------------------------------------------
# training, with training-time mitigations


def group_weights(groups: np.ndarray) -> np.ndarray:
    """Per-image loss weights (N,) that give every group the same total weight:
    ``w_i = N / (K * n_{g_i})`` (mean weight 1)."""
    groups = np.asarray(groups)
    values, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return (len(groups) / (len(values) * counts[inverse])).astype(np.float32)


def group_balanced_index(groups: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Indices that oversample every group (with replacement, after one full copy) up to the
    largest group's size; all original images are kept. Shape (K * n_max,)."""
    groups = np.asarray(groups)
    rng = np.random.default_rng(seed)
    values, counts = np.unique(groups, return_counts=True)
    n_max = int(counts.max())
    out = []
    for v, n in zip(values, counts, strict=True):
        idx = np.flatnonzero(groups == v)
        extra = rng.choice(idx, size=n_max - n, replace=True) if n < n_max else idx[:0]
        out.append(np.concatenate([idx, extra]))
    return np.sort(np.concatenate(out))


def train_scenario(
    scenario: Scenario,
    *,
    seed: int = 0,
    mitigation: str | None = None,
    width: int = 16,
    **fit_kwargs: Any,
) -> tuple[torch.nn.Module, History]:
    """Train a :class:`~medlab.models.SmallCNN` on ``scenario.train`` (val for model selection).

    Args:
        mitigation: ``None``; ``"reweight"`` (group-balanced loss weights, :func:`group_weights`,
            via ``fit(sample_weight=...)``); or ``"resample"`` (minority oversampled to the
            majority's size, :func:`group_balanced_index`).
        width: SmallCNN width (16 is enough for 28 px and twice as fast as 32).
        fit_kwargs: passed to :func:`medlab.train.fit` (default ``epochs=8``).
    Returns (model, history); the model is in eval mode.
    """
    if mitigation not in MITIGATIONS:
        raise ValueError(f"mitigation must be one of {MITIGATIONS}, got {mitigation!r}")
    fit_kwargs.setdefault("epochs", 8)
    fit_kwargs.setdefault(
        "desc", f"{scenario.name} share={scenario.minority_share:g} {mitigation or 'baseline'}"
    )
    train, g = scenario.train, scenario.groups["train"]
    if mitigation == "reweight":
        if "sample_weight" in fit_kwargs:
            raise ValueError("mitigation='reweight' sets sample_weight itself; do not pass one")
        fit_kwargs["sample_weight"] = torch.from_numpy(group_weights(g))
    elif mitigation == "resample":
        n = len(train)
        train = train.subset(group_balanced_index(g, seed=seed))
        # same number of optimisation steps as the baseline (equal compute): fewer epochs
        fit_kwargs["epochs"] = max(1, round(fit_kwargs["epochs"] * n / len(train)))
    seed_everything(seed)
    model = SmallCNN(int(train.images.shape[1]), train.n_classes, width=width)
    hist = fit(model, train, scenario.val, seed=seed, **fit_kwargs)
    hist.config.update(
        mitigation=mitigation,
        minority_share=scenario.minority_share,
        shift={"zoom": scenario.shift.zoom, "contrast": scenario.shift.contrast},
        scenario_seed=scenario.seed,
        width=width,
    )
    model.eval()
    return model, hist


def disease_scores(
    model: torch.nn.Module,
    scenario: Scenario | Split,
    split: str = "test",
    *,
    positive: int | None = None,
) -> np.ndarray:
    """Predicted probability of disease, shape (N,), for a scenario split (or a Split)."""
    if isinstance(scenario, Scenario):
        positive = scenario.positive if positive is None else positive
        scenario = scenario[split]
    return predict(model, scenario)[:, 1 if positive is None else positive].astype(np.float64)


# --------------------------------------------------------------------------------------------
# measuring: fairlearn's MetricFrame per group


def youden_threshold(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """The one global threshold that maximises Youden's J = TPR - FPR on ``(y_true, y_score)``
    (usually the validation split, so it is set mostly by the majority, like a fixed 15 mm
    wall-thickness cut-off). Returned in (0, 1)."""
    from sklearn.metrics import roc_curve

    y_true = np.asarray(y_true).astype(int).reshape(-1)
    if len(np.unique(y_true)) != 2:
        raise ValueError("youden_threshold needs both classes in y_true")
    fpr, tpr, thr = roc_curve(y_true, np.asarray(y_score, dtype=float).reshape(-1))
    ok = np.isfinite(thr)
    best = np.argmax((tpr - fpr)[ok])
    return float(np.clip(thr[ok][best], 1e-6, 1 - 1e-6))


def _auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, y_score)) if len(np.unique(y_true)) == 2 else math.nan


@dataclass
class GroupMetrics:
    """Per-group metrics of one model on one test set.

    Attributes:
        frame: the fairlearn ``MetricFrame`` (rows: groups; columns: auc, tpr, fnr, fpr,
            selection_rate, accuracy), with bootstrap intervals when ``n_boot`` was given.
        gap: majority minus minority for every metric (positive = the minority is lower).
        equalized_odds_difference: fairlearn's ``max(|TPR gap|, |FPR gap|)``.
        overall: the metrics on the whole test set.
        ci: {"lo": DataFrame, "hi": DataFrame} per-group bootstrap interval, or None.
    """

    frame: Any
    gap: dict[str, float]
    equalized_odds_difference: float
    overall: dict[str, float]
    ci: dict[str, Any] | None = None

    @property
    def by_group(self) -> Any:
        """Per-group metrics, pandas DataFrame indexed by group name."""
        return self.frame.by_group

    def table(self) -> Any:
        """by_group plus rows 'difference (max - min)' and 'ratio (min / max)' from fairlearn."""
        import pandas as pd

        t = self.frame.by_group.copy()
        t.loc["difference (max - min)"] = self.frame.difference()
        t.loc["ratio (min / max)"] = self.frame.ratio()
        return pd.DataFrame(t)

    def row(self) -> dict[str, float]:
        """One flat dict: ``<metric>_maj``, ``<metric>_min``, ``<metric>_gap``, ``eod`` and the
        overall accuracy ``acc`` (for sweep tables)."""
        bg = self.frame.by_group
        out: dict[str, float] = {}
        for m in bg.columns:
            out[f"{m}_maj"] = float(bg.loc[GROUP_NAMES[0], m])
            out[f"{m}_min"] = float(bg.loc[GROUP_NAMES[1], m])
            out[f"{m}_gap"] = self.gap[m]
        out["eod"] = self.equalized_odds_difference
        out["acc"] = self.overall["accuracy"]
        out["balanced_acc"] = self.overall["balanced_accuracy"]
        out["auc"] = self.overall["auc"]
        return out


def group_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    threshold: float = 0.5,
    y_pred: np.ndarray | None = None,
    n_boot: int | None = None,
    seed: int = 0,
) -> GroupMetrics:
    """Per-group AUC, TPR (sensitivity), FNR, FPR, selection rate and accuracy with fairlearn.

    Args:
        y_true: 0/1 disease (N,); y_score: disease probability (N,); groups: 0/1 (N,).
        threshold: one global decision threshold on ``y_score`` (ignored if ``y_pred`` given).
        y_pred: 0/1 decisions (N,) from elsewhere (e.g. :func:`group_thresholds`); AUC still
            uses ``y_score``.
        n_boot: bootstrap resamples for 95 % intervals (fairlearn's MetricFrame ``n_boot``).
    """
    from fairlearn.metrics import (
        MetricFrame,
        equalized_odds_difference,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    y_true = np.asarray(y_true).astype(int).reshape(-1)
    y_score = np.asarray(y_score, dtype=float).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    if not (len(y_true) == len(y_score) == len(groups)):
        raise ValueError(
            f"y_true, y_score and groups must have the same length, got "
            f"{len(y_true)}, {len(y_score)}, {len(groups)}"
        )
    if not set(np.unique(groups)) <= set(GROUP_NAMES) or len(np.unique(groups)) != 2:
        raise ValueError(
            f"groups must hold both 0 (majority) and 1 (minority), got {np.unique(groups).tolist()}"
        )
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if y_pred is None:
        y_pred = (y_score >= threshold).astype(int)
    y_pred = np.asarray(y_pred).astype(int).reshape(-1)
    names = np.array([GROUP_NAMES[int(g)] for g in groups])
    # one MetricFrame on the decisions; AUC reads the scores, passed as a per-row parameter
    # (MetricFrame splits sample_params by group, and resamples them when bootstrapping)
    metrics = {
        "auc": lambda yt, yp, y_score: _auc(np.asarray(yt), np.asarray(y_score)),
        "tpr": true_positive_rate,
        "fnr": false_negative_rate,
        "fpr": false_positive_rate,
        "selection_rate": selection_rate,
        "accuracy": accuracy_score,
    }
    kw: dict[str, Any] = {}
    if n_boot:
        kw = dict(n_boot=int(n_boot), ci_quantiles=[0.025, 0.975], random_state=seed)
    mf = MetricFrame(
        metrics=metrics,
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=names,
        sample_params={"auc": {"y_score": y_score}},
        **kw,
    )
    bg = mf.by_group
    gap = {m: float(bg.loc[GROUP_NAMES[0], m] - bg.loc[GROUP_NAMES[1], m]) for m in bg.columns}
    eod = float(equalized_odds_difference(y_true, y_pred, sensitive_features=names))
    overall = {m: float(v) for m, v in mf.overall.items()}
    overall["balanced_accuracy"] = float(balanced_accuracy_score(y_true, y_pred))
    ci = None
    if n_boot:
        ci = {"lo": mf.by_group_ci[0], "hi": mf.by_group_ci[1]}
    return GroupMetrics(mf, gap, eod, overall, ci)


# --------------------------------------------------------------------------------------------
# post-processing mitigation: group-specific thresholds (fairlearn's ThresholdOptimizer)


class ScoreClassifier(ClassifierMixin, BaseEstimator):
    """A minimal scikit-learn classifier whose input *is* a precomputed disease score:
    ``X`` (N, 1) -> ``predict_proba`` (N, 2) = [1 - s, s]. Lets fairlearn's ThresholdOptimizer
    (``prefit=True``) post-process any model's scores."""

    classes_ = np.array([0, 1])

    def fit(self, X: Any, y: Any = None) -> ScoreClassifier:
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        s = np.asarray(X, dtype=float).reshape(-1)
        return np.stack([1.0 - s, s], 1)

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def __sklearn_is_fitted__(self) -> bool:
        return True


def _folds(y: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id (N,) stratified by group x class."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for g in np.unique(groups):
        for c in np.unique(y):
            idx = np.flatnonzero((groups == g) & (y == c))
            idx = idx[rng.permutation(len(idx))]
            fold[idx] = np.arange(len(idx)) % k
    return fold


def group_thresholds(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    constraints: str = "equalized_odds",
    objective: str = "balanced_accuracy_score",
    folds: int = 2,
    seed: int = 0,
) -> np.ndarray:
    """Group-specific thresholds with fairlearn's ``ThresholdOptimizer`` (prefit, on scores),
    cross-fitted: the thresholds for one fold are fit on the other folds, so no image is
    decided by thresholds fit on its own label. Returns 0/1 decisions (N,).

    ``constraints``: ``"equalized_odds"`` (equal TPR and FPR, randomised between thresholds)
    or ``"true_positive_rate_parity"`` etc., see fairlearn. ``folds`` >= 2.
    """
    from fairlearn.postprocessing import ThresholdOptimizer

    if folds < 2:
        raise ValueError(f"folds must be >= 2 (cross-fitting), got {folds}")
    y_true = np.asarray(y_true).astype(int).reshape(-1)
    y_score = np.asarray(y_score, dtype=float).reshape(-1)
    groups = np.asarray(groups).reshape(-1)
    fold = _folds(y_true, groups, folds, seed)
    out = np.zeros(len(y_true), dtype=int)
    for f in range(folds):
        fit_rows, apply_rows = fold != f, fold == f
        to = ThresholdOptimizer(
            estimator=ScoreClassifier(),
            constraints=constraints,
            objective=objective,
            prefit=True,
            predict_method="predict_proba",
        )
        to.fit(y_score[fit_rows, None], y_true[fit_rows], sensitive_features=groups[fit_rows])
        out[apply_rows] = to.predict(
            y_score[apply_rows, None], sensitive_features=groups[apply_rows], random_state=seed + f
        )
    return out


# --------------------------------------------------------------------------------------------
# diversity of a training set's group composition (the seed paper's measures)


def _shares(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    c = np.asarray(counts, dtype=float).reshape(-1)
    if c.size == 0 or np.any(c < 0) or c.sum() <= 0:
        raise ValueError(f"counts must be non-negative with a positive sum, got {c.tolist()}")
    return c / c.sum()


def shannon_index(counts: Sequence[float] | np.ndarray, *, normalized: bool = False) -> float:
    """Shannon diversity ``H = -sum_i p_i ln p_i`` (nats) of group counts; ``normalized``
    divides by ``ln K`` (Pielou's evenness, 1 = perfectly even, 0 = one group only)."""
    p = _shares(counts)
    nz = p[p > 0]
    h = float(-(nz * np.log(nz)).sum())
    if normalized:
        return h / math.log(len(p)) if len(p) > 1 else 0.0
    return h


def gini_simpson(counts: Sequence[float] | np.ndarray) -> float:
    """Gini-Simpson diversity index ``1 - sum_i p_i^2``: the chance that two images drawn at
    random (with replacement) come from different groups. 0 = one group; max ``1 - 1/K``."""
    p = _shares(counts)
    return float(1.0 - (p**2).sum())


def gini_coefficient(counts: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of inequality of the group sizes (the Lorenz-curve Gini):
    ``G = sum_i sum_j |x_i - x_j| / (2 K^2 mean(x))``. 0 = equal sizes; max ``1 - 1/K``."""
    x = np.asarray(counts, dtype=float).reshape(-1)
    _shares(x)
    k = len(x)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * k * k * x.mean()))


def composition(groups: np.ndarray) -> dict[str, float]:
    """Group make-up of a set: counts, minority share and the diversity measures above."""
    groups = np.asarray(groups).reshape(-1)
    counts = np.bincount(groups, minlength=len(GROUP_NAMES))
    return {
        "n_majority": int(counts[0]),
        "n_minority": int(counts[1]),
        "minority_share": float(counts[1] / counts.sum()),
        "shannon_H": shannon_index(counts),
        "shannon_evenness": shannon_index(counts, normalized=True),
        "gini_simpson": gini_simpson(counts),
        "gini_coefficient": gini_coefficient(counts),
    }


# --------------------------------------------------------------------------------------------
# the sweep: minority share x seeds, with mitigations


@dataclass
class Sweep:
    """Everything a share sweep produced.

    rows: pandas DataFrame, one row per (share, seed, method) with :meth:`GroupMetrics.row`
    columns plus the training set's :func:`composition`. models / scores: the trained models
    and their test disease scores, keyed by (share, seed, method)."""

    rows: Any
    models: dict[tuple[float, int, str], torch.nn.Module]
    scores: dict[tuple[float, int, str], np.ndarray]
    scenarios: dict[tuple[float, int], Scenario]
    shift: PresentationShift
    thresholds: dict[tuple[float, int, str], float] = field(default_factory=dict)


THRESHOLD_METHOD = "group thresholds (equalized odds)"


def run_sweep(
    data: MedMNISTData,
    shares: Iterable[float],
    seeds: Iterable[int],
    *,
    shift: PresentationShift = PresentationShift(),
    mitigations: Iterable[str] = ("reweight", "resample"),
    mitigate_at: Iterable[float] | None = None,
    group_threshold: bool = True,
    threshold: float | None = None,
    width: int = 16,
    **fit_kwargs: Any,
) -> Sweep:
    """Train one model per (share, seed) and measure it per group on the balanced test set.

    ``mitigations`` (training-time, see :func:`train_scenario`) are trained at the shares in
    ``mitigate_at`` (default: the smallest share); group-specific thresholds
    (:func:`group_thresholds`) post-process every baseline model. Seeds drive both the
    scenario (group assignment) and training. The global decision threshold is ``threshold``,
    or by default each model's :func:`youden_threshold` on its validation split.
    """
    import pandas as pd

    shares, seeds = [float(s) for s in shares], [int(s) for s in seeds]
    if not shares or not seeds:
        raise ValueError("give at least one share and one seed")
    mitigate_at = [min(shares)] if mitigate_at is None else [float(s) for s in mitigate_at]
    mitigations = list(mitigations)
    for m in mitigations:
        if m not in MITIGATIONS or m is None:
            raise ValueError(f"mitigations must be among {MITIGATIONS[1:]}, got {m!r}")
    jobs = [(sh, sd, None) for sh in shares for sd in seeds]
    jobs += [(sh, sd, m) for m in mitigations for sh in mitigate_at for sd in seeds]
    rows, models, scores, scenarios, thresholds = [], {}, {}, {}, {}
    for sh, sd, mit in progress(jobs, desc="sweep"):
        if (sh, sd) not in scenarios:
            scenarios[(sh, sd)] = make_scenario(data, sh, shift=shift, seed=sd)
        sc = scenarios[(sh, sd)]
        model, _ = train_scenario(sc, seed=sd, mitigation=mit, width=width, **fit_kwargs)
        method = mit or "baseline"
        s = disease_scores(model, sc)
        models[(sh, sd, method)], scores[(sh, sd, method)] = model, s
        t = (
            threshold
            if threshold is not None
            else youden_threshold(sc.y("val"), disease_scores(model, sc, "val"))
        )
        thresholds[(sh, sd, method)] = t
        y, g = sc.test_y, sc.groups["test"]
        comp = composition(sc.groups["train"])
        base = {"share": sh, "seed": sd, **comp, "threshold": t}
        rows.append({**base, "method": method, **group_metrics(y, s, g, threshold=t).row()})
        if mit is None and group_threshold:
            pred = group_thresholds(y, s, g, seed=sd)
            rows.append(
                {**base, "method": THRESHOLD_METHOD, **group_metrics(y, s, g, y_pred=pred).row()}
            )
    return Sweep(pd.DataFrame(rows), models, scores, scenarios, shift, thresholds)


def summarize(
    rows: Any,
    metrics: Sequence[str] = (
        "auc_maj",
        "auc_min",
        "auc_gap",
        "tpr_maj",
        "tpr_min",
        "tpr_gap",
        "eod",
        "acc",
    ),
) -> Any:
    """Mean and standard deviation over seeds per (share, method): a DataFrame with
    columns ``<metric>`` (mean), ``<metric>_sd`` and ``n_seeds``."""
    import pandas as pd

    g = rows.groupby(["share", "method"], sort=True)
    mean = g[list(metrics)].mean()
    sd = g[list(metrics)].std(ddof=1).fillna(0.0).add_suffix("_sd")
    out = pd.concat([mean, sd], axis=1)
    out["n_seeds"] = g.size()
    cols = [c for m in metrics for c in (m, f"{m}_sd")] + ["n_seeds"]
    return out[cols].reset_index()


# --------------------------------------------------------------------------------------------
# figures


def _grid(rows: list[np.ndarray]) -> np.ndarray:
    """Stack rows of images (each (n, C, H, W) uint8) into one RGB picture (H*rows, W*n, 3)."""
    lines = [np.concatenate(list(r), axis=-1) for r in rows]  # (C, H, W*n)
    img = np.concatenate(lines, axis=-2).transpose(1, 2, 0)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def shift_examples(
    data: MedMNISTData,
    shift: PresentationShift = PresentationShift(),
    *,
    n: int = 6,
    seed: int = 0,
    positive: int | None = None,
) -> Any:
    """Real test images side by side: each healthy and diseased image as it is (majority
    presentation) and with the minority's :class:`PresentationShift`."""
    import plotly.graph_objects as go

    from medlab.plots import finish

    positive = disease_class(data) if positive is None else positive
    pat = _pattern(data, positive)
    rng = np.random.default_rng(seed)
    y = data.test.labels.numpy()
    rows, names = [], []
    for c in sorted(data.label_names, key=lambda c: c == positive):
        idx = rng.choice(np.flatnonzero(y == c), size=n, replace=False)
        x = data.test.images[idx]
        shifted = apply_shift(
            x, data.test.labels[idx], shift, seed=seed, positive=positive, pattern=pat
        )
        cname = data.label_names[c][:18]
        rows += [x.numpy(), shifted.numpy()]
        names += [f"{cname}: as is", f"{cname}: minority"]
    img = _grid(rows)
    h, w = data.test.images.shape[-2:]
    fig = go.Figure(go.Image(z=img))
    fig.update_yaxes(
        tickvals=[h * (i + 0.5) for i in range(len(names))], ticktext=names, showgrid=False
    )
    fig.update_xaxes(
        tickvals=[w * (j + 0.5) for j in range(n)],
        ticktext=[str(j + 1) for j in range(n)],
        showgrid=False,
    )
    return finish(
        fig,
        title=f"{data.name}: the simulated minority presentation "
        f"(zoom {shift.zoom:g}, disease signal x{shift.contrast:g})",
        x=f"test image ({w} x {h} px each)",
        y="class and presentation",
        height=110 + 70 * len(names),
    )


def score_distributions(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    threshold: float = 0.5,
    class_names: tuple[str, str] = ("healthy", "diseased"),
    title: str = "Disease scores per group and true class",
) -> Any:
    """Violins of the disease score per true class, one colour per group, with the global
    threshold as a dashed line: diseased minority patients below it are the missed ones."""
    import plotly.graph_objects as go

    from medlab.plots import COLORS, finish

    y_true, y_score, groups = (np.asarray(a).reshape(-1) for a in (y_true, y_score, groups))
    fig = go.Figure()
    for g, name in GROUP_NAMES.items():
        m = groups == g
        fig.add_trace(
            go.Violin(
                x=[class_names[int(v)] for v in y_true[m]],
                y=y_score[m],
                name=name,
                legendgroup=name,
                scalegroup=name,
                line_color=COLORS[g],
                box_visible=True,
                meanline_visible=True,
                points=False,
                spanmode="hard",
            )
        )
    fig.add_hline(
        y=threshold,
        line_dash="dash",
        line_color="black",
        annotation_text=f"global threshold {threshold:g}",
    )
    fig.update_layout(violinmode="group")
    fig.update_yaxes(range=[0, 1])
    return finish(fig, title=title, x="true class", y="predicted probability of disease (0-1)")


def calibration_curves(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray,
    *,
    n_bins: int = 8,
    title: str = "Calibration per group",
) -> Any:
    """Reliability diagram per group (sklearn's ``calibration_curve``, quantile bins)."""
    import plotly.graph_objects as go
    from sklearn.calibration import calibration_curve

    from medlab.plots import COLORS, finish

    y_true, y_score, groups = (np.asarray(a).reshape(-1) for a in (y_true, y_score, groups))
    fig = go.Figure(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line=dict(dash="dot", color="gray"),
        )
    )
    for g, name in GROUP_NAMES.items():
        m = groups == g
        frac, mean = calibration_curve(y_true[m], y_score[m], n_bins=n_bins, strategy="quantile")
        fig.add_trace(
            go.Scatter(x=mean, y=frac, mode="lines+markers", name=name, line=dict(color=COLORS[g]))
        )
    return finish(
        fig,
        title=title,
        x="mean predicted probability of disease in bin (0-1)",
        y="observed share diseased in bin (0-1)",
    )


_METRIC_LABELS = {
    "tpr_gap": "TPR gap, majority - minority (0-1)",
    "auc_gap": "AUC gap, majority - minority (0-1)",
    "eod": "equalized-odds difference (0-1)",
    "fnr_gap": "FNR gap, majority - minority (0-1)",
}


def gap_vs_share(rows: Any, metric: str = "tpr_gap", *, title: str | None = None) -> Any:
    """Mean +/- standard deviation over seeds of a gap metric against the minority share:
    a line for the baseline, markers for each mitigation."""
    import plotly.graph_objects as go

    from medlab.plots import COLORS, finish

    if metric not in rows.columns:
        raise ValueError(f"unknown metric {metric!r}; choose one of {list(_METRIC_LABELS)}")
    summ = rows.groupby(["method", "share"])[metric].agg(["mean", "std", "count"]).reset_index()
    summ["std"] = summ["std"].fillna(0.0)
    fig = go.Figure()
    methods = ["baseline"] + [m for m in summ["method"].unique() if m != "baseline"]
    for i, m in enumerate(methods):
        d = summ[summ["method"] == m].sort_values("share")
        fig.add_trace(
            go.Scatter(
                x=d["share"] * 100,
                y=d["mean"],
                name=m,
                mode="lines+markers" if m == "baseline" else "markers",
                marker=dict(
                    size=9 if m == "baseline" else 11,
                    symbol="circle" if i == 0 else i + 1,
                    color=COLORS[i % len(COLORS)],
                ),
                error_y=dict(type="data", array=d["std"], visible=True),
                customdata=d["count"],
                hovertemplate="%{x:.0f} %%: %{y:.3f} (n=%{customdata})",
            )
        )
    fig.add_hline(y=0, line_color="gray", line_width=1)
    fig.update_xaxes(type="log", tickvals=sorted(rows["share"].unique() * 100))
    n = int(rows.groupby(["method", "share"]).size().max())
    return finish(
        fig,
        title=title or f"Gap between groups vs minority share (mean +/- SD over {n} seeds)",
        x="minority share of the training set (%, log scale)",
        y=_METRIC_LABELS.get(metric, metric),
    )


# --------------------------------------------------------------------------------------------
# the widget


def explorer(
    sweep: Sweep, data: MedMNISTData, *, method: str = "baseline"
) -> tuple[Any, Callable[[float, float], tuple[Any, Any]]]:
    """A slider widget: minority share (the sweep's trained models at that share) and the
    strength of the minority's presentation shift on the *test* patients
    (:meth:`PresentationShift.from_strength`). Nothing is trained on a slider move: the
    models are re-evaluated on re-shifted test images.

    Returns ``(widget, update)``; ``update(share, strength)`` returns ``(table, figure)`` (mean
    per-group metrics over the sweep's seeds) and can be called without a browser.
    """
    import ipywidgets as widgets
    import pandas as pd
    import plotly.graph_objects as go
    from IPython.display import display

    from medlab.plots import COLORS, finish

    shares = sorted({k[0] for k in sweep.models if k[2] == method})
    if not shares:
        raise ValueError(f"the sweep has no {method!r} models")
    seeds = sorted({k[1] for k in sweep.models if k[2] == method})
    cache: dict[tuple[float, int], tuple[np.ndarray, np.ndarray, Split]] = {}

    def test_set(strength: float, seed: int) -> tuple[np.ndarray, np.ndarray, Split]:
        """The seed's balanced test patients with the minority shifted at ``strength``."""
        key = (round(float(strength), 3), seed)
        if key not in cache:
            sc = sweep.scenarios[(shares[0], seed)]
            shift = PresentationShift.from_strength(strength)
            g, split = _scenario_split(data, "test", 0.5, shift, seed, sc.positive, sc.pattern)
            cache[key] = ((split.labels.numpy() == sc.positive).astype(int), g, split)
        return cache[key]

    def update(share: float, strength: float) -> tuple[Any, Any]:
        share = min(shares, key=lambda s: abs(s - share))
        rows = []
        for sd in seeds:
            y, g, split = test_set(strength, sd)
            pos = sweep.scenarios[(shares[0], sd)].positive
            s = disease_scores(sweep.models[(share, sd, method)], split, positive=pos)
            t = sweep.thresholds[(share, sd, method)]
            rows.append(group_metrics(y, s, g, threshold=t).by_group)
        mean = pd.concat(rows).groupby(level=0).mean()
        sd_ = pd.concat(rows).groupby(level=0).std(ddof=1).fillna(0.0)
        fig = go.Figure()
        cols = ["auc", "tpr", "fpr", "selection_rate"]
        for i, g in enumerate(GROUP_NAMES.values()):
            fig.add_trace(
                go.Bar(
                    x=cols,
                    y=mean.loc[g, cols],
                    name=g,
                    marker_color=COLORS[i],
                    error_y=dict(type="data", array=sd_.loc[g, cols]),
                )
            )
        fig.update_yaxes(range=[0, 1.05])
        fig = finish(
            fig,
            title=f"Per-group metrics: minority share {share:.0%}, shift strength "
            f"{strength:g} (mean +/- SD over {len(seeds)} seeds)",
            x="metric",
            y="value (0-1)",
        )
        return mean.round(3), fig

    share_w = widgets.SelectionSlider(
        options=[(f"{s:.0%}", s) for s in shares], value=shares[0], description="minority share"
    )
    strength_w = widgets.FloatSlider(
        value=1.0, min=0.0, max=2.0, step=0.25, description="shift strength"
    )
    out = widgets.Output()

    def on_change(_: Any = None) -> None:
        table, fig = update(share_w.value, strength_w.value)
        out.clear_output(wait=True)
        with out:
            display(table, fig)

    share_w.observe(on_change, names="value")
    strength_w.observe(on_change, names="value")
    return widgets.VBox([widgets.HBox([share_w, strength_w]), out]), update
