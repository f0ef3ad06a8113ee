"""The lesson convention: what a notebook's ``quick`` and ``seed`` parameters mean (seeds,
training budget, threads, record tolerances), decided in one place by :func:`lesson`, and the
one frozen type for a lesson's training settings (:class:`Settings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlab.utils import check_int, check_scalar, set_threads

__all__ = ["IMAGES_SEEN", "N_SEEDS", "TOLERANCES", "Lesson", "Settings", "lesson"]


#: Training budget per model in images seen (epochs x training images), by mode.
IMAGES_SEEN = {True: 12_000, False: 50_000}


#: Seeds per result, by mode (a notebook may ask for more or fewer).
N_SEEDS = {True: 2, False: 5}


#: Default reproduction tolerances (absolute) suggested with each recorded number, by kind:
#: a floor under the tolerance that ``medlab reproduce --update-expected`` derives from the
#: spread over seeds.
TOLERANCES = {
    True: {"auc": 0.03, "acc": 0.05, "gap": 0.05, "ratio": 0.05, "count": 0.0, "exact": 1e-6},
    False: {"auc": 0.02, "acc": 0.03, "gap": 0.03, "ratio": 0.03, "count": 0.0, "exact": 1e-6},
}


@dataclass(frozen=True)
class Lesson:
    """What a notebook's ``quick``/``seed`` parameters mean, decided in one place.

    Attributes:
        quick: quick mode (CI, Binder, a first look) or full mode (the published figures).
        seed: the first seed; seeds: the seeds results are averaged over (``seed, seed+1, ...``).
        images_seen: training budget per model, in images seen (epochs x training images).
        threads: torch threads in use.
        tol: default reproduction tolerance per kind of number (see :data:`TOLERANCES`).
    """

    quick: bool
    seed: int
    seeds: tuple[int, ...]
    images_seen: int
    threads: int
    tol: dict[str, float] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def epochs(
        self, n_train: int, *, minimum: int = 1, maximum: int | None = None, scale: float = 1.0
    ) -> int:
        """Epochs for a model to see about ``scale * images_seen`` images on ``n_train``
        training images, clipped to [minimum, maximum]."""
        n_train = check_int("n_train", n_train, 1)
        minimum = check_int("minimum", minimum, 1)
        if maximum is not None and check_int("maximum", maximum, minimum) < minimum:
            raise ValueError(f"maximum={maximum} is below minimum={minimum}")
        scale = check_scalar("scale", scale, kind=float, lo=0, lo_inclusive=False)
        e = max(minimum, round(scale * self.images_seen / n_train))
        return min(e, maximum) if maximum is not None else e

    def settings(self, **values: Any) -> Settings:
        """This lesson's training settings (width, epochs, batch size ...), frozen: the one type
        every lesson uses for "how the models of this notebook are trained".

        >>> S = lesson(True, 0, threads=1).settings(width=8, lr=5e-3)
        >>> S.width, S["lr"], S.replace(width=16).width
        (8, 0.005, 16)
        """
        return Settings(self, values)


class Settings(Mapping[str, Any]):
    """A lesson's settings: a frozen mapping with attribute access (``S.width``,
    ``S["width"]``, ``dict(S)``), made by :meth:`Lesson.settings`; ``S.lesson`` is the
    :class:`Lesson` it belongs to. ``S.replace(**changes)`` gives a changed copy (an explorer's
    "what if"); nothing changes a Settings in place."""

    __slots__ = ("_lesson", "_values")

    def __init__(self, lesson: Lesson, values: Mapping[str, Any]) -> None:
        if not isinstance(lesson, Lesson):
            raise TypeError(f"lesson must come from medlab.lesson(quick, seed), got {lesson!r}")
        bad = [k for k in values if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            raise ValueError(f"setting names must be identifiers, got {bad}")
        object.__setattr__(self, "_lesson", lesson)
        object.__setattr__(self, "_values", dict(values))

    @property
    def lesson(self) -> Lesson:
        return self._lesson

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"no setting {name!r}; this lesson's settings are {sorted(self._values)}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"settings are frozen: use S.replace({name}=...) for a changed copy")

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``; a name that is not a setting is an error (a typo)."""
        unknown = sorted(set(changes) - set(self._values))
        if unknown:
            raise ValueError(f"unknown settings {unknown}; known: {sorted(self._values)}")
        return Settings(self._lesson, {**self._values, **changes})

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Settings({self._lesson.mode}, seed={self._lesson.seed}: {inner})"


def lesson(
    quick: bool = True,
    seed: int = 0,
    *,
    n_seeds: int | None = None,
    images_seen: int | None = None,
    threads: int | None = None,
) -> Lesson:
    """The lesson convention for a notebook's ``quick`` and ``seed`` parameters.

    Seeds are ``seed, seed + 1, ...`` (``n_seeds``, default 2 quick / 5 full); the training
    budget is :data:`IMAGES_SEEN`; threads come from ``threads``, else ``$MEDLAB_THREADS``, else
    the CPUs this process may use, and are set for torch here.
    """
    if not isinstance(quick, bool | np.bool_):
        raise ValueError(
            f"quick must be True or False, got {quick!r} ({type(quick).__name__}); with "
            "papermill pass -p quick True (not the string 'True')"
        )
    quick = bool(quick)
    seed = check_int("seed", seed, 0)
    n = N_SEEDS[quick] if n_seeds is None else check_int("n_seeds", n_seeds, 1, 100)
    budget = IMAGES_SEEN[quick] if images_seen is None else check_int("images_seen", images_seen, 1)
    used = set_threads(threads)
    return Lesson(quick, seed, tuple(range(seed, seed + n)), budget, used, dict(TOLERANCES[quick]))
