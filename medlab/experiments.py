"""The lesson convention, the experiment grid, one summary over seeds and the model cache.

* :func:`lesson` - one call per notebook: for ``quick``/``seed`` it returns the seeds, the
  training budget in images seen, the thread count (``$MEDLAB_THREADS``, default the CPUs this
  process may use) and the default record tolerances, and sets the threads.
* :func:`run_grid` - ``run_grid(fn, grid, seeds)`` calls ``fn(**point, seed=seed)`` for every
  grid point and seed and returns a tidy DataFrame (one row per result).
* :func:`summarize` - mean, sample SD (ddof=1: the one definition of "± 1 SD" in the
  curriculum) and the number of seeds per group of rows.
* :func:`paired_effect` / :func:`binomial_se` - a per-seed paired difference with its standard
  error (the larger of the seed spread and the binomial noise of the test patients): the one
  way lesson checks say "not reversed beyond 2 SE", and FOUND when an effect is within 2 SE.
* :func:`cached_model` / :class:`ModelCache` - trained weights on disk, keyed by the kind of
  model, the dataset's MD5, a hash of the exact training (and validation) images and labels,
  the seed, a hash of the settings and medlab's version; read back with ``weights_only=True``.

A notebook's use (an example, not a doctest: it trains nothing)::

    L = lesson(quick=True, seed=0)
    df = run_grid(lambda share, seed: {"auc": ...}, {"share": [0.05, 0.5]}, L.seeds)
    summarize(df, by="share", metrics="auc")  # columns auc, auc_sd, n_seeds
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from medlab.stats import PairedEffect, binomial_se, paired_effect, sd
from medlab.utils import check_int, check_seeds, progress, set_threads

__all__ = [
    "Lesson",
    "Settings",
    "lesson",
    "run_grid",
    "summarize",
    "sd",
    "binomial_se",
    "PairedEffect",
    "paired_effect",
    "cache_dir",
    "ModelCache",
    "cached_model",
    "fingerprint",
]

#: Training budget per model in images seen (epochs x training images), by mode.
IMAGES_SEEN = {True: 12_000, False: 50_000}
#: Seeds per result, by mode (a notebook may ask for more or fewer).
N_SEEDS = {True: 2, False: 5}
#: Default reproduction tolerances (absolute) suggested with each recorded number, by kind:
#: a floor under the tolerance that ``medlab reproduce --update-expected`` derives from the
#: spread over seeds.
TOLERANCES = {
    True: {"auc": 0.03, "acc": 0.05, "gap": 0.05, "ratio": 0.05, "count": 0.0, "exact": 1e-6},
    False: {"auc": 0.02, "acc": 0.03, "gap": 0.03, "ratio": 0.03, "count": 0.0, "exact": 1e-6},
}


# --------------------------------------------------------------------------------------------
# the lesson convention


@dataclass(frozen=True)
class Lesson:
    """What a notebook's ``quick``/``seed`` parameters mean, decided in one place.

    Attributes:
        quick: quick mode (CI, Binder, a first look) or full mode (the published figures).
        seed: the first seed; seeds: the seeds results are averaged over (``seed, seed+1, ...``).
        images_seen: training budget per model, in images seen (epochs x training images).
        threads: torch threads in use.
        tol: default reproduction tolerance per kind of number (see :data:`TOLERANCES`).
    """

    quick: bool
    seed: int
    seeds: tuple[int, ...]
    images_seen: int
    threads: int
    tol: dict[str, float] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def epochs(
        self, n_train: int, *, minimum: int = 1, maximum: int | None = None, scale: float = 1.0
    ) -> int:
        """Epochs for a model to see about ``scale * images_seen`` images on ``n_train``
        training images, clipped to [minimum, maximum]."""
        n_train = check_int("n_train", n_train, 1)
        minimum = check_int("minimum", minimum, 1)
        if maximum is not None and check_int("maximum", maximum, minimum) < minimum:
            raise ValueError(f"maximum={maximum} is below minimum={minimum}")
        if not (isinstance(scale, int | float) and not isinstance(scale, bool) and scale > 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        e = max(minimum, round(scale * self.images_seen / n_train))
        return min(e, maximum) if maximum is not None else e

    def settings(self, **values: Any) -> Settings:
        """This lesson's training settings (width, epochs, batch size ...), frozen: the one type
        every lesson uses for "how the models of this notebook are trained".

        >>> S = lesson(True, 0, threads=1).settings(width=8, lr=5e-3)
        >>> S.width, S["lr"], S.replace(width=16).width
        (8, 0.005, 16)
        """
        return Settings(self, values)


class Settings(Mapping[str, Any]):
    """A lesson's settings: a frozen mapping with attribute access (``S.width``,
    ``S["width"]``, ``dict(S)``), made by :meth:`Lesson.settings`; ``S.lesson`` is the
    :class:`Lesson` it belongs to. ``S.replace(**changes)`` gives a changed copy (an explorer's
    "what if"); nothing changes a Settings in place."""

    __slots__ = ("_lesson", "_values")

    def __init__(self, lesson: Lesson, values: Mapping[str, Any]) -> None:
        if not isinstance(lesson, Lesson):
            raise TypeError(f"lesson must come from medlab.lesson(quick, seed), got {lesson!r}")
        bad = [k for k in values if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            raise ValueError(f"setting names must be identifiers, got {bad}")
        object.__setattr__(self, "_lesson", lesson)
        object.__setattr__(self, "_values", dict(values))

    @property
    def lesson(self) -> Lesson:
        return self._lesson

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"no setting {name!r}; this lesson's settings are {sorted(self._values)}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"settings are frozen: use S.replace({name}=...) for a changed copy")

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``; a name that is not a setting is an error (a typo)."""
        unknown = sorted(set(changes) - set(self._values))
        if unknown:
            raise ValueError(f"unknown settings {unknown}; known: {sorted(self._values)}")
        return Settings(self._lesson, {**self._values, **changes})

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Settings({self._lesson.mode}, seed={self._lesson.seed}: {inner})"


