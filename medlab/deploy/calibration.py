"""Calibration of a deployed model: does 90 % mean 90 %?

* Top-label expected calibration error (:func:`ece`, the definition of Guo et al. 2017 and of
  torchmetrics' ``MulticlassCalibrationError``) and its reliability table (:func:`reliability`),
  both on :func:`medlab.metrics.calibration_bins` (15 equal-width bins).
* Temperature scaling fitted on the validation split (:func:`fit_temperature`) and the softmax
  it divides the logits for (:func:`softmax`): written in notebook 09, exported below.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from medlab.metrics.checks import _check_classes
from medlab.metrics.reliability import calibration_bins, expected_calibration_error
from medlab.utils import check_int, check_scalar


def _temperature(temperature: Any) -> float:
    return check_scalar(
        "temperature", temperature, kind=float, lo=0, lo_inclusive=False,
        fix="a temperature T > 0 divides the logits (1 = unchanged; fit_temperature finds one)",
    )  # fmt: skip


def scaled_logits(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``logits / temperature`` as float64 (N, C), checked: T > 0, finite logits, no overflow."""
    t = _temperature(temperature)
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 1:
        raise ValueError(f"logits must have shape (N, n_classes), got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits hold NaN or inf: check the model's outputs")
    z = z / t
    if not np.isfinite(z).all():
        raise ValueError(
            f"temperature {t:g} is too small for these logits (logits / temperature overflow); "
            "use a temperature such as 0.5 or above"
        )
    return z


def check_probs(y_true: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Class indices (N,) and softmax probabilities (N, C) float64, checked; names the fix."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true).reshape(-1)
    if p.ndim != 2 or p.shape[0] != len(y) or len(y) == 0:
        raise ValueError(
            f"probs must be (N, n_classes) with N = len(y_true) > 0, got {p.shape} and {len(y)}"
        )
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("probs must be probabilities in [0, 1] (use deploy.softmax on logits)")
    bad = np.abs(p.sum(1) - 1) > 1e-3
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} rows of probs do not sum to 1: pass softmax probabilities, one "
            "column per class (use deploy.softmax on logits)"
        )
    return _check_classes(y, p.shape[1]), p


def reliability(y_true: np.ndarray, probs: np.ndarray, *, n_bins: int = 15) -> pd.DataFrame:
    """Top-label reliability table: the confidence (max probability) in ``n_bins`` equal-width
    bins on [0, 1]; per non-empty bin its lower edge, mean confidence, accuracy and size n
    (images). ``df.attrs["ece"]`` is :func:`ece`."""
    n_bins = check_int("n_bins", n_bins, 1)
    y, p = check_probs(y_true, probs)
    conf, correct = p.max(1), p.argmax(1) == y
    t = calibration_bins(conf, correct, n_bins, "uniform")
    out = pd.DataFrame(
        {
            "bin_lo": np.linspace(0, 1, n_bins + 1)[t.bin.to_numpy()],
            "confidence": t.score.to_numpy(),
            "accuracy": t.observed.to_numpy(),
            "n": t.n.to_numpy(),
        }
    )
    out.attrs["ece"] = expected_calibration_error(conf, correct, n_bins, "uniform")
    return out


def ece(y_true: np.ndarray, probs: np.ndarray, *, n_bins: int = 15) -> float:
    """Expected calibration error (top label, ``n_bins`` equal-width bins, L1):
    ``sum_b n_b / N * |accuracy_b - confidence_b|``, in [0, 1]. Same definition as
    torchmetrics' ``MulticlassCalibrationError(n_bins, norm="l1")``: the confidence is the max
    probability, the outcome whether the predicted class is right
    (:func:`medlab.metrics.expected_calibration_error` on those)."""
    n_bins = check_int("n_bins", n_bins, 1)
    y, p = check_probs(y_true, probs)
    return expected_calibration_error(p.max(1), p.argmax(1) == y, n_bins, "uniform")


# fmt: off
# %% exported from notebooks/09_deploy.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` (temperature > 0), (N, C) -> (N, C) float64."""
    z = scaled_logits(logits, temperature)  # logits / T, checked: (N, C), finite, T > 0
    e = np.exp(z - z.max(1, keepdims=True))  # minus each row's max: exp cannot overflow
    return e / e.sum(1, keepdims=True)


def nll(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes ``y`` (N,) under probabilities (N, C)."""
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 that minimises the negative
    log-likelihood of ``softmax(logits / T)`` on held-out labelled data (the validation split).
    One number, so the predicted class never changes; T > 1 softens, T < 1 sharpens."""
    z = np.asarray(logits, dtype=np.float64)
    y, _ = check_probs(y_true, softmax(z))
    res = minimize_scalar(lambda log_t: nll(y, softmax(z, math.exp(log_t))),  # T = e^log_t > 0
                          bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(res.x))
# %% end of export
# fmt: on
