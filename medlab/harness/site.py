"""The report site of a reproduce run: one ``index.html`` that ties the run folder together.

``medlab reproduce`` calls :func:`write_site` at the end of every run. The page holds the
curriculum table (notebook, lesson title, status, wall time, the kernel's peak memory against its
budget), every recorded number against its expected value and tolerance, links to the executed
notebooks (``.ipynb`` and their HTML export), the figures each notebook saved, and the audit
report and model card when the run wrote them (``audit/audit_report.html``,
``audit/model_card.html``). It opens offline from the file system: the CSS is inline, every link
is relative, and :func:`export_notebook_html` exports notebooks without the CDN scripts
(require.js, MathJax, mermaid, the widget renderer) of nbconvert's default template; plotly
figures render from the plotly.js that ``medlab.plots`` embeds in the notebook itself.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from medlab.harness.base import NotebookRun, Row
from medlab.harness.monitor import BUDGET_MB

__all__ = ["write_site", "export_notebook_html", "lesson_title", "AUDIT_FILES"]

#: The audit helper's pages, linked from the site when a run wrote them (in ``<run>/audit/``).
AUDIT_FILES = ("audit_report.html", "model_card.html")

# nbconvert's "lab" template, less every script it would fetch from a CDN
_OFFLINE_NB = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""

# a script fetched from another host, e.g. the MathJax CDN tag plotly's notebook renderer writes
# before every figure (medlab's figures use no LaTeX; offline the tag only fails to load)
_REMOTE_SCRIPT = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["'](?:https?:)?//[^"']*["'][^>]*>\s*</script>""", re.I
)
# an image from another host, e.g. the "Open in Colab" badge in each notebook's title cell: offline
# it cannot load, and opening the page must fetch nothing, so it is replaced by its alt text
_REMOTE_IMG = re.compile(r"""<img\b[^>]*\bsrc\s*=\s*["'](?:https?:)?//[^>]*>""", re.I)
_ALT = re.compile(r"""\balt\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.I)


def _alt_text(match: re.Match[str]) -> str:
    alt = _ALT.search(match.group(0))
    return (alt.group(1) or alt.group(2) or "") if alt else ""


_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>medlab reproduce: {{ run_name }}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.5em; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.status { font-weight: bold; }
.status-ok, .status-reproduced, .status-updated { color: #1a7f37; }
.status-failed, .status-deviated { color: #c62828; }
.status-missing, .status-over { color: #b26a00; }
.status-new, .status-measured, .status-uninformative { color: #555; }
.error { color: #c62828; font-family: monospace; font-size: 0.85em; }
.summary { padding: 0.6em 1em; border-radius: 4px; }
.summary.status-ok { background: #e8f5e9; } .summary.status-failed { background: #ffebee; }
.muted { color: #777; }
</style>
</head>
<body>
<h1>medlab reproduce: {{ run_name }}</h1>
<p class="summary {{ 'status-ok' if passed else 'status-failed' }}" id="summary">
<span class="status">{{ 'PASSED' if passed else 'FAILED' }}</span>:
{{ runs|length }} notebook run(s), {{ n_failed }} failed;
{{ rows|length }} number(s): {% for s, n in counts.items() %}{{ n }} {{ s }}{{ ', ' if not loop.last }}{% endfor %}.
</p>
<p class="muted">Mode: {{ mode }}. Written {{ written }} on {{ machine }}.
{% if unofficial %}Numbers on <b>unofficial</b> copies of the data are marked as such: they are
never official MedMNIST results.{% endif %}
Tables: <a href="{{ table_txt }}">{{ table_txt }}</a>, <a href="{{ table_csv }}">{{ table_csv }}</a>,
<a href="{{ runs_csv }}">{{ runs_csv }}</a>.</p>

<h2 id="curriculum">Curriculum</h2>
<table id="curriculum-table">
<thead><tr><th>notebook</th><th>lesson</th>{% if multi_seed %}<th>seed</th>{% endif %}
<th>status</th><th>time (s)</th><th>peak memory (MB)</th><th>budget (MB)</th>
<th>executed notebook</th><th>figures</th></tr></thead>
<tbody>
{% for r in runs %}
<tr class="run" data-notebook="{{ r.notebook }}" data-status="{{ r.status }}" data-peak-mb="{{ '' if r.peak_mb is none else '%.0f'|format(r.peak_mb) }}">
<td>{{ r.notebook }}</td><td>{{ r.title }}</td>{% if multi_seed %}<td class="num">{{ r.seed }}</td>{% endif %}
<td><span class="status status-{{ r.status|lower }}">{{ r.status }}</span>
{% if r.error %}<div class="error">{{ r.error }}</div>{% endif %}</td>
<td class="num">{{ '%.1f'|format(r.seconds) }}</td>
<td class="num">{% if r.peak_mb is none %}<span class="muted">not measured</span>{% else %}{{ '%.0f'|format(r.peak_mb) }}{% if r.over %} <span class="status status-over">over budget</span>{% endif %}{% endif %}</td>
<td class="num">{{ budget }}</td>
<td>{% if r.html %}<a class="nb-html" href="{{ r.html }}">HTML</a> {% endif %}{% if r.ipynb %}<a class="nb-ipynb" href="{{ r.ipynb }}">.ipynb</a> {% endif %}{% if r.log %}<a class="nb-log" href="{{ r.log }}">log</a>{% endif %}</td>
<td class="num">{% if r.figures %}<a href="#fig-{{ r.anchor }}">{{ r.figures|length }}</a>{% else %}0{% endif %}</td>
</tr>
{% endfor %}
</tbody>
<tfoot><tr><th>total</th><th></th>{% if multi_seed %}<th></th>{% endif %}<th></th>
<th class="num">{{ '%.1f'|format(total_s) }}</th>
<th class="num">{% if max_mb is not none %}largest {{ '%.0f'|format(max_mb) }}{% endif %}</th><th></th><th></th><th></th></tr></tfoot>
</table>

<h2 id="numbers">Recorded numbers against expected values</h2>
{% if rows %}
<p class="muted" id="status-legend">reproduced: within its tolerance (the expected value ± a
99 % prediction interval over seeds); DEVIATED: outside it; MISSING: expected but not recorded;
new: no expected value yet; uninformative: within a tolerance that covers every value the number
can take (its spread over seeds is that wide), so the comparison could not have failed;
measured: this machine's speed, shown and never compared.</p>
<table id="numbers-table">
<thead><tr><th>notebook</th>{% if multi_seed %}<th>seed</th>{% endif %}<th>dataset</th><th>key</th><th>data</th>
<th>expected</th><th>tolerance</th><th>now</th><th>unit</th><th>status</th></tr></thead>
<tbody>
{% for r in rows %}
<tr class="number" data-status="{{ r.status }}">
<td>{{ r.notebook }}</td>{% if multi_seed %}<td class="num">{{ r.seed if r.seed is not none else '' }}</td>{% endif %}
<td>{{ r.dataset }}</td><td>{{ r.key }}</td><td>{{ r.origin }}</td>
<td class="num">{{ fmt(r.expected) }}</td><td class="num">{{ '' if r.tol is none else '± %.3g'|format(r.tol) }}</td>
<td class="num">{{ fmt(r.value) }}</td><td>{{ r.unit }}</td>
<td><span class="status status-{{ r.status|lower }}">{{ r.status }}</span></td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}<p class="muted">No number was recorded.</p>{% endif %}

<h2 id="figures">Figures</h2>
{% set ns = namespace(any=false) %}
{% for r in runs if r.figures %}{% set ns.any = true %}
<h3 id="fig-{{ r.anchor }}">{{ r.notebook }}{% if multi_seed %} (seed {{ r.seed }}){% endif %}</h3>
<ul class="figures">
{% for f in r.figures %}<li><a class="figure" href="{{ f.href }}">{{ f.name }}</a></li>
{% endfor %}</ul>
{% endfor %}
{% if not ns.any %}<p class="muted">No figure was saved in this run.</p>{% endif %}

<h2 id="audit">Audit</h2>
{% if audit %}<ul>
{% for a in audit %}<li><a class="audit" href="{{ a.href }}">{{ a.name }}</a></li>
{% endfor %}</ul>
{% else %}<p class="muted">This run wrote no audit report (audit/audit_report.html).</p>{% endif %}
</body>
</html>
"""


def _href(path: Path, base: Path) -> str:
    """A relative URL from ``base`` (a folder) to ``path``, percent-encoded."""
    return quote(Path(os.path.relpath(path, base)).as_posix())


def lesson_title(path: str | os.PathLike[str]) -> str:
    """The notebook's first Markdown heading without its ``#`` marks ('' if it has none)."""
    import nbformat

    try:
        nb = nbformat.read(Path(path), as_version=4)
    except Exception:  # an unreadable or missing notebook has no title
        return ""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.lstrip().startswith("#"):
                return line.strip().lstrip("#").strip()
    return ""


def export_notebook_html(executed: str | os.PathLike[str], folder: str | os.PathLike[str]) -> Path:
    """Export an executed notebook to ``folder/<name>.html`` for offline reading (nbconvert's
    ``lab`` template without CDN scripts, and no script or image an output or a Markdown cell
    would fetch from another host; plotly.js comes embedded in the outputs)."""
    import nbconvert
    import nbformat

    executed, folder = Path(executed), Path(folder)
    exporter = nbconvert.HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"medlab_offline.html.j2": _OFFLINE_NB})],
        template_file="medlab_offline.html.j2",
    )
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    body = _REMOTE_IMG.sub(_alt_text, _REMOTE_SCRIPT.sub("", body))
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / executed.with_suffix(".html").name
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(out)
    return out


