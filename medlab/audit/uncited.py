"""Uncited numbers: every number the Markdown documents show must carry a citation mark, with
the exemptions :func:`uncited_numbers` lists (names, code, dates, identifiers, the generator's
own counts)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from medlab import cards
from medlab.audit.citations import CITATION_RE, OPS
from medlab.audit.markup import _t

__all__ = ["STRUCTURAL", "uncited_numbers"]

#: Numbers the generator writes without a citation, because they are not results: counts of the
#: document's own citations, seeds and rows, and the confidence level of the intervals.
STRUCTURAL = (
    re.compile(r"\b\d+ of the \d+ cited numbers\b"),
    re.compile(r"\(\d+ citations, "),
    re.compile(r"\bSD over \d+ seeds\b"),
    re.compile(r"^- \.\.\. \d+ more in the \["),
    re.compile(r"\b95 % (?=CI |Wilson |Hanley-McNeil )"),
    re.compile(r"\b(?:CC BY(?:-[A-Z]{2})*|CC0|Apache|GPL|LGPL|MPL)[ -]\d+(?:\.\d+)?\b"),
)
_CODE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?\b")
_TOKEN = re.compile(r"[\w.+\-]*\d[\w.+\-]*")
#: A decimal inside a token ("0.99AUC", "v0.99", "AUC=0.9"): a number, not a name.
_DECIMAL = re.compile(r"\d[.,]\d")
_BARE_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*|\.\d+)(?:e[-+]?\d+)?%?", re.IGNORECASE)
#: Table columns that hold identifiers or the generator's fixed text, and the form their cells
#: must have to be exempt.
_ID_COLUMNS = {
    "how": re.compile("|".join(re.escape(v) for v in OPS.values())),
    "seeds": re.compile(r"-|(?:-?\d+|None)(?:, (?:-?\d+|None))*"),
    "id": re.compile(r'(?:<a id="c\d+"></a>)?C\d+'),
}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def uncited_numbers(
    markdown: str, *, name: str = "document", units: Iterable[str] = ()
) -> list[str]:
    """Problems, one per line of ``markdown`` that shows a number with no citation mark.

    The rule: every number needs a citation mark (``<number><sup>[C<k>](...)</sup>``), except

    * a digit that is part of a name: a token that holds a letter or ``_`` besides digits
      (``C7``, ``01_baseline``, ``ResNet-18``, ``28x28``, ``int8``, ``v2``), but not a number in
      e-notation (``1e-06`` needs a citation) nor a token with a decimal in it (``0.99AUC``,
      ``v0.99``: write versions in inline code);
    * text in inline code that is not a bare number (record keys, md5s, paths, commands), link
      targets and HTML tags;
    * ISO dates and times;
    * the cells of a table's ``seeds`` column that are a list of seeds, of its ``id`` column
      that are a citation id (``C7``) and of its ``how`` column that are a description of
      :data:`OPS` ("sample SD over the run's seeds (ddof=1)");
    * the generator's counts and constants (:data:`STRUCTURAL`: "N of the M cited numbers",
      "(N citations, ", "SD over N seeds", "... N more in the [", "95 % CI") and licence
      versions ("CC BY 4.0");
    * the unit of a cited number right after its mark (``0.88<sup>...</sup> accuracy (0-1)``),
      when it is one of ``units`` (:func:`verify` passes the units of the citations);
    * a line that quotes a known gap of a data card word for word (cited to that card);
    * the YAML front matter (its ``model-index`` values are checked by :func:`verify` against
      the citations their names give).

    Headings, notebook numbers on their own and n counts get no exemption: write them as names
    or give them a citation."""
    gaps = {_t(g) for c in cards.cards().values() for g in c.get("known_gaps", [])}
    unit_re = "|".join(sorted((re.escape(_t(u)) for u in set(units) if u), key=len, reverse=True))
    mark = re.compile(
        CITATION_RE.pattern + (f"(?: (?:{unit_re})(?![\\w.+\\-]))?" if unit_re else "")
    )
    lines = markdown.split("\n")
    problems, header = [], None
    for i in range(_body_start(lines), len(lines)):
        line = lines[i]
        if not line.lstrip().startswith("|"):
            header = None
        elif header is None:
            header = _table_header(lines, i)
        elif set(line.replace(" ", "")) <= set("|-:"):
            continue
        else:
            line = _blank_id_cells(line, header)
        body = re.sub(r"^\s*[-*]\s+(?:\*\*Known gap:\*\*\s+)?", "", line).strip()
        if body in gaps:
            continue
        bare = _bare_numbers(line, mark)
        if bare:
            at = max(lines[i].find(bare[0]), 0)
            snippet = lines[i][max(at - 50, 0) : at + 50].strip()
            problems.append(
                f"{name}, line {i + 1}: {', '.join(bare)} carries no citation mark "
                f"(...{snippet}...); every number must link to the results it came from: "
                "regenerate the document with `medlab audit`"
            )
    return problems


def _body_start(lines: list[str]) -> int:
    """The first line after the YAML front matter (0 when there is none)."""
    if lines and lines[0] == "---":
        return next((i for i in range(1, len(lines)) if lines[i] == "---"), 0) + 1
    return 0


def _table_header(lines: list[str], i: int) -> list[str] | None:
    """The lowercased column names when line ``i`` is a table's header row, else None."""
    follows = lines[i + 1].replace(" ", "") if i + 1 < len(lines) else ""
    if follows.startswith("|-") and set(follows) <= set("|-:"):
        return [c.lower() for c in _cells(lines[i])]
    return None


def _blank_id_cells(line: str, header: list[str]) -> str:
    """A table row with the cells of its identifier columns (:data:`_ID_COLUMNS`) blanked
    where they have the form those columns hold."""
    return " | ".join(
        ""
        if j < len(header) and header[j] in _ID_COLUMNS and _ID_COLUMNS[header[j]].fullmatch(c)
        else c
        for j, c in enumerate(_cells(line))
    )


def _bare_numbers(line: str, mark: re.Pattern[str]) -> list[str]:
    """The numbers in ``line`` that are neither cited (``mark``) nor exempt."""
    text = mark.sub(" ", line)
    text = _CODE.sub(lambda m: m[2] if _BARE_NUMBER.fullmatch(m[2].strip()) else " ", text)
    text = _LINK_TARGET.sub("] ", text)
    text = _TAG.sub(" ", text)
    text = _DATE.sub(" ", text)
    for pattern in STRUCTURAL:
        text = pattern.sub(" ", text)
    bare = []
    for m in _TOKEN.finditer(text):
        token = m[0].strip(".+-") if not m[0].startswith("-") else m[0].rstrip(".+-")
        if (
            _BARE_NUMBER.fullmatch(token)
            or not re.search(r"[A-Za-z_]", token)
            or _DECIMAL.search(token)
        ):
            bare.append(token)
    return bare
