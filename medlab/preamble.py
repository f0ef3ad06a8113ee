"""One notebook preamble: ``L, data, rec = medlab.start("05_federated", quick=quick, ...)``.

Every notebook begins the same way: the lesson convention for its ``quick``/``seed`` parameters
(:func:`medlab.lesson`), seeded generators, the dataset (:func:`medlab.load`) and a results
recorder (:class:`medlab.Recorder`), then one provenance banner that says what this run is: the
notebook, mode, seeds and threads, the data file and its MD5, and, for a file that is not the
official MedMNIST release, that its numbers are results on an unofficial copy.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, NamedTuple

from medlab import __version__
from medlab.data import MedMNISTData, UnofficialDataWarning, load
from medlab.experiments import Lesson, lesson
from medlab.results import Recorder
from medlab.utils import seed_everything

__all__ = ["Start", "start", "banner"]


class Start(NamedTuple):
    """What :func:`start` returns: unpack it as ``L, data, rec``."""

    L: Lesson
    data: MedMNISTData
    rec: Recorder


def banner(notebook: str, L: Lesson, data: MedMNISTData, rec: Recorder) -> str:
    """The provenance banner :func:`start` prints (plain text, 3-4 lines)."""
    p = data.provenance
    sizes = "/".join(str(len(data[s])) for s in ("train", "val", "test"))
    seeds = ", ".join(str(s) for s in L.seeds)
    lines = [
        f"{notebook} · {L.mode} mode · seed{'s' * (len(L.seeds) > 1)} {seeds} · "
        f"{L.threads} torch thread{'s' * (L.threads != 1)} · medlab {__version__}",
        f"data: {data.name} ({data.task}, {data.n_classes} classes, {data.n_channels}x"
        f"{data.size}x{data.size}), train/val/test {sizes}, md5 {p.get('md5', '?')}",
    ]
    if not data.official:
        official = p.get("official_md5")
        lines.append(
            "  UNOFFICIAL COPY: this file is not the official MedMNIST release"
            + (f" (official md5 {official})" if official else "")
            + "; every number below is a result on this copy, not the paper's benchmark."
        )
    lines.append(f"results: {os.path.relpath(rec.path)}")
    return "\n".join(lines)


def start(
    notebook: str,
    *,
    quick: bool = True,
    seed: int = 0,
    dataset: str = "pneumoniamnist",
    data_dir: str | os.PathLike[str] | None = None,
    n_seeds: int | None = None,
    images_seen: int | None = None,
    quiet: bool = False,
    **params: Any,
) -> Start:
    """Begin a notebook: the lesson, seeded generators, the data, a recorder, one banner.

    Args:
        notebook: the notebook's name, e.g. ``"05_federated"`` (its results file's name).
        quick, seed, dataset, data_dir: the notebook's papermill parameters.
        n_seeds, images_seen: passed to :func:`medlab.lesson`.
        quiet: do not print the banner.
        params: other parameters of the run, stored with the results (``Recorder(**params)``).

    Returns:
        ``Start(L, data, rec)``: unpack as ``L, data, rec = medlab.start(...)``.
    """
    L = lesson(quick, seed, n_seeds=n_seeds, images_seen=images_seen)
    seed_everything(L.seed)
    with warnings.catch_warnings():  # the banner says it, once, in words
        warnings.simplefilter("ignore", UnofficialDataWarning)
        data = load(dataset, data_dir=data_dir)
    rec = Recorder(notebook, datasets=[data], seed=L.seed, quick=L.quick, **params)
    if not quiet:
        print(banner(notebook, L, data, rec))
    return Start(L, data, rec)
