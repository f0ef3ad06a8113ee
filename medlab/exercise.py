"""Exercises a student works through, with self-checks that teach and never stop the notebook.

Three kinds, one function each (the semantics of otter-grader's ``grader.check`` and nbgrader's
solution regions, in a few lines that fit Binder's memory and the pins):

* **predict, then run**: :func:`check_prediction` compares the student's prediction, written
  before a cell computes the answer, with what this run computed, and says why they differ;
* **change one thing**: :func:`check_choice` compares the student's reading of a result (did the
  gap widen or narrow?) with what their own changed run computed;
* **write the algorithm**: :func:`check_function` runs the student's function and the library's
  reference on the same real inputs and returns the one the notebook should use from then on:
  the student's when it matches, the reference otherwise (and it says so).

Every check prints feedback and returns; none raises on a wrong or missing answer, so an
unanswered exercise never ends the notebook on a traceback. The answer goes between
``### BEGIN SOLUTION`` and ``### END SOLUTION``; ``medlab editions`` (nbgrader's
``ClearSolutions``) empties those regions for the student edition.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "Feedback",
    "check_prediction",
    "check_choice",
    "check_function",
    "lesson_check",
    "NOT_YET",
    "STRICT_ENV",
]

#: set (to 1) by ``medlab reproduce`` for its kernels: a failed lesson check then raises
STRICT_ENV = "MEDLAB_STRICT_CHECKS"

NOT_YET = "not yet"


@dataclass(frozen=True)
class Feedback:
    """What a self-check found: ``status`` is ``"correct"``, ``"close"``, ``"not yet"`` (no
    answer) or ``"off"``; ``message`` is what was printed."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status in ("correct", "close")

    def _ipython_display_(self) -> None:
        """The check already printed its feedback: a cell that ends with it shows it once."""


def _say(exercise: str, status: str, message: str) -> Feedback:
    mark = {"correct": "✓", "close": "✓", NOT_YET: "…", "off": "✗"}[status]
    print(f"{mark} Exercise {exercise}: {status}. {message}")
    return Feedback(exercise, status, message)


def check_prediction(
    exercise: str, prediction: Any, actual: float, *, within: float, why: str, unit: str = ""
) -> Feedback:
    """A numeric prediction against this run's ``actual`` value: ``close`` within ``within``
    (same unit), ``off`` beyond it (then ``why`` says what the prediction may have missed).
    ``prediction`` None or Ellipsis: not answered yet (the notebook goes on)."""
    if prediction is None or prediction is Ellipsis:
        return _say(
            exercise,
            NOT_YET,
            "Write your prediction where the exercise says, before "
            f"you look at the answer; this run computed {actual:.3g}{unit}.",
        )
    try:
        p = float(prediction)
    except (TypeError, ValueError):
        return _say(
            exercise, "off", f"Your prediction {prediction!r} is not a number: write one, e.g. 0.7."
        )
    if not math.isfinite(p):
        return _say(exercise, "off", f"Your prediction {p} is not a finite number.")
    diff = p - actual
    if abs(diff) <= within:
        return _say(
            exercise,
            "close",
            f"You predicted {p:.3g}{unit}; this run computed "
            f"{actual:.3g}{unit} (within {within:g}).",
        )
    side = "high" if diff > 0 else "low"
    return _say(
        exercise,
        "off",
        f"You predicted {p:.3g}{unit}, {abs(diff):.3g} too {side}: "
        f"this run computed {actual:.3g}{unit}. {why}",
    )


