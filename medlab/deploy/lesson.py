"""Lesson 09's two experiments, one model (one seed) at a time: :func:`compress` (the float
model, its int8 and its pruned versions, each measured on the test split) and :func:`oversight`
(calibration, deferral and conformal sets of one model, per group too)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import nn

from medlab.data import Split
from medlab.deploy.calibration import ece, fit_temperature, nll, softmax
from medlab.deploy.compression import _quantized_ok, prune_groups, quantize_int8
from medlab.deploy.conformal import conformal_sets
from medlab.deploy.cost import measure_cost
from medlab.deploy.selective import deferral_threshold
from medlab.train import evaluate, fit, predict
from medlab.utils import check_int


def compress(
    model: nn.Module,
    train: Split,
    val: Split,
    test: Split,
    *,
    sparsities: Sequence[float] = (0.25, 0.5, 0.75),
    finetune_epochs: int = 1,
    seed: int = 0,
    fit_kwargs: Mapping[str, Any] | None = None,
    cost_kwargs: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The float model, its int8 version (:func:`quantize_int8`, calibrated on ``val``) and its
    group-pruned versions (:func:`prune_groups`, each fine-tuned ``finetune_epochs`` on
    ``train`` with :func:`medlab.train.fit`), each measured on ``test``: one row per variant
    with ``variant``, ``test_acc``, ``test_auc`` and the :class:`Cost` fields."""
    finetune_epochs = check_int("finetune_epochs", finetune_epochs, 0)
    cost_kwargs = dict(cost_kwargs or {})
    variants: list[tuple[str, nn.Module]] = [("float32", model)]
    variants.append(("int8", quantize_int8(model, val)))
    for amount in sparsities:
        pruned = prune_groups(model, amount)
        if finetune_epochs:
            fit(pruned, train, val, epochs=finetune_epochs, seed=seed, desc=f"fine-tune {amount:g}",
                **dict(fit_kwargs or {}))  # fmt: skip
        variants.append((f"pruned {amount:.0%}", pruned))
    rows = []
    for name, m in variants:
        with _quantized_ok():
            metrics = evaluate(m, test)
        cost = measure_cost(m, test.images, **cost_kwargs)
        rows.append({"variant": name, "test_acc": metrics["acc"], "test_auc": metrics["auc"],
                     **cost.as_dict()})  # fmt: skip
    return rows


def oversight(
    model: nn.Module,
    val: Split,
    test: Split,
    test_groups: np.ndarray,
    *,
    defer_rate: float = 0.15,
    confidence_level: float = 0.9,
    names: Mapping[int, str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Calibration, deferral and conformal sets of one model, per group too.

    Temperature fitted on ``val`` (:func:`fit_temperature`); ECE on ``test`` before and after;
    deferral threshold set on ``val`` to defer ``defer_rate`` (:func:`deferral_threshold`) and
    applied on ``test``. Conformal sets (:func:`conformal_sets`, with the temperature) twice:

    * ``coverage``, ``set_size``: calibrated on cases exchangeable with the test cases. The test
      split is cut into two random halves (``seed``); each half is calibrated on the other, so
      every test case gets a set from a calibration it was not part of.
    * ``coverage_val``, ``set_size_val``: calibrated on ``val``. A validation split may come
      from another collection than the test split (PneumoniaMNIST's from the source's training
      set, its test split from the source's held-out set); where the two are not exchangeable,
      this coverage misses the target.

    ``test_groups`` (N_test,) group ids; ``names`` {id: short name} (default ``g<id>``).
    Returns one flat dict (``<metric>`` overall, ``<metric>_<name>`` per group), with
    ``n_test`` and ``n_calibration`` (the size of the smaller test half)."""
    yv, yt = val.numpy_labels().reshape(-1), test.numpy_labels().reshape(-1)
    g = np.asarray(test_groups).reshape(-1)
    if len(g) != len(yt):
        raise ValueError(f"test_groups has {len(g)} entries but the test split {len(yt)} images")
    if len(yt) < 4:
        raise ValueError(f"oversight needs at least 4 test images (two halves), got {len(yt)}")
    names = dict(names) if names is not None else {v: f"g{v}" for v in np.unique(g).tolist()}
    lv, lt = predict(model, val, logits=True), predict(model, test, logits=True)
    t = fit_temperature(lv, yv)
    p0, p1 = softmax(lt), softmax(lt, t)
    thr = deferral_threshold(softmax(lv, t), defer_rate)
    cp = {"confidence_level": confidence_level, "temperature": t}
    perm = np.random.default_rng(check_int("seed", seed, 0)).permutation(len(yt))
    halves = (perm[: len(yt) // 2], perm[len(yt) // 2 :])
    sets = np.zeros((len(yt), val.n_classes), dtype=bool)
    for cal, held in (halves, halves[::-1]):
        sets[held] = conformal_sets(model, test.subset(cal), test.subset(held), **cp)[0]
    sets_val = conformal_sets(model, val, test, **cp)[0]
    out: dict[str, Any] = {"temperature": t, "ece_before": ece(yt, p0), "ece_after": ece(yt, p1),
                           "nll_before": nll(yt, p0), "nll_after": nll(yt, p1),
                           "threshold": thr}  # fmt: skip
    masks = {"": np.ones(len(yt), bool)} | {f"_{n}": g == k for k, n in names.items()}
    deferred = p1.max(1) < thr
    for suffix, m in masks.items():
        out |= _per_group(suffix, m, yt, p0, p1, deferred, sets, sets_val)
    out["n_deferred"] = int(deferred.sum())
    out["n_test"] = len(yt)
    out["n_calibration"] = len(halves[0])
    return out


def _per_group(
    suffix: str,
    m: np.ndarray,
    yt: np.ndarray,
    p0: np.ndarray,
    p1: np.ndarray,
    deferred: np.ndarray,
    sets: np.ndarray,
    sets_val: np.ndarray,
) -> dict[str, float]:
    """:func:`oversight`'s numbers on the test cases ``m`` (all of them when ``suffix`` is "")."""
    wrong, rows = p1.argmax(1) != yt, np.arange(len(yt))
    covered, covered_val = sets[rows, yt], sets_val[rows, yt]
    kept = m & ~deferred
    out = {}  # all cases (suffix ""): oversight has their ECE already
    if suffix:
        out = {f"ece_before{suffix}": ece(yt[m], p0[m]), f"ece_after{suffix}": ece(yt[m], p1[m])}
    return out | {
        f"defer_rate{suffix}": float(deferred[m].mean()),
        f"error_all{suffix}": float(wrong[m].mean()),
        f"error_kept{suffix}": float(wrong[kept].mean()) if kept.any() else math.nan,
        f"coverage{suffix}": float(covered[m].mean()),
        f"set_size{suffix}": float(sets[m].sum(1).mean()),
        f"coverage_val{suffix}": float(covered_val[m].mean()),
        f"set_size_val{suffix}": float(sets_val[m].sum(1).mean()),
    }
