"""medlab: a teaching and reproducibility toolkit for trustworthy AI in medical imaging.

The core, one way to do each thing: :mod:`medlab.data` (load, provenance), :mod:`medlab.scenario`
(populations with named groups), :mod:`medlab.train` (the open training loop, batched
inference), :mod:`medlab.metrics` (MedMNIST metrics, per-group metrics), :mod:`medlab.experiments`
(the lesson convention, the experiment grid, the model cache), :mod:`medlab.results` (recording
with provenance) and :mod:`medlab.plots` (the house style). Lesson modules sit on top.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported on first use (below): `import medlab` loads no torch
    from medlab.data import load, load_custom
    from medlab.experiments import Lesson, lesson, run_grid, summarize
    from medlab.preamble import start
    from medlab.results import Recorder, provenance
    from medlab.train import embeddings, evaluate, fit, predict, train_model
    from medlab.utils import seed_everything

#: where each top-level name lives; imported when first used, so that a light user of the
#: package (the Jupyter server's kernel manager, medlab.harness.binder; `medlab --help`) does not pay
#: for torch and the whole library
_LAZY = {
    "load": "medlab.data",
    "load_custom": "medlab.data",
    "Lesson": "medlab.experiments",
    "lesson": "medlab.experiments",
    "run_grid": "medlab.experiments",
    "summarize": "medlab.experiments",
    "Recorder": "medlab.results",
    "provenance": "medlab.results",
    "embeddings": "medlab.train",
    "evaluate": "medlab.train",
    "fit": "medlab.train",
    "predict": "medlab.train",
    "train_model": "medlab.train",
    "seed_everything": "medlab.utils",
    "start": "medlab.preamble",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"medlab.{name}") is not None:
        value = importlib.import_module(f"medlab.{name}")  # medlab.metrics, medlab.deploy, ...
    else:
        raise AttributeError(f"module 'medlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.2.0"
__all__ = [
    "start",
    "load",
    "load_custom",
    "train_model",
    "fit",
    "predict",
    "embeddings",
    "evaluate",
    "Lesson",
    "lesson",
    "run_grid",
    "summarize",
    "Recorder",
    "provenance",
    "seed_everything",
    "__version__",
]
