"""One evaluation for the curriculum.

* ACC and AUC exactly as MedMNIST reports them (:mod:`medlab.metrics.medmnist`): binary tasks
  score the positive class (column 1 of the softmax); multi-class and ordinal tasks average
  one-vs-rest AUCs; multi-label tasks average per-label AUCs and accuracies at 0.5.
* Per-group metrics for any number of groups on fairlearn's ``MetricFrame``
  (:func:`group_metrics`, :mod:`medlab.metrics.groups`): by group, difference, ratio, bootstrap
  intervals; and a global decision threshold (:func:`youden_threshold`).
* Calibration (:mod:`medlab.metrics.reliability`): the one binning and the one expected
  calibration error (:func:`calibration_bins`, :func:`expected_calibration_error`, written in
  notebook 09) and the per-group reliability table (:func:`calibration`).
* Input checks that name the fix (:mod:`medlab.metrics.checks`).
"""

from __future__ import annotations

from medlab.metrics.checks import MULTILABEL as MULTILABEL
from medlab.metrics.checks import TASKS as TASKS
from medlab.metrics.checks import _binary as _binary  # the input checks, as before the split
from medlab.metrics.checks import _check_classes as _check_classes
from medlab.metrics.checks import _check_scores as _check_scores
from medlab.metrics.groups import GroupMetrics, group_metrics, youden_threshold
from medlab.metrics.medmnist import (
    auc_se,
    majority_baseline,
    medmnist_metrics,
    metric_interval,
)
from medlab.metrics.reliability import calibration, calibration_bins, expected_calibration_error

__all__ = [
    "medmnist_metrics",
    "majority_baseline",
    "metric_interval",
    "auc_se",
    "youden_threshold",
    "calibration",
    "calibration_bins",
    "expected_calibration_error",
    "GroupMetrics",
    "group_metrics",
]
