"""The glass box: attribution maps, checked for faithfulness, used to diagnose a biased model.

Every method is one function with the same signature and the same output::

    maps = gradcam(model, images, target)          # np.ndarray float32 (N, H, W)

``images`` are uint8 tensors (N, C, H, W) as stored in a :class:`~medlab.data.Split` (converted
with :func:`medlab.train.to_input`) or float tensors already on the model's [-1, 1] scale.
``target`` is the class explained: None (the model's prediction), one int, or one per image.
Positive values are evidence *for* the target class; channels are summed.

* :func:`gradcam` - captum ``LayerGradCam`` on ``model.last_conv``, upsampled to the input size.
* :func:`integrated_gradients` - captum ``IntegratedGradients`` from a black baseline.
* :func:`occlusion` - captum ``Occlusion``: slide a black patch, measure the score drop.
* :func:`shap_gradient` - ``shap.GradientExplainer`` (expected gradients over a background set).
  ``shap.DeepExplainer`` is avoided: it needs one module object per operation and breaks on
  reused or in-place ReLUs in PyTorch; medlab's models have no in-place ops, but Gradient works
  for any differentiable model.
* :func:`lime` - ``lime_image.LimeImageExplainer`` on a grid of square superpixels.

Faithfulness (does the map point at what the model uses?): :func:`deletion_curve` (and
insertion), :func:`curve_auc`, :func:`random_maps`; the model-randomisation sanity check of
Adebayo et al. (2018): :func:`randomize_model`, :func:`map_similarity`. Embeddings:
:func:`medlab.train.embeddings`, :func:`pca`, :func:`group_separability`. Group diagnosis:
:func:`attribution_stats`, :func:`group_attribution_stats`. Plotting: :func:`plot_maps`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from unittest import mock

import numpy as np
import torch
from torch import nn

from medlab.train import eval_mode as _eval_mode
from medlab.train import predict, to_input
from medlab.utils import check_int, check_scalar, progress

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

#: The model's input value of a black pixel: the baseline of IG, occlusion, LIME and deletion.
BLACK = -1.0


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _as_input(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) -> [-1, 1] float; float input is taken as already on that scale."""
    x = torch.as_tensor(images)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("images is empty; pass at least one image")
    if x.dtype == torch.uint8:
        return to_input(x)
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 or float, got {x.dtype}")
    return x.float()


