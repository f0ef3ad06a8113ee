"""Two editions from one source: ``medlab editions`` builds ``student/`` (every solution region
emptied, instructor notes removed) and ``instructor/`` (solutions and notes kept) from the
repository's notebooks, which stay the single source.

A solution region is nbgrader's: the lines between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` in a code or markdown cell. nbgrader's own ``ClearSolutions`` preprocessor
replaces it with a stub; in code the stub is ``...`` (a no-op, so the variable set above the
region keeps its "unanswered" value and a function body returns None: the self-checks of
:mod:`medlab.exercise` then say "not yet" and the notebook goes on). Cells tagged ``instructor``
(notes, expected answers) are removed from the student edition by nbconvert's
``TagRemovePreprocessor``.

Colab opens a notebook from GitHub, so each edition's "Open in Colab" badge points at where that
edition is published: the instructor edition is the repository's own ``notebooks/`` at the release
tag ``vX``; the student edition is published by ``.ci/publish-student-edition vX`` as the tag
``vX-student`` (the release's tree with ``notebooks/`` replaced by the student edition), and
:func:`build_editions` rewrites the student copies' badges to that tag (:data:`STUDENT_SUFFIX`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

__all__ = [
    "build_editions",
    "solution_regions",
    "answer_key",
    "answer_rows",
    "CODE_STUB",
    "TEXT_STUB",
    "INSTRUCTOR_TAG",
    "STUDENT_SUFFIX",
    "student_link",
]

CODE_STUB = "...  # your answer here"
TEXT_STUB = "*Your answer here.*"
INSTRUCTOR_TAG = "instructor"
STUDENT_SUFFIX = "-student"  # the student edition of release vX is published as tag vX-student
_COLAB = re.compile(
    r"(https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/)([^/\s)]+)(/notebooks/)"
)
_REGION = re.compile(
    r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*$", re.M | re.S
)
_FEEDBACK = re.compile(r"^[✓✗…] Exercise (\w+): ([a-z ]+)\. (.*)$", re.M)
_PARAM = re.compile(r"^(quick|seed|dataset) = (.+)$", re.M)
_BANNER = {
    "student": "> **Student edition.** Exercises are left for you: write your answer where a cell "
    "says *your answer here*, then run the self-check below it. An unanswered exercise does "
    "not stop the notebook.",
    "instructor": "> **Instructor edition.** Solutions are filled in between `### BEGIN SOLUTION`"
    " and `### END SOLUTION`, and cells tagged `instructor` hold notes; students get the "
    "student edition (`medlab editions`), which has neither.",
}


def solution_regions(nb: nbformat.NotebookNode) -> list[str]:
    """The text of every solution region of a notebook, in order."""
    return [m.group(1) for c in nb.cells for m in _REGION.finditer(c.source)]


def _student(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    from nbconvert.preprocessors import TagRemovePreprocessor
    from nbgrader.preprocessors import ClearSolutions

    clear = ClearSolutions(
        code_stub={"python": CODE_STUB}, text_stub=TEXT_STUB, enforce_metadata=False
    )
    nb, _ = clear.preprocess(nb, {})
    drop = TagRemovePreprocessor(remove_cell_tags={INSTRUCTOR_TAG}, enabled=True)
    nb, _ = drop.preprocess(nb, {})
    for cell in nb.cells:  # Colab opens the published student edition, not the repository's
        if cell.cell_type == "markdown":
            cell.source = student_link(cell.source)
    return nb


def student_link(source: str) -> str:
    """``source`` (a markdown cell) with every Colab link moved from the release tag ``vX`` to the
    student edition's tag ``vX-student`` (a link already there stays)."""

    def move(m: re.Match[str]) -> str:
        tag = m.group(2)
        tag = tag if tag.endswith(STUDENT_SUFFIX) else tag + STUDENT_SUFFIX
        return f"{m.group(1)}{tag}{m.group(3)}"

    return _COLAB.sub(move, source)


def _with_banner(nb: nbformat.NotebookNode, edition: str) -> nbformat.NotebookNode:
    banner = nbformat.v4.new_markdown_cell(_BANNER[edition])
    banner.id = f"edition-{edition}"
    nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, banner)
    return nb


def build_editions(notebooks: list[Path], out: Path) -> dict[str, list[Path]]:
    """Write ``out/student/<name>.ipynb`` and ``out/instructor/<name>.ipynb`` for each notebook;
    returns the written paths per edition. A notebook whose solution regions do not close is
    refused (ValueError naming it) before anything is written."""
    sources = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for c in nb.cells:
            if c.source.count("### BEGIN SOLUTION") != c.source.count("### END SOLUTION"):
                raise ValueError(
                    f"{path.name}: a cell has unbalanced ### BEGIN/END SOLUTION lines: close "
                    "every solution region in the cell that opens it"
                )
        sources[path] = nb
    written: dict[str, list[Path]] = {"student": [], "instructor": []}
    for edition in written:
        folder = out / edition
        folder.mkdir(parents=True, exist_ok=True)
        for path, nb in sources.items():
            copy = nbformat.from_dict(nb)
            copy = _student(copy) if edition == "student" else copy
            target = folder / path.name
            nbformat.write(_with_banner(copy, edition), target)
            written[edition].append(target)
    return written


def _run_parameters(cells: list[dict]) -> dict[str, str]:
    """The parameters papermill injected into an executed notebook (else its parameters cell)."""
    for tag in ("injected-parameters", "parameters"):
        for c in cells:
            if tag in c.get("metadata", {}).get("tags", []):
                return dict(_PARAM.findall("".join(c["source"])))
    return {}


def answer_rows(path: Path) -> tuple[str, list[tuple[str, str, str]]]:
    """What the self-checks of one executed notebook printed: ``("dataset D, seed S, M mode",
    [(exercise, status, message), ...])``."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = [
        m.groups()
        for c in cells
        for o in c.get("outputs", [])
        for m in _FEEDBACK.finditer("".join(o.get("text", "")))
    ]
    p = _run_parameters(cells)
    mode = "quick" if p.get("quick", "True").strip() == "True" else "full"
    ds = p.get("dataset", "?").strip().strip(chr(34) + chr(39))
    return f"dataset {ds}, seed {p.get('seed', '?').strip()}, {mode} mode", found


def answer_key(executed: list[Path]) -> str:
    """Markdown for the instructor guide: for each executed notebook (a ``medlab reproduce``
    run's ``executed/`` folder of the repository's notebooks, i.e. the instructor edition), the
    feedback every exercise's self-check printed there: the answers of that run, with its
    dataset, seed and mode, so that no number in the guide is typed by hand."""
    lines = [
        "# Answer key",
        "",
        "Generated by `medlab editions --answers RUN` from the executed "
        "notebooks of one `medlab reproduce` run; each line is what the exercise's "
        "self-check printed for the instructor edition's solution in that run.",
        "",
    ]
    for path in sorted(executed):
        run, found = answer_rows(path)
        if not found:
            continue
        lines += [
            f"## {path.stem}",
            "",
            f"Run: {run}.",
            "",
            "| exercise | self-check | what the run printed |",
            "|---|---|---|",
        ]
        lines += [f"| {n} | {status} | {msg.replace('|', '/')} |" for n, status, msg in found]
        lines.append("")
    return "\n".join(lines)
