"""medlab: a teaching and reproducibility toolkit for trustworthy AI in medical imaging."""

from medlab.data import load, load_custom
from medlab.results import Recorder, provenance
from medlab.train import evaluate, fit, predict, train
from medlab.utils import seed_everything

__version__ = "0.1.0"
__all__ = ["load", "load_custom", "train", "fit", "predict", "evaluate", "Recorder", "provenance",
           "seed_everything", "__version__"]