def _logits(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.from_numpy(predict(model, x, logits=True, batch_size=batch_size))


def _targets(
    model: nn.Module,
    x: torch.Tensor,
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None,
) -> torch.Tensor:
    """Target class per image, int64 (N,): the model's prediction when ``target`` is None."""
    n = x.shape[0]
    if target is None:
        return _logits(model, x).argmax(1)
    t = torch.as_tensor(np.asarray(target)).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.shape != (n,):
        raise ValueError(
            f"target must be None, an int or one class per image ({n}), got shape {tuple(t.shape)}"
        )
    k = _logits(model, x[:1]).shape[1]
    if (t < 0).any() or (t >= k).any():
        raise ValueError(f"target classes must be in 0..{k - 1}, got {t.unique().tolist()}")
    return t


def _finish(a: torch.Tensor | np.ndarray, h: int, w: int) -> np.ndarray:
    """Sum channels -> float32 (N, H, W)."""
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if a.ndim == 4:
        a = a.sum(1)
    if a.shape[1:] != (h, w):
        raise RuntimeError(f"attribution has shape {a.shape}, expected (N, {h}, {w})")
    return a.astype(np.float32)


def _baseline(name: str, value: Any) -> float:
    """A constant baseline image value on the model's [-1, 1] scale (finite, not NaN)."""
    return check_scalar(
        name,
        value,
        kind=float,
        fix=f"pass a pixel value on the model's scale, e.g. {BLACK} (black)",
    )


# --------------------------------------------------------------------------------------------
# attribution methods: one function each, all (model, images, target) -> (N, H, W) float32
# --------------------------------------------------------------------------------------------


def gradcam(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    layer: nn.Module | None = None,
    relu: bool = False,
    interpolate_mode: str = "bilinear",
) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) with captum's ``LayerGradCam``: the channel-mean gradient
    of the target logit weights the activations of ``layer`` (default ``model.last_conv``,
    7 x 7 for 28 px inputs); the map is upsampled with ``LayerAttribution.interpolate``.

    ``relu=True`` gives the published Grad-CAM (positive evidence only); the default keeps the
    sign so that maps of an untrained model are not all zero. Returns float32 (N, H, W).
    """
    x = _as_input(images)
    t = _targets(model, x, target)
    from captum.attr import LayerAttribution, LayerGradCam

    layer = layer if layer is not None else getattr(model, "last_conv", None)
    if layer is None:
        raise ValueError("the model has no .last_conv; pass layer=<the conv module to explain>")
    with _eval_mode(model), torch.enable_grad():
        a = LayerGradCam(model, layer).attribute(x, target=t, relu_attributions=relu)
        a = LayerAttribution.interpolate(a, tuple(x.shape[-2:]), interpolate_mode=interpolate_mode)
    return _finish(a, *x.shape[-2:])


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
    baseline = _baseline("baseline", baseline)
    from captum.attr import IntegratedGradients

    x = _as_input(images)
    t = _targets(model, x, target)
    with _eval_mode(model), torch.enable_grad():
        a = IntegratedGradients(model).attribute(
            x,
            baselines=float(baseline),
            target=t,
            n_steps=n_steps,
            method="gausslegendre",
            internal_batch_size=internal_batch_size,
        )
    return _finish(a, *x.shape[-2:])


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
    baseline = _baseline("baseline", baseline)
    from captum.attr import Occlusion

    x = _as_input(images)
    c, h, w = x.shape[1:]
    if window > min(h, w) or stride > window:
        raise ValueError(
            f"need 1 <= stride <= window <= {min(h, w)} px, got window={window}, stride={stride}"
        )
    t = _targets(model, x, target)
    # captum evaluates perturbations_per_eval copies of the whole input batch at once, so a
    # chunk of images bounds the memory (96 images in one call: about 1 GB more RSS); each
    # image's map depends on that image only, so chunking changes no number
    occ, chunk = Occlusion(model), 16
    with _eval_mode(model), torch.no_grad():
        a = torch.cat(
            [
                occ.attribute(
                    x[i : i + chunk],
                    sliding_window_shapes=(c, window, window),
                    strides=(c, stride, stride),
                    baselines=float(baseline),
                    target=t[i : i + chunk],
                    perturbations_per_eval=64,
                )
                for i in range(0, len(x), chunk)
            ]
        )
    return _finish(a, h, w)


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
    x = _as_input(images)
    bg = _as_input(background)
    if bg.shape[1:] != x.shape[1:]:
        raise ValueError(
            f"background images {tuple(bg.shape[1:])} must match the images {tuple(x.shape[1:])}"
        )
    t = _targets(model, x, target)
    state = np.random.get_state()  # shap reseeds NumPy's global generator; leave it as it was
    try:
        with _eval_mode(model), torch.enable_grad():
            explainer = shap.GradientExplainer(model, bg, batch_size=64)
            sv = explainer.shap_values(x, nsamples=nsamples, rseed=seed)  # (N, C, H, W, K)
    finally:
        np.random.set_state(state)
    sv = np.asarray(sv)
    if sv.ndim == 4:  # one output only
        sv = sv[..., None]
    a = sv[np.arange(len(t)), ..., t.numpy()]  # (N, C, H, W)
    return _finish(a, *x.shape[-2:])


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
    hide_value = _baseline("hide_value", hide_value)
    from lime import lime_image

    x = _as_input(images)
    n, c, h, w = x.shape
    if patch > min(h, w):
        raise ValueError(f"patch must be <= the image side ({min(h, w)} px), got {patch}")
    if c not in (1, 3):
        raise ValueError(f"lime needs 1- or 3-channel images, got {c} channels")
    t = _targets(model, x, target)
    segments = _grid_segments(h, w, patch)

    def classifier(batch: np.ndarray) -> np.ndarray:  # (B, H, W, 3) -> probabilities (B, K)
        xb = torch.as_tensor(np.ascontiguousarray(batch), dtype=torch.float32).permute(0, 3, 1, 2)
        if c == 1:
            xb = xb.mean(1, keepdim=True)
        return torch.softmax(_logits(model, xb), 1).numpy()

    out = np.zeros((n, h, w), dtype=np.float32)
    for i in range(n):
        img = x[i].permute(1, 2, 0).numpy().astype(np.float64)
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
        weights = np.zeros(int(segments.max()) + 1)
        for seg, wt in exp.local_exp[int(t[i])]:
            weights[seg] = wt
        out[i] = weights[segments]
    return out


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


# --------------------------------------------------------------------------------------------
# faithfulness
# --------------------------------------------------------------------------------------------


def random_maps(shape: tuple[int, int, int], *, seed: int = 0) -> np.ndarray:
    """Attribution maps of pure noise, (N, H, W): the "random order" reference."""
    if not isinstance(shape, tuple | list) or len(shape) != 3:
        raise ValueError(f"shape must be (N, H, W), three positive integers, got {shape!r}")
    shape = tuple(check_int(f"shape[{i}]", v, 1) for i, v in enumerate(shape))
    return (
        np.random.default_rng(check_int("seed", seed, 0)).standard_normal(shape).astype(np.float32)
    )


def deletion_curve(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    maps: np.ndarray,
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    mode: str = "deletion",
    steps: int = 16,
    baseline: float = BLACK,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion / insertion curve (Petsiuk et al. 2018, RISE).

    Pixels are ranked by attribution, most positive first (ties broken at random with
    ``seed``). ``"deletion"``: set the top fraction f of pixels to ``baseline`` and track the
    target-class probability; a faithful map makes it fall fast. ``"insertion"``: start from the
    ``baseline`` image and put back the top fraction f; a faithful map makes it rise fast.

    Returns ``fractions`` (steps + 1,) from 0 to 1 and ``scores`` (N, steps + 1), probabilities.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    check_int("steps", steps, 1)
    baseline = _baseline("baseline", baseline)
    x = _as_input(images)
    n, c, h, w = x.shape
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape != (n, h, w):
        raise ValueError(f"maps must have shape {(n, h, w)} (one map per image), got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values")
    t = _targets(model, x, target)
    rng = np.random.default_rng(seed)
    tiebreak = rng.random((n, h * w))
    # rank: 0 for the most positive pixel; lexsort sorts by the last key first
    order = np.stack([np.lexsort((tiebreak[i], -maps[i].reshape(-1))) for i in range(n)])
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(h * w)[None, :].repeat(n, 0), axis=1)
    rank_t = torch.as_tensor(rank.reshape(n, 1, h, w))
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = torch.as_tensor(np.round(fractions * h * w).astype(np.int64)).view(-1, 1, 1, 1, 1)
    top = rank_t.unsqueeze(0) < counts  # (S, N, 1, H, W): the pixels removed at each step
    base = torch.full_like(x, float(baseline)).unsqueeze(0)
    xs = (
        torch.where(top, base, x.unsqueeze(0))
        if mode == "deletion"
        else torch.where(top, x.unsqueeze(0), base)
    )
    p = torch.softmax(_logits(model, xs.reshape(-1, c, h, w)), 1).view(steps + 1, n, -1)
    scores = p[:, torch.arange(n), t].T.double().numpy()  # (N, S)
    return fractions, scores


def curve_auc(fractions: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Area under each curve by the trapezoid rule: (N, S) scores over (S,) fractions -> (N,)."""
    fractions = np.asarray(fractions, dtype=float)
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    if not (np.isfinite(fractions).all() and np.isfinite(scores).all()):
        raise ValueError(
            "fractions and scores must be finite: a NaN or inf score comes from the model's "
            "outputs (check them with torch.isfinite)"
        )
    if scores.shape[-1] != fractions.shape[0]:
        raise ValueError(
            f"scores have {scores.shape[-1]} columns but there are {fractions.shape[0]} fractions"
        )
    return np.trapezoid(scores, fractions, axis=-1)


