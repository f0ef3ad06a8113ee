"""Lesson 03 (bias): what the bias lesson teaches on top of the HCM scenario.

The population (the simulated sex-imbalance scenario modelled on hypertrophic cardiomyopathy) is
:func:`medlab.scenario.hcm`; per-group metrics are :func:`medlab.metrics.group_metrics`. This
package holds what the lesson itself teaches:

* :mod:`~medlab.fairness.lesson`: how every model of the lesson is trained
  (:func:`hcm_config`, the same for notebook 04, which explains exactly notebook 03's models);
* :mod:`~medlab.fairness.sweep`: training through the model cache (:func:`train_scenario`),
  the one global threshold (:func:`decision_threshold`: Youden's J on the validation split) and
  the sweep over minority shares and seeds (:func:`run_sweep`, on :func:`medlab.run_grid`);
* :mod:`~medlab.fairness.mitigation`: training-time mitigations (:func:`group_weights`,
  :func:`group_balanced_index`) and a post-processing one (:func:`group_thresholds`,
  fairlearn's ``ThresholdOptimizer``);
* :mod:`~medlab.fairness.metrics`: per-group metrics (:func:`hcm_metrics`) and a training set's
  make-up (:func:`composition`, with the diversity measures of :mod:`medlab.diversity`);
* :mod:`~medlab.fairness.figures` and :mod:`~medlab.fairness.widget`: figures and the widget.

>>> L = medlab.lesson(quick=True, seed=0)                                     # doctest: +SKIP
>>> sweep = run_sweep(data, [0.05, 0.5], L.seeds, config=hcm_config(data, L))  # doctest: +SKIP
"""

from __future__ import annotations

from medlab.diversity import gini_coefficient, gini_simpson, shannon_index
from medlab.fairness.figures import (
    calibration_curves,
    gap_vs_share,
    score_distributions,
    shift_examples,
)
from medlab.fairness.lesson import MITIGATIONS, SHORT, THRESHOLD_METHOD, hcm_config
from medlab.fairness.metrics import composition, hcm_metrics
from medlab.fairness.mitigation import (
    ScoreClassifier,
    group_balanced_index,
    group_thresholds,
    group_weights,
)
from medlab.fairness.sweep import (
    METRICS,
    Sweep,
    decision_threshold,
    run_sweep,
    sweep_table,
    train_scenario,
)
from medlab.fairness.widget import explorer
from medlab.scenario import GROUP_NAMES

__all__ = [
    "GROUP_NAMES",
    "SHORT",
    "MITIGATIONS",
    "THRESHOLD_METHOD",
    "METRICS",
    "hcm_config",
    "hcm_metrics",
    "group_weights",
    "group_balanced_index",
    "train_scenario",
    "decision_threshold",
    "ScoreClassifier",
    "group_thresholds",
    "shannon_index",
    "gini_simpson",
    "gini_coefficient",
    "composition",
    "Sweep",
    "run_sweep",
    "sweep_table",
    "shift_examples",
    "score_distributions",
    "calibration_curves",
    "gap_vs_share",
    "explorer",
]
