"""The two editions built from the repository's notebooks (`medlab editions`): no solution text
in the student edition, a self-check after every exercise, and the student edition, every
exercise unanswered, runs to the end with "not yet" feedback (the instructor edition is the
source, which tests/notebook_runs.py runs, and there every self-check must pass)."""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from medlab.harness.editions import build_editions, solution_regions
from medlab.harness.notebooks import find_notebooks, run_notebook

ALL = find_notebooks()
EXERCISE = re.compile(r"\*\*Exercise (\d+)\b")
CHECK = re.compile(r"medlab\.exercise\.check_(prediction|choice|function)\(\s*\"(\d+)")


def _exercises(nb: nbformat.NotebookNode) -> list[str]:
    return [
        m.group(1)
        for c in nb.cells
        if c.cell_type == "markdown"
        for m in EXERCISE.finditer(c.source)
    ]


WITH_EXERCISES = [p for p in ALL if _exercises(nbformat.read(p, as_version=4))]


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    return build_editions(ALL, tmp_path_factory.mktemp("editions"))


def test_no_solution_leaks_into_the_student_edition(editions):
    for src, student in zip(ALL, editions["student"], strict=True):
        nb = nbformat.read(student, as_version=4)  # the sources as a student reads them (raw
        text = "\n".join(c.source for c in nb.cells)  # JSON escapes quotes: lines would hide)
        tags = {t for c in nb.cells for t in c.get("metadata", {}).get("tags", [])}
        source = nbformat.read(src, as_version=4)
        regions = solution_regions(source)
        # a line the notebook also has outside every solution region (a self-check computing
        # the truth from the run, say) is shown to students on purpose: not a leak
        outside = "\n".join(c.source for c in source.cells)
        for region in regions:
            outside = outside.replace(region, "")
        for region in regions:
            for line in filter(None, (ln.strip() for ln in region.splitlines())):
                if len(line) >= 12 and not line.startswith("#") and line not in outside:
                    assert line not in text, (
                        f"{src.name}: solution line in the student file: {line}"
                    )
        assert "### BEGIN SOLUTION" not in text and "instructor" not in tags, src.name


def test_every_exercise_has_its_self_check_and_a_solution():
    for path in WITH_EXERCISES:
        nb = nbformat.read(path, as_version=4)
        numbers = _exercises(nb)
        assert numbers == [str(i + 1) for i in range(len(numbers))], (path.name, numbers)
        checked = {
            m.group(2) for c in nb.cells if c.cell_type == "code" for m in CHECK.finditer(c.source)
        }
        assert set(numbers) <= checked, (path.name, checked)
        assert len(solution_regions(nb)) >= len(numbers), f"{path.name}: a solution is missing"


@pytest.mark.notebook
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.stem for p in WITH_EXERCISES])
def test_student_edition_runs_to_the_end_unanswered(
    path, editions, data_dir, tmp_path, monkeypatch, shared_cache
):
    monkeypatch.setenv("MEDLAB_CACHE_DIR", str(shared_cache))
    monkeypatch.setenv("MEDLAB_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    student = next(p for p in editions["student"] if p.name == path.name)
    params = {
        "quick": True,
        "dataset": "breastmnist",
        "data_dir": str(data_dir) if data_dir else None,
    }
    run = run_notebook(student, tmp_path, params)
    assert run.ok, run.error
    out = json.loads(run.executed.read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", []))
    for n in _exercises(nbformat.read(path, as_version=4)):
        assert re.search(rf"Exercise {n}[a-h]?: not yet", text), f"exercise {n} gave no 'not yet'"
    assert "Exercise" in text and not re.search(r"✓ Exercise", text), "an empty answer passed"


COLAB = re.compile(
    r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/([^/\s)]+)/notebooks/"
)


def test_each_edition_opens_itself_on_colab(editions):
    """The student edition's badges open the published student edition (tag vX-student), the
    instructor edition's the repository's notebooks at the release tag vX."""
    for src, student, instructor in zip(
        ALL, editions["student"], editions["instructor"], strict=True
    ):
        (tag,) = set(COLAB.findall(src.read_text()))
        assert set(COLAB.findall(student.read_text())) == {f"{tag}-student"}, student.name
        assert set(COLAB.findall(instructor.read_text())) == {tag}, instructor.name


def _git(cwd, *args):
    import subprocess

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)


def test_publish_student_edition_makes_the_tag_colab_opens(tmp_path):
    """.ci/publish-student-edition vX: a tag vX-student whose notebooks are the student edition
    (no solution text, badges pointing at the tag itself), the release tag untouched, nothing
    left behind; bad input (no release tag, the tag made twice) exits 2 naming the fix."""
    import os
    import subprocess
    import sys

    from fresh_env import checkout_copy

    repo = checkout_copy(tmp_path / "repo")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release"]):
        assert _git(repo, *args).returncode == 0
    script = [str(repo / ".ci" / "publish-student-edition")]
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    run = lambda *a: subprocess.run(script + list(a), cwd=repo, capture_output=True,  # noqa: E731
                                    text=True, env=env)  # fmt: skip
    missing = run("v9.9.9")
    assert missing.returncode == 2 and "git tag v9.9.9" in missing.stderr
    tag = re.search(r"/blob/([^/]+)/notebooks/", ALL[0].read_text()).group(1)
    assert _git(repo, "tag", tag).returncode == 0
    made = run(tag)
    assert made.returncode == 0, made.stderr
    assert f"git push origin {tag}-student" in made.stdout
    again = run(tag)
    assert again.returncode == 2 and f"git tag -d {tag}-student" in again.stderr
    for path in ALL:
        shown = _git(repo, "show", f"{tag}-student:notebooks/{path.name}")
        assert shown.returncode == 0, shown.stderr
        nb = nbformat.reads(shown.stdout, as_version=4)
        assert not solution_regions(nb), path.name
        assert set(COLAB.findall(shown.stdout)) == {f"{tag}-student"}, path.name
        assert _git(repo, "show", f"{tag}:notebooks/{path.name}").stdout == path.read_text()
    changed = _git(repo, "diff", "--name-only", tag, f"{tag}-student").stdout.split()
    assert sorted(changed) == sorted(f"notebooks/{p.name}" for p in ALL)
    assert _git(repo, "worktree", "list").stdout.count("\n") == 1  # the temporary one is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
