"""Provenance and result recording for the reproduce harness.

A notebook creates one :class:`Recorder` and records each key number through one call::

    rec = medlab.Recorder("01_baseline", datasets=[data], seed=seed, quick=quick)
    rec.record("smallcnn.test_auc", auc, dataset=data)
    rec.figure(fig, "learning_curves")           # shows the figure and saves it

Records go to ``$MEDLAB_OUTPUT_DIR/results/<notebook>.json`` (default ``./outputs``) together
with their provenance: dataset file, md5, whether it is the official file, seed, quick mode,
package versions. ``medlab reproduce`` compares them with ``notebooks/expected_results.yaml``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from medlab.data import MedMNISTData

__all__ = ["Recorder", "provenance", "package_versions", "output_dir", "PACKAGES"]

PACKAGES = ("medlab", "torch", "torchvision", "numpy", "scikit-learn", "medmnist", "fairlearn",
            "opacus", "shap", "captum", "lime", "plotly", "papermill")


def output_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$MEDLAB_OUTPUT_DIR``, else ``./outputs``."""
    return Path(path or os.environ.get("MEDLAB_OUTPUT_DIR") or "outputs").expanduser()


@cache
def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages whose behaviour the results depend on."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@cache
def _git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=False)
        return res.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(datasets: list[MedMNISTData] | None = None, *, seed: int | None = None,
               quick: bool | None = None, **extra: Any) -> dict[str, Any]:
    """Where a number came from: datasets (file, md5, official?), seed, mode, software, machine."""
    return {
        "datasets": {d.name: dict(d.provenance) for d in (datasets or [])},
        "seed": seed,
        "quick": quick,
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
        "utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }


class Recorder:
    """Collects a notebook's key numbers and figures, with provenance, on disk.

    Args:
        notebook: notebook id (default ``$MEDLAB_NOTEBOOK``, set by ``medlab reproduce``).
        datasets: the datasets the numbers are computed on.
        seed, quick: the notebook's parameters.
        output: output folder (default ``$MEDLAB_OUTPUT_DIR`` or ``./outputs``).
    """

    def __init__(self, notebook: str | None = None, *, datasets: list[MedMNISTData] | None = None,
                 seed: int | None = None, quick: bool | None = None,
                 output: str | os.PathLike[str] | None = None, **params: Any) -> None:
        self.notebook = notebook or os.environ.get("MEDLAB_NOTEBOOK") or "interactive"
        self.output = output_dir(output)
        self.datasets = {d.name: d for d in (datasets or [])}
        self.seed, self.quick, self.params = seed, quick, params
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.figures: list[str] = []
        self.path = self.output / "results" / f"{self.notebook}.json"

    def add_dataset(self, data: MedMNISTData) -> None:
        self.datasets[data.name] = data

    def record(self, key: str, value: float, *, dataset: MedMNISTData | str | None = None,
               unit: str = "", tol: float | None = None, note: str = "") -> float:
        """Record one number (finite) under ``key`` for ``dataset``; returns the value.

        ``tol`` is the author's suggested reproduction tolerance (absolute), used when the
        expected-results file is updated; ``unit`` is shown in the table.
        """
        if isinstance(value, torch.Tensor):
            value = value.item()
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"record({key!r}): value must be finite, got {value}")
        if dataset is None:
            if len(self.datasets) != 1:
                raise ValueError(f"record({key!r}): say which dataset (dataset=...); this "
                                 f"recorder has {sorted(self.datasets) or 'none'}")
            dataset = next(iter(self.datasets.values()))
        if isinstance(dataset, MedMNISTData):
            self.add_dataset(dataset)
            name = dataset.name
        else:
            name = str(dataset)
            if name not in self.datasets:
                raise ValueError(f"record({key!r}): unknown dataset {name!r}; pass the "
                                 "MedMNISTData object so its provenance is recorded")
        self.records.setdefault(name, {})[key] = {
            "value": value, "unit": unit, "tol": tol, "note": note,
            "official": bool(self.datasets[name].provenance.get("official")),
        }
        self.save()
        return value

    def figure(self, fig: Any, name: str) -> Any:
        """Save a plotly figure as standalone HTML under ``figures/<notebook>/`` and return it
        (so a notebook cell ending with ``rec.figure(fig, "x")`` also displays it)."""
        folder = self.output / "figures" / self.notebook
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.html"
        fig.write_html(path, include_plotlyjs="directory", full_html=True)
        self.figures.append(str(path))
        self.save()
        return fig

    def as_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "provenance": provenance(list(self.datasets.values()), seed=self.seed,
                                     quick=self.quick, params=self.params),
            "records": self.records,
            "figures": self.figures,
        }

    def save(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2, default=str))
        tmp.replace(self.path)
        return self.path

    def table(self) -> Any:
        """The records as a pandas DataFrame (dataset, key, value, unit, official)."""
        import pandas as pd

        rows = [{"dataset": d, "key": k, "value": r["value"], "unit": r["unit"],
                 "official data": r["official"]}
                for d, recs in self.records.items() for k, r in recs.items()]
        return pd.DataFrame(rows)
