"""Susceptibility and variation: adversarial attacks, adversarial training, a detector for human
review and MedMNIST-C-style acquisition corruptions.

Attacks work in **pixel space** ``[0, 1]``: :class:`PixelModel` wraps a medlab model (whose
input is on ``[-1, 1]``) and puts the normalisation ``(x - 0.5) / 0.5`` inside, so an epsilon
is a number of grey levels (``8 / 255`` = 8 grey levels of 255).

* :func:`fgsm` and :func:`pgd` - the fast gradient sign method (Goodfellow et al. 2015) and
  projected gradient descent under the L-infinity norm (Madry et al. 2018), written in notebook
  08 and copied into :mod:`medlab.robustness.attacks`; a test checks both against
  adversarial-robustness-toolbox's ``FastGradientMethod`` and ``ProjectedGradientDescent``
  (:func:`art_max_abs_diff`). PGD takes a random start and restarts (an image counts as robust
  only if it survives every restart): notebook 08's strong evaluation, which a test checks
  against ART's PGD with ``num_random_init``; PGD started at x with few steps is the weak
  teaching step.
* :func:`attack` / :func:`robust_accuracy` - batched over a whole split.
* :func:`adversarial_batches` - wraps any batch source of :func:`medlab.train.batches` so that
  :func:`medlab.train.train_steps` trains on attacked batches (adversarial training);
  :func:`corrupted_batches` does the same with random corruptions (augmentation).
* :func:`detector_scores` - how suspicious each input looks: features far from every clean class
  (Mahalanobis distance, Lee et al. 2018), a prediction that changes when the image is smoothed
  (feature squeezing, Xu et al. 2018), or low confidence; :func:`mahalanobis_score` is the
  first as a differentiable function of the pixels, for an attacker who knows the detector.
* :func:`corrupt` - noise, blur, contrast, brightness and JPEG compression at five severities,
  with the parameters of MedMNIST-C (Di Salvo et al. 2024) for the modality at hand.

Everything here runs on the CPU, whatever :func:`medlab.utils.device` says (only the
detector's features go through :func:`medlab.train.embeddings`, which uses it): the attack code
exported from notebook 08 makes its random starts and index tensors on the CPU (a GPU needs
those cells changed in the notebook), ART's cross-check and the PIL corruptions take NumPy
arrays, and :func:`train_with` trains where the model is. Models from
:func:`medlab.train.fit` come back to the CPU, so they can be attacked here.

Modules: ``pixels`` (the [0, 1] wrapper), ``attacks``, ``training``, ``detector``,
``corruptions``, ``figures``, ``lesson`` (notebook 08's settings and helpers), ``reference``
(the ART cross-check).
"""

from __future__ import annotations

from medlab.metrics import auc_se  # re-exported: notebook 08 calls R.auc_se
from medlab.robustness.attacks import attack, fgsm, pgd, robust_accuracy
from medlab.robustness.corruptions import (
    CORRUPTIONS,
    corrupt,
    corrupt_split,
    corruption_names,
    modality,
)
from medlab.robustness.detector import (
    detector_scores,
    feature_gaussians,
    mahalanobis_score,
    operating_point,
)
from medlab.robustness.figures import heatmap, image_rows
from medlab.robustness.lesson import build, lesson_config, sample_split, with_images
from medlab.robustness.pixels import MEAN, STD, PixelModel, predict_pixels, to_pixels
from medlab.robustness.reference import art_max_abs_diff
from medlab.robustness.training import adversarial_batches, corrupted_batches, train_with

__all__ = [
    "MEAN",
    "STD",
    "PixelModel",
    "to_pixels",
    "fgsm",
    "pgd",
    "attack",
    "robust_accuracy",
    "adversarial_batches",
    "corrupted_batches",
    "train_with",
    "detector_scores",
    "feature_gaussians",
    "mahalanobis_score",
    "operating_point",
    "modality",
    "CORRUPTIONS",
    "corruption_names",
    "corrupt",
    "corrupt_split",
    "image_rows",
    "lesson_config",
    "build",
    "sample_split",
    "with_images",
    "predict_pixels",
    "auc_se",
    "art_max_abs_diff",
    "heatmap",
]
