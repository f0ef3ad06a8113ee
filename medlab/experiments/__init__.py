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
  the seed, a hash of the settings, medlab's version and a hash of the source code that can
  change a trained model (:mod:`~medlab.experiments.source`); read back with
  ``weights_only=True``.

A notebook's use (an example, not a doctest: it trains nothing)::

    L = lesson(quick=True, seed=0)
    df = run_grid(lambda share, seed: {"auc": ...}, {"share": [0.05, 0.5]}, L.seeds)
    summarize(df, by="share", metrics="auc")  # columns auc, auc_sd, n_seeds

One idea per module: :mod:`~medlab.experiments.lessons`, :mod:`~medlab.experiments.grid`,
:mod:`~medlab.experiments.cache` and :mod:`~medlab.experiments.source`.
"""

from __future__ import annotations

from medlab.experiments.cache import ModelCache, cache_dir, cached_model, fingerprint
from medlab.experiments.grid import run_grid, summarize
from medlab.experiments.lessons import IMAGES_SEEN as IMAGES_SEEN
from medlab.experiments.lessons import N_SEEDS as N_SEEDS
from medlab.experiments.lessons import TOLERANCES as TOLERANCES
from medlab.experiments.lessons import Lesson, Settings, lesson
from medlab.experiments.source import MODEL_FREE_SOURCES as MODEL_FREE_SOURCES
from medlab.experiments.source import model_sources as model_sources
from medlab.experiments.source import source_hash as source_hash
from medlab.stats import PairedEffect, binomial_se, paired_effect, sd

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