def lesson(
    quick: bool = True,
    seed: int = 0,
    *,
    n_seeds: int | None = None,
    images_seen: int | None = None,
    threads: int | None = None,
) -> Lesson:
    """The lesson convention for a notebook's ``quick`` and ``seed`` parameters.

    Seeds are ``seed, seed + 1, ...`` (``n_seeds``, default 2 quick / 5 full); the training
    budget is :data:`IMAGES_SEEN`; threads come from ``threads``, else ``$MEDLAB_THREADS``, else
    the CPUs this process may use, and are set for torch here.
    """
    if not isinstance(quick, bool | np.bool_):
        raise ValueError(
            f"quick must be True or False, got {quick!r} ({type(quick).__name__}); with "
            "papermill pass -p quick True (not the string 'True')"
        )
    quick = bool(quick)
    seed = check_int("seed", seed, 0)
    n = N_SEEDS[quick] if n_seeds is None else check_int("n_seeds", n_seeds, 1, 100)
    budget = IMAGES_SEEN[quick] if images_seen is None else check_int("images_seen", images_seen, 1)
    used = set_threads(threads)
    return Lesson(quick, seed, tuple(range(seed, seed + n)), budget, used, dict(TOLERANCES[quick]))


# --------------------------------------------------------------------------------------------
# the grid and its summary


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


# --------------------------------------------------------------------------------------------
# the model cache