def check_choice(
    exercise: str, answer: Any, correct: str, *, options: Sequence[str], why: str
) -> Feedback:
    """A choice among ``options`` (case-insensitive) against ``correct``, the option this run's
    own numbers support; ``why`` explains it when the answer is off."""
    opts = [o.lower() for o in options]
    if correct.lower() not in opts:
        raise ValueError(f"correct={correct!r} is not one of the options {list(options)}")
    if answer is None or answer is Ellipsis:
        return _say(exercise, NOT_YET, f"Answer with one of {list(options)}.")
    a = str(answer).strip().lower()
    if a not in opts:
        return _say(exercise, "off", f"{answer!r} is not one of {list(options)}.")
    if a == correct.lower():
        return _say(exercise, "correct", f"{correct}: that is what this run's numbers show.")
    return _say(
        exercise, "off", f"You answered {answer!r}; this run's numbers show {correct!r}. {why}"
    )


def _compare(got: Any, want: Any, rtol: float, atol: float) -> str | None:
    """None when ``got`` equals ``want`` (arrays, tensors, numbers, tuples of them) to the
    tolerance, else what differs, in words."""
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"returns {type(got).__name__} where {len(want)} values are expected"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if (msg := _compare(g, w, rtol, atol)) is not None:
                return f"value {i}: {msg}"
        return None
    w = want.detach().cpu().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    try:
        g = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        g = g.astype(float)
    except (TypeError, ValueError):
        return f"returns {type(got).__name__}, not numbers"
    if g.shape != w.shape:
        return f"returns shape {g.shape}, expected {w.shape}"
    if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
        k = int(np.nanargmax(np.abs(g - w))) if g.size else 0
        return (
            f"differs by up to {np.nanmax(np.abs(g - w)):.3g} (e.g. at flat index {k}: "
            f"{g.reshape(-1)[k]:.4g} where {w.reshape(-1)[k]:.4g} is expected)"
        )
    return None


def check_function(
    exercise: str,
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Sequence[tuple[tuple, dict]],
    *,
    hint: str,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> Callable[..., Any]:
    """Run the student's ``candidate`` and the library's ``reference`` on each case
    ``(args, kwargs)`` (real data); return the function the notebook uses from here on: the
    candidate when every result matches within (rtol, atol), else the reference. Feedback names
    the first case that differs and how, and ``hint``; it never shows the reference's code."""
    name = getattr(reference, "__qualname__", "the reference")
    for i, (args, kwargs) in enumerate(cases):
        try:
            got = candidate(*args, **kwargs)
            if got is None:  # the student edition's body is `...`: nothing returned yet
                raise NotImplementedError
        except NotImplementedError:
            _say(
                exercise,
                NOT_YET,
                f"Your function is not written yet; the notebook uses "
                f"`{name}` from here on. Hint: {hint}",
            )
            return reference
        except Exception as err:  # a student's bug is feedback, not a traceback
            _say(
                exercise,
                "off",
                f"Your function raised {type(err).__name__}: {err} (case "
                f"{i + 1}). The notebook uses `{name}` from here on. Hint: {hint}",
            )
            return reference
        if (msg := _compare(got, reference(*args, **kwargs), rtol, atol)) is not None:
            _say(
                exercise,
                "off",
                f"On case {i + 1} of {len(cases)} your function {msg}. The "
                f"notebook uses `{name}` from here on. Hint: {hint}",
            )
            return reference
    _say(
        exercise,
        "correct",
        f"Your function matches `{name}` on {len(cases)} case(s) of real "
        "data; the notebook uses yours from here on.",
    )
    return candidate


@contextlib.contextmanager
def lesson_check(what: str) -> Iterator[None]:
    """The reviewer's lesson check, kind to a student: an ``AssertionError`` inside prints
    "This run did not show <what>: <message>" and the notebook ends normally, unless
    ``$MEDLAB_STRICT_CHECKS`` is 1 (``medlab reproduce`` sets it), where it is raised, so the
    reviewer's harness fails on it. Other errors (bugs) always raise."""
    try:
        yield
    except AssertionError as err:
        if os.environ.get(STRICT_ENV) == "1":
            raise
        print(
            f"✗ This run did not show {what}: {err}\n  (Another seed or quick=False may; the "
            "reviewer's harness counts this run as a failure.)"
        )
    else:
        print(f"✓ This run showed {what}.")
