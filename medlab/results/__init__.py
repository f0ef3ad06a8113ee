"""Provenance and result recording for the reproduce harness, and reading results back.

A notebook creates one :class:`Recorder` and records each key number through one call::

    rec = medlab.Recorder("01_baseline", datasets=[data], seed=seed, quick=quick)
    rec.record("smallcnn.test_auc", auc, dataset=data)
    rec.figure(fig, "learning_curves")           # shows the figure and saves it

Records go to ``$MEDLAB_OUTPUT_DIR/results/<notebook>.json`` (default ``./outputs``; ``medlab
reproduce`` points it at its run folder) together with their provenance: dataset file, md5,
whether it is the official file, seed, quick mode, package versions. ``medlab reproduce``
compares them with ``notebooks/expected_results.yaml``; :func:`load` reads them back as a table.

Each save also records the SHA-256 of the exact bytes written in ``results/MANIFEST.sha256``
(``sha256sum`` format, ``<sha256>  <file name>`` per line, rewritten atomically), so that
:mod:`medlab.audit` can tell a results file edited after it was recorded (:func:`read_digests`).
Notebook and figure names become file names: they must match :data:`NAME_RE` (no folders).

Record keys follow one scheme, ``<subject>.<metric>[.<condition>]``: at least two dot-separated
lowercase segments, each ``[a-z0-9][a-z0-9_+-]*``, optionally followed by ``[<source dataset>]``,
e.g. ``smallcnn.test_auc``, ``share5.baseline.tpr_gap``, ``transfer[breastmnist].test_auc.k10``.

One idea per module: :mod:`~medlab.results.keys` (key and file-name rules, the output folder),
:mod:`~medlab.results.provenance`, :mod:`~medlab.results.manifest` (the SHA-256 manifest),
:mod:`~medlab.results.recorder` (the write side), :mod:`~medlab.results.runs` (run folders and
their state) and :mod:`~medlab.results.reading` (reading results back).
"""

from __future__ import annotations

from medlab.results.keys import KEY_RE, KEY_SCHEME, NAME_RE, check_key, check_name, output_dir
from medlab.results.manifest import MANIFEST, read_digests
from medlab.results.manifest import _write_atomic as _write_atomic  # the harness's writer
from medlab.results.provenance import DISTRIBUTIONS, PACKAGES, package_versions, provenance
from medlab.results.reading import COLUMNS, check_doc, load, read_doc
from medlab.results.recorder import Recorder
from medlab.results.runs import (
    RUN_FILE,
    describe_state,
    is_complete,
    last_complete_run,
    latest_run,
    run_state,
)

__all__ = [
    "Recorder",
    "provenance",
    "package_versions",
    "output_dir",
    "check_key",
    "check_name",
    "check_doc",
    "read_doc",
    "read_digests",
    "load",
    "latest_run",
    "run_state",
    "is_complete",
    "last_complete_run",
    "describe_state",
    "RUN_FILE",
    "KEY_SCHEME",
    "MANIFEST",
    "NAME_RE",
    "PACKAGES",
    "DISTRIBUTIONS",
    "KEY_RE",
    "COLUMNS",
]
