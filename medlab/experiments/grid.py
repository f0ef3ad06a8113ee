"""The experiment grid and its summary: :func:`run_grid` calls a function for every grid point
and seed and returns a tidy DataFrame; :func:`summarize` gives the mean, the sample SD (ddof=1:
the one definition of "± 1 SD" in the curriculum) and the number of seeds per group of rows."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from medlab.utils import check_seeds, progress

__all__ = ["run_grid", "summarize"]


def _points(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[dict]:
    if isinstance(grid, Mapping):
        for k, v in grid.items():
            if not isinstance(k, str):
                raise ValueError(f"grid keys must be parameter names (str), got {k!r}")
            if isinstance(v, str | bytes) or not isinstance(v, Sequence | np.ndarray):
                raise ValueError(f"grid[{k!r}] must be a list of values, e.g. [{v!r}], got {v!r}")
            if len(v) == 0:
                raise ValueError(f"grid[{k!r}] is empty: give at least one value")
        keys = list(grid)
        return [
            dict(zip(keys, combo, strict=True))
            for combo in itertools.product(*(list(grid[k]) for k in keys))
        ]
    if isinstance(grid, str | bytes) or not isinstance(grid, Sequence):
        raise ValueError("grid must be a dict {name: [values]} or a list of dicts of parameters")
    points = [dict(p) for p in grid]
    if not points or not all(isinstance(p, dict) for p in points):
        raise ValueError("grid must be a non-empty dict {name: [values]} or a list of dicts")
    return points


def run_grid(
    fn: Callable[..., Mapping[str, Any] | Sequence[Mapping[str, Any]]],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    *,
    desc: str = "grid",
) -> pd.DataFrame:
    """Call ``fn(**point, seed=seed)`` for every point of ``grid`` and every seed.

    Args:
        fn: returns a dict of results (one row) or a list of dicts (several rows, e.g. one per
            method).
        grid: ``{name: [values]}`` (all combinations) or a list of ``{name: value}`` points.
        seeds: a list of seeds, e.g. ``lesson.seeds``.
    Returns a tidy DataFrame: the point's parameters, ``seed``, then the results, one row per
    returned dict, in grid order (seeds innermost).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    points = _points(grid)
    seeds = check_seeds(seeds)
    rows = []
    jobs = [(p, s) for p in points for s in seeds]
    for point, seed in progress(jobs, desc=desc):
        out = fn(**point, seed=seed)
        ok_seq = isinstance(out, Sequence) and not isinstance(out, str | bytes)
        results = [out] if isinstance(out, Mapping) else list(out) if ok_seq else []
        if not results or not all(isinstance(r, Mapping) for r in results):
            raise TypeError(
                f"fn must return a dict of results (or a non-empty list of dicts), got {out!r}"
                + (": did it forget its `return`?" if out is None else "")
            )
        for r in results:
            clash = set(r) & (set(point) | {"seed"})
            if clash:
                raise ValueError(f"fn's results reuse the grid's names {sorted(clash)}")
            rows.append({**point, "seed": seed, **r})
    return pd.DataFrame(rows)


def summarize(
    df: pd.DataFrame,
    by: str | Sequence[str],
    metrics: str | Sequence[str] | None = None,
    *,
    seed: str = "seed",
) -> pd.DataFrame:
    """Mean and sample SD (ddof=1) over seeds, per group of rows.

    Returns one row per value of ``by`` (in order of first appearance) with columns ``by``...,
    ``<metric>`` (mean), ``<metric>_sd`` (NaN with one seed) for each metric, and ``n_seeds``.
    ``metrics`` defaults to every numeric column not in ``by`` and not ``seed``.

    Means and SDs skip missing values (NaN: e.g. an AUC undefined for one seed). A metric that
    has any gets a column ``<metric>_n`` (the number of values behind its mean and SD, right
    after ``<metric>_sd``), so a standard error uses the right count: ``sd / sqrt(<metric>_n)``.
    """
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError("summarize needs a non-empty DataFrame (e.g. from run_grid)")
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in by if c not in df.columns]
    if missing:
        raise ValueError(f"by names columns {missing} that the frame lacks: {list(df.columns)}")
    if metrics is None:
        metrics = [c for c in df.select_dtypes("number").columns if c not in by and c != seed]
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [c for c in metrics if c not in df.columns]
    if missing or not metrics:
        raise ValueError(f"unknown metrics {missing or metrics}; columns: {list(df.columns)}")
    g = df.groupby(by, sort=False, dropna=False)
    mean = g[metrics].mean()
    spread = g[metrics].std(ddof=1).add_suffix("_sd")
    out = pd.concat([mean, spread], axis=1)
    n_seeds = g[seed].nunique() if seed in df.columns else g.size()
    counts = g[metrics].count()
    out["n_seeds"] = n_seeds
    cols = []
    for m in metrics:
        cols += [m, f"{m}_sd"]
        if (counts[m] != g.size()).any():
            out[f"{m}_n"] = counts[m]
            cols.append(f"{m}_n")
    cols.append("n_seeds")
    return out[cols].reset_index()
