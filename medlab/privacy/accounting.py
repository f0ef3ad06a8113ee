"""DP accounting: the lesson's delta (1e-5), checks of the DP parameters, and epsilon from a fresh
Opacus accountant (PRV, Opacus's default; RDP as the cross-check and the fallback)."""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from typing import Any

from torch import nn

from medlab.utils import check_int, check_scalar

__all__ = [
    "ACCOUNTANTS",
    "DELTA",
    "default_delta",
    "check_dp_params",
    "check_private",
    "epsilon_for",
    "noise_for",
    "attack_auc_bound",
]

#: Privacy accountants this module uses: Opacus's default PRV, RDP as cross-check and fallback.
ACCOUNTANTS = ("prv", "rdp")
#: Opacus/torch warnings that say nothing to a student of this lesson: secure RNG is off (we
#: seed the noise for reproducibility; production DP needs ``secure_mode=True``), and a full
#: backward hook fires on the first layer whose input needs no gradient (images).
_QUIET = (
    "Secure RNG turned off",
    "Full backward hook is firing",
    "Optimal order is the largest alpha",  # RDP (also inside PRV's domain search): loose, valid
)


@contextlib.contextmanager
def _quiet() -> Any:
    with warnings.catch_warnings():
        for text in _QUIET:
            warnings.filterwarnings("ignore", message=text)
        yield


#: The lesson's delta: 1e-5, the usual bound for deployments (e.g. Abadi et al. 2016, De et al.
#: 2022). The populations here have at most a few thousand images, so 1e-5 << 1/N.
DELTA = 1e-5


def default_delta(n_train: int) -> float:
    """The delta for ``n_train`` training images: :data:`DELTA` (1e-5), or ``0.1 / n_train`` when
    that is smaller (more than 10 000 images), so delta stays well below ``1 / n_train`` (a
    mechanism that publishes one random record outright has delta = 1/N)."""
    return min(DELTA, 0.1 / check_int("n_train", n_train, 1))


def check_dp_params(
    *,
    n_train: int,
    epsilon: float | None = None,
    delta: float | None = None,
    max_grad_norm: float | None = None,
    noise_multiplier: float | None = None,
) -> None:
    """Raise a ValueError naming the fix for a DP parameter that makes no sense."""
    n_train = check_int("n_train", n_train, 1)
    if epsilon is not None:
        check_scalar(
            "target epsilon", epsilon, kind=float, lo=0, lo_inclusive=False,
            fix="e.g. 1, 3 or 8; for a non-private model train without Opacus",
        )  # fmt: skip
    if delta is not None:
        check_scalar(
            "delta", delta, kind=float, lo=0, hi=1.0 / n_train, lo_inclusive=False,
            hi_inclusive=False,
            fix=f"(0, 1/N) for N={n_train} training images: a delta of 1/N allows leaking a "
            f"whole record; use medlab.privacy.default_delta(N) = {default_delta(n_train):.3g}",
        )  # fmt: skip
    if max_grad_norm is not None:
        check_scalar(
            "the clipping norm max_grad_norm", max_grad_norm, kind=float, lo=0,
            lo_inclusive=False,
            fix="e.g. 1.0: every per-sample gradient is scaled to at most this norm",
        )  # fmt: skip
    if noise_multiplier is not None:
        check_scalar(
            "noise_multiplier", noise_multiplier, kind=float, lo=0,
            fix="noise SD / clipping norm, e.g. 1.0",
        )  # fmt: skip


def check_private(model: nn.Module) -> None:
    """Raise a ValueError with Opacus's ``ModuleValidator`` message and the fix when Opacus
    cannot compute per-sample gradients for ``model`` (BatchNorm mixes the images of a batch)."""
    from opacus.validators import ModuleValidator

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        msg = " ".join(
            dict.fromkeys(str(e).strip().rstrip(".") + "." for e in errors)
        )  # one per kind
        raise ValueError(
            f"Opacus cannot make {type(model).__name__} private ({len(errors)} layers fail "
            f"ModuleValidator.validate): {msg} Fix: "
            "model = opacus.validators.ModuleValidator.fix(model) (BatchNorm -> GroupNorm), or "
            "build it with norm='group' (medlab's SmallCNN default)"
        )


def _check_accountant(name: Any) -> str:
    if name not in ACCOUNTANTS:  # before any cache: an unhashable name gets this error too
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {name!r}")
    return name


def _accountant(name: str) -> Any:
    from opacus.accountants import create_accountant

    return create_accountant(mechanism=_check_accountant(name))


