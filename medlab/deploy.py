"""Lesson 09 (deploy responsibly): what a model costs, how far its confidence can be trusted, and
how a clinician stays in the loop.

* **Cost** (:func:`measure_cost`): size on disk (bytes of the saved ``state_dict``), parameters,
  CPU latency per image (batch of 1, median after warm-up runs) and throughput (images/s).
* **Structured magnitude pruning** (:func:`prune_groups`): whole GroupNorm groups of output
  channels with the smallest filter L1 norms are *removed* (a smaller dense model, not a mask),
  so the model is really smaller and faster; the channels that stay compute exactly what they
  computed before (a GroupNorm group's statistics never mix with another group's).
* **Post-training int8 quantisation** (:func:`quantize_int8`): PyTorch's FX graph-mode static
  quantisation (``torch.ao.quantization.quantize_fx``), calibrated on the validation split.
  Convolutions and the linear head run in int8; GroupNorm has no int8 kernel in the FX backend,
  so it stays float between a dequantise and a quantise (:func:`int8_layers` lists which is which).
* **Calibration**: top-label expected calibration error (:func:`ece`, the definition of Guo et al.
  2017 and of torchmetrics' ``MulticlassCalibrationError``), its reliability table
  (:func:`reliability`) and temperature scaling fitted on the validation split
  (:func:`fit_temperature`).
* **Human oversight**: selective prediction (:func:`coverage_risk`, :func:`deferral_threshold`)
  and conformal prediction sets with MAPIE's ``SplitConformalClassifier(prefit=True)`` over a
  scikit-learn wrapper of the torch model (:class:`TorchClassifier`, :func:`conformal_sets`),
  calibrated on cases exchangeable with the test cases (:func:`oversight`: the other half of
  the test split) and, to show what breaks the guarantee, on the validation split.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import statistics
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from medlab.data import Split
from medlab.metrics import _check_classes
from medlab.models import ConvBlock
from medlab.train import predict, to_input
from medlab.utils import check_int, check_scalar

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
    "coverage_risk",
    "deferral_threshold",
    "TorchClassifier",
    "conformal_sets",
    "coverage_error_bound",
    "compress",
    "oversight",
    "tradeoff_figure",
    "reliability_figure",
    "coverage_risk_figure",
]


@contextlib.contextmanager
def _quantized_ok() -> Iterator[None]:
    """Quantised CPU kernels (``quantized_resize_cpu_``) have no flag for PyTorch's deterministic
    mode and warn on every call (they are integer kernels, and repeat exactly); switch the
    check off inside the block and restore it afterwards."""
    was, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)


# --------------------------------------------------------------------------------------------
# cost


@dataclass
class Cost:
    """What one model costs on this CPU.

    params: stored weights (parameters and buffers such as int8 weights), count;
    size_mb: bytes of ``torch.save(state_dict)`` / 1e6 (the file a deployment would ship);
    latency_ms: median milliseconds for one image (batch of 1);
    throughput: images per second at ``batch_size`` (median of the repeats).
    """

    params: int
    size_mb: float
    latency_ms: float
    throughput: float
    batch_size: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def state_dict_bytes(model: nn.Module) -> int:
    """Size in bytes of ``torch.save(model.state_dict())``: exactly the file it would write
    (serialised in memory, so nothing is left on disk)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return len(buf.getvalue())


def _stored_values(model: nn.Module) -> int:
    """Number of weights and biases, counted the same way for float and quantised modules
    (whose int8 weights are packed and reached through ``.weight()`` / ``.bias()``)."""
    total = 0
    for m in model.modules():
        for attr in ("weight", "bias"):
            v = getattr(m, attr, None)
            if callable(v) and not isinstance(v, torch.Tensor):
                try:
                    v = v()
                except (RuntimeError, TypeError):
                    v = None
            if isinstance(v, torch.Tensor):
                total += v.numel()
    return total


