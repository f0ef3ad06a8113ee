"""How every model of the bias lessons (03 and 04) is trained, and the lesson's names."""

from __future__ import annotations

from medlab.data import MedMNISTData
from medlab.experiments import Lesson, Settings
from medlab.scenario import GROUP_NAMES

__all__ = ["MITIGATIONS", "SHORT", "THRESHOLD_METHOD", "hcm_config"]

#: Training-time mitigations understood by :func:`~medlab.fairness.train_scenario`.
MITIGATIONS: tuple[str | None, ...] = (None, "reweight", "resample")
#: Column suffixes of the two HCM groups in result tables (``tpr_maj``, ``tpr_min``).
SHORT: dict[str, str] = {GROUP_NAMES[0]: "maj", GROUP_NAMES[1]: "min"}
#: The method name of the post-processing mitigation in sweep tables.
THRESHOLD_METHOD = "group thresholds (equalized odds)"


def hcm_config(data: MedMNISTData, lesson: Lesson) -> Settings:
    """How every model of the bias lessons (03 and 04) is trained: a SmallCNN (width 8 quick,
    16 full), batch 64, lr 5e-3, epochs for ``lesson.images_seen`` images (at least 5 quick,
    8 full). One place, so that notebook 04 reuses notebook 03's models from the cache.
    Returns the lesson's frozen :class:`~medlab.experiments.Settings` (``**cfg`` passes them
    on; the cache key holds them as a plain dict)."""
    if not isinstance(lesson, Lesson):
        raise TypeError(f"lesson must come from medlab.lesson(quick, seed), got {lesson!r}")
    n = len(data.train)
    if lesson.quick:
        return lesson.settings(width=8, epochs=lesson.epochs(n, minimum=5), batch_size=64, lr=5e-3)
    return lesson.settings(
        width=16, epochs=lesson.epochs(n, minimum=8, scale=0.4), batch_size=64, lr=5e-3
    )
