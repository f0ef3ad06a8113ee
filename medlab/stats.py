"""The curriculum's statistics, one home for each: the sample SD over seeds (ddof=1), the
binomial SE of test-set proportions, a per-seed paired effect with its SE, Wilson's interval of a
proportion and Hanley & McNeil's (1982) SE and interval of an AUC.

Lesson checks and the audit use these; nothing else in medlab computes a spread or an interval of
its own (bootstrap intervals of a metric: :func:`medlab.metrics.bootstrap_ci`; tolerances of an
expected value: the reproduce harness)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: the two-sided 95 % normal quantile (1.95996...)
Z95 = statistics.NormalDist().inv_cdf(0.975)

__all__ = [
    "Z95",
    "sd",
    "binomial_se",
    "PairedEffect",
    "paired_effect",
    "wilson_interval",
    "hanley_mcneil_se",
    "hanley_mcneil_interval",
]


def sd(values: Any) -> float:
    """Sample standard deviation (ddof=1) of the finite values; NaN with fewer than two."""
    v = np.asarray(values, dtype=float).reshape(-1)
    v = v[np.isfinite(v)]
    return float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan


def binomial_se(*proportions: tuple[Any, Any], laplace: bool = False) -> float:
    """Standard error of a mean over seeds of a sum or difference of test-set proportions.

    Each argument is a pair ``(p, n)``: a proportion per seed (S,) (accuracy, TPR ...) and the
    number of test patients (S,) or scalar it was measured on. Returns
    ``sqrt(mean over seeds of sum_i p_i (1 - p_i) / n_i / S)``: the binomial noise of the test
    patients alone, whatever the seeds do. ``laplace=True`` uses ``(p n + 1) / (n + 2)`` for p,
    so a proportion of 0 or 1 on a handful of patients still carries noise.
    """
    if not proportions:
        raise ValueError("binomial_se needs at least one (p, n) pair")
    var = None
    for pair in proportions:
        if len(pair) != 2:
            raise ValueError(f"each argument is a (p, n) pair, not {pair!r}")
        p, n = (np.asarray(x, dtype=float).reshape(-1) for x in pair)
        if (n <= 0).any() or not np.isfinite(n).all():
            raise ValueError(
                f"n must be positive test-patient counts, not {n.tolist()} (a group without "
                "test patients has no proportion to measure)"
            )
        if not np.isfinite(p).all() or ((p < 0) | (p > 1)).any():
            raise ValueError(f"p must be proportions in [0, 1], not {p.tolist()}")
        if len(n) not in (1, len(p)) or (var is not None and len(p) != len(var)):
            raise ValueError(
                f"every p needs one value per seed and n one per seed (or one for all): got "
                f"{len(p)} p and {len(n)} n" + ("" if var is None else f" after {len(var)} seeds")
            )
        if laplace:
            p = (p * n + 1) / (n + 2)
        v = p * (1 - p) / n
        var = v if var is None else var + v
    return float(math.sqrt(np.mean(var) / len(var)))


@dataclass(frozen=True, eq=False)
class PairedEffect:
    """A per-seed paired effect: ``mean`` over ``n`` seeds and its standard error ``se``, the
    larger of the seed SE (SD / sqrt(n), ddof=1; unknown, so 0, with one seed) and the binomial
    SE of the test patients it was measured on. See :func:`paired_effect`."""

    per_seed: pd.Series
    mean: float
    se: float
    seed_se: float
    binomial_se: float

    @property
    def n(self) -> int:
        return len(self.per_seed)

    def reversed(self, k: float = 2.0) -> bool:
        """True when the effect points the wrong way beyond ``k`` standard errors."""
        return self.mean < -k * self.se

    def clear(self, k: float = 2.0) -> bool:
        """True when the effect is above ``k`` standard errors (and above 0 with se = 0)."""
        return self.mean > k * self.se

    def __str__(self) -> str:
        return f"{self.mean:+.3f} ± {self.se:.3f} (SE over {self.n} seed{'s' * (self.n != 1)})"


def paired_effect(per_seed: Any, *, binomial: float = 0.0) -> PairedEffect:
    """The mean of a per-seed difference (S,) (e.g. FedAvg minus local accuracy on each seed)
    with its standard error: the larger of the spread over seeds and ``binomial`` (from
    :func:`binomial_se`), so a few seeds that happen to agree do not hide few test patients.

    >>> e = paired_effect([0.1, 0.2, 0.15])
    >>> e.clear(), e.reversed()   # lesson checks: not reversed beyond 2 SE; FOUND unless clear
    (True, False)
    """
    s = per_seed if isinstance(per_seed, pd.Series) else pd.Series(per_seed, dtype=float)
    s = s.astype(float)
    if s.empty or not np.isfinite(s.to_numpy()).all():
        raise ValueError(f"paired_effect needs finite per-seed values, not {s.tolist()}")
    if not (binomial >= 0 and math.isfinite(binomial)):
        raise ValueError(f"binomial must be a finite SE >= 0, not {binomial}")
    seed_se = sd(s) / math.sqrt(len(s)) if len(s) >= 2 else 0.0
    return PairedEffect(s, float(s.mean()), max(seed_se, binomial), seed_se, float(binomial))


# fmt: off
# %% exported from notebooks/10_audit.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def wilson_interval(p: float, n: int, *, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion `p` (0-1) observed on `n` cases."""
    if not 0 <= p <= 1 or n < 1:
        raise ValueError(f"need 0 <= p <= 1 and n >= 1, got p={p}, n={n}")
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)
# %% end of export
# fmt: on


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil's (1982) standard error of an AUC measured on ``n_pos`` positive and
    ``n_neg`` negative test cases."""
    if not 0 <= auc <= 1 or n_pos < 1 or n_neg < 1:
        raise ValueError(f"need 0 <= auc <= 1 and both classes, got {auc}, {n_pos}, {n_neg}")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    return math.sqrt(max(var, 0.0))


def hanley_mcneil_interval(
    auc: float, n_pos: int, n_neg: int, *, z: float = Z95
) -> tuple[float, float]:
    """95 % interval of an AUC from :func:`hanley_mcneil_se`; clipped to [0, 1]."""
    se = hanley_mcneil_se(auc, n_pos, n_neg)
    return max(0.0, auc - z * se), min(1.0, auc + z * se)
