"""medlab: a teaching and reproducibility toolkit for trustworthy AI in medical imaging.

The core, one way to do each thing: :mod:`medlab.data` (load, provenance), :mod:`medlab.scenario`
(populations with named groups), :mod:`medlab.train` (the open training loop, batched
inference), :mod:`medlab.metrics` (MedMNIST metrics, per-group metrics), :mod:`medlab.experiments`
(the lesson convention, the experiment grid, the model cache), :mod:`medlab.results` (recording
with provenance) and :mod:`medlab.plots` (the house style). Lesson modules sit on top.
"""

from medlab.data import load, load_custom
from medlab.experiments import Lesson, lesson, run_grid, summarize
from medlab.results import Recorder, provenance
from medlab.train import embeddings, evaluate, fit, predict, train_model
from medlab.utils import seed_everything

__version__ = "0.2.0"
__all__ = [
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
