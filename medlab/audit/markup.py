"""Markdown pieces of the documents: text from the data made inert, citation marks, links and
tables."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from medlab.audit.citations import CITATION_RE, RECORDED, UNKNOWN, Citation


def _t(x: Any) -> str:
    """Text that comes from the data, made inert in Markdown and in the HTML rendered from it
    (``& < >`` as entities, backticks and brackets escaped, no line breaks)."""
    text = html.escape(" ".join(str(x).split()), quote=False)
    return re.sub(r"([\\`\[\]])", r"\\\1", text)


def _c(x: Any) -> str:
    """Text that comes from the data as an inline code span that nothing inside can close (the
    renderer escapes a code span's content)."""
    text = " ".join(str(x).split())
    ticks = max((len(m) for m in re.findall(r"`+", text)), default=0)
    pad = " " if ticks or not text else ""
    return f"{'`' * (ticks + 1)}{pad}{text}{pad}{'`' * (ticks + 1)}"


def _href(path: str) -> str:
    """A relative link target, percent-encoded so that it cannot end the link."""
    return quote(path.replace(os.sep, "/"), safe="/.-_~")


def _data_label(c: Citation) -> str:
    """The data column of a cited number: official, **unofficial** or **origin unknown**."""
    if c.origin != RECORDED:
        return f"**{UNKNOWN}**"
    return "official" if c.official else "**unofficial**"


def _mark(c: Citation, href: str) -> str:
    return f"{c.shown}<sup>[{c.id}]({href}#{c.anchor})</sup>"


def _metric(key: str) -> str:
    segs = key.split(".")
    return segs[1] if len(segs) > 1 else key


def _plain(text: str) -> str:
    """Markdown with citation marks -> plain text (numbers kept, marks dropped)."""
    text = CITATION_RE.sub(lambda m: m["num"], text)
    return re.sub(r"`([^`]*)`", r"\1", text)


def _links(run: Path, folder: Path, paths: list[str], label: str) -> str:
    return " · ".join(
        f"[{label}{'' if len(paths) == 1 else f'-{i + 1}'}]"
        f"({_href(os.path.relpath(run / p, folder))})"
        for i, p in enumerate(paths)
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in rows]
    return "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(r) + " |" for r in esc]
    )


def _rows_table(rows: list[dict[str, Any]]) -> str:
    cols = ["notebook", "dataset", "key", "value", "interval", "data"]
    return _table(
        cols,
        [
            [
                _c(r[c]) if c == "key" else _t(r[c]) if c in ("notebook", "dataset") else r[c]
                for c in cols
            ]
            for r in rows
        ],
    )