def faithfulness(
    model: nn.Module,
    images: torch.Tensor | np.ndarray,
    maps: Mapping[str, np.ndarray],
    target: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
    *,
    steps: int = 16,
    n_random: int = 3,
    baseline: float = BLACK,
    seed: int = 0,
) -> tuple[Any, dict[str, dict[str, np.ndarray]]]:
    """Deletion and insertion curves for every method in ``maps`` and for ``n_random`` random
    orders (pooled under ``"random"``).

    Returns ``(table, curves)``: ``table`` a pandas DataFrame with one row per method and the
    mean deletion AUC (lower is more faithful), insertion AUC (higher is more faithful), their
    standard errors over images and the per-image win rate against random deletion;
    ``curves[method]["deletion" | "insertion"]`` the score arrays (N, steps + 1) and
    ``curves["fractions"]`` the x values.
    """
    import pandas as pd

    check_int("n_random", n_random, 1)
    _baseline("baseline", baseline)
    x = _as_input(images)
    t = _targets(model, x, target)
    n, _, h, w = x.shape
    curves: dict[str, Any] = {}
    every = dict(maps)
    for r in range(n_random):
        every[f"random {r}"] = random_maps((n, h, w), seed=seed + 1000 + r)
    fr = None
    for name, m in progress(every.items(), desc="deletion/insertion"):
        curves[name] = {}
        for mode in ("deletion", "insertion"):
            fr, s = deletion_curve(
                model, x, m, t, mode=mode, steps=steps, baseline=baseline, seed=seed
            )
            curves[name][mode] = s
    randoms = [curves.pop(f"random {r}") for r in range(n_random)]
    rand = {
        mode: np.mean([cv[mode] for cv in randoms], axis=0) for mode in ("deletion", "insertion")
    }
    curves["random"] = rand
    rows = []
    rand_del = curve_auc(fr, rand["deletion"])
    for name, cv in curves.items():
        d, i = curve_auc(fr, cv["deletion"]), curve_auc(fr, cv["insertion"])
        rows.append(
            {
                "method": name,
                "deletion_auc": d.mean(),
                "deletion_sem": d.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0,
                "insertion_auc": i.mean(),
                "insertion_sem": i.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0,
                "beats_random": float(np.mean(d < rand_del)) if name != "random" else 0.5,
            }
        )
    curves["fractions"] = fr
    return pd.DataFrame(rows).set_index("method"), curves


