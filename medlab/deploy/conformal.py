"""Conformal prediction: sets of labels with a coverage guarantee.

Split conformal calibration with the LAC score (Sadinle et al. 2019), written in notebook 09 and
exported below (:func:`conformal_quantile`, :func:`prediction_sets`): :func:`conformal_sets`
calibrates on one split and returns the sets of another, exactly as MAPIE's
``SplitConformalClassifier(prefit=True)`` does (tests/test_deploy.py checks it against MAPIE;
MAPIE itself computes the other conformity scores). :class:`TorchClassifier` wraps a torch model
as a prefitted scikit-learn estimator, and :func:`coverage_error_bound` is the sampling error of
a measured coverage.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from medlab.data import Split
from medlab.deploy.calibration import _temperature, softmax
from medlab.train import predict
from medlab.utils import check_int, check_scalar

#: MAPIE's conformity scores for classification (``SplitConformalClassifier``).
CONFORMITY_SCORES = ("lac", "top_k", "aps", "raps")


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """A trained torch classifier as a prefitted scikit-learn estimator.

    ``X``: uint8 images (N, C, H, W) (a numpy array or tensor); ``predict_proba`` returns
    ``softmax(logits / temperature)`` (N, n_classes) through :func:`medlab.train.predict`.
    ``fit`` does nothing: the model is trained already (use MAPIE with ``prefit=True``)."""

    def __init__(
        self, model: nn.Module | None = None, *, n_classes: int = 2, temperature: float = 1.0
    ) -> None:
        self.model = model
        self.n_classes = check_int("n_classes", n_classes, 2)
        self.temperature = _temperature(temperature)

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(self.n_classes)

    def fit(self, X: Any, y: Any = None) -> TorchClassifier:
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.model is None:
            raise ValueError("TorchClassifier needs a trained model: TorchClassifier(model)")
        logits = predict(self.model, torch.as_tensor(np.asarray(X)), logits=True)
        if logits.shape[1] != self.n_classes:
            raise ValueError(
                f"the model has {logits.shape[1]} outputs but n_classes={self.n_classes}: pass "
                "the number of classes the model was trained on"
            )
        return softmax(logits, self.temperature)

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_proba(X).argmax(1)

    def __sklearn_is_fitted__(self) -> bool:
        return self.model is not None


def conformal_sets(
    model: nn.Module,
    calibration: Split,
    test: Split,
    *,
    confidence_level: float = 0.9,
    temperature: float = 1.0,
    conformity_score: str = "lac",
) -> tuple[np.ndarray, Any]:
    """Split conformal prediction sets, calibrated ("conformalised") on ``calibration`` (e.g. the
    validation split) and applied to ``test``, over ``softmax(logits / temperature)``.

    ``"lac"`` (the default) is :func:`conformal_quantile` and :func:`prediction_sets`, exactly
    MAPIE's ``SplitConformalClassifier(prefit=True)``; the other scores (3 or more classes) run
    MAPIE itself. Returns ``(sets, calibrated)``: ``sets`` bool (N_test, n_classes), True where
    the class is in the set; ``calibrated`` the threshold q_hat (``"lac"``) or the conformalised
    MAPIE classifier. Under exchangeability, P(true class in set) >= ``confidence_level``."""
    from mapie.conformity_scores import BaseClassificationScore

    if not (isinstance(calibration, Split) and isinstance(test, Split)):
        raise TypeError("calibration and test must be medlab Splits (e.g. data.val, data.test)")
    confidence_level = check_scalar(
        "confidence_level", confidence_level, kind=float, lo=0, hi=1,
        lo_inclusive=False, hi_inclusive=False, fix="e.g. 0.9",
    )  # fmt: skip
    known = isinstance(conformity_score, str) and conformity_score in CONFORMITY_SCORES
    if not known and not isinstance(conformity_score, BaseClassificationScore):
        raise ValueError(
            f"unknown conformity_score {conformity_score!r}; choose one of {CONFORMITY_SCORES}"
        )
    if known and conformity_score != "lac" and calibration.n_classes == 2:
        raise ValueError(
            f"conformity_score={conformity_score!r} needs 3 or more classes in MAPIE; a "
            "binary task takes conformity_score='lac' only"
        )
    est = TorchClassifier(model, n_classes=calibration.n_classes, temperature=temperature)
    if conformity_score != "lac":
        return _mapie_sets(est, calibration, test, confidence_level, conformity_score)
    # alpha as MAPIE computes it (in decimals: 1 - 0.9 is 0.1, not 0.09999999999999998)
    alpha = float(Decimal("1") - Decimal(str(confidence_level)))
    n = len(calibration)
    if n < max(1 / alpha, 1 / (1 - alpha)):
        raise ValueError(
            f"{n} calibration cases are too few for confidence_level={confidence_level:g}: split "
            f"conformal needs at least max(1 / alpha, 1 / (1 - alpha)) = "
            f"{math.ceil(max(1 / alpha, 1 / (1 - alpha)))}; calibrate on a larger split"
        )
    y = calibration.numpy_labels().reshape(-1)
    p_cal = est.predict_proba(calibration.images.numpy())
    q_hat = conformal_quantile(1 - p_cal[np.arange(n), y], alpha)
    return prediction_sets(est.predict_proba(test.images.numpy()), q_hat), q_hat


def _mapie_sets(
    est: TorchClassifier, calibration: Split, test: Split, confidence_level: float, score: Any
) -> tuple[np.ndarray, Any]:
    """MAPIE's ``SplitConformalClassifier(prefit=True)`` with another conformity score."""
    from mapie.classification import SplitConformalClassifier

    mapie = SplitConformalClassifier(
        estimator=est, confidence_level=confidence_level, conformity_score=score, prefit=True
    )
    mapie.conformalize(calibration.images.numpy(), calibration.numpy_labels().reshape(-1))
    _, sets = mapie.predict_set(test.images.numpy())
    return np.asarray(sets[:, :, 0], dtype=bool), mapie