def _fmt(x: float | None) -> str:
    """Counts (whole numbers from 2 up) without decimals, other values with 4."""
    if x is None:
        return ""
    return f"{x:.0f}" if float(x).is_integer() and abs(x) >= 2 else f"{x:.4f}"


def _run_entry(run: NotebookRun, run_dir: Path, budget: int) -> dict[str, Any]:
    target = run.executed.parent.parent  # <run>/ or <run>/seed<k>/
    html = target / "html" / run.executed.with_suffix(".html").name
    figures = sorted((target / "figures" / run.notebook).glob("*.html"))
    peak = getattr(run, "peak_mb", None)
    return {
        "notebook": run.notebook,
        "title": lesson_title(run.executed) or run.notebook,
        "seed": "" if run.seed is None else run.seed,
        "status": "ok" if run.ok else "FAILED",
        "error": run.error,
        "seconds": run.seconds,
        "peak_mb": peak,
        "over": peak is not None and peak > budget,
        "html": _href(html, run_dir) if html.is_file() else "",
        "ipynb": _href(run.executed, run_dir) if run.executed.is_file() else "",
        "log": _href(run.log, run_dir) if run.log is not None and run.log.is_file() else "",
        "figures": [{"name": f.stem, "href": _href(f, run_dir)} for f in figures],
        "anchor": run.notebook + ("" if run.seed is None else f"-seed{run.seed}"),
    }