# --------------------------------------------------------------------------------------------
# model-randomisation sanity check (Adebayo et al. 2018)
# --------------------------------------------------------------------------------------------


def randomize_model(model: nn.Module, *, seed: int = 0) -> nn.Module:
    """A copy of ``model`` with every layer re-initialised (PyTorch's default initialisation,
    seeded): same architecture, nothing learned. The original is untouched."""
    rand = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        n_reset = 0
        for module in rand.modules():
            if hasattr(module, "reset_parameters") and callable(module.reset_parameters):
                module.reset_parameters()
                n_reset += 1
    if n_reset == 0:
        raise ValueError("the model has no layer with reset_parameters(); nothing to randomise")
    return rand


def map_similarity(a: np.ndarray, b: np.ndarray, *, metric: str = "spearman") -> np.ndarray:
    """Per-image similarity of two sets of maps (N, H, W), computed on absolute values (the
    sign of an attribution flips easily; Adebayo et al. 2018 compare magnitudes).

    ``"spearman"``: rank correlation (scipy), -1..1; NaN where a map is constant.
    ``"ssim"``: structural similarity (scikit-image) of the maps scaled to [0, 1] by their
    maximum, -1..1. Returns (N,).
    """
    from scipy.stats import spearmanr

    a, b = np.abs(np.asarray(a, dtype=np.float64)), np.abs(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"need two arrays of the same shape (N, H, W), got {a.shape}, {b.shape}")
    out = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        if metric == "spearman":
            if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0:
                out[i] = spearmanr(a[i].ravel(), b[i].ravel()).statistic
        elif metric == "ssim":
            from skimage.metrics import structural_similarity

            ai = a[i] / a[i].max() if a[i].max() > 0 else a[i]
            bi = b[i] / b[i].max() if b[i].max() > 0 else b[i]
            out[i] = structural_similarity(ai, bi, data_range=1.0, win_size=7)
        else:
            raise ValueError(f"metric must be 'spearman' or 'ssim', got {metric!r}")
    return out


