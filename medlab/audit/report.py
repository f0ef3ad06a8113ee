"""The audit report: Markdown rendered from ``templates/report.md.j2`` (links relative to the
folder it is written to); the tables are built here, the text is in the template."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from medlab import results
from medlab.audit.assemble import Audit
from medlab.audit.citations import OPS, RECORDED, UNKNOWN, Citation
from medlab.audit.framework import INTENDED_USE, OUT_OF_SCOPE
from medlab.audit.markup import _c, _data_label, _href, _links, _mark, _rows_table, _t, _table

__all__ = ["report_markdown"]


@cache
def _env() -> jinja2.Environment:
    """The templates of the documents: Markdown, so nothing is HTML-escaped here (the text from
    the data is made inert by ``_t`` and ``_c``); a block tag on its own line leaves no line."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("medlab.audit", "templates"),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(t=_t, c=_c)
    env.globals.update(sizes=_sizes, rows_table=_rows_table, UNKNOWN=UNKNOWN)
    return env


def _sizes(d: dict[str, Any], href: str) -> str:
    """The train / val / test split sizes of a dataset, cited (``?`` where none is recorded)."""
    return " / ".join(_mark(c, href) if c else "?" for c in d["sizes"].values())


def _summary_table(a: Audit) -> str:
    return _table(
        ["area", "status", "notebooks", "not run", "headline", "data"],
        [
            [
                f"[{x['title']}](#{x['id']})",
                x["status"],
                ", ".join(map(_t, x["notebooks_run"])) or "-",
                ", ".join(x["notebooks_missing"]) or "-",
                x["headline"],
                x["data"],
            ]
            for x in a.areas
        ],
    )


def _notebook_row(n: dict[str, Any], run: Path, folder: Path) -> list[str]:
    """A notebook's row of the traceability table: its status and links to its files."""
    links = " · ".join(
        s
        for s in (
            _links(run, folder, n["results"], "results"),
            _links(run, folder, n["executed"], "notebook"),
            _links(run, folder, n["html"], "html"),
        )
        if s
    )
    figs = " · ".join(
        f"[{_c(Path(f).stem)}]({_href(os.path.relpath(run / f, folder))})" for f in n["figures"]
    )
    seeds = ", ".join(map(_t, n["seeds"])) or "-"
    status = n["status"]
    if status.startswith("FAILED ("):  # the error text, as code: its numbers are no results
        status = f"FAILED {_c(status[len('FAILED ') :])}"
    return [_t(n["notebook"]), n["topic"], status, seeds, links or "-", figs or "-"]


def _citation_row(c: Citation, run: Path, folder: Path) -> list[str]:
    """A citation's row of the citations table: what it shows and the sources it reads."""
    src = "; ".join(
        f"[{_t(s['file'])}]({_href(os.path.relpath(run / s['file'], folder))}) {_c(s['pointer'])}"
        for s in c.sources
    )
    return [
        f'<a id="{c.anchor}"></a>{c.id}',
        _mark(c, ""),
        _t(c.notebook),
        _t(c.dataset),
        _c(c.key),
        OPS[c.op],
        ", ".join(map(_t, c.seeds)),
        _data_label(c),
        src,
    ]


def report_markdown(a: Audit, folder: Path) -> str:
    """The audit report as Markdown (links relative to ``folder``)."""
    run, cites = a.run_dir, list(a.citations.values())
    traceability = _table(
        ["notebook", "topic", "status", "seeds", "files", "figures"],
        [_notebook_row(n, run, folder) for n in a.notebooks],
    )
    citations = _table(
        ["id", "value", "notebook", "dataset", "key", "how", "seeds", "data", "source"],
        [_citation_row(c, run, folder) for c in cites],
    )
    return (
        _env()
        .get_template("report.md.j2")
        .render(
            a=a,
            run=run,
            manifest="results/" + results.MANIFEST,
            n_cites=len(cites),
            n_unknown=sum(c.origin != RECORDED for c in cites),
            unofficial=[d["dataset"] for d in a.datasets if not d["official"]],
            n_unofficial=sum(c.official is not True for c in cites),
            summary=_summary_table(a),
            intended_use=INTENDED_USE,
            out_of_scope=OUT_OF_SCOPE,
            traceability=traceability,
            citations=citations,
        )
    )
