"""The pretraining source: the requested dataset, or the largest other one available."""

from __future__ import annotations

import os

from medlab.data import DataNotFoundError, MedMNISTData, available, load

__all__ = ["choose_source"]


def choose_source(
    wanted: str,
    target: MedMNISTData,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[MedMNISTData | None, str]:
    """The pretraining dataset: ``wanted`` if it loads, else the largest other single-label
    dataset available in ``data_dir`` (never the target). Returns (data or None, a plain
    sentence saying what happened)."""
    if wanted == target.name:
        raise ValueError(
            f"source_dataset={wanted!r} is the target itself; pick another dataset "
            "(transfer means pretraining on different images)"
        )
    try:
        return load(wanted, data_dir=data_dir, download=download), (
            f"Pretraining source: {wanted} (as requested)."
        )
    except DataNotFoundError as exc:
        reason = str(exc).split(". ")[0]
    candidates = []
    for name in available(data_dir):
        if name == target.name:
            continue
        try:
            d = load(name, data_dir=data_dir, download=False)
        except (ValueError, OSError):
            continue
        if not d.train.multilabel:
            candidates.append(d)
    if not candidates:
        return None, (
            f"Requested source {wanted!r} is missing ({reason}) and no other "
            "single-label dataset is available: the transfer variant is skipped."
        )
    best = max(candidates, key=lambda d: len(d.train))
    return best, (
        f"Requested source {wanted!r} is missing ({reason}). Using {best.name} "
        f"({len(best.train)} training images) instead: the largest other dataset "
        "available here."
    )
