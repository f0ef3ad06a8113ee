"""Selective prediction: the model decides the cases it is most confident about and defers the
rest to a clinician (:func:`coverage_risk`: the error on the kept cases against how many are kept;
:func:`deferral_threshold`: the operating point, set on the validation split)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from medlab.deploy.calibration import check_probs
from medlab.utils import check_scalar


def coverage_risk(y_true: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """The coverage-risk curve of deferring the least confident cases first.

    Returns one row per number of kept cases k = 1..N (most confident first): ``coverage``
    (k / N), ``risk`` (error rate on the k kept cases), ``deferred`` (N - k) and ``confidence``
    (the k-th highest max probability: keep cases at or above it)."""
    y, p = check_probs(y_true, probs)
    conf = p.max(1)
    order = np.argsort(-conf, kind="stable")
    wrong = (p.argmax(1) != y)[order].astype(float)
    k = np.arange(1, len(y) + 1)
    return pd.DataFrame(
        {
            "coverage": k / len(y),
            "risk": np.cumsum(wrong) / k,
            "deferred": len(y) - k,
            "confidence": conf[order],
        }
    )


def deferral_threshold(probs: np.ndarray, rate: float) -> float:
    """The confidence threshold below which ``rate`` (0-1) of the cases in ``probs`` (usually
    the validation split, (N, C)) are deferred to a clinician: the ``rate`` quantile of the max
    probability. On new cases, defer where ``max prob < threshold``."""
    rate = check_scalar(
        "rate", rate, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False,
        fix="a share of cases to defer, e.g. 0.15",
    )  # fmt: skip
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probs must be (N, n_classes) probabilities, got shape {p.shape}")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("probs must be probabilities in [0, 1] (use deploy.softmax on logits)")
    return float(np.quantile(p.max(1), rate, method="higher"))