def _discrete_mean(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and "Discrete mean differs" in str(exc)


def epsilon_for(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    *,
    accountant: str = "prv",
) -> tuple[float, str, str]:
    """Epsilon of ``steps`` DP-SGD steps (Poisson rate ``sample_rate``, noise multiplier) at
    ``delta``, from a fresh Opacus accountant. Returns ``(epsilon, accountant used, message)``:
    PRV can raise "Discrete mean differs" for some settings; then RDP answers and the message
    says so."""
    sigma = check_scalar(
        "noise_multiplier", noise_multiplier, kind=float, lo=0, fix="noise SD / clipping norm"
    )
    q = check_scalar(
        "sample_rate", sample_rate, kind=float, lo=0, hi=1, lo_inclusive=False,
        fix="the Poisson sampling rate, 1 / ceil(N / batch_size) (about batch_size / N)",
    )  # fmt: skip
    steps = check_scalar("steps", steps, lo=1, fix="the number of DP-SGD steps taken")
    delta = check_scalar(
        "delta", delta, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False,
        fix="use medlab.privacy.default_delta(N), well below 1/N",
    )  # fmt: skip
    if sigma == 0:
        return float("inf"), accountant, "noise multiplier 0: no privacy guarantee (epsilon = inf)"
    accountant = _check_accountant(accountant)
    try:
        return _epsilon(sigma, q, steps, delta, accountant), accountant, ""
    except RuntimeError as exc:
        if not _discrete_mean(exc) or accountant == "rdp":
            raise
        why = "failed ('Discrete mean differs significantly')"
    except MemoryError:  # PRV discretises a domain that grows with the number of steps
        why = "needs more memory than there is"
    msg = (
        f"the PRV accountant {why} for sigma={sigma:.3g}, q={q:.3g}, {steps} steps: epsilon "
        "comes from RDP, an upper bound that is a little looser"
    )
    return _epsilon(sigma, q, steps, delta, "rdp"), "rdp", msg


@functools.lru_cache(maxsize=1024)  # seconds of pure-Python accounting per call; seeds repeat it
def _epsilon(sigma: float, q: float, steps: int, delta: float, accountant: str) -> float:
    """One accountant's epsilon for checked arguments, memoised (errors are not)."""
    acc = _accountant(accountant)
    acc.history = [(sigma, q, steps)]
    return _get_epsilon(acc, delta)


def _get_epsilon(acc: Any, delta: float) -> float:
    """``acc.get_epsilon(delta)`` without RDP's "optimal order is the largest alpha" warning
    (the bound is valid, only perhaps loose; RDP is the cross-check here)."""
    with _quiet():
        return float(acc.get_epsilon(delta=delta))


def noise_for(
    target_epsilon: float, *, n_train: int, batch_size: int, epochs: int, delta: float | None = None
) -> tuple[float, str]:
    """The noise multiplier ``make_private_with_epsilon`` finds for ``epochs`` of DP-SGD on
    ``n_train`` images in batches of ``batch_size`` (Poisson rate ``1 / ceil(N / B)``) at
    ``(target_epsilon, delta)`` (default :func:`default_delta`), with the PRV accountant (RDP
    when PRV fails). Returns ``(sigma, accountant)``: the attacker's DP shadows train with it."""
    n = check_int("n_train", n_train, 2)
    q = 1.0 / -(-n // check_int("batch_size", batch_size, 1, n))
    delta = default_delta(n) if delta is None else delta
    check_dp_params(n_train=n, epsilon=target_epsilon, delta=delta)
    args = (float(target_epsilon), float(delta), q, check_int("epochs", epochs, 1))
    sigma = search_noise(*args, "prv")
    return (sigma, "prv") if sigma is not None else (search_noise(*args, "rdp"), "rdp")


@functools.lru_cache(maxsize=256)  # a search takes seconds; seeds, targets and shadows share one
def search_noise(
    target_epsilon: float, delta: float, sample_rate: float, epochs: int, accountant: str
) -> float | None:
    """Opacus's ``get_noise_multiplier`` exactly as ``make_private_with_epsilon`` calls it (its
    default tolerance 0.01), memoised: :func:`noise_for` and :func:`~medlab.privacy.train_dp`
    share every search. None when PRV fails with "Discrete mean differs" (remembered too: the
    caller then searches with RDP); any other error is raised."""
    from opacus.accountants.utils import get_noise_multiplier

    with _quiet():
        try:
            return float(get_noise_multiplier(
                target_epsilon=target_epsilon, target_delta=delta, sample_rate=sample_rate,
                epochs=epochs, accountant=accountant,
            ))  # fmt: skip
        except RuntimeError as exc:
            if _discrete_mean(exc) and accountant != "rdp":
                return None
            raise


def attack_auc_bound(epsilon: float, delta: float = 0.0) -> float:
    """The largest AUC any membership attack can reach against an (epsilon, delta)-DP training:
    the area under the best ROC curve the guarantee allows, TPR <= min(e^eps FPR + delta,
    1 - e^-eps (1 - delta - FPR)) (the hypothesis-testing view of DP, Kairouz et al. 2015);
    e^eps / (1 + e^eps) at delta = 0: 0.7311 at epsilon 1, 0.9526 at 3, 0.9997 at 8."""
    eps = check_scalar("epsilon", epsilon, kind=float, lo=0, allow_inf=True, fix="epsilon >= 0")
    delta = check_scalar("delta", delta, kind=float, lo=0, hi=1, hi_inclusive=False,
                         fix="delta in [0, 1), e.g. medlab.privacy.DELTA")  # fmt: skip
    a = math.exp(-eps)
    if a == 0.0:  # epsilon inf (or above ~745): no bound at all
        return 1.0
    x = (1 - delta) * a / (1 + a)  # the FPR where the two lines of the bound cross
    left = x * x / (2 * a) + delta * x  # area under e^eps FPR + delta on [0, x]
    right = (1 - x) * (1 - a * (1 - delta)) + a * (1 - x * x) / 2  # under the other on [x, 1]
    return float(left + right - a * delta * delta / 2)  # the other line tops 1 on [1 - delta, 1]
