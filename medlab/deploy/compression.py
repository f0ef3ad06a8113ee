"""Compression for deployment: structured magnitude pruning that removes whole GroupNorm groups
(:func:`prune_groups`: a smaller dense model, not a mask) and post-training static int8
quantisation in FX graph mode (:func:`quantize_int8`, calibrated on the validation split;
:func:`int8_layers` lists which layers compute in int8)."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator

import pandas as pd
import torch
from torch import nn

from medlab.data import Split
from medlab.models import ConvBlock
from medlab.train import to_input
from medlab.utils import check_scalar, deterministic


@contextlib.contextmanager
def _quantized_ok() -> Iterator[None]:
    """Quantised CPU kernels (``quantized_resize_cpu_``) have no flag for PyTorch's deterministic
    mode and warn on every call (they are integer kernels, and repeat exactly); switch the
    check off inside the block and restore it afterwards."""
    was, warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    deterministic(False)
    try:
        yield
    finally:
        deterministic(was, warn_only=warn_only)


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
    Returns the quantised ``GraphModule`` (input: float on the [-1, 1] scale, like the model),
    on the CPU: int8 models run there only.
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
    # int8 kernels exist on the CPU only: the copy is quantised there, whatever
    # medlab.utils.device() says, and the int8 model runs on the CPU
    float_model = copy.deepcopy(model).cpu().eval()
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