def cache_dir() -> Path:
    """``$MEDLAB_CACHE_DIR``, else ``<output folder>/cache`` (``medlab reproduce`` shares one
    cache between the notebooks of a run and across runs)."""
    env = os.environ.get("MEDLAB_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    from medlab.results import output_dir

    return (output_dir() / "cache").resolve()


def fingerprint(*arrays: Any) -> str:
    """SHA-256 of tensors/arrays (dtype, shape and bytes), e.g. of training images and labels."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        t = a.detach().cpu().contiguous() if isinstance(a, torch.Tensor) else None
        arr = t.numpy() if t is not None else np.ascontiguousarray(np.asarray(a))
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


@functools.cache
def _source_hash() -> str:
    """SHA-256 of medlab's own source files: a code change (not only a version bump) makes
    every cached model stale, so a cache shared across runs never hides it."""
    h = hashlib.sha256()
    for p in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _label(name: str, limit: int = 60) -> str:
    """A readable, file-name-safe label for ``name`` (at most ``limit`` characters). Labels are
    for people only: different names can share one; :meth:`ModelCache.path` adds the digest."""
    s = re.sub(r"[^A-Za-z0-9_+-]+", "_", str(name)).strip("_")[:limit].strip("_")
    return s or "x"


def _key_digest(key: str) -> str:
    """The whole SHA-256 (64 hex digits) of a cache key's exact characters."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class ModelCache:
    """Trained weights on disk, one ``.pt`` file per key (see :func:`cached_model`).

    A key's file is ``<label>-<SHA-256 of the key>.pt``: a readable label cut to 60 characters
    plus the whole 64-digit digest of the exact key, so two different keys never share a file,
    whatever their length or characters. Files hold ``{"key": key, "state": state_dict, "info":
    json}`` and are read with ``torch.load(weights_only=True)``; a file whose stored key is not
    the requested one (or that stores none) is a miss. Paths always stay inside ``folder``.
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder).expanduser().resolve() if folder is not None else cache_dir()

    def key(
        self,
        kind: str,
        *,
        data: Any,
        train: Any,
        seed: int,
        settings: Mapping[str, Any] | None = None,
        val: Any = None,
        weights: Any = None,
    ) -> str:
        """The cache key: kind, dataset name and MD5, fingerprints of the exact training (and
        validation) images, labels and sample weights, seed, settings, medlab's version and a
        hash of its source code."""
        import medlab

        prov = getattr(data, "provenance", None) or {}
        parts = {
            "kind": str(kind),
            "dataset": getattr(data, "name", str(data)),
            "md5": prov.get("md5"),
            "train": fingerprint(*_split_arrays(train)),
            "val": fingerprint(*_split_arrays(val)) if val is not None else None,
            "weights": fingerprint(weights) if weights is not None else None,
            "seed": check_int("seed", seed, 0),
            "settings": json.dumps(dict(settings or {}), sort_keys=True, default=str),
            "medlab": medlab.__version__,
            "source": _source_hash(),
            "torch": torch.__version__,
        }
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        # readable labels, then the whole digest of every part (the raw names included)
        return f"{_label(kind)}-{_label(parts['dataset'])}-seed{parts['seed']}-{digest}"

    def path(self, key: str) -> Path:
        """The file of ``key``: ``folder/<label>-<SHA-256 of key>.pt`` (see the class)."""
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"a cache key must be a non-empty str, got {key!r}; make keys with "
                "ModelCache.key(...)"
            )
        p = (self.folder / f"{_label(key)}-{_key_digest(key)}.pt").resolve()
        if p.parent != self.folder:  # pragma: no cover - the name has no separator
            raise ValueError(f"cache key {key!r} would leave the cache folder {self.folder}")
        return p

    def get(self, key: str, model: nn.Module) -> dict[str, Any] | None:
        """Load the weights of ``key`` into ``model`` and return their info, or None when the
        file is missing or unreadable (a corrupt file is reported and ignored)."""
        p = self.path(key)
        if not p.exists():
            return None
        try:
            blob = torch.load(p, map_location="cpu", weights_only=True)
            stored = blob.get("key") if isinstance(blob, dict) else None
            if stored != key:
                warnings.warn(
                    f"ignoring cached model {p.name}: it was saved for another key "
                    f"({stored!r}, not {key!r}); it will be retrained and replaced",
                    stacklevel=2,
                )
                return None
            state, info = blob["state"], json.loads(blob["info"])
            mine = model.state_dict()
            shapes = {k: tuple(v.shape) for k, v in state.items()}
            if shapes != {k: tuple(v.shape) for k, v in mine.items()}:
                raise ValueError("its tensors do not match the model's names and shapes")
            model.load_state_dict(state)  # checked first: a mismatch never half-loads
            return info
        except Exception as exc:  # corrupt file, other architecture: retrain
            warnings.warn(
                f"ignoring unreadable cached model {p.name} ({type(exc).__name__}: "
                f"{exc}); it will be retrained and replaced",
                stacklevel=2,
            )
            return None

    def put(self, key: str, model: nn.Module, info: Mapping[str, Any]) -> Path:
        """Save ``model``'s weights and ``info`` (JSON-able) atomically; returns the path."""
        p = self.path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"cannot create the model cache folder {self.folder} ({exc}); set "
                "MEDLAB_CACHE_DIR to a writable folder"
            ) from exc
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=self.folder)
        os.close(fd)
        try:
            blob = {"key": key, "state": state, "info": json.dumps(dict(info), default=str)}
            torch.save(blob, tmp)
            os.replace(tmp, p)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return p


def _split_arrays(split: Any) -> tuple[Any, ...]:
    if split is None:
        return (None,)
    if hasattr(split, "images") and hasattr(split, "labels"):
        return split.images, split.labels
    if isinstance(split, tuple | list):
        return tuple(split)
    return (split,)


def cached_model(
    kind: str,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], Mapping[str, Any] | None],
    *,
    data: Any,
    train_split: Any,
    seed: int,
    settings: Mapping[str, Any] | None = None,
    val_split: Any = None,
    weights: Any = None,
    cache: ModelCache | str | os.PathLike[str] | bool | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """A trained model from the cache, or trained now and cached.

    ``build()`` makes the untrained model; ``train(model)`` trains it in place and returns a
    JSON-able info dict (e.g. ``History.as_dict()``). The key is :meth:`ModelCache.key` of
    ``kind``, ``data``, ``train_split`` (a Split or arrays), ``val_split``, ``weights``,
    ``seed`` and ``settings``: change any and the model is retrained. ``cache=False`` never
    reads or writes. Returns ``(model in eval mode, info)``; ``info["cached"]`` says which.
    """
    from medlab.utils import seed_everything

    seed_everything(seed)
    model = build()
    if cache is False:
        info = dict(train(model) or {})
        model.eval()
        return model, {**info, "cached": False}
    store = (
        cache
        if isinstance(cache, ModelCache)
        else ModelCache(None if cache in (None, True) else cache)
    )
    key = store.key(
        kind,
        data=data,
        train=train_split,
        seed=seed,
        settings=settings,
        val=val_split,
        weights=weights,
    )
    info = store.get(key, model)
    if info is not None:
        model.eval()
        return model, {**info, "cached": True, "key": key}
    seed_everything(seed)  # train from the seeded initialisation, whatever get() touched
    model = build()
    info = dict(train(model) or {})
    store.put(key, model, info)
    model.eval()
    return model, {**info, "cached": False, "key": key}
