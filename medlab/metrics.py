"""Evaluation exactly as MedMNIST reports it: ACC and AUC from ``medmnist.evaluator``.

Binary tasks score the positive class (column 1 of the softmax); multi-class and ordinal tasks
average one-vs-rest AUCs; multi-label tasks average per-label AUCs and accuracies at 0.5.
"""

from __future__ import annotations

import numpy as np
from medmnist.evaluator import getACC, getAUC

__all__ = ["medmnist_metrics", "majority_baseline"]


def medmnist_metrics(y_true: np.ndarray, y_score: np.ndarray, task: str) -> dict[str, float]:
    """ACC and AUC as in the MedMNIST v2 paper.

    Args:
        y_true: labels, (N,) / (N, 1) class indices or (N, L) 0/1 for multi-label.
        y_score: probabilities, (N, C) (softmax) or (N, L) (sigmoid).
        task: ``medmnist.INFO[name]["task"]``.
    Returns ``{"acc": ..., "auc": ...}`` as floats in [0, 1].
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape[0] != y_score.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} rows but y_score has {y_score.shape[0]}")
    return {"acc": float(getACC(y_true, y_score, task)), "auc": float(getAUC(y_true, y_score, task))}


def majority_baseline(train_labels: np.ndarray, test_labels: np.ndarray, task: str
                      ) -> dict[str, float]:
    """ACC/AUC of always predicting the training split's class frequencies (AUC is 0.5)."""
    train_labels = np.asarray(train_labels)
    n = len(test_labels)
    if task == "multi-label, binary-class":
        prior = train_labels.mean(0)
    else:
        y = train_labels.reshape(-1)
        prior = np.bincount(y, minlength=int(max(y.max(), np.asarray(test_labels).max()) + 1))
        prior = prior / prior.sum()
    scores = np.tile(prior, (n, 1))
    return medmnist_metrics(test_labels, scores, task)
