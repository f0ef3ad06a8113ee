"""Susceptibility and variation: adversarial attacks, adversarial training, a detector for human
review and MedMNIST-C-style acquisition corruptions.

Attacks work in **pixel space** ``[0, 1]``: :class:`PixelModel` wraps a medlab model (whose
input is on ``[-1, 1]``) and puts the normalisation ``(x - 0.5) / 0.5`` inside, so an epsilon
is a number of grey levels (``8 / 255`` = 8 grey levels of 255).

* :func:`fgsm` and :func:`pgd` - the fast gradient sign method (Goodfellow et al. 2015) and
  projected gradient descent under the L-infinity norm (Madry et al. 2018), written out; a test
  checks both against adversarial-robustness-toolbox's ``FastGradientMethod`` and
  ``ProjectedGradientDescent``.
* :func:`attack` / :func:`robust_accuracy` - batched over a whole split.
* :func:`adversarial_batches` - wraps any batch source of :func:`medlab.train.batches` so that
  :func:`medlab.train.train_steps` trains on attacked batches (adversarial training);
  :func:`corrupted_batches` does the same with random corruptions (augmentation).
* :func:`detector_scores` - how suspicious each input looks: features far from every clean class
  (Mahalanobis distance, Lee et al. 2018), a prediction that changes when the image is smoothed
  (feature squeezing, Xu et al. 2018), or low confidence.
* :func:`corrupt` - noise, blur, contrast, brightness and JPEG compression at five severities,
  with the parameters of MedMNIST-C (Di Salvo et al. 2024) for the modality at hand.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medlab.data import MedMNISTData, Split
from medlab.metrics import auc_se  # re-exported: notebook 08 calls R.auc_se
from medlab.train import (
    BatchAugment,
    batches,
    check_model,
    embeddings,
    eval_mode,
    make_optimizer,
    train_steps,
)
from medlab.utils import check_int, check_scalar, progress

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

#: medlab's input scale as a normalisation of [0, 1] pixels: ``to_input(u8) = (u8/255 - MEAN)/STD``.
MEAN, STD = 0.5, 0.5


class PixelModel(nn.Module):
    """``model`` taking pixels on [0, 1]: ``forward(x) = model((x - mean) / std)``.

    x: float (N, C, H, W) on [0, 1]; output: the wrapped model's logits (N, n_classes). The
    wrapper holds no parameters of its own; it shares the model's (train/eval mode included).
    """

    def __init__(self, model: nn.Module, *, mean: float = MEAN, std: float = STD) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"PixelModel wraps a torch nn.Module, got {type(model).__name__}")
        std = check_scalar("std", std, kind=float, lo=0, lo_inclusive=False)
        mean = check_scalar("mean", mean, kind=float)
        self.model, self.mean, self.std = model, mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def _pixel_model(model: nn.Module) -> PixelModel:
    return model if isinstance(model, PixelModel) else PixelModel(model)


def to_pixels(images: Any) -> torch.Tensor:
    """uint8 images (N, C, H, W) in 0..255 -> float32 on [0, 1] (a Split's images work too)."""
    x = images.images if isinstance(images, Split) else torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise TypeError(
            f"to_pixels expects uint8 images (N, C, H, W), got {x.dtype} {tuple(x.shape)}; "
            "floats on [-1, 1] map to pixels as (x + 1) / 2"
        )
    return x.float() / 255.0


# --------------------------------------------------------------------------------------------
# the attacks


def _check_eps(name: str, eps: Any) -> float:
    return check_scalar(
        name, eps, kind=float, lo=0, hi=1,
        fix=f"on the [0, 1] pixel scale: for 8 grey levels of 255 pass {name}=8/255",
    )  # fmt: skip


def _check_xy(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4:
        raise TypeError(
            "x must be a float tensor (N, C, H, W) of pixels on [0, 1]; convert uint8 images "
            "with medlab.robustness.to_pixels"
        )
    if len(x) and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(
            f"x must hold pixels on [0, 1], got values in [{float(x.min()):.3g}, "
            f"{float(x.max()):.3g}]: the model's [-1, 1] input maps to pixels as (x + 1) / 2"
        )
    y = torch.as_tensor(y)
    if y.shape != (len(x),) or y.is_floating_point():
        raise ValueError(f"y must be integer class labels of shape ({len(x)},), got {y.shape}")
    return x.float(), y.long()


def _loss_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of the mean cross-entropy over the batch with respect to the pixels x."""
    check_model(model, x)
    x = x.detach().requires_grad_(True)
    logits = model(x)
    k = logits.shape[1]
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
        raise ValueError(
            f"labels must be class indices 0..{k - 1} for this {k}-class model, got "
            f"{torch.unique(y)[:5].tolist()}: pass the split's own labels (split.labels)"
        )
    loss = F.cross_entropy(logits, y)
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: Any, *, eps: float) -> torch.Tensor:
    """Fast gradient sign method: ``x + eps * sign(grad_x loss(x, y))``, clipped to [0, 1].

    model: a classifier of [0, 1] pixels (:class:`PixelModel`; a medlab model is wrapped);
    x: float (N, C, H, W) on [0, 1]; y: true classes (N,); eps: L-infinity budget on the
    [0, 1] scale. Returns the adversarial images, same shape. The model runs in eval mode.
    """
    eps = _check_eps("eps", eps)
    x, y = _check_xy(x, y)
    net = _pixel_model(model)
    with eval_mode(net):
        grad = _loss_grad(net, x, y)
    return (x + eps * grad.sign()).clamp(0.0, 1.0).detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: Any,
    *,
    eps: float,
    step: float | None = None,
    steps: int = 10,
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent under the L-infinity norm (Madry et al. 2018).

    Starting at x (or, with ``random_start``, at a uniform random point of the eps-box), repeat
    ``steps`` times: step ``step`` along the sign of the loss gradient, clip to [0, 1], project
    back into the box ``|x_adv - x| <= eps``. ``step`` defaults to ``2.5 * eps / steps``
    (Madry et al.). Arguments as for :func:`fgsm`; returns float (N, C, H, W) on [0, 1].
    """
    eps = _check_eps("eps", eps)
    step = 2.5 * eps / max(1, steps) if step is None else _check_eps("step", step)
    steps = check_int("steps", steps, 1)
    x, y = _check_xy(x, y)
    net = _pixel_model(model)
    adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator) * 2 - 1
        adv = (x + eps * noise).clamp(0.0, 1.0)
    with eval_mode(net):
        for _ in range(steps):
            adv = (adv + step * _loss_grad(net, adv, y).sign()).clamp(0.0, 1.0)
            adv = x + (adv - x).clamp(-eps, eps)  # projection onto the eps-box around x
    return adv.detach()


def attack(
    model: nn.Module,
    images: Split | torch.Tensor,
    labels: Any = None,
    *,
    eps: float,
    method: str = "pgd",
    batch_size: int = 256,
    **kwargs: Any,
) -> torch.Tensor:
    """Attack a whole split (or uint8/[0, 1] images with ``labels``) in batches.

    method: ``"pgd"`` or ``"fgsm"``; kwargs go to :func:`pgd`. Returns float (N, C, H, W) on
    [0, 1]. ``eps=0`` returns the clean pixels.
    """
    if method not in ("pgd", "fgsm"):
        raise ValueError(f"method must be 'pgd' or 'fgsm', got {method!r}")
    if isinstance(images, Split):
        x, y = to_pixels(images), images.labels
    else:
        if labels is None:
            raise ValueError("give labels= with images (or pass a Split)")
        images = torch.as_tensor(images)
        x = to_pixels(images) if images.dtype == torch.uint8 else images
        y = torch.as_tensor(labels)
    x, y = _check_xy(x, y)
    batch_size = check_int("batch_size", batch_size, 1)
    eps = _check_eps("eps", eps)
    if eps == 0:
        return x.clone()
    net = _pixel_model(model)
    out = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        adv = (
            fgsm(net, xb, yb, eps=eps) if method == "fgsm" else pgd(net, xb, yb, eps=eps, **kwargs)
        )
        out.append(adv)
    return torch.cat(out)


@torch.no_grad()
def _predict_pixels(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Softmax probabilities (N, K) of pixel images x on [0, 1]."""
    net = _pixel_model(model)
    check_model(net, x)
    with eval_mode(net):
        return torch.cat(
            [torch.softmax(net(x[i : i + batch_size]), 1) for i in range(0, len(x), batch_size)]
        )


def robust_accuracy(
    model: nn.Module, split: Split, *, eps: float, method: str = "pgd", **kwargs: Any
) -> float:
    """Accuracy (0-1) of ``model`` on ``split`` with every image attacked at ``eps``."""
    if not isinstance(split, Split):
        raise TypeError(f"robust_accuracy needs a medlab Split, got {type(split).__name__}")
    adv = attack(model, split, eps=eps, method=method, **kwargs)
    pred = _predict_pixels(model, adv).argmax(1)
    return float((pred == split.labels).float().mean())


# --------------------------------------------------------------------------------------------
# training on attacked or corrupted batches, through medlab.train.train_steps


def adversarial_batches(
    model: nn.Module,
    source: Iterable[tuple[torch.Tensor, ...]],
    *,
    eps: float,
    steps: int = 1,
    step: float | None = None,
    random_start: bool = True,
    clean: bool = True,
    ramp: int = 0,
    seed: int = 0,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """The batches of ``source`` (x float on [-1, 1], y, [w]) attacked on the current ``model``.

    Each x is replaced by its PGD attack (``steps=1`` with ``random_start``: FGSM with a random
    start, step 1.25 eps, Wong et al. 2020); with ``clean`` the batch holds the clean images and
    their attacked copies (Goodfellow et al.'s 50/50 loss), which keeps clean accuracy. ``ramp``:
    the first ``ramp`` batches raise eps linearly from 0 (a warm-up that stops small models from
    collapsing to one class). Yields batches on the model's [-1, 1] scale, ready for
    :func:`medlab.train.train_steps`."""
    eps = _check_eps("eps", eps)
    steps = check_int("steps", steps, 1)
    ramp = check_int("ramp", ramp, 0)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    for i, batch in enumerate(source):
        e = eps * min(1.0, (i + 1) / ramp) if ramp else eps
        a = step * e / eps if step is not None and eps > 0 else None
        a = a if a is not None else (1.25 * e if steps == 1 else 2.5 * e / steps)
        x01 = ((batch[0] + 1.0) / 2.0).clamp(0.0, 1.0)
        adv = pgd(model, x01, batch[1], eps=e, step=min(a, 1.0), steps=steps,
                  random_start=random_start, generator=gen) * 2.0 - 1.0  # fmt: skip
        if clean:
            yield (torch.cat([batch[0], adv]), *(torch.cat([t, t]) for t in batch[1:]))
        else:
            yield (adv, *batch[1:])


def corrupted_batches(
    source: Iterable[tuple[torch.Tensor, ...]],
    names: Iterable[str],
    *,
    modality: str,
    p: float = 0.5,
    severities: Iterable[int] = (1, 2, 3, 4, 5),
    seed: int = 0,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """The batches of ``source`` with a share ``p`` of the images corrupted by a random
    corruption of ``names`` at a random severity (augmentation with MedMNIST-C corruptions)."""
    names, sevs = list(names), [check_int("severity", s, 1, 5) for s in severities]
    for n in names:
        _spec(modality, n)
    if not names:
        raise ValueError(f"need at least one corruption name, e.g. {corruption_names(modality)}")
    p = check_scalar("p", p, kind=float, lo=0, hi=1, fix="the share of images to corrupt")
    rng = np.random.default_rng(check_int("seed", seed, 0))
    for batch in source:
        x = batch[0]
        u8 = ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
        pick = np.flatnonzero(rng.random(len(x)) < p)
        out = u8.clone()
        for j, i in enumerate(pick):
            name, sev = names[rng.integers(len(names))], sevs[rng.integers(len(sevs))]
            out[i] = corrupt(u8[i : i + 1], name, sev, modality=modality, seed=seed + j)[0]
        yield (out.float() / 127.5 - 1.0, *batch[1:])


def train_with(
    model: nn.Module,
    train: Split,
    *,
    wrap: Any = None,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 3e-3,
    augment: BatchAugment | None = None,
    seed: int = 0,
    desc: str = "training",
) -> dict[str, Any]:
    """Train ``model`` in place on ``train`` with :func:`medlab.train.make_optimizer`,
    :func:`medlab.train.batches` and :func:`medlab.train.train_steps`, each epoch's batches
    passed through ``wrap(source) -> source`` (e.g. ``lambda s: adversarial_batches(model, s,
    eps=8/255)``). No model selection. Returns ``{"epochs", "train_loss"}`` (JSON-able)."""
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    opt, sched = make_optimizer(model, total_steps=epochs * steps_per_epoch, lr=lr)
    source = batches(train, batch_size=batch_size, epochs=epochs, seed=seed, augment=augment)
    source = wrap(source) if wrap is not None else source
    losses = []
    for _ in progress(range(epochs), desc=desc):
        losses.append(train_steps(model, source, opt, steps_per_epoch, scheduler=sched).loss)
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"training diverged (loss {losses[-1]}); lower lr ({lr})")
    model.eval()
    return {"epochs": epochs, "train_loss": losses}


# --------------------------------------------------------------------------------------------
# a detector for human review


def detector_scores(
    model: nn.Module,
    x: torch.Tensor,
    *,
    kind: str = "mahalanobis",
    reference: Split | tuple[torch.Tensor, torch.Tensor] | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """How suspicious each input looks, float (N,), higher = more suspicious.

    x: float (N, C, H, W) pixels on [0, 1]. kind:

    * ``"mahalanobis"`` (Lee et al. 2018): the squared Mahalanobis distance of the model's
      penultimate features (``model.embed``) to the nearest class mean, with class means and one
      shared covariance fitted on the clean images of ``reference`` (the training split) with
      their true labels, or given already fitted (:func:`feature_gaussians`). An attack drags the
      features off the clean classes' clouds.
    * ``"squeeze"``: feature squeezing (Xu et al. 2018): the L1 distance between the softmax
      outputs on x and on x smoothed by a 3x3 median filter and reduced to 5 bits (an attack's
      pixel-level pattern does not survive smoothing; the anatomy does).
    * ``"confidence"``: 1 - the top softmax probability.
    """
    if kind not in ("mahalanobis", "confidence", "squeeze"):
        raise ValueError(f"kind must be 'mahalanobis', 'squeeze' or 'confidence', got {kind!r}")
    x, _ = _check_xy(x, torch.zeros(len(x), dtype=torch.long))
    if kind == "mahalanobis":
        if isinstance(reference, Split):
            reference = feature_gaussians(model, reference, batch_size=batch_size)
        if not (isinstance(reference, tuple) and len(reference) == 2):
            raise TypeError(
                "kind='mahalanobis' needs reference=<the training Split>, or its "
                f"feature_gaussians(model, split), got {type(reference).__name__}"
            )
        means, precision = reference
        f = torch.from_numpy(embeddings(model, (x - MEAN) / STD, batch_size=batch_size)).double()
        d = f[:, None, :] - means[None]  # (N, K, D)
        return torch.einsum("nkd,de,nke->nk", d, precision, d).min(1).values.numpy()
    p = _predict_pixels(model, x, batch_size)
    if kind == "confidence":
        return (1.0 - p.max(1).values).numpy()
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    med = padded.unfold(2, 3, 1).unfold(3, 3, 1).reshape(*x.shape, 9).median(-1).values
    squeezed = torch.round(med * 31) / 31
    return (p - _predict_pixels(model, squeezed, batch_size)).abs().sum(1).numpy()


def feature_gaussians(
    model: nn.Module, split: Split, *, batch_size: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lee et al. 2018's generative classifier on the features: the class means (K, D) and the
    pseudo-inverse of the shared covariance (D, D), float64, of ``model``'s penultimate features
    (:func:`medlab.train.embeddings`) on the clean images of ``split`` with their true labels.
    Fit once per model and pass it as ``detector_scores(..., reference=)``."""
    f = torch.from_numpy(embeddings(model, split, batch_size=batch_size)).double()
    y = torch.as_tensor(split.labels).long().view(-1)
    classes = torch.unique(y)
    means = torch.stack([f[y == c].mean(0) for c in classes])
    centred = f - means[torch.searchsorted(classes, y)]
    cov = centred.T @ centred / len(f)
    return means, torch.linalg.pinv(cov, hermitian=True)  # dead ReLU features: variance 0


def operating_point(clean: np.ndarray, adversarial: np.ndarray, *, detect: float = 0.9) -> float:
    """The score threshold that flags a share ``detect`` of the ``adversarial`` scores (choose it
    on validation images); a case is flagged for review when its score >= threshold. The
    threshold is an observed score (the lower neighbour of the quantile), so at least ``detect``
    of ``adversarial`` is flagged, also with few scores."""
    detect = check_scalar(
        "detect", detect, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False,
        fix="the share of attacks to flag, e.g. 0.9",
    )  # fmt: skip
    for name, a in (("clean", clean), ("adversarial", adversarial)):
        a = np.asarray(a, dtype=float)
        if a.ndim != 1 or len(a) == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array of scores, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(
                f"{name} scores hold NaN or inf: drop those images or check detector_scores"
            )
    adversarial = np.asarray(adversarial, dtype=float)
    return float(np.quantile(adversarial, 1 - detect, method="lower"))


# --------------------------------------------------------------------------------------------
# MedMNIST-C-style corruptions

#: Parameters per modality, from MedMNIST-C (Di Salvo et al. 2024, medmnistc-api
#: ``corruptions/registry.py``): chest X-ray (``pneumoniamnist``/``chestmnist``) and breast
#: ultrasound (``breastmnist``). Five severities each. MedMNIST-C applies them to 224 px images;
#: here they act on the 28 px images in their own pixels, so a blur of the same width covers
#: more anatomy than in the benchmark.
CORRUPTIONS: dict[str, dict[str, tuple[str, tuple[Any, ...]]]] = {
    "xray": {
        "gaussian_noise": ("gaussian_noise", (0.04, 0.05, 0.06, 0.07, 0.08)),
        "gaussian_blur": ("gaussian_blur", (3, 5, 7, 9, 11)),
        "contrast_down": ("contrast", (0.9, 0.8, 0.7, 0.6, 0.4)),
        "brightness_up": ("brightness", (1.1, 1.2, 1.3, 1.4, 1.5)),
        "brightness_down": ("brightness", (0.9, 0.8, 0.7, 0.6, 0.5)),
        "jpeg_compression": ("jpeg", (50, 30, 15, 10, 7)),
    },
    "ultrasound": {
        "speckle_noise": ("speckle_noise", (0.10, 0.15, 0.20, 0.25, 0.30)),
        "motion_blur": ("motion_blur", ((5, 5), (9, 7), (9, 10), (13, 10), (17, 12))),
        "contrast_down": ("contrast", (0.9, 0.8, 0.7, 0.6, 0.4)),
        "brightness_up": ("brightness", (1.4, 1.5, 1.6, 1.8, 2.0)),
        "brightness_down": ("brightness", (0.55, 0.5, 0.45, 0.4, 0.3)),
        "jpeg_compression": ("jpeg", (50, 30, 15, 10, 7)),
    },
}
_MODALITY = {"pneumoniamnist": "xray", "chestmnist": "xray", "breastmnist": "ultrasound"}


def modality(data: MedMNISTData | str) -> str:
    """``"xray"`` or ``"ultrasound"`` for a dataset (or its name), for :data:`CORRUPTIONS`."""
    name = data.name if isinstance(data, MedMNISTData) else str(data)
    for prefix, mod in _MODALITY.items():
        if name.startswith(prefix):
            return mod
    raise ValueError(
        f"no MedMNIST-C corruption parameters for {name!r}; pass modality='xray' or "
        f"'ultrasound' explicitly ({sorted(CORRUPTIONS)})"
    )


def corruption_names(modality: str) -> list[str]:
    """The corruptions defined for ``modality``."""
    if modality not in CORRUPTIONS:
        raise ValueError(f"modality must be one of {sorted(CORRUPTIONS)}, got {modality!r}")
    return list(CORRUPTIONS[modality])


def _spec(modality: str, name: str) -> tuple[str, tuple[Any, ...]]:
    names = corruption_names(modality)
    if name not in names:
        raise ValueError(f"unknown corruption {name!r} for {modality}; choose one of {names}")
    return CORRUPTIONS[modality][name]


def _pil_each(u8: np.ndarray, fn: Any) -> np.ndarray:
    from PIL import Image

    out = np.empty_like(u8)
    for i in range(u8.shape[0]):
        for c in range(u8.shape[1]):
            out[i, c] = np.asarray(fn(Image.fromarray(u8[i, c], mode="L")), dtype=np.uint8)
    return out


def _jpeg(img: Any, quality: int) -> Any:
    from PIL import Image

    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("L")


def _gaussian_blur(x: torch.Tensor, k: int) -> torch.Tensor:
    """torchvision's ``gaussian_blur(img, k)``: sigma = 0.3 ((k - 1) / 2 - 1) + 0.8, reflect."""
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    r = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    w = torch.exp(-(r**2) / (2 * sigma**2))
    w = w / w.sum()
    c = x.shape[1]
    x = F.pad(x, (k // 2, k // 2, k // 2, k // 2), mode="reflect")
    x = F.conv2d(x, w.view(1, 1, 1, k).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, w.view(1, 1, k, 1).repeat(c, 1, 1, 1), groups=c)


def _motion_blur(
    x: torch.Tensor, radius: float, sigma: float, angles: torch.Tensor
) -> torch.Tensor:
    """ImageMagick's MotionBlurImage: a one-sided Gaussian-weighted streak of 2*radius+1 pixels
    along each image's angle (degrees), edge pixels repeated."""
    n, _, h, w = x.shape
    width = int(2 * math.ceil(radius) + 1)
    weights = torch.exp(-(torch.arange(width, dtype=torch.float32) ** 2) / (2 * sigma**2))
    weights = weights / weights.sum()
    a = torch.deg2rad(angles.float())
    dx, dy = torch.cos(a), torch.sin(a)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing="ij")  # fmt: skip
    out = torch.zeros_like(x)
    for i in range(width):
        gx = (xs + i * dx.view(n, 1, 1)) / (w - 1) * 2 - 1
        gy = (ys + i * dy.view(n, 1, 1)) / (h - 1) * 2 - 1
        grid = torch.stack([gx, gy], -1)
        out = out + weights[i] * F.grid_sample(
            x, grid, mode="bilinear", padding_mode="border", align_corners=True
        )
    return out


def corrupt(images: Any, name: str, severity: int, *, modality: str, seed: int = 0) -> torch.Tensor:
    """A MedMNIST-C corruption of uint8 images (N, C, H, W) -> uint8 (N, C, H, W).

    name: one of :func:`corruption_names` for ``modality``; severity: 1 (mild) to 5. Noise and
    the motion-blur angle (uniform in [-45, 45] degrees) are drawn from ``seed``. As in
    MedMNIST-C, noisy float images are truncated to uint8, PIL does brightness (a blend with
    black), contrast (a blend with the mean grey) and JPEG, and the Gaussian blur's sigma follows
    torchvision's rule for the kernel size.
    """
    kind, params = _spec(modality, name)
    severity = check_int("severity", severity, 1, 5)
    x = images.images if isinstance(images, Split) else torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise TypeError(
            f"corrupt expects uint8 images (N, C, H, W), got {x.dtype} {tuple(x.shape)}"
        )
    c = params[severity - 1]
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    f = x.float() / 255.0
    if kind == "gaussian_noise":
        f = (f + c * torch.randn(f.shape, generator=gen)).clamp(0, 1)
    elif kind == "speckle_noise":
        f = (f + f * c * torch.randn(f.shape, generator=gen)).clamp(0, 1)
    elif kind == "gaussian_blur":
        return (_gaussian_blur(x.float(), int(c))).round().clamp(0, 255).to(torch.uint8)
    elif kind == "motion_blur":
        angles = torch.rand(len(x), generator=gen) * 90 - 45
        f = _motion_blur(f, c[0], c[1], angles).clamp(0, 1)
    else:
        from PIL import ImageEnhance

        fn = {
            "brightness": lambda im: ImageEnhance.Brightness(im).enhance(c),
            "contrast": lambda im: ImageEnhance.Contrast(im).enhance(c),
            "jpeg": lambda im: _jpeg(im, c),
        }[kind]
        return torch.from_numpy(_pil_each(x.numpy(), fn))
    return (f * 255).to(torch.uint8)  # truncation, as MedMNIST-C's astype(np.uint8)


def corrupt_split(split: Split, name: str, severity: int, *, modality: str, seed: int = 0) -> Split:
    """A copy of ``split`` with its images corrupted (labels unchanged)."""
    import dataclasses

    if not isinstance(split, Split):
        raise TypeError(f"corrupt_split needs a medlab Split, got {type(split).__name__}")
    imgs = corrupt(split.images, name, severity, modality=modality, seed=seed)
    return dataclasses.replace(split, images=imgs, labels=split.labels.clone())


# --------------------------------------------------------------------------------------------
# figures


def image_rows(rows: dict[str, Any], *, title: str, col_labels: list[str] | None = None) -> Any:
    """A grid of greyscale images: one row per entry of ``rows`` (float (N, 1, H, W) on [0, 1]
    or uint8), the same N per row. Returns a plotly figure (house style)."""
    import plotly.graph_objects as go

    from medlab.plots import finish

    arrs = []
    for name, v in rows.items():
        v = torch.as_tensor(v)
        v = v.float() / 255.0 if v.dtype == torch.uint8 else v.float()
        if v.ndim != 4 or v.shape[1] != 1:
            raise ValueError(f"row {name!r}: need greyscale images (N, 1, H, W), got {v.shape}")
        arrs.append(torch.cat(list(v[:, 0].clamp(0, 1)), dim=1))
    if len({a.shape for a in arrs}) != 1:
        raise ValueError("every row needs the same number and size of images")
    grid = (torch.cat(arrs, 0).numpy() * 255).astype(np.uint8)
    n_rows, h = len(arrs), arrs[0].shape[0]
    w = torch.as_tensor(next(iter(rows.values()))).shape[-1]
    n_cols = grid.shape[1] // w
    fig = go.Figure(go.Image(z=np.repeat(grid[..., None], 3, axis=2)))
    fig.update_yaxes(tickvals=[h * (i + 0.5) for i in range(n_rows)], ticktext=list(rows))
    fig.update_xaxes(
        tickvals=[w * (j + 0.5) for j in range(n_cols)],
        ticktext=col_labels or [str(j + 1) for j in range(n_cols)],
    )
    return finish(fig, title=title, x=f"image ({w} x {h} px each)", y="row",
                  height=max(250, 90 * n_rows + 120))  # fmt: skip


# --------------------------------------------------------------------------------------------
# what notebook 08 needs around the algorithms


def lesson_config(data: MedMNISTData, lesson: Any) -> dict[str, Any]:
    """Notebook 08's settings for ``lesson.quick``: a SmallCNN of width 8 (quick) or 16 (full),
    batch 64, lr 5e-3, epochs for the lesson's image budget; PGD steps for evaluation (5 / 10);
    adversarial fine-tuning of the standard model (``adv_train``: half its epochs, at least 2, at
    lr 2e-3: at 5e-3 BreastMNIST's fine-tuned model fell to answering one class on one seed in
    four) with FGSM + random start (quick) or 3-step PGD (full), eps ramped up over its first
    third;
    test images attacked (300 quick, all full)."""
    quick = bool(lesson.quick)
    epochs = lesson.epochs(len(data.train), minimum=5 if quick else 8, scale=1.0 if quick else 0.5)
    adv_epochs = max(2, epochs // 2)
    train = {"epochs": epochs, "batch_size": 64, "lr": 5e-3}
    return {
        "width": 8 if quick else 16,
        "train": train,
        "adv_train": {**train, "epochs": adv_epochs, "lr": 2e-3},
        "adv": {
            "steps": 1 if quick else 3,
            "ramp": adv_epochs * math.ceil(len(data.train) / 64) // 3,
        },
        "pgd_steps": 5 if quick else 10,
        "n_test": 300 if quick else None,
    }


def build(data: MedMNISTData, cfg: dict[str, Any]) -> nn.Module:
    """The untrained SmallCNN of :func:`lesson_config` for ``data``."""
    from medlab.models import build_model

    return build_model("smallcnn", data.n_channels, data.n_classes, width=cfg["width"])


def sample_split(split: Split, n: int | None, *, seed: int = 0) -> Split:
    """``n`` images of ``split`` drawn at random (seeded, without replacement; all if None or
    more than there are), in their original order."""
    if n is None or n >= len(split):
        return split
    n = check_int("n", n, 1)
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    return split.subset(torch.sort(idx).values)


def with_images(split: Split, images: torch.Tensor) -> Split:
    """A copy of ``split`` holding ``images`` (uint8, same shape) instead of its own."""
    import dataclasses

    images = torch.as_tensor(images)
    if images.shape != split.images.shape or images.dtype != torch.uint8:
        raise ValueError(
            f"images must be uint8 of shape {tuple(split.images.shape)}, got "
            f"{images.dtype} {tuple(images.shape)}"
        )
    return dataclasses.replace(split, images=images, labels=split.labels.clone())


def predict_pixels(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities (N, K) of ``model`` on pixel images x (N, C, H, W) on [0, 1]."""
    x, _ = _check_xy(x, torch.zeros(len(x), dtype=torch.long))
    return _predict_pixels(model, x)


def art_max_abs_diff(
    model: nn.Module, x: torch.Tensor, y: Any, *, eps: float, step: float, steps: int
) -> dict[str, float]:
    """Largest |medlab - ART| (pixels, 0-1) for FGSM and PGD (``num_random_init=0``) on the same
    model, images and labels; ART's ``PyTorchClassifier`` gets ``clip_values=(0, 1)`` and the
    normalisation as ``preprocessing=(MEAN, STD)``."""
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    x, y = _check_xy(x, y)
    inner = model.model if isinstance(model, PixelModel) else model
    n_classes = int(inner(torch.zeros(1, *x.shape[1:])).shape[1]) if len(x) else 2
    clf = PyTorchClassifier(
        inner,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=n_classes,
        clip_values=(0.0, 1.0),
        preprocessing=(MEAN, STD),
    )
    onehot = np.eye(n_classes, dtype=np.float32)[y.numpy()]
    xs = x.numpy()
    art_fgsm = FastGradientMethod(clf, eps=eps, batch_size=len(x)).generate(xs, y=onehot)
    art_pgd = ProjectedGradientDescent(
        clf, eps=eps, eps_step=step, max_iter=steps, batch_size=len(x), verbose=False
    ).generate(xs, y=onehot)
    ours_pgd = pgd(model, x, y, eps=eps, step=step, steps=steps).numpy()
    return {
        "fgsm": float(np.abs(fgsm(model, x, y, eps=eps).numpy() - art_fgsm).max()),
        "pgd": float(np.abs(ours_pgd - art_pgd).max()),
    }


def heatmap(table: Any, *, clean: float, title: str) -> Any:
    """Accuracy per corruption (rows) and severity (columns) as a plotly heatmap; ``clean`` is
    the clean accuracy, shown in the colour bar's title."""
    import plotly.graph_objects as go

    from medlab.plots import finish

    z = np.asarray(table, dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"severity {c}" for c in table.columns],
            y=list(table.index),
            zmin=0,
            zmax=1,
            colorscale="RdYlGn",
            text=np.round(z, 2),
            texttemplate="%{text}",
            colorbar=dict(title=f"accuracy (clean {clean:.2f})"),
        )
    )
    return finish(fig, title=title, x="MedMNIST-C severity (1 mild - 5 severe)", y="corruption")
