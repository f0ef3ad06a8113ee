"""Tolerances: the range a recorded number can take, read off its key, and the expected entry
(mean and a 99 % prediction-interval tolerance) derived from one value per seed.
"""

from __future__ import annotations

import math
import re
import statistics
from decimal import ROUND_CEILING, Decimal
from typing import Any

__all__ = [
    "is_rate_key",
    "key_range",
    "covers_range",
    "prediction_factor",
    "derive",
    "MIN_SEEDS",
    "TOL_FLOOR",
    "WIDE_TOL",
]

MIN_SEEDS = 3  # --update-expected measures the spread over at least this many seeds
TOL_FLOOR = 0.01  # tolerance floor when the notebook gives no hint (rec.record(..., tol=))
WIDE_TOL = 0.1  # an AUC/accuracy tolerance above this needs a reason


def is_rate_key(key: str) -> bool:
    """Whether ``key`` names an AUC or accuracy (a segment with a word starting ``auc``/``acc``)."""
    return any(re.search(r"(?:^|_)(?:auc|acc)", seg.split("[")[0]) for seg in key.split("."))


def key_range(key: str) -> tuple[float, float] | None:
    """The range a recorded number can take, read off its key: ``(0, 1)`` for an AUC or
    accuracy (:func:`is_rate_key`), ``(-1, 1)`` for a gap or difference between groups or
    variants (a segment with a word ``gap``, ``eod`` or ``diff``: signed, or absolute as
    fairlearn's equalized-odds difference), else None (counts, times, ratios: unbounded). A
    spread over seeds (a segment ending ``_sd``) of a number in ``(lo, hi)`` lies in ``(0, (hi -
    lo) / sqrt(2))``: the largest sample SD (ddof=1), two seeds at the two ends."""
    if any(re.search(r"(?:^|_)(?:gap|eod|diff)", seg.split("[")[0]) for seg in key.split(".")):
        bounds = (-1.0, 1.0)  # also an AUC gap ("auc_gap")
    else:
        bounds = (0.0, 1.0) if is_rate_key(key) else None
    if bounds and any(seg.split("[")[0].endswith("_sd") for seg in key.split(".")):
        return (0.0, (bounds[1] - bounds[0]) / math.sqrt(2))
    return bounds


def covers_range(key: str, value: float, tol: float) -> bool:
    """Whether ``value ± tol`` covers the whole range ``key`` can take (:func:`key_range`):
    then no result can deviate and the comparison checks nothing. A number whose seed spread is
    that wide (a TPR gap over a handful of minority-group patients) is reported
    ``uninformative``, not ``reproduced``."""
    bounds = key_range(key)
    return bool(bounds) and value - tol <= bounds[0] < bounds[1] <= value + tol


def _round_up(x: float, digits: int = 3) -> float:
    if x <= 0:
        return 0.0
    d = Decimal(f"{x:.12g}")  # drop float noise first: 3 * 0.01 must stay 0.03
    q = Decimal(1).scaleb(d.adjusted() - digits + 1)
    return float((d / q).to_integral_value(rounding=ROUND_CEILING) * q)


def prediction_factor(n: int) -> float:
    """k such that ``mean ± k * SD`` over ``n`` seeds is a 99 % prediction interval for one new
    run (Student t, n - 1 degrees of freedom): ``t_0.995(n - 1) * sqrt(1 + 1/n)``. 11.5 for 3
    seeds, 5.04 for 5, 3.71 for 8, tending to 2.58. A reproduction on another machine is such a
    new run: the same seed on another CPU rounds differently, and a small training amplifies that
    into seed-sized differences."""
    from scipy.stats import t

    if n < 2:
        raise ValueError(f"a prediction interval needs >= 2 values, got {n}")
    return float(t.ppf(0.995, n - 1) * math.sqrt(1 + 1 / n))


def derive(values: list[float], *, hint: float | None = None) -> dict[str, Any]:
    """Expected entry from one value per seed: ``value`` (mean), ``tol`` = max(k SD, floor) with
    k = :func:`prediction_factor` (n) (floor = ``hint`` or 0.01; SD 0 gives ``hint`` or 0), ``sd``
    (ddof=1), ``n_seeds`` and a one-line ``derived`` saying which term set the tolerance."""
    n = len(values)
    if n < MIN_SEEDS:
        raise ValueError(f"need values from at least {MIN_SEEDS} seeds, got {n}")
    if all(v == values[0] for v in values):
        mean, sd = float(values[0]), 0.0
    else:
        mean, sd = statistics.fmean(values), statistics.stdev(values)
    k = prediction_factor(n)
    if sd == 0:
        tol = float(hint or 0.0)
        how = f"SD 0 over {n} seeds (exact); tol = " + (f"author's hint {hint:g}" if hint else "0")
    else:
        floor, src = (
            (float(hint), "author's hint") if hint is not None else (TOL_FLOOR, "default floor")
        )
        term = f"{k:.3g}*SD = {k:.3g}*{sd:.3g} over {n} seeds (99 % prediction interval)"
        if k * sd >= floor:
            tol, how = k * sd, f"tol = {term} (above {src} {floor:g})"
        else:
            tol, how = floor, f"tol = {src} {floor:g} (above {term})"
    tol = _round_up(tol, 3)
    short = float(f"{mean:.6g}")
    value = short if abs(short - mean) <= tol / 100 else mean
    return {
        "value": value,
        "tol": tol,
        "sd": float(f"{sd:.3g}"),
        "n_seeds": n,
        "derived": how + ("" if sd == 0 else ", rounded up"),
    }
