"""The write side: a notebook's :class:`Recorder` (numbers and figures, with provenance).

A notebook creates one :class:`Recorder` and records each key number through one call::

    rec = medlab.Recorder("01_baseline", datasets=[data], seed=seed, quick=quick)
    rec.record("smallcnn.test_auc", auc, dataset=data)
    rec.figure(fig, "learning_curves")           # shows the figure and saves it

Records go to ``$MEDLAB_OUTPUT_DIR/results/<notebook>.json`` (default ``./outputs``; ``medlab
reproduce`` points it at its run folder) with their provenance; each save also records the
file's SHA-256 in ``results/MANIFEST.sha256``.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medlab.data import MedMNISTData
from medlab.results.keys import _inside, check_key, check_name, output_dir
from medlab.results.manifest import MANIFEST, _write_atomic, locked, read_digests
from medlab.results.provenance import provenance
from medlab.utils import check_scalar

__all__ = ["Recorder"]


def _as_number(key: str, value: Any) -> float:
    """A finite Python float from a number, numpy scalar or 0-d array/tensor (not a bool)."""
    what = "a number (int, float, numpy scalar, 0-d array or 0-d tensor)"
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise ValueError(
                f"record({key!r}): value must be {what}, got a tensor of shape "
                f"{tuple(value.shape)}; reduce it first (e.g. .mean())"
            )
        value = value.item()
    elif isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise ValueError(
                f"record({key!r}): value must be {what}, got an array of shape "
                f"{value.shape}; reduce it first (e.g. .mean())"
            )
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"record({key!r}): value must be {what}, got {type(value).__name__} {value!r}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"record({key!r}): value must be finite, got {value}")
    return value


def _check_fields(key: str, tol: Any, machine: Any, unit: Any, note: Any) -> float | None:
    """The checked ``tol`` hint (a float or None) of ``record(key, ...)``; ``machine``, ``unit``
    and ``note`` are checked too."""
    if tol is not None:
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
            raise TypeError(f"record({key!r}): tol must be a number or None, got {tol!r}")
        tol = float(tol)
        if not math.isfinite(tol) or tol < 0:
            raise ValueError(f"record({key!r}): tol must be finite and >= 0, got {tol}")
    if not isinstance(machine, bool):
        raise TypeError(f"record({key!r}): machine must be True or False, got {machine!r}")
    if machine and tol is not None:
        raise ValueError(
            f"record({key!r}): a machine measurement is not compared, so it takes no tol; "
            "drop tol= (or machine=True if the number should reproduce)"
        )
    if not isinstance(unit, str) or not isinstance(note, str):
        raise TypeError(f"record({key!r}): unit and note must be strings")
    return tol


class Recorder:
    """Collects a notebook's key numbers and figures, with provenance, on disk.

    Args:
        notebook: notebook id (default ``$MEDLAB_NOTEBOOK``, set by ``medlab reproduce``).
        datasets: the datasets the numbers are computed on.
        seed, quick: the notebook's parameters.
        output: output folder (default ``$MEDLAB_OUTPUT_DIR`` or ``./outputs``).
    """

    def __init__(
        self,
        notebook: str | None = None,
        *,
        datasets: list[MedMNISTData] | None = None,
        seed: int | None = None,
        quick: bool | None = None,
        output: str | os.PathLike[str] | None = None,
        **params: Any,
    ) -> None:
        if notebook is not None:
            check_name(notebook)
        elif os.environ.get("MEDLAB_NOTEBOOK"):
            check_name(os.environ["MEDLAB_NOTEBOOK"], what="$MEDLAB_NOTEBOOK")
        self.notebook = notebook or os.environ.get("MEDLAB_NOTEBOOK") or "interactive"
        self.output = output_dir(output)
        for folder in (self.output, self.output / "results"):
            if folder.exists() and not folder.is_dir():
                raise ValueError(
                    f"output {folder} is a file, not a folder: pass a folder for the results "
                    "(e.g. outputs), or move the file away"
                )
        self.datasets = {d.name: d for d in (datasets or [])}
        self.seed, self.quick, self.params = seed, quick, params
        self.records: dict[str, dict[str, dict[str, Any]]] = {}
        self.figures: list[str] = []
        self.path = _inside(self.output / "results", f"{self.notebook}.json", "notebook name")

    def add_dataset(self, data: MedMNISTData) -> None:
        self.datasets[data.name] = data

    def record(
        self,
        key: str,
        value: float,
        *,
        dataset: MedMNISTData | str | None = None,
        unit: str = "",
        tol: float | None = None,
        note: str = "",
        machine: bool = False,
        n: int | None = None,
    ) -> float:
        """Record one finite number under ``key`` for ``dataset``; returns it as a float.

        ``key`` follows :data:`KEY_SCHEME`. ``value``: int, float, numpy scalar or 0-d
        array/tensor (not a bool). ``tol`` is the author's hint for the reproduction tolerance
        (absolute; ``medlab reproduce --update-expected`` uses it as the floor of the tolerance
        it derives from the spread over seeds); ``note`` explains the number (it becomes the
        ``reason`` of a wide AUC/accuracy tolerance); ``unit`` is shown in the table.
        ``machine=True`` marks a measurement of this machine rather than a result of the lesson
        (a latency, a time: the same code is 2-5x faster on another CPU): ``medlab reproduce``
        shows it as ``measured`` and neither compares it nor writes an expected value for it;
        ``tol`` must then be None. ``n``: the number of test cases the value was measured on, when
        it is not the whole test split (one site's patients, one group): the audit's interval
        uses it (default: the test split's size).
        """
        check_key(key)
        if n is not None:
            n = check_scalar("n", n, lo=1, fix="the number of test cases the value was measured on")
        value = _as_number(key, value)
        tol = _check_fields(key, tol, machine, unit, note)
        name = self._dataset_name(key, dataset)
        self.records.setdefault(name, {})[key] = {
            "value": value,
            "unit": unit,
            "tol": tol,
            "note": note,
            "official": bool(self.datasets[name].provenance.get("official")),
            **({"machine": True} if machine else {}),
            **({"n": n} if n is not None else {}),
        }
        self.save()
        return value

    def _dataset_name(self, key: str, dataset: MedMNISTData | str | None) -> str:
        """The name ``dataset`` is recorded under (the only dataset when None), added to this
        recorder if it is a dataset object."""
        if dataset is None:
            if len(self.datasets) != 1:
                raise ValueError(
                    f"record({key!r}): say which dataset (dataset=...); this "
                    f"recorder has {sorted(self.datasets) or 'none'}"
                )
            dataset = next(iter(self.datasets.values()))
        if isinstance(dataset, MedMNISTData):
            self.add_dataset(dataset)
            return dataset.name
        name = str(dataset)
        if name not in self.datasets:
            raise ValueError(
                f"record({key!r}): unknown dataset {name!r}; pass the "
                "MedMNISTData object so its provenance is recorded"
            )
        return name

    def figure(self, fig: Any, name: str) -> Any:
        """Save a plotly figure as standalone HTML under ``figures/<notebook>/`` and return it
        (so a notebook cell ending with ``rec.figure(fig, "x")`` also displays it)."""
        check_name(name, what="figure name")
        folder = _inside(self.output / "figures", self.notebook, "notebook name")
        path = _inside(folder, f"{name}.html", "figure name")
        folder.mkdir(parents=True, exist_ok=True)
        fig.write_html(path, include_plotlyjs="directory", full_html=True)
        self.figures.append(str(path))
        self.save()
        return fig

    def as_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            # the notebook `medlab reproduce` ran (its kernel's $MEDLAB_NOTEBOOK), so that runs
            # side by side in one folder (--jobs) each know their own results file
            "run_as": os.environ.get("MEDLAB_NOTEBOOK"),
            "provenance": provenance(
                list(self.datasets.values()), seed=self.seed, quick=self.quick, params=self.params
            ),
            "records": self.records,
            "figures": self.figures,
        }

    def save(self) -> Path:
        """Write ``results/<notebook>.json`` and its SHA-256 in ``results/MANIFEST.sha256``
        (each file replaced atomically)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = json.dumps(self.as_dict(), indent=2, default=str).encode("utf-8")
        with locked(self.path.parent):  # another kernel may record into this folder (--jobs)
            _write_atomic(self.path, raw)
            digests = read_digests(self.path.parent)
            digests[self.path.name] = hashlib.sha256(raw).hexdigest()
            lines = "".join(f"{d}  {n}\n" for n, d in sorted(digests.items()))
            _write_atomic(self.path.parent / MANIFEST, lines.encode("utf-8"))
        return self.path

    def table(self) -> Any:
        """The records as a pandas DataFrame (dataset, key, value, unit, official)."""
        import pandas as pd

        rows = [
            {
                "dataset": d,
                "key": k,
                "value": r["value"],
                "unit": r["unit"],
                "official data": r["official"],
            }
            for d, recs in self.records.items()
            for k, r in recs.items()
        ]
        return pd.DataFrame(rows)