@torch.no_grad()
def _median_seconds(model: nn.Module, x: torch.Tensor, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_cost(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 64,
    warmup: int = 3,
    repeats: int = 15,
) -> Cost:
    """Measure a model's :class:`Cost` on real images.

    Args:
        model: any module taking float input on medlab's [-1, 1] scale (float or int8).
        images: uint8 (N, C, H, W), N >= batch_size (e.g. ``data.test.images``).
        batch_size: images per forward pass for the throughput.
        warmup, repeats: untimed runs first, then the median of ``repeats`` timed runs.
    """
    batch_size = check_int("batch_size", batch_size, 1)
    warmup = check_int("warmup", warmup, 0)
    repeats = check_int("repeats", repeats, 1)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError("images must be a uint8 tensor (N, C, H, W), e.g. data.test.images")
    if len(images) < batch_size:
        raise ValueError(f"need at least batch_size={batch_size} images, got {len(images)}")
    model.eval()
    one = to_input(images[:1])
    batch = to_input(images[:batch_size])
    with _quantized_ok():
        latency = _median_seconds(model, one, warmup, repeats)
        per_batch = _median_seconds(model, batch, warmup, max(3, repeats // 3))
    return Cost(
        params=_stored_values(model),
        size_mb=state_dict_bytes(model) / 1e6,
        latency_ms=1000 * latency,
        throughput=batch_size / per_batch,
        batch_size=batch_size,
    )


def _first_image(images: torch.Tensor) -> torch.Tensor:
    """The first of uint8 images (N, C, H, W), N >= 1, as model input (1, C, H, W)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) < 1:
        raise ValueError("images must be a uint8 tensor (N, C, H, W), e.g. data.test.images")
    return to_input(images[:1])


def forward_flops(model: nn.Module, images: torch.Tensor) -> int:
    """Floating-point operations of one forward pass on one image, counted by PyTorch's
    ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2; convolutions and
    matrix products only, which dominate these models). Training costs about 3 times this per
    image (forward and backward): a count of work, unlike a time, it does not depend on the
    machine or its load.

    Args:
        model: a float model taking medlab's [-1, 1] input.
        images: uint8 (N, C, H, W), N >= 1; the first image is used.
    """
    from torch.utils.flop_counter import FlopCounterMode

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(_first_image(images))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def compare_latency(
    models: Mapping[str, nn.Module],
    images: torch.Tensor,
    *,
    rounds: int = 7,
    repeats: int = 5,
    warmup: int = 3,
) -> pd.DataFrame:
    """Latency of several models for one image, measured so that the machine's load cannot
    decide a comparison: the models take turns (interleaved, in an order rotated every round),
    and each round keeps the fastest of ``repeats`` runs (load only ever adds time).

    Args:
        models: name -> model taking float input on medlab's [-1, 1] scale (float or int8).
        images: uint8 (N, C, H, W), N >= 1; the first image is timed.
        rounds: turns per model; repeats: timed runs per turn; warmup: untimed runs first.

    Returns:
        one row per model: ``min_ms`` (fastest turn), ``median_ms`` (median over turns) and
        ``rounds_fastest`` (turns in which it was the fastest model), in milliseconds.
    """
    rounds = check_int("rounds", rounds, 1)
    repeats = check_int("repeats", repeats, 1)
    warmup = check_int("warmup", warmup, 0)
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping name -> nn.Module")
    for name, m in models.items():
        if not isinstance(m, nn.Module):
            raise TypeError(f"models[{name!r}] must be a torch.nn.Module, got {type(m).__name__}")
    one = _first_image(images)
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    fastest = dict.fromkeys(names, 0)
    with _quantized_ok(), torch.no_grad():
        for n in names:
            models[n].eval()
            for _ in range(warmup):
                models[n](one)
        for r in range(rounds):
            turn = {}
            for n in names[r % len(names) :] + names[: r % len(names)]:
                best = math.inf
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    models[n](one)
                    best = min(best, time.perf_counter() - t0)
                turn[n] = 1000 * best
                times[n].append(turn[n])
            fastest[min(turn, key=turn.get)] += 1
    return pd.DataFrame(
        {
            "model": names,
            "min_ms": [min(times[n]) for n in names],
            "median_ms": [statistics.median(times[n]) for n in names],
            "rounds_fastest": [fastest[n] for n in names],
            "rounds": rounds,
        }
    ).set_index("model")


# --------------------------------------------------------------------------------------------
# structured magnitude pruning: remove whole GroupNorm groups


def _blocks(model: nn.Module) -> list[ConvBlock]:
    feats = getattr(model, "features", None)
    head = getattr(model, "head", None)
    blocks = [m for m in feats if isinstance(m, ConvBlock)] if feats is not None else []
    ok = isinstance(feats, nn.Sequential) and isinstance(head, nn.Linear) and blocks
    ok = ok and all(isinstance(m, ConvBlock | nn.MaxPool2d) for m in feats)
    ok = ok and all(isinstance(b[1], nn.GroupNorm) for b in blocks)
    if not ok:
        raise TypeError(
            f"prune_groups works on medlab's SmallCNN (ConvBlocks with GroupNorm, a Linear "
            f"head); got {type(model).__name__}. Build it with medlab.models.SmallCNN(norm='group')"
        )
    return blocks


def _keep_groups(conv: nn.Conv2d, norm: nn.GroupNorm, amount: float) -> torch.Tensor:
    """Channel indices of the groups whose filters have the largest L1 norm."""
    g, c = norm.num_groups, conv.out_channels
    per_filter = conv.weight.detach().abs().sum(dim=(1, 2, 3)).view(g, c // g)
    n_keep = max(1, g - round(amount * g))
    keep = torch.sort(torch.topk(per_filter.sum(1), n_keep).indices).values
    return (keep[:, None] * (c // g) + torch.arange(c // g)).reshape(-1)


def prune_groups(model: nn.Module, amount: float) -> nn.Module:
    """Structured magnitude pruning of a :class:`~medlab.models.SmallCNN`: in every conv
    block, remove ``amount`` (0-1) of the GroupNorm groups, those whose output filters have the
    smallest summed L1 norm, with their channels, norm weights and the next layer's inputs.

    Returns a new, smaller dense model (the input model is unchanged). Removing whole groups
    keeps every remaining channel's normalisation exactly as before, so the channels that stay
    compute the same values until the first layer that lost inputs. Fine-tune afterwards to win
    back accuracy (e.g. one epoch of :func:`medlab.train.fit`).
    """
    amount = check_scalar(
        "amount", amount, kind=float, lo=0, hi=1, hi_inclusive=False,
        fix="the share of groups to remove, e.g. 0.5",
    )  # fmt: skip
    blocks = _blocks(model)
    pruned = copy.deepcopy(model).eval()
    prev: torch.Tensor | None = None
    for block in _blocks(pruned):
        conv, norm = block[0], block[1]
        keep = _keep_groups(conv, norm, float(amount))
        w = conv.weight.detach()[keep]
        if prev is not None:
            w = w[:, prev]
        new_conv = nn.Conv2d(w.shape[1], w.shape[0], conv.kernel_size, conv.stride,
                             conv.padding, bias=conv.bias is not None)  # fmt: skip
        new_conv.weight.data.copy_(w)
        if conv.bias is not None:
            new_conv.bias.data.copy_(conv.bias.detach()[keep])
        n_groups = len(keep) // (conv.out_channels // norm.num_groups)
        new_norm = nn.GroupNorm(n_groups, len(keep), eps=norm.eps, affine=norm.affine)
        if norm.affine:
            new_norm.weight.data.copy_(norm.weight.detach()[keep])
            new_norm.bias.data.copy_(norm.bias.detach()[keep])
        block[0], block[1] = new_conv, new_norm
        prev = keep
    head = pruned.head
    new_head = nn.Linear(len(prev), head.out_features, bias=head.bias is not None)
    new_head.weight.data.copy_(head.weight.detach()[:, prev])
    if head.bias is not None:
        new_head.bias.data.copy_(head.bias.detach())
    pruned.head = new_head
    assert len(blocks) == len(_blocks(pruned))
    return pruned


# --------------------------------------------------------------------------------------------
# post-training static int8 quantisation (FX graph mode)


def quantize_int8(
    model: nn.Module,
    calibration: Split | torch.Tensor,
    *,
    backend: str = "x86",
    batch_size: int = 128,
) -> nn.Module:
    """Static post-training int8 quantisation in FX graph mode
    (``prepare_fx`` -> observe ``calibration`` images -> ``convert_fx``).

    Args:
        model: a float model (not changed; a copy is quantised).
        calibration: images whose activation ranges set the int8 scales: the validation
            split (a Split or uint8 (N, C, H, W)), never the test split.
        backend: the quantised engine (``"x86"`` on Intel/AMD CPUs, ``"qnnpack"`` on ARM).
    Returns the quantised ``GraphModule`` (input: float on the [-1, 1] scale, like the model).
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if backend not in torch.backends.quantized.supported_engines:
        raise ValueError(
            f"backend {backend!r} is not available here; choose one of "
            f"{torch.backends.quantized.supported_engines}"
        )
    x = calibration.images if isinstance(calibration, Split) else calibration
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or len(x) == 0:
        raise ValueError("calibration must be a non-empty Split or uint8 tensor (N, C, H, W)")
    torch.backends.quantized.engine = backend
    float_model = copy.deepcopy(model).eval()
    example = (to_input(x[:1]),)
    with warnings.catch_warnings(), _quantized_ok():  # the deprecation notice: see the lesson
        warnings.simplefilter("ignore")
        prepared = prepare_fx(float_model, get_default_qconfig_mapping(backend), example)
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                prepared(to_input(x[i : i + batch_size]))
        quantized = convert_fx(prepared)
    return quantized.eval()


def int8_layers(model: nn.Module) -> pd.DataFrame:
    """Every layer with weights or normalisation of a (quantised) model: name, type, and the
    precision it computes in (``int8`` for quantised modules, ``torch.ao.nn[.intrinsic].quantized``; else ``float32``)."""
    rows = []
    for name, m in model.named_modules():
        quant = ".quantized" in type(m).__module__
        weighted = isinstance(m, nn.Conv2d | nn.Linear | nn.GroupNorm | nn.BatchNorm2d) or (
            quant and hasattr(m, "weight")
        )
        if not weighted or name.endswith("_packed_params"):
            continue
        w = m.weight() if callable(getattr(m, "weight", None)) else getattr(m, "weight", None)
        rows.append(
            {
                "layer": name,
                "type": type(m).__name__,
                "computes_in": "int8" if quant else "float32",
                "weight_dtype": str(w.dtype).replace("torch.", "") if w is not None else "-",
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# calibration


def _temperature(temperature: Any) -> float:
    return check_scalar(
        "temperature", temperature, kind=float, lo=0, lo_inclusive=False,
        fix="a temperature T > 0 divides the logits (1 = unchanged; fit_temperature finds one)",
    )  # fmt: skip


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` (temperature > 0), (N, C) -> (N, C) float64."""
    t = _temperature(temperature)
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 1:
        raise ValueError(f"logits must have shape (N, n_classes), got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits hold NaN or inf: check the model's outputs")
    z = z / t
    if not np.isfinite(z).all():
        raise ValueError(
            f"temperature {t:g} is too small for these logits (logits / temperature overflow); "
            "use a temperature such as 0.5 or above"
        )
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _check_probs(y_true: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true).reshape(-1)
    if p.ndim != 2 or p.shape[0] != len(y) or len(y) == 0:
        raise ValueError(
            f"probs must be (N, n_classes) with N = len(y_true) > 0, got {p.shape} and {len(y)}"
        )
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("probs must be probabilities in [0, 1] (use deploy.softmax on logits)")
    bad = np.abs(p.sum(1) - 1) > 1e-3
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} rows of probs do not sum to 1: pass softmax probabilities, one "
            "column per class (use deploy.softmax on logits)"
        )
    return _check_classes(y, p.shape[1]), p


def reliability(y_true: np.ndarray, probs: np.ndarray, *, n_bins: int = 15) -> pd.DataFrame:
    """Top-label reliability table: the confidence (max probability) in ``n_bins`` equal-width
    bins on [0, 1]; per non-empty bin its mean confidence, accuracy and size n (images).
    ``df.attrs["ece"]`` is :func:`ece`."""
    n_bins = check_int("n_bins", n_bins, 1)
    y, p = _check_probs(y_true, probs)
    conf, correct = p.max(1), (p.argmax(1) == y).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    ids = np.searchsorted(edges, conf, side="right") - 1  # as torch.bucketize(right=True) - 1
    count = np.bincount(ids, minlength=n_bins + 1)
    nz = count > 0
    mean_conf = np.bincount(ids, conf, n_bins + 1)[nz] / count[nz]
    acc = np.bincount(ids, correct, n_bins + 1)[nz] / count[nz]
    lo = np.append(edges, 1.0)[:-1][nz]
    out = pd.DataFrame({"bin_lo": lo, "confidence": mean_conf, "accuracy": acc, "n": count[nz]})
    out.attrs["ece"] = float((count[nz] / len(y) * np.abs(acc - mean_conf)).sum())
    return out


def ece(y_true: np.ndarray, probs: np.ndarray, *, n_bins: int = 15) -> float:
    """Expected calibration error (top label, ``n_bins`` equal-width bins, L1):
    ``sum_b n_b / N * |accuracy_b - confidence_b|``, in [0, 1]. Same definition as
    torchmetrics' ``MulticlassCalibrationError(n_bins, norm="l1")``."""
    return float(reliability(y_true, probs, n_bins=n_bins).attrs["ece"])


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 that minimises the negative
    log-likelihood of ``softmax(logits / T)`` on held-out labelled data (the validation split).
    One number, so the predicted class never changes; T > 1 softens, T < 1 sharpens."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y, _ = _check_probs(y_true, softmax(z))

    def nll(log_t: float) -> float:
        p = softmax(z, math.exp(log_t))[np.arange(len(y)), y]
        return float(-np.log(np.clip(p, 1e-12, None)).mean())

    res = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded")
    return float(math.exp(res.x))


# --------------------------------------------------------------------------------------------
# selective prediction


def coverage_risk(y_true: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    """The coverage-risk curve of deferring the least confident cases first.

    Returns one row per number of kept cases k = 1..N (most confident first): ``coverage``
    (k / N), ``risk`` (error rate on the k kept cases), ``deferred`` (N - k) and ``confidence``
    (the k-th highest max probability: keep cases at or above it)."""
    y, p = _check_probs(y_true, probs)
    conf = p.max(1)
    order = np.argsort(-conf, kind="stable")
    wrong = (p.argmax(1) != y)[order].astype(float)
    k = np.arange(1, len(y) + 1)
    return pd.DataFrame(
        {
            "coverage": k / len(y),
            "risk": np.cumsum(wrong) / k,
            "deferred": len(y) - k,
            "confidence": conf[order],
        }
    )


def deferral_threshold(probs: np.ndarray, rate: float) -> float:
    """The confidence threshold below which ``rate`` (0-1) of the cases in ``probs`` (usually
    the validation split, (N, C)) are deferred to a clinician: the ``rate`` quantile of the max
    probability. On new cases, defer where ``max prob < threshold``."""
    rate = check_scalar(
        "rate", rate, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False,
        fix="a share of cases to defer, e.g. 0.15",
    )  # fmt: skip
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probs must be (N, n_classes) probabilities, got shape {p.shape}")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("probs must be probabilities in [0, 1] (use deploy.softmax on logits)")
    return float(np.quantile(p.max(1), rate, method="higher"))


# --------------------------------------------------------------------------------------------
# conformal prediction (MAPIE over a scikit-learn wrapper)


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """A trained torch classifier as a prefitted scikit-learn estimator.

    ``X``: uint8 images (N, C, H, W) (a numpy array or tensor); ``predict_proba`` returns
    ``softmax(logits / temperature)`` (N, n_classes) through :func:`medlab.train.predict`.
    ``fit`` does nothing: the model is trained already (use MAPIE with ``prefit=True``)."""

    def __init__(
        self, model: nn.Module | None = None, *, n_classes: int = 2, temperature: float = 1.0
    ) -> None:
        self.model = model
        self.n_classes = check_int("n_classes", n_classes, 2)
        self.temperature = _temperature(temperature)

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(self.n_classes)

    def fit(self, X: Any, y: Any = None) -> TorchClassifier:
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.model is None:
            raise ValueError("TorchClassifier needs a trained model: TorchClassifier(model)")
        logits = predict(self.model, torch.as_tensor(np.asarray(X)), logits=True)
        if logits.shape[1] != self.n_classes:
            raise ValueError(
                f"the model has {logits.shape[1]} outputs but n_classes={self.n_classes}: pass "
                "the number of classes the model was trained on"
            )
        return softmax(logits, self.temperature)

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_proba(X).argmax(1)

    def __sklearn_is_fitted__(self) -> bool:
        return self.model is not None


def conformal_sets(
    model: nn.Module,
    calibration: Split,
    test: Split,
    *,
    confidence_level: float = 0.9,
    temperature: float = 1.0,
    conformity_score: str = "lac",
) -> tuple[np.ndarray, Any]:
    """Split conformal prediction sets with MAPIE's ``SplitConformalClassifier(prefit=True)``.

    Calibrated ("conformalised") on ``calibration`` (the validation split), applied to ``test``.
    Returns ``(sets, mapie)``: ``sets`` bool (N_test, n_classes), True where the class is in
    the set. Under exchangeability, P(true class in set) >= ``confidence_level``."""
    from mapie.classification import SplitConformalClassifier

    if not (isinstance(calibration, Split) and isinstance(test, Split)):
        raise TypeError("calibration and test must be medlab Splits (e.g. data.val, data.test)")
    confidence_level = check_scalar(
        "confidence_level", confidence_level, kind=float, lo=0, hi=1,
        lo_inclusive=False, hi_inclusive=False, fix="e.g. 0.9",
    )  # fmt: skip
    from mapie.conformity_scores import BaseClassificationScore

    known = isinstance(conformity_score, str) and conformity_score in CONFORMITY_SCORES
    if not known and not isinstance(conformity_score, BaseClassificationScore):
        raise ValueError(
            f"unknown conformity_score {conformity_score!r}; choose one of {CONFORMITY_SCORES}"
        )
    if known and conformity_score != "lac" and calibration.n_classes == 2:
        raise ValueError(
            f"conformity_score={conformity_score!r} needs 3 or more classes in MAPIE; a "
            "binary task takes conformity_score='lac' only"
        )
    est = TorchClassifier(model, n_classes=calibration.n_classes, temperature=temperature)
    mapie = SplitConformalClassifier(
        estimator=est,
        confidence_level=confidence_level,
        conformity_score=conformity_score,
        prefit=True,
    )
    mapie.conformalize(calibration.images.numpy(), calibration.numpy_labels().reshape(-1))
    _, sets = mapie.predict_set(test.images.numpy())
    return np.asarray(sets[:, :, 0], dtype=bool), mapie


#: MAPIE's conformity scores for classification (``SplitConformalClassifier``).
CONFORMITY_SCORES = ("lac", "top_k", "aps", "raps")


def coverage_error_bound(n_calibration: int, n_test: int, alpha: float, *, z: float = 2.0) -> float:
    """Sampling error of a split-conformal coverage measured on ``n_test`` cases: ``z`` standard
    deviations of (a) the calibration draw (the coverage given the calibration set is Beta
    distributed, variance ~ alpha (1 - alpha) / (n_calibration + 2)) and (b) the test draw
    (binomial, alpha (1 - alpha) / n_test), added in quadrature."""
    n_calibration = check_int("n_calibration", n_calibration, 1)
    n_test = check_int("n_test", n_test, 1)
    alpha = check_scalar(
        "alpha", alpha, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False,
        fix="alpha = 1 - confidence_level, e.g. 0.1",
    )  # fmt: skip
    z = check_scalar("z", z, kind=float, lo=0, lo_inclusive=False)
    var = alpha * (1 - alpha) * (1 / (n_calibration + 2) + 1 / n_test)
    return float(z * math.sqrt(var))


# --------------------------------------------------------------------------------------------
# the lesson's two experiments, one model (one seed) at a time


def compress(
    model: nn.Module,
    train: Split,
    val: Split,
    test: Split,
    *,
    sparsities: Sequence[float] = (0.25, 0.5, 0.75),
    finetune_epochs: int = 1,
    seed: int = 0,
    fit_kwargs: Mapping[str, Any] | None = None,
    cost_kwargs: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The float model, its int8 version (:func:`quantize_int8`, calibrated on ``val``) and its
    group-pruned versions (:func:`prune_groups`, each fine-tuned ``finetune_epochs`` on
    ``train`` with :func:`medlab.train.fit`), each measured on ``test``: one row per variant
    with ``variant``, ``test_acc``, ``test_auc`` and the :class:`Cost` fields."""
    from medlab.train import evaluate, fit

    finetune_epochs = check_int("finetune_epochs", finetune_epochs, 0)
    cost_kwargs = dict(cost_kwargs or {})
    variants: list[tuple[str, nn.Module]] = [("float32", model)]
    variants.append(("int8", quantize_int8(model, val)))
    for amount in sparsities:
        pruned = prune_groups(model, amount)
        if finetune_epochs:
            fit(pruned, train, val, epochs=finetune_epochs, seed=seed, desc=f"fine-tune {amount:g}",
                **dict(fit_kwargs or {}))  # fmt: skip
        variants.append((f"pruned {amount:.0%}", pruned))
    rows = []
    for name, m in variants:
        with _quantized_ok():
            metrics = evaluate(m, test)
        cost = measure_cost(m, test.images, **cost_kwargs)
        rows.append({"variant": name, "test_acc": metrics["acc"], "test_auc": metrics["auc"],
                     **cost.as_dict()})  # fmt: skip
    return rows


def oversight(
    model: nn.Module,
    val: Split,
    test: Split,
    test_groups: np.ndarray,
    *,
    defer_rate: float = 0.15,
    confidence_level: float = 0.9,
    names: Mapping[int, str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Calibration, deferral and conformal sets of one model, per group too.

    Temperature fitted on ``val`` (:func:`fit_temperature`); ECE on ``test`` before and after;
    deferral threshold set on ``val`` to defer ``defer_rate`` (:func:`deferral_threshold`) and
    applied on ``test``. Conformal sets (:func:`conformal_sets`, with the temperature) twice:

    * ``coverage``, ``set_size``: calibrated on cases exchangeable with the test cases. The test
      split is cut into two random halves (``seed``); each half is calibrated on the other, so
      every test case gets a set from a calibration it was not part of.
    * ``coverage_val``, ``set_size_val``: calibrated on ``val``. A validation split may come
      from another collection than the test split (PneumoniaMNIST's from the source's training
      set, its test split from the source's held-out set); where the two are not exchangeable,
      this coverage misses the target.

    ``test_groups`` (N_test,) group ids; ``names`` {id: short name} (default ``g<id>``).
    Returns one flat dict (``<metric>`` overall, ``<metric>_<name>`` per group), with
    ``n_test`` and ``n_calibration`` (the size of the smaller test half)."""
    yv, yt = val.numpy_labels().reshape(-1), test.numpy_labels().reshape(-1)
    g = np.asarray(test_groups).reshape(-1)
    if len(g) != len(yt):
        raise ValueError(f"test_groups has {len(g)} entries but the test split {len(yt)} images")
    if len(yt) < 4:
        raise ValueError(f"oversight needs at least 4 test images (two halves), got {len(yt)}")
    names = dict(names) if names is not None else {v: f"g{v}" for v in np.unique(g).tolist()}
    lv, lt = predict(model, val, logits=True), predict(model, test, logits=True)
    t = fit_temperature(lv, yv)
    p0, p1 = softmax(lt), softmax(lt, t)
    thr = deferral_threshold(softmax(lv, t), defer_rate)
    deferred, wrong = p1.max(1) < thr, p1.argmax(1) != yt
    cp = {"confidence_level": confidence_level, "temperature": t}
    perm = np.random.default_rng(check_int("seed", seed, 0)).permutation(len(yt))
    halves = (perm[: len(yt) // 2], perm[len(yt) // 2 :])
    sets = np.zeros((len(yt), val.n_classes), dtype=bool)
    for cal, held in (halves, halves[::-1]):
        sets[held] = conformal_sets(model, test.subset(cal), test.subset(held), **cp)[0]
    sets_val = conformal_sets(model, val, test, **cp)[0]
    covered, covered_val = sets[np.arange(len(yt)), yt], sets_val[np.arange(len(yt)), yt]
    out: dict[str, Any] = {"temperature": t, "ece_before": ece(yt, p0), "ece_after": ece(yt, p1),
                           "nll_before": _nll(yt, p0), "nll_after": _nll(yt, p1),
                           "threshold": thr}  # fmt: skip
    masks = {"": np.ones(len(yt), bool)} | {f"_{n}": g == k for k, n in names.items()}
    for suffix, m in masks.items():
        out[f"ece_before{suffix}"] = ece(yt[m], p0[m]) if suffix else out["ece_before"]
        out[f"ece_after{suffix}"] = ece(yt[m], p1[m]) if suffix else out["ece_after"]
        out[f"defer_rate{suffix}"] = float(deferred[m].mean())
        out[f"error_all{suffix}"] = float(wrong[m].mean())
        kept = m & ~deferred
        out[f"error_kept{suffix}"] = float(wrong[kept].mean()) if kept.any() else math.nan
        out[f"coverage{suffix}"] = float(covered[m].mean())
        out[f"set_size{suffix}"] = float(sets[m].sum(1).mean())
        out[f"coverage_val{suffix}"] = float(covered_val[m].mean())
        out[f"set_size_val{suffix}"] = float(sets_val[m].sum(1).mean())
    out["n_deferred"] = int(deferred.sum())
    out["n_test"] = len(yt)
    out["n_calibration"] = len(halves[0])
    return out


def _nll(y: np.ndarray, p: np.ndarray) -> float:
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean())


# --------------------------------------------------------------------------------------------
# figures


def tradeoff_figure(table: pd.DataFrame, *, x: str = "size_mb", title: str) -> Any:
    """Accuracy against size (or latency) per model variant: ``table`` has columns ``variant``,
    ``test_acc``, ``test_acc_sd`` and ``x`` (mean over seeds)."""
    import plotly.graph_objects as go

    from medlab import plots

    labels = {"size_mb": "size on disk (MB)", "latency_ms": "latency per image (ms, batch 1)"}
    fig = go.Figure()
    for i, r in enumerate(table.itertuples()):
        fig.add_trace(
            go.Scatter(
                x=[getattr(r, x)],
                y=[r.test_acc],
                error_y=dict(type="data", array=[r.test_acc_sd]),
                mode="markers+text",
                text=[r.variant],
                textposition="top center",
                name=r.variant,
                marker=dict(size=11, color=plots.COLORS[i % len(plots.COLORS)]),
            )
        )
    fig.update_xaxes(type="log")
    return plots.finish(fig, title=title, x=labels.get(x, x), y="test accuracy (0-1)")


def reliability_figure(tables: dict[str, pd.DataFrame], *, title: str) -> Any:
    """Reliability diagram: accuracy against confidence per bin, one line per table (from
    :func:`reliability`), with the diagonal of perfect calibration; marker size ~ bin size."""
    import plotly.graph_objects as go

    from medlab import plots

    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(dash="dash", color="grey")))  # fmt: skip
    for i, (name, t) in enumerate(tables.items()):
        fig.add_trace(
            go.Scatter(
                x=t.confidence,
                y=t.accuracy,
                mode="lines+markers",
                name=f"{name} (ECE {t.attrs['ece']:.3f})",
                marker=dict(size=4 + 16 * np.sqrt(t.n / t.n.max()), color=plots.COLORS[i]),
                line=dict(color=plots.COLORS[i]),
            )
        )
    return plots.finish(fig, title=title, x="confidence: max predicted probability (0-1)",
                        y="accuracy in the bin (0-1)")  # fmt: skip


def coverage_risk_figure(
    curves: dict[str, pd.DataFrame], *, title: str, at: float | None = None
) -> Any:
    """Coverage-risk curves (from :func:`coverage_risk`), one per name; ``at``: a vertical
    line at the chosen coverage."""
    import plotly.graph_objects as go

    from medlab import plots

    fig = go.Figure()
    for i, (name, c) in enumerate(curves.items()):
        c = c[c.coverage >= 0.3]
        fig.add_trace(go.Scatter(x=c.coverage, y=c.risk, mode="lines", name=name,
                                 line=dict(color=plots.COLORS[i % len(plots.COLORS)])))  # fmt: skip
    if at is not None:
        fig.add_vline(x=at, line_dash="dot", annotation_text=f"operating point {at:.0%}")
    return plots.finish(fig, title=title, x="coverage: share of cases the model decides (0-1)",
                        y="error rate on the decided cases (0-1)")  # fmt: skip
