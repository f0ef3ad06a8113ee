"""Calibration: does a predicted 90 % happen 90 % of the time?

One binning and one expected calibration error for the whole library, written in notebook 09 and
exported below: :func:`calibration_bins` (equal-width bins on [0, 1], or equal-count bins as
sklearn's ``calibration_curve(strategy="quantile")``) and :func:`expected_calibration_error`.
Notebook 09's top-label ECE (:func:`medlab.deploy.ece`) uses 15 equal-width bins; the per-group
reliability table of notebook 03 (:func:`calibration`) uses quantile bins.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from medlab.metrics.checks import _binary, _group_labels, _groups
from medlab.utils import check_int


def calibration(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    n_bins: int = 8,
    names: dict[Any, str] | None = None,
) -> pd.DataFrame:
    """Reliability table (quantile bins, as sklearn's ``calibration_curve``), per group if given.

    Returns a DataFrame with columns group, mean_predicted, observed (both 0-1) and n (images),
    one row per non-empty bin, and ``df.attrs["ece"]``: the expected calibration error per group
    (:func:`expected_calibration_error`: mean |observed - predicted| over bins, weighted by bin
    size).
    """
    n_bins = check_int("n_bins", n_bins, 2)
    y_true, y_score = _binary(y_true, y_score)
    g = np.zeros(len(y_true), dtype=int) if groups is None else _groups(groups, len(y_true))
    labels = _group_labels(g, names, default_all=groups is None)
    rows, ece = [], {}
    for key, label in labels.items():
        yt, ys = y_true[g == key], y_score[g == key]
        bins = calibration_bins(ys, yt, n_bins, "quantile")
        ece[label] = expected_calibration_error(ys, yt, n_bins, "quantile")
        rows += [
            {"group": label, "mean_predicted": float(a), "observed": float(b), "n": int(c)}
            for a, b, c in zip(bins.score, bins.observed, bins.n, strict=True)
        ]
    out = pd.DataFrame(rows)
    out.attrs["ece"] = ece
    return out


# fmt: off
# %% exported from notebooks/09_deploy.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def calibration_bins(
    score: np.ndarray, outcome: np.ndarray, n_bins: int = 15, binning: str = "uniform"
) -> pd.DataFrame:
    """Bin the probabilities ``score`` (N,) of events ``outcome`` (N,, 0/1): equal width on [0, 1]
    or equal counts (quantile). Per non-empty bin: index, size n, mean score, observed rate."""
    if binning == "uniform":  # bin k holds [k/B, (k+1)/B); a score of exactly 1 gets bin B
        ids = np.searchsorted(np.linspace(0, 1, n_bins + 1), score, side="right") - 1
    elif binning == "quantile":  # the edges are quantiles of the scores
        edges = np.percentile(score, np.linspace(0, 1, n_bins + 1) * 100)
        ids = np.searchsorted(edges[1:-1], score)
    else:
        raise ValueError(f"binning must be 'uniform' or 'quantile', got {binning!r}")
    n = np.bincount(ids, minlength=n_bins + 1)
    nz = n > 0
    mean, rate = (np.bincount(ids, w, n_bins + 1)[nz] / n[nz] for w in (score, outcome))
    return pd.DataFrame({"bin": np.flatnonzero(nz), "n": n[nz], "score": mean, "observed": rate})


def expected_calibration_error(
    score: np.ndarray, outcome: np.ndarray, n_bins: int = 15, binning: str = "uniform"
) -> float:
    """ECE: per bin |observed rate - mean score|, weighted by the bin's share n_b / N."""
    t = calibration_bins(score, outcome, n_bins, binning)
    return float((t.n / len(score) * (t.observed - t.score).abs()).sum())
# %% end of export
# fmt: on
