"""The bias lesson's mitigations: group-balanced training weights and resampling (training time),
and group-specific thresholds with fairlearn's ``ThresholdOptimizer`` (post-processing)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["group_weights", "group_balanced_index", "ScoreClassifier", "group_thresholds"]


# fmt: off
# %% exported from notebooks/03_bias.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def group_weights(groups: np.ndarray) -> np.ndarray:
    """Per-image loss weights (N,) giving every group the same total weight:
    w_i = N / (K * n_{g_i}) (mean weight 1)."""
    groups = np.asarray(groups)
    values, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return (len(groups) / (len(values) * counts[inverse])).astype(np.float32)
# %% end of export
# fmt: on


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
