"""Lesson 09 (deploy responsibly): what a model costs, how far its confidence can be trusted, and
how a clinician stays in the loop.

* **Cost** (:mod:`medlab.deploy.cost`): size on disk (bytes of the saved ``state_dict``),
  parameters, CPU latency per image (batch of 1, median after warm-up runs), throughput
  (images/s), a fair latency race (:func:`compare_latency`) and FLOPs (:func:`forward_flops`).
* **Compression** (:mod:`medlab.deploy.compression`): structured magnitude pruning that
  *removes* whole GroupNorm groups (:func:`prune_groups`: a smaller dense model, not a mask; the
  channels that stay compute exactly what they computed before) and post-training static int8
  quantisation in FX graph mode (:func:`quantize_int8`, calibrated on the validation split;
  GroupNorm stays float: :func:`int8_layers` lists which layer computes in which precision).
* **Calibration** (:mod:`medlab.deploy.calibration`): top-label expected calibration error
  (:func:`ece`, on :func:`medlab.metrics.expected_calibration_error`; the definition of Guo et
  al. 2017 and of torchmetrics' ``MulticlassCalibrationError``), its reliability table
  (:func:`reliability`) and temperature scaling fitted on the validation split
  (:func:`fit_temperature`, written in notebook 09).
* **Human oversight**: selective prediction (:mod:`medlab.deploy.selective`:
  :func:`coverage_risk`, :func:`deferral_threshold`) and split conformal prediction sets
  (:mod:`medlab.deploy.conformal`: :func:`conformal_quantile` and :func:`prediction_sets`,
  written in notebook 09 and checked against MAPIE's ``SplitConformalClassifier`` in the tests;
  :func:`conformal_sets` over a scikit-learn wrapper of the torch model, :class:`TorchClassifier`),
  calibrated on cases exchangeable with the test cases (:func:`oversight`: the other half of the
  test split) and, to show what breaks the guarantee, on the validation split.
* The lesson's two experiments (:mod:`medlab.deploy.lesson`: :func:`compress`,
  :func:`oversight`) and its figures (:mod:`medlab.deploy.figures`).
"""

from __future__ import annotations

from medlab.deploy.calibration import (
    check_probs,
    ece,
    fit_temperature,
    nll,
    reliability,
    scaled_logits,
    softmax,
)
from medlab.deploy.compression import int8_layers, prune_groups, quantize_int8
from medlab.deploy.conformal import (
    CONFORMITY_SCORES,
    TorchClassifier,
    conformal_quantile,
    conformal_sets,
    coverage_error_bound,
    prediction_sets,
)
from medlab.deploy.cost import (
    Cost,
    compare_latency,
    forward_flops,
    measure_cost,
    state_dict_bytes,
)
from medlab.deploy.figures import coverage_risk_figure, reliability_figure, tradeoff_figure
from medlab.deploy.lesson import compress, oversight
from medlab.deploy.selective import coverage_risk, deferral_threshold

__all__ = [
    "Cost",
    "state_dict_bytes",
    "measure_cost",
    "compare_latency",
    "forward_flops",
    "prune_groups",
    "quantize_int8",
    "int8_layers",
    "ece",
    "reliability",
    "fit_temperature",
    "softmax",
    "scaled_logits",
    "check_probs",
    "nll",
    "coverage_risk",
    "deferral_threshold",
    "TorchClassifier",
    "conformal_quantile",
    "prediction_sets",
    "conformal_sets",
    "coverage_error_bound",
    "CONFORMITY_SCORES",
    "compress",
    "oversight",
    "tradeoff_figure",
    "reliability_figure",
    "coverage_risk_figure",
]
