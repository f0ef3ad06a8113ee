"""Self-checks of exercises (medlab.exercise) and the two editions (medlab editions): feedback
that teaches, never a traceback, the reference as fallback, and no solution in the student
edition."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
import torch

from medlab import exercise
from medlab.harness.editions import CODE_STUB, build_editions, solution_regions


def test_prediction_feedback_covers_every_case(capsys):
    assert exercise.check_prediction("1a", None, 0.8, within=0.05, why="w").status == "not yet"
    assert exercise.check_prediction("1a", ..., 0.8, within=0.05, why="w").status == "not yet"
    assert exercise.check_prediction("1a", 0.78, 0.8, within=0.05, why="w").passed
    off = exercise.check_prediction("1a", 0.5, 0.8, within=0.05, why="because X")
    assert off.status == "off" and "too low" in off.message and "because X" in off.message
    assert "too high" in exercise.check_prediction("1a", 0.9, 0.8, within=0.05, why="").message
    assert exercise.check_prediction("1a", "lots", 0.8, within=0.05, why="").status == "off"
    assert exercise.check_prediction("1a", float("nan"), 0.8, within=0.05, why="").status == "off"
    assert "Exercise 1a" in capsys.readouterr().out


def test_choice_feedback():
    opts = ("widened", "narrowed")
    assert exercise.check_choice("2", "Narrowed ", "narrowed", options=opts, why="").passed
    wrong = exercise.check_choice("2", "widened", "narrowed", options=opts, why="because Y")
    assert wrong.status == "off" and "because Y" in wrong.message
    assert exercise.check_choice("2", "maybe", "narrowed", options=opts, why="").status == "off"
    assert exercise.check_choice("2", None, "narrowed", options=opts, why="").status == "not yet"
    with pytest.raises(ValueError, match="not one of the options"):
        exercise.check_choice("2", "x", "grew", options=opts, why="")


def _mean_rows(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x * w[:, None]).sum(0) / w.sum()


def test_check_function_returns_the_students_function_only_when_it_matches(capsys):
    cases = [((torch.randn(4, 3), torch.rand(4) + 0.1), {}) for _ in range(3)]

    def right(x, w):
        return torch.einsum("nd,n->d", x, w) / w.sum()

    def unweighted(x, w):
        return x.mean(0)

    def unwritten(x, w): ...  # your answer here

    def raises(x, w):
        raise NotImplementedError

    def broken(x, w):
        return x @ w @ w

    assert exercise.check_function("3", right, _mean_rows, cases, hint="h") is right
    assert exercise.check_function("3", unweighted, _mean_rows, cases, hint="h") is _mean_rows
    out = capsys.readouterr().out
    assert "matches" in out and "differs by up to" in out and "Hint: h" in out
    assert exercise.check_function("3", unwritten, _mean_rows, cases, hint="h") is _mean_rows
    assert "not written yet" in capsys.readouterr().out
    assert exercise.check_function("3", raises, _mean_rows, cases, hint="h") is _mean_rows
    assert "not written yet" in capsys.readouterr().out
    assert exercise.check_function("3", broken, _mean_rows, cases, hint="h") is _mean_rows
    assert "raised RuntimeError" in capsys.readouterr().out
    shape = exercise.check_function("3", lambda x, w: x, _mean_rows, cases, hint="h")
    assert shape is _mean_rows and "shape" in capsys.readouterr().out
    pair = exercise.check_function(
        "3", lambda x: (x, x), lambda x: (x, x + 1), [((np.ones(2),), {})], hint="h"
    )
    assert pair.__name__ == "<lambda>" and "value 1" in capsys.readouterr().out


SOURCE = {
    "cells": [
        {"cell_type": "markdown", "id": "t", "metadata": {}, "source": "# 99 · Test"},
        {
            "cell_type": "code",
            "id": "a",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "guess = None\n### BEGIN SOLUTION\nguess = 0.8123  # the secret answer\n"
            "### END SOLUTION\nprint(guess)",
        },
        {
            "cell_type": "code",
            "id": "b",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": 'def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n'
            "    return x * 41.5  # hidden factor\n    ### END SOLUTION\n",
        },
        {
            "cell_type": "markdown",
            "id": "c",
            "metadata": {"tags": ["instructor"]},
            "source": "Expected answer: 0.8123, because of the hidden factor.",
        },
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_editions_clear_every_solution_and_run(tmp_path):
    src = tmp_path / "99_test.ipynb"
    src.write_text(json.dumps(SOURCE))
    written = build_editions([src], tmp_path / "out")
    student = nbformat.read(written["student"][0], as_version=4)
    instructor = nbformat.read(written["instructor"][0], as_version=4)
    text = written["student"][0].read_text()
    for region in solution_regions(nbformat.read(src, as_version=4)):
        for line in filter(None, (ln.strip() for ln in region.splitlines())):
            assert line not in text
    assert "0.8123" not in text and "41.5" not in text and "hidden factor" not in text
    assert CODE_STUB in text and "Student edition" in text
    assert "0.8123" in written["instructor"][0].read_text()
    assert len(instructor.cells) == len(SOURCE["cells"]) + 1
    assert len(student.cells) == len(SOURCE["cells"])  # the instructor note is gone
    env: dict = {}
    for cell in student.cells:
        if cell.cell_type == "code":
            exec(cell.source, env)  # the cleared cells still run
    assert env["guess"] is None and env["f"](2) is None


def test_editions_refuse_an_unclosed_region_before_writing(tmp_path):
    bad = json.loads(json.dumps(SOURCE))
    bad["cells"][1]["source"] = "### BEGIN SOLUTION\nx = 1\n"
    src = tmp_path / "99_bad.ipynb"
    src.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="unbalanced"):
        build_editions([src], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_lesson_check_prints_for_students_and_raises_for_the_harness(monkeypatch, capsys):
    monkeypatch.delenv(exercise.STRICT_ENV, raising=False)
    with exercise.lesson_check("the gap"):
        assert 1 > 2, "gap 0.01"
    assert "This run did not show the gap: gap 0.01" in capsys.readouterr().out
    with exercise.lesson_check("the gap"):
        pass
    assert "This run showed the gap" in capsys.readouterr().out
    with pytest.raises(KeyError), exercise.lesson_check("the gap"):
        raise KeyError("a bug is never hidden")
    monkeypatch.setenv(exercise.STRICT_ENV, "1")
    with pytest.raises(AssertionError, match="gap 0.01"), exercise.lesson_check("the gap"):
        raise AssertionError("gap 0.01")


def test_answer_key_collects_each_exercises_feedback_with_the_runs_parameters(tmp_path):
    from medlab.harness.editions import answer_key

    def cell(source, tags=(), text=""):
        out = [{"output_type": "stream", "name": "stdout", "text": text}] if text else []
        return {
            "cell_type": "code",
            "id": source[:8],
            "metadata": {"tags": list(tags)},
            "execution_count": 1,
            "outputs": out,
            "source": source,
        }

    nb = dict(
        SOURCE,
        cells=[
            cell("quick = True\nseed = 0", ("parameters",)),
            cell('quick = True\nseed = 7\ndataset = "breastmnist"\n', ("injected-parameters",)),
            cell(
                "check 1", text="✓ Exercise 1: close. You predicted 0.8; this run computed 0.81.\n"
            ),
            cell("check 2", text="noise\n✗ Exercise 2b: off. You answered 'a|b'; runs show 'c'.\n"),
        ],
    )
    path = tmp_path / "05_test.ipynb"
    path.write_text(json.dumps(nb))
    key = answer_key([path])
    assert "## 05_test" in key and "dataset breastmnist, seed 7, quick mode" in key
    assert "| 1 | close | You predicted 0.8; this run computed 0.81. |" in key
    assert "| 2b | off | You answered 'a/b'; runs show 'c'. |" in key


def test_a_cell_ending_with_a_check_shows_its_feedback_once(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    fb = exercise.check_choice("1", "a", "a", options=("a", "b"), why="a reason")
    assert capsys.readouterr().out.count("Exercise 1: correct") == 1  # printed once
    shown, _ = InteractiveShell.instance().display_formatter.format(fb)
    assert shown == {}, f"a cell ending with the check would show it again: {shown}"
