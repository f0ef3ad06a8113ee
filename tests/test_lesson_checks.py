"""No lesson check depends on the machine's speed or load: timings are reported, never asserted.

Every ``assert`` in a notebook's lesson check (the code cells after its "## Lesson check"
heading) is parsed, and no name, attribute, key or string it reads may be a timing (latency,
seconds, milliseconds, throughput, speed, ``time.perf_counter``...). Machine speed is what
``benchmarks/`` measures, as ratios against a baseline in the same run."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TIMING = re.compile(
    r"latency|seconds|_s$|(^|_)ms($|_)|(^|_)time(s|r)?($|_)|perf_counter|monotonic|throughput"
    r"|speed|faster|slower|elapsed|duration|wall",
    re.I,
)


def lesson_check_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    start = next(
        (i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
         and "".join(c["source"]).lstrip().startswith("## Lesson check")),
        None,
    )  # fmt: skip
    assert start is not None, f"{path.name} has no '## Lesson check' section"
    return "\n".join("".join(c["source"]) for c in cells[start:] if c["cell_type"] == "code")


def timing_words(test: ast.AST, tainted: frozenset[str] = frozenset()) -> list[str]:
    """Identifiers, attributes and string constants an assert's condition reads that name a
    timing, or names (``tainted``) that the check assigned from one."""
    found = []
    for node in ast.walk(test):
        word = None
        if isinstance(node, ast.Name):
            word = node.id
        elif isinstance(node, ast.Attribute):
            word = node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            word = node.value
        if word and (TIMING.search(word) or word in tainted):
            found.append(word)
    return found


def tainted_names(tree: ast.AST) -> frozenset[str]:
    """Names assigned (directly or through other such names) from a timing."""
    tainted: set[str] = set()
    while True:
        before = len(tainted)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and timing_words(node.value, frozenset(tainted)):
                for target in node.targets:
                    tainted |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        if len(tainted) == before:
            return frozenset(tainted)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_lesson_check_asserts_a_timing(path):
    tree = ast.parse(lesson_check_code(path))
    tainted = tainted_names(tree)
    bad = [
        (node.lineno, timing_words(node.test, tainted))
        for node in ast.walk(tree)
        if isinstance(node, ast.Assert) and timing_words(node.test, tainted)
    ]
    assert not bad, f"{path.name}: lesson check asserts on timings (line, words): {bad}"


def test_the_scan_catches_a_timing_assert():
    def flagged(src):
        tree = ast.parse(src)
        tainted = tainted_names(tree)
        return [timing_words(n.test, tainted) for n in ast.walk(tree) if isinstance(n, ast.Assert)]

    for src in (
        'ct = cost.latency_ms\nassert ct["ResNet-18 (28)", "int8"] < ct["ResNet-18", "float32"]',
        "assert res_epoch_s > 0 and 100 * res_epoch_s > cnn_seconds",
        "assert t.latency_ms.min() < 5",
        "assert int8_ms < float_ms",
        "t0 = time.perf_counter()\nd = time.perf_counter() - t0\nassert d < 1",
    ):
        assert any(flagged(src)), src
    for src in (
        "assert diff.mean() <= limit",
        "assert copy_ratio < 0.5",
        "assert s > 0.5",
        "assert tstr_auc > 0.5",
        "assert mse < 1",
    ):
        assert not any(flagged(src)), src