def coverage_error_bound(n_calibration: int, n_test: int, alpha: float, *, z: float = 2.0) -> float:
    """Sampling error of a split-conformal coverage measured on ``n_test`` cases: ``z`` standard
    deviations of (a) the calibration draw (the coverage given the calibration set is Beta
    distributed, variance ~ alpha (1 - alpha) / (n_calibration + 2)) and (b) the test draw
    (binomial, alpha (1 - alpha) / n_test), added in quadrature."""
    n_calibration = check_int("n_calibration", n_calibration, 1)
    n_test = check_int("n_test", n_test, 1)
    alpha = check_scalar(
        "alpha", alpha, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False,
        fix="alpha = 1 - confidence_level, e.g. 0.1",
    )  # fmt: skip
    z = check_scalar("z", z, kind=float, lo=0, lo_inclusive=False)
    var = alpha * (1 - alpha) * (1 / (n_calibration + 2) + 1 / n_test)
    return float(z * math.sqrt(var))


# fmt: off
# %% exported from notebooks/09_deploy.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    """Split conformal calibration: q_hat, the ceil((n + 1)(1 - alpha))-th smallest of the n
    calibration cases' nonconformity scores (LAC: 1 - the probability of the true class)."""
    k = math.ceil((len(scores) + 1) * (1 - alpha))
    if k > len(scores):
        raise ValueError(f"{len(scores)} calibration cases are too few for alpha = {alpha:g}")
    return float(np.sort(np.ravel(scores))[k - 1])


def prediction_sets(probs: np.ndarray, q_hat: float) -> np.ndarray:
    """The set of each case (N, C) bool: the classes whose score 1 - p_k is at most q_hat
    (1e-8 absorbs rounding, as in MAPIE)."""
    return (1 - probs) - q_hat <= 1e-8
# %% end of export
# fmt: on
