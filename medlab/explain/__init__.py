"""The glass box: attribution maps, checked for faithfulness, used to diagnose a biased model.

Every method is one function with the same signature and the same output::

    maps = gradcam(model, images, target)          # np.ndarray float32 (N, H, W)

``images`` are uint8 tensors (N, C, H, W) as stored in a :class:`~medlab.data.Split` (converted
with :func:`medlab.train.to_input`) or float tensors already on the model's [-1, 1] scale.
``target`` is the class explained: None (the model's prediction), one int, or one per image.
Positive values are evidence *for* the target class; channels are summed
(:mod:`~medlab.explain.common`).

* :func:`gradcam` (:mod:`~medlab.explain.cam`, written out in notebook 04) - Grad-CAM on
  ``model.last_conv``, upsampled to the input size; equal to captum's ``LayerGradCam``.
* :mod:`~medlab.explain.attributions`: :func:`integrated_gradients` (captum, from a black
  baseline), :func:`occlusion` (captum: slide a black patch, measure the score drop),
  :func:`shap_gradient` (``shap.GradientExplainer``, expected gradients over a background set;
  ``shap.DeepExplainer`` is avoided: it needs one module object per operation and breaks on
  reused or in-place ReLUs in PyTorch), :func:`lime` (``lime_image`` on a grid of square
  superpixels); :data:`METHODS` and :func:`attribute` by name.

Faithfulness (does the map point at what the model uses?): :func:`deletion_curve` (and
insertion, :mod:`~medlab.explain.deletion`, written out in notebook 04), :func:`curve_auc`,
:func:`random_maps`, :func:`faithfulness`; the model-randomisation sanity check of Adebayo et al.
(2018): :func:`randomize_model`, :func:`map_similarity` (:mod:`~medlab.explain.checks`).
Embeddings: :func:`medlab.train.embeddings`, :func:`pca`, :func:`group_separability`. Group
diagnosis: :func:`attribution_stats`, :func:`group_attribution_stats`
(:mod:`~medlab.explain.groups`). Plotting: :func:`plot_maps` (:mod:`~medlab.explain.figures`).
"""

from __future__ import annotations

from medlab.explain.attributions import (
    METHODS,
    attribute,
    integrated_gradients,
    lime,
    occlusion,
    shap_gradient,
)
from medlab.explain.attributions import _grid_segments as _grid_segments
from medlab.explain.cam import gradcam
from medlab.explain.checks import faithfulness, map_similarity, randomize_model
from medlab.explain.common import BLACK as BLACK
from medlab.explain.common import (
    as_input,
    as_maps,
    check_baseline,
    eval_mode,
    model_logits,
    target_classes,
)
from medlab.explain.deletion import curve_auc, deletion_curve, random_maps
from medlab.explain.figures import plot_maps
from medlab.explain.groups import (
    attribution_stats,
    group_attribution_stats,
    group_separability,
    pca,
)

# the private names of the single-module medlab.explain, which tests use
_as_input = as_input
_logits = model_logits
_targets = target_classes
_finish = as_maps
_baseline = check_baseline
_eval_mode = eval_mode

__all__ = [
    "METHODS",
    "gradcam",
    "integrated_gradients",
    "occlusion",
    "shap_gradient",
    "lime",
    "attribute",
    "deletion_curve",
    "curve_auc",
    "random_maps",
    "faithfulness",
    "randomize_model",
    "map_similarity",
    "pca",
    "group_separability",
    "attribution_stats",
    "group_attribution_stats",
    "plot_maps",
]
