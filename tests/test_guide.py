"""The instructor guide's lesson pages are generated from the notebooks and a run."""

import json
import re

import pytest

from medlab.harness.guide import (
    exercise_headings,
    exercise_seconds,
    instructor_guide,
    lesson_page,
)
from medlab.harness.notebooks import NOTEBOOKS

SOURCE = NOTEBOOKS / "01_baseline.ipynb"


def test_lesson_page_collects_header_exercises_and_instructor_notes():
    page = lesson_page(SOURCE)
    cells = json.loads(SOURCE.read_text())["cells"]
    assert page.startswith("## 01 · Baseline")
    assert "**Key idea (the lesson's question).** How well does a small model do" in page
    assert "4. compare the cost of two training recipes" in page  # every objective, not the first
    heads = exercise_headings(cells)
    assert [n for n, _, _ in heads] == ["1", "2", "3"]
    for n, kind, _ in heads:
        assert f"| {n} | {kind} |" in page
    notes = [c for c in cells if "instructor" in c["metadata"].get("tags", [])]
    assert notes and "Students often predict an AUC equal to the accuracy" in page
    assert "<div" not in page
    assert "build the guide from a run" in page  # no run given: no numbers invented


def test_lesson_page_takes_the_answers_from_the_runs_executed_copy(tmp_path):
    nb = json.loads(SOURCE.read_text())
    params = {
        "cell_type": "code",
        "id": "inj",
        "metadata": {"tags": ["injected-parameters"]},
        "execution_count": 1,
        "outputs": [],
        "source": 'quick = True\nseed = 13\ndataset = "breastmnist"\n',
    }
    for c in nb["cells"]:
        if c["cell_type"] == "code" and "check_prediction" in "".join(c["source"]):
            c["outputs"] = [
                {"output_type": "stream", "name": "stdout",
                 "text": "✓ Exercise 1: close. You predicted 0.5; this run computed 0.5.\n"}
            ]  # fmt: skip
            break
    else:
        pytest.fail("01 has no check_prediction cell")
    nb["cells"].insert(1, params)
    executed = tmp_path / SOURCE.name
    executed.write_text(json.dumps(nb))
    page = instructor_guide([SOURCE], {SOURCE.name: executed})
    assert "dataset breastmnist, seed 13, quick mode" in page
    assert "| 1 | close | You predicted 0.5; this run computed 0.5. |" in page
    assert "do not edit by hand" in page


def test_exercise_seconds_sums_each_exercises_cells_up_to_its_self_check(tmp_path):
    """Each exercise's measured time: papermill's durations of its code cells, from its heading
    to its self-check; cells before the first exercise and after a self-check count for none."""
    nb = json.loads(SOURCE.read_text())
    cells = nb["cells"]
    for i, c in enumerate(cells):
        if c["cell_type"] == "code":
            c["metadata"]["papermill"] = {"duration": float(i)}
    expected: dict[str, float] = {}
    current = None
    for i, c in enumerate(cells):
        text = "".join(c["source"])
        if c["cell_type"] == "markdown":
            for n, _, _ in exercise_headings([c]):
                current = n
            continue
        if current is not None:
            expected[current] = expected.get(current, 0.0) + i
            if current in re.findall(r"check_\w+\(\s*\"(\d+)", text):  # 2, or 1 of 1a/1b
                current = None
    executed = tmp_path / SOURCE.name
    executed.write_text(json.dumps(nb))
    took = exercise_seconds(executed)
    assert took == expected and set(took) == {"1", "2", "3"}
    first_check = next(
        i for i, c in enumerate(cells) if "medlab.exercise.check_" in "".join(c["source"])
    )
    assert took["1"] < sum(range(first_check + 1))  # not every cell before it
    page = lesson_page(SOURCE, executed)
    assert f"| 1 | {exercise_headings(cells)[0][1]} | {took['1']:.1f} s |" in page