def _audit_links(run_dir: Path) -> list[dict[str, str]]:
    """The audit pages in ``<run>/audit/`` (and ``<run>/seed<k>/audit/``): the report and model
    card first, then any other page there."""
    links = []
    for folder in [run_dir / "audit", *sorted(run_dir.glob("seed*/audit"))]:
        pages = [folder / n for n in AUDIT_FILES if (folder / n).is_file()]
        pages += [p for p in sorted(folder.glob("*.html")) if p.name not in AUDIT_FILES]
        for p in pages:
            name = p.stem.replace("_", " ")
            if folder.parent != run_dir:
                name += f" ({folder.parent.name})"
            links.append({"name": name, "href": _href(p, run_dir)})
    return links


def _write_runs_csv(path: Path, entries: list[dict[str, Any]], budget: int) -> Path:
    """One line per notebook run: its time in s and its kernel's peak memory in MB."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["notebook", "lesson", "seed", "status", "seconds", "peak_mb", "budget_mb"])
        for e in entries:
            peak = "" if e["peak_mb"] is None else f"{e['peak_mb']:.0f}"
            w.writerow(
                [e["notebook"], e["title"], e["seed"], e["status"], f"{e['seconds']:.1f}"]
                + [peak, budget]
            )
    return path


def write_site(
    run_dir: str | os.PathLike[str],
    rows: Sequence[Row],
    runs: Sequence[NotebookRun],
    *,
    mode: str,
    passed: bool | None = None,
) -> Path:
    """Write ``<run_dir>/index.html`` (and ``notebooks_<mode>.csv``: one line per notebook run
    with its time in s and peak kernel memory in MB); returns the page's path.

    ``passed``: the run's verdict (the command's exit code was 0); None derives it from the
    runs and rows (every notebook ran, every number reproduced, new, uninformative or measured).
    """
    if mode not in BUDGET_MB:
        raise ValueError(f"mode must be one of {sorted(BUDGET_MB)}, got {mode!r}")
    run_dir = Path(run_dir)
    budget = BUDGET_MB[mode]
    entries = [_run_entry(r, run_dir, budget) for r in runs]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    n_failed = sum(not r.ok for r in runs)
    if passed is None:
        passed = not n_failed and all(
            r.status in ("reproduced", "new", "updated", "uninformative", "measured") for r in rows
        )
    peaks = [e["peak_mb"] for e in entries if e["peak_mb"] is not None]
    runs_csv = _write_runs_csv(run_dir / f"notebooks_{mode}.csv", entries, budget)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(_PAGE).render(
        run_name=run_dir.name,
        mode=mode,
        runs=entries,
        rows=list(rows),
        counts=counts,
        n_failed=n_failed,
        passed=passed,
        multi_seed=len({e["seed"] for e in entries}) > 1,
        budget=budget,
        total_s=sum(e["seconds"] for e in entries),
        max_mb=max(peaks) if peaks else None,
        unofficial=any(r.origin == "unofficial" for r in rows),
        audit=_audit_links(run_dir),
        fmt=_fmt,
        written=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU(s), Python "
        f"{platform.python_version()}",
        table_txt=f"reproduce_{mode}.txt",
        table_csv=f"reproduce_{mode}.csv",
        runs_csv=runs_csv.name,
    )
    out = run_dir / "index.html"
    tmp = out.with_name(f".index.html.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out
