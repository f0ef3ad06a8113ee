"""The library attribution methods beside Grad-CAM, one function each, all
``(model, images, target) -> (N, H, W) float32``: captum's integrated gradients and occlusion,
shap's expected gradients, lime's image explainer; :data:`METHODS` names all five."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

import numpy as np
import torch
from torch import nn

from medlab.explain.cam import gradcam
from medlab.explain.common import (
    BLACK,
    as_input,
    as_maps,
    check_baseline,
    eval_mode,
    model_logits,
    target_classes,
)
from medlab.utils import check_int, on_device

__all__ = [
    "integrated_gradients",
    "occlusion",
    "shap_gradient",
    "lime",
    "METHODS",
    "attribute",
]


def integrated_gradients(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    baseline: float = BLACK,
    n_steps: int = 32,
    internal_batch_size: int = 256,
) -> np.ndarray:
    """Integrated gradients (Sundararajan et al. 2017) with captum: (x - baseline) times the mean
    gradient of the target logit along the straight path from a constant ``baseline`` image
    (default black, -1 on the model's scale) to x. The maps sum to logit(x) - logit(baseline)
    (completeness, up to the Riemann error of ``n_steps``; with GroupNorm the path is steep near
    a constant baseline, so the sum converges slowly - fine for ranking pixels, use hundreds of
    steps when the sum itself matters). Units: logits. Returns (N, H, W).
    """
    check_int("n_steps", n_steps, 2)
    baseline = check_baseline("baseline", baseline)
    from captum.attr import IntegratedGradients

    x = as_input(images)
    t = target_classes(model, x, target)
    # on medlab.utils.device(), the model back where it was afterwards; the maps come to the CPU
    with on_device(model) as dev, eval_mode(model), torch.enable_grad():
        a = IntegratedGradients(model).attribute(
            x.to(dev),
            baselines=float(baseline),
            target=t.to(dev),
            n_steps=n_steps,
            method="gausslegendre",
            internal_batch_size=internal_batch_size,
        )
    return as_maps(a, *x.shape[-2:])


def occlusion(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    window: int = 4,
    stride: int = 2,
    baseline: float = BLACK,
) -> np.ndarray:
    """Occlusion (Zeiler & Fergus 2014) with captum: slide a ``window`` x ``window`` patch of the
    ``baseline`` value with step ``stride`` and record how much the target logit drops; each
    pixel gets the mean drop of the patches covering it. Units: logits. Returns (N, H, W).
    """
    check_int("window", window, 1)
    check_int("stride", stride, 1)
    baseline = check_baseline("baseline", baseline)
    from captum.attr import Occlusion

    x = as_input(images)
    c, h, w = x.shape[1:]
    if window > min(h, w) or stride > window:
        raise ValueError(
            f"need 1 <= stride <= window <= {min(h, w)} px, got window={window}, stride={stride}"
        )
    t = target_classes(model, x, target)
    # captum evaluates perturbations_per_eval copies of the whole input batch at once, so a
    # chunk of images bounds the memory (96 images in one call: about 1 GB more RSS); each
    # image's map depends on that image only, so chunking changes no number
    occ, chunk = Occlusion(model), 16
    # on medlab.utils.device(), the model back where it was afterwards; the maps come to the CPU
    with on_device(model) as dev, eval_mode(model), torch.no_grad():
        a = torch.cat(
            [
                occ.attribute(
                    x[i : i + chunk].to(dev),
                    sliding_window_shapes=(c, window, window),
                    strides=(c, stride, stride),
                    baselines=float(baseline),
                    target=t[i : i + chunk].to(dev),
                    perturbations_per_eval=64,
                ).cpu()
                for i in range(0, len(x), chunk)
            ]
        )
    return as_maps(a, h, w)


def shap_gradient(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    background: torch.Tensor | np.ndarray,
    nsamples: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """SHAP values by expected gradients with ``shap.GradientExplainer``: integrated gradients
    averaged over baselines drawn from ``background`` (uint8 or model-scale images, e.g. 32
    training images) at ``nsamples`` random path points per image. Units: logits.

    shap explains every output class; the target's map is returned. Returns (N, H, W).
    """
    import shap

    check_int("nsamples", nsamples, 1)
    x = as_input(images)
    bg = as_input(background)
    if bg.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"background images {tuple(bg.shape[1:])} must match the images {tuple(x.shape[1:])}"
        )
    t = target_classes(model, x, target)
    # shap runs where the model is (the CPU after medlab.train.fit), like Grad-CAM, whose
    # code is exported from notebook 04; captum's methods above use medlab.utils.device()
    state = np.random.get_state()  # shap reseeds NumPy's global generator; leave it as it was
    try:
        with eval_mode(model), torch.enable_grad():
            explainer = shap.GradientExplainer(model, bg, batch_size=64)
            sv = explainer.shap_values(x, nsamples=nsamples, rseed=seed)  # (N, C, H, W, K)
    finally:
        np.random.set_state(state)
    sv = np.asarray(sv)
    if sv.ndim == 4:  # one output only
        sv = sv[..., None]
    a = sv[np.arange(len(t)), ..., t.cpu().numpy()]  # (N, C, H, W)
    return as_maps(a, *x.shape[-2:])


def _grid_segments(h: int, w: int, patch: int) -> np.ndarray:
    rows = np.arange(h) // patch
    cols = np.arange(w) // patch
    return rows[:, None] * (int(np.ceil(w / patch))) + cols[None, :]


def lime(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    num_samples: int = 200,
    patch: int = 4,
    hide_value: float = BLACK,
    seed: int = 0,
) -> np.ndarray:
    """LIME (Ribeiro et al. 2016) with ``lime_image.LimeImageExplainer``: switch random subsets
    of superpixels off (to ``hide_value``, black by default), predict the ``num_samples``
    perturbed images, fit a locally weighted ridge regression of the target probability on the
    on/off pattern; every pixel gets its superpixel's weight. Superpixels are a grid of
    ``patch`` x ``patch`` squares (quickshift finds few useful segments at 28 px). Grayscale
    images are repeated to the 3 channels lime expects and averaged back for the model.
    Units: probability. Returns (N, H, W).
    """
    check_int("num_samples", num_samples, 10)
    check_int("patch", patch, 1)
    hide_value = check_baseline("hide_value", hide_value)
    from lime import lime_image

    x = as_input(images)
    n, c, h, w = x.shape
    if patch > min(h, w):
        raise ValueError(f"patch must be <= the image side ({min(h, w)} px), got {patch}")
    if c not in (1, 3):
        raise ValueError(f"lime needs 1- or 3-channel images, got {c} channels")
    t = target_classes(model, x, target)
    segments = _grid_segments(h, w, patch)
    classifier = _lime_classifier(model, c)
    out = np.zeros((n, h, w), dtype=np.float32)
    for i in range(n):
        img = x[i].permute(1, 2, 0).cpu().numpy().astype(np.float64)
        if c == 1:
            img = np.repeat(img, 3, axis=2)
        explainer = lime_image.LimeImageExplainer(random_state=seed + i)
        with mock.patch.object(
            lime_image, "tqdm", lambda it, *a, **k: it
        ):  # lime's own bar is loud
            exp = explainer.explain_instance(
                img,
                classifier,
                labels=(int(t[i]),),
                top_labels=None,
                hide_color=hide_value,
                num_samples=num_samples,
                batch_size=num_samples,
                segmentation_fn=lambda _img: segments,
                random_seed=seed + i,
            )
        out[i] = _segment_weights(exp.local_exp[int(t[i])], segments)
    return out


def _lime_classifier(model: nn.Module, c: int) -> Callable[[np.ndarray], np.ndarray]:
    """lime's classifier: (B, H, W, 3) images -> probabilities (B, K); 3 channels averaged back
    to one for a grayscale model (``c == 1``)."""

    def classifier(batch: np.ndarray) -> np.ndarray:
        xb = torch.as_tensor(np.ascontiguousarray(batch), dtype=torch.float32).permute(0, 3, 1, 2)
        if c == 1:
            xb = xb.mean(1, keepdim=True)
        return torch.softmax(model_logits(model, xb), 1).cpu().numpy()

    return classifier


def _segment_weights(local_exp: Sequence[tuple[int, float]], segments: np.ndarray) -> np.ndarray:
    """Every pixel gets its superpixel's weight (superpixels lime did not weigh get 0)."""
    weights = np.zeros(int(segments.max()) + 1)
    for seg, wt in local_exp:
        weights[seg] = wt
    return weights[segments]


#: name -> method, in the order the notebook shows them.
METHODS: dict[str, Callable[..., np.ndarray]] = {
    "Grad-CAM": gradcam,
    "Integrated gradients": integrated_gradients,
    "Occlusion": occlusion,
    "SHAP (expected gradients)": shap_gradient,
    "LIME": lime,
}


def attribute(
    method: str,
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Call the method named ``method`` (a key of :data:`METHODS`). Returns (N, H, W)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    return METHODS[method](model, images, target, **kwargs)
