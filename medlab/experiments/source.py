"""The source code a trained model depends on, hashed into the model cache's key.

A change to the code that trains a model (the data layer, the models, the training loop, a
lesson's training code ...) must make every cached model stale, not only a version bump, so a
cache shared across runs never hides it. A change to code that only reports, records or draws
(the reproduce harness, the audit, results recording, figures) must not: rewording the audit
report retrains nothing. :data:`MODEL_FREE_SOURCES` is that rule, in one place.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
from pathlib import Path

__all__ = ["MODEL_FREE_SOURCES", "PACKAGE_ROOT", "model_sources", "source_hash"]

#: The medlab package folder (``medlab/``) whose source :func:`source_hash` covers by default.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]

#: Source files that never change a trained model, so :func:`source_hash` leaves them out:
#: glob patterns matched against a file's path relative to the package root, with ``/``
#: separators (``*`` also matches ``/``). They only run notebooks and compare numbers (the
#: reproduce harness), audit a run, record results, draw figures, render data cards, or draw a
#: lesson's figures and interactive explorer; none of them is called while a model trains.
MODEL_FREE_SOURCES: tuple[str, ...] = (
    "harness/*",  # the reproduce harness
    "audit.py",  # the audit of a run ...
    "audit/*",  # ... as a module or a package
    "results.py",  # recording results with provenance ...
    "results/*",  # ... as a module or a package
    "plots.py",  # the house style of figures
    "cards.py",  # data and model cards
    "*/figures.py",  # a lesson package's figures
    "*/explorer.py",  # a lesson package's interactive explorer
)


def model_sources(root: str | Path | None = None) -> list[Path]:
    """The ``.py`` files under ``root`` (default: the medlab package, recursively) that can
    change a trained model: all but those :data:`MODEL_FREE_SOURCES` matches; sorted by their
    path relative to ``root``."""
    root = Path(root) if root is not None else PACKAGE_ROOT
    files = []
    for p in root.rglob("*.py"):
        rel = p.relative_to(root).as_posix()
        if not any(fnmatch.fnmatchcase(rel, pat) for pat in MODEL_FREE_SOURCES):
            files.append(p)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


@functools.cache
def source_hash(root: str | Path | None = None) -> str:
    """SHA-256 of the model-changing source (:func:`model_sources`): each file's relative path
    and bytes. Computed once per ``root`` and process."""
    root = Path(root) if root is not None else PACKAGE_ROOT
    h = hashlib.sha256()
    for p in model_sources(root):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()
