"""Cited numbers: how each number the documents show is recomputed from the results files.

A :class:`Citation` names its sources (a results file and a JSON pointer into it) and the
operation (:data:`OPS`) that combines them; :func:`fmt` is the text a cited number is shown as.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from medlab.stats import hanley_mcneil_interval, wilson_interval

__all__ = ["Citation", "OPS", "fmt", "CITATION_RE", "CITATION_HTML_RE"]

#: A cited number in the Markdown: ``<number><sup>[C<k>](<file>#c<k>)</sup>``.
CITATION_RE = re.compile(
    r"(?P<num>-?\d+(?:\.\d+)?(?:e[+-]\d+)?)<sup>\[(?P<id>C\d+)\]\((?P<href>[^)\s]*)\)</sup>"
)
#: The same mark in the HTML files.
CITATION_HTML_RE = re.compile(
    r'(?P<num>-?\d+(?:\.\d+)?(?:e[+-]\d+)?)<sup><a href="(?P<href>[^"]*)">(?P<id>C\d+)</a></sup>'
)

#: The origin of a cited number: every source is in the run's manifest, or not.
RECORDED, UNKNOWN = "recorded", "origin unknown"


def fmt(x: float) -> str:
    """The text a cited number is shown as: whole numbers as integers, others to 4 significant
    digits (``0.959``, ``-0.03733``, ``1e-06``)."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e9:
        return str(int(x))
    return f"{x:.4g}"


def _hanley_wider(auc: float, n: int, share: float) -> tuple[float, float]:
    """Hanley-McNeil interval for a binary test split of ``n`` cases whose majority class has
    ``share``: the wider of the two ways to assign the majority to the positive class."""
    n_maj = round(share * n)
    a = hanley_mcneil_interval(auc, n_maj, n - n_maj)
    b = hanley_mcneil_interval(auc, n - n_maj, n_maj)
    return a if a[1] - a[0] >= b[1] - b[0] else b


# operations a citation applies to the numbers it reads (test and verify recompute them)
def _apply(op: str, xs: list[float]) -> float:
    if op == "value":
        (x,) = xs
        return x
    if op == "mean":
        return statistics.fmean(xs)
    if op == "sd":
        return statistics.stdev(xs)
    if op in ("wilson_low", "wilson_high"):
        lo, hi = wilson_interval(statistics.fmean(xs[:-1]), int(xs[-1]))
        return lo if op == "wilson_low" else hi
    if op in ("hanley_low", "hanley_high"):
        lo, hi = _hanley_wider(statistics.fmean(xs[:-2]), int(xs[-2]), xs[-1])
        return lo if op == "hanley_low" else hi
    raise ValueError(f"unknown citation operation {op!r}")


OPS = {
    "value": "the recorded value",
    "mean": "mean over the run's seeds",
    "sd": "sample SD over the run's seeds (ddof=1)",
    "wilson_low": "95 % Wilson interval, lower end (value, test cases n)",
    "wilson_high": "95 % Wilson interval, upper end (value, test cases n)",
    "hanley_low": "95 % Hanley-McNeil interval, lower end (AUC, test cases n, majority share)",
    "hanley_high": "95 % Hanley-McNeil interval, upper end (AUC, test cases n, majority share)",
}


@dataclass
class Citation:
    """One number the documents show, and how to recompute it from the results files.

    ``sources``: ``{"file": path relative to the run folder, "pointer": JSON pointer}``, read in
    order and combined by ``op`` (see ``OPS``); ``shown`` is the text in the documents."""

    id: str
    op: str
    value: float
    shown: str
    notebook: str
    dataset: str
    key: str
    sources: list[dict[str, str]]
    seeds: list[Any] = field(default_factory=list)
    official: bool | None = None
    unit: str = ""
    #: "recorded" (every source is in the run's manifest) or "origin unknown"
    origin: str = "recorded"

    @property
    def anchor(self) -> str:
        return self.id.lower()


def _pointer_get(doc: Any, pointer: str) -> Any:
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _pointer(*parts: str) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)