# --------------------------------------------------------------------------------------------
# embeddings
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def pca(
    features: np.ndarray, n_components: int = 2, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of (N, D) features (scikit-learn, features standardised first).
    Returns coordinates (N, n_components) and explained variance ratios (n_components,)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or not 1 <= n_components <= min(features.shape):
        raise ValueError(
            f"need features (N, D) and 1 <= n_components <= min(N, D), got "
            f"{features.shape} and {n_components}"
        )
    z = StandardScaler().fit_transform(features)
    p = PCA(n_components=n_components, random_state=seed)
    return p.fit_transform(z), p.explained_variance_ratio_


def group_separability(
    features: np.ndarray, groups: np.ndarray, *, folds: int = 5, seed: int = 0
) -> float:
    """How well a linear probe tells the groups apart from the features: cross-validated
    ROC AUC of a logistic regression (scikit-learn). 0.5 = not encoded, 1 = perfectly encoded."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    groups = np.asarray(groups).reshape(-1)
    features = np.asarray(features, dtype=np.float64)
    if len(groups) != len(features):
        raise ValueError(f"{len(features)} feature rows but {len(groups)} group labels")
    if len(np.unique(groups)) != 2 or np.bincount(groups.astype(int)).min() < folds:
        raise ValueError(f"need two groups with at least folds={folds} members each")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    p = cross_val_predict(probe, features, groups, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(groups, p))


# --------------------------------------------------------------------------------------------
# group diagnosis
# --------------------------------------------------------------------------------------------


def attribution_stats(maps: np.ndarray, *, center: float = 0.5) -> dict[str, np.ndarray]:
    """Per-image statistics of (N, H, W) maps, each (N,):

    ``evidence``: sum of the positive attribution (for IG/SHAP: logits of evidence for the
    target class); ``magnitude``: sum of |attribution|; ``center_share``: share of the positive
    attribution inside the central square covering ``center`` of each side (0..1).
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (N, H, W), got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or infinite values: drop those images")
    center = check_scalar("center", center, kind=float, lo=0, hi=1, lo_inclusive=False,
                          fix="the side share of the central square, e.g. 0.5")  # fmt: skip
    n, h, w = maps.shape
    pos = np.clip(maps, 0.0, None)
    dh, dw = round(h * (1 - center) / 2), round(w * (1 - center) / 2)
    inner = pos[:, dh : h - dh, dw : w - dw].sum((1, 2))
    total = pos.sum((1, 2))
    return {
        "evidence": total,
        "magnitude": np.abs(maps).sum((1, 2)),
        "center_share": np.divide(inner, total, out=np.zeros(n), where=total > 0),
    }


def group_attribution_stats(
    maps: np.ndarray,
    groups: np.ndarray,
    names: Mapping[int, str] | None = None,
    *,
    center: float = 0.5,
) -> Any:
    """:func:`attribution_stats` averaged per group: a pandas DataFrame indexed by group name
    with the mean and standard error of each statistic and the group size."""
    import pandas as pd

    groups = np.asarray(groups).reshape(-1)
    if len(groups) != len(maps):
        raise ValueError(f"{len(maps)} maps but {len(groups)} group labels")
    stats = attribution_stats(maps, center=center)
    rows = []
    for g in np.unique(groups):
        sel = groups == g
        row: dict[str, Any] = {"group": (names or {}).get(int(g), str(g)), "n": int(sel.sum())}
        for k, v in stats.items():
            row[k] = float(v[sel].mean())
            row[f"{k}_sem"] = (
                float(v[sel].std(ddof=1) / np.sqrt(sel.sum())) if sel.sum() > 1 else 0.0
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")


# --------------------------------------------------------------------------------------------
# plotting
# --------------------------------------------------------------------------------------------


def plot_maps(
    images: torch.Tensor | np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    row_labels: Sequence[str] | None = None,
    title: str = "Attribution maps",
    max_rows: int = 8,
) -> Any:
    """One row per image: the image, then each method's map (normalised per map to [-1, 1] by
    its largest absolute value; red = evidence for the target class, blue = against).

    ``images``: uint8 (N, C, H, W) (or model-scale float); ``maps[name]``: (N, H, W).
    Returns a plotly Figure.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from medlab.plots import finish

    x = _as_input(images)
    n = min(len(x), max_rows)
    if not maps:
        raise ValueError("maps is empty; pass {method name: (N, H, W) array}")
    for name, m in maps.items():
        if np.shape(m)[0] < n or np.shape(m)[1:] != tuple(x.shape[-2:]):
            raise ValueError(
                f"maps[{name!r}] has shape {np.shape(m)}, expected "
                f"({len(x)}, {x.shape[-2]}, {x.shape[-1]})"
            )
    names = list(maps)
    cols = 1 + len(names)
    fig = make_subplots(
        rows=n,
        cols=cols,
        column_titles=["image", *names],
        row_titles=list(row_labels[:n]) if row_labels is not None else None,
        horizontal_spacing=0.01,
        vertical_spacing=0.01,
    )
    for i in range(n):
        img = ((x[i].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        if img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        fig.add_trace(go.Image(z=img, hoverinfo="skip"), row=i + 1, col=1)
        for j, name in enumerate(names):
            m = np.asarray(maps[name][i], dtype=np.float64)
            scale = np.abs(m).max()
            fig.add_trace(
                go.Heatmap(
                    z=m / scale if scale > 0 else m,
                    coloraxis="coloraxis",
                    hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>",
                ),
                row=i + 1,
                col=j + 2,
            )
    fig.update_layout(
        coloraxis=dict(
            colorscale="RdBu_r", cmin=-1, cmax=1, colorbar=dict(title="attribution<br>(normalised)")
        )
    )
    fig.update_xaxes(showticklabels=False, ticks="", showline=False)
    fig.update_yaxes(
        showticklabels=False,
        ticks="",
        showline=False,
        autorange="reversed",
        scaleanchor="x",
        constrain="domain",
    )
    for r in range(1, n + 1):  # every cell square and the right way up
        for c in range(1, cols + 1):
            fig.update_yaxes(
                scaleanchor=fig.get_subplot(r, c).xaxis.plotly_name.replace("axis", ""),
                row=r,
                col=c,
            )
    h, w = x.shape[-2:]
    return finish(
        fig, title=title, x=f"{w} px per panel", y=f"{h} px per panel", height=140 * n + 120
    )
