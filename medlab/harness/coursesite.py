"""The course website: ``medlab site --run RUN --out DIR`` builds a static site with Jupyter Book 2
(MyST) from the student edition and the executed notebooks of a ``medlab reproduce`` run.

The site has a home page, one page per lesson (the student edition of the notebook, with the
outputs of that run, figures included), the instructor guide (``docs/workshop.md`` and every file
in ``docs/instructor/``) and Jupyter Book's search. A lesson page never shows an answer: the
student edition's solution regions are empty, a code cell whose source differs from the executed
one (a solution the student edition emptied) gets no outputs, and a self-check's output (which
compares an answer with the run's numbers) is left out. A plotly figure keeps its JSON, which the
theme renders with its own plotly.js; its HTML copy, which embeds plotly.js again and points at
a CDN, is dropped, as is plotly's loader output (plotly.js again), widget views (a static page has no kernel) and remote images such as
the Colab badge (kept as a link).

Jupyter Book renders the pages with a theme, a web app that ``jupyter-book build --html`` runs
once to write static HTML. With a network, Jupyter Book downloads its ``book-theme`` itself;
offline, pass a theme folder (``--template DIR`` or ``$MEDLAB_SITE_TEMPLATE``; how to get one:
``docs/site/README.md``). The site's links are absolute (``/build/...``, ``/notebooks/...``), so
it opens from a local web server (``python -m http.server --directory DIR/html``), not from
``file://``; it fetches nothing else (only the theme's optional KaTeX and font stylesheets come
from a CDN and are left out offline).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import yaml

from medlab.harness.editions import build_editions
from medlab.harness.notebooks import ROOT
from medlab.harness.runs import latest_target
from medlab.harness.site import lesson_title

__all__ = [
    "SiteError",
    "build_site",
    "executed_folder",
    "lesson_page",
    "site_template",
    "TEMPLATE_ENV",
    "DEFAULT_TEMPLATE",
    "MARKER",
]

#: a theme folder (with ``template.yml``) for offline builds
TEMPLATE_ENV = "MEDLAB_SITE_TEMPLATE"
#: Jupyter Book 2's own theme, which it downloads (api.mystmd.org, GitHub) when none is given
DEFAULT_TEMPLATE = "book-theme"
#: written into ``--out``: a folder with it is the site's own, and is rebuilt in place
MARKER = ".medlab-site"
#: the seconds ``jupyter-book build`` may take (theme install, server start, every page)
BUILD_TIMEOUT = 1800.0

_SELF_CHECK = re.compile(r"\bcheck_(?:prediction|choice|function)\s*\(")
_BADGE = re.compile(r"\[!\[([^\]]*)\]\((?:https?:)?//[^)\s]*\)\]\(([^)\s]+)\)")
_REMOTE_IMG = re.compile(r"!\[([^\]]*)\]\((?:https?:)?//[^)\s]*\)")
_PARAM = re.compile(r"^(quick|seed|dataset) = (.+)$", re.M)
_PLOTLY = "application/vnd.plotly.v1+json"
_WIDGET = "application/vnd.jupyter.widget-view+json"
#: the start of plotly's notebook loader (plotly.js itself, 4.8 MB of HTML); the theme has its own
_PLOTLY_LOADER = "window.PlotlyConfig"


class SiteError(ValueError):
    """Bad input, or a build that failed; the message names the fix."""


def executed_folder(run: Path) -> Path:
    """The ``executed/`` folder of a run: ``run`` is a ``medlab reproduce`` output folder (its
    ``latest`` run is read) or a run folder; of a run over several seeds, the lowest seed's."""
    run = Path(run)
    for folder in (latest_target(run), run):
        if folder is None:
            continue
        if (folder / "executed").is_dir():
            return folder / "executed"
        seeds = sorted(
            (p for p in folder.glob("seed*/executed") if p.parent.name[4:].isdigit()),
            key=lambda p: int(p.parent.name[4:]),
        )
        if seeds:
            return seeds[0]
    raise SiteError(
        f"--run {run}: no executed/ folder (nor latest/executed/, nor seed<k>/executed/); pass "
        "the --output folder of a `medlab reproduce` run, or one of its run folders"
    )


def site_template(template: str | os.PathLike[str] | None = None) -> str:
    """The theme to build with: ``template`` or ``$MEDLAB_SITE_TEMPLATE`` (a folder holding a
    ``template.yml``, as an absolute path), else Jupyter Book's ``book-theme`` (downloaded)."""
    chosen = template if template is not None else os.environ.get(TEMPLATE_ENV) or None
    if chosen is None:
        return DEFAULT_TEMPLATE
    folder = Path(chosen).expanduser().resolve()
    if not (folder / "template.yml").is_file():
        source = "--template" if template is not None else f"${TEMPLATE_ENV}"
        raise SiteError(
            f"{source} {chosen}: not a theme folder (no template.yml in it); pass the folder of "
            "a built MyST book theme (docs/site/README.md says how to get one offline)"
        )
    return str(folder)


def _run_parameters(nb: nbformat.NotebookNode) -> dict[str, str]:
    """The parameters papermill injected into an executed notebook (dataset, seed, quick)."""
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            return {k: v.strip().strip("\"'") for k, v in _PARAM.findall(cell.source)}
    return {}


def _static_output(output: dict[str, Any]) -> dict[str, Any] | None:
    """An output as a static page shows it (None: nothing to show)."""
    output = nbformat.from_dict(output)
    data = output.get("data")
    if data is not None:
        data.pop(_WIDGET, None)
        html = data.get("text/html", "")
        if _PLOTLY in data or _PLOTLY_LOADER in html[:400]:
            data.pop("text/html", None)
        if not data:
            return None
    return output


def _offline_markdown(text: str) -> str:
    """Markdown without remote images: a linked badge becomes its link, an image its alt text."""
    return _REMOTE_IMG.sub(r"\1", _BADGE.sub(r"[\1](\2)", text))


def lesson_page(
    student: nbformat.NotebookNode, executed: nbformat.NotebookNode, *, note: str, stem: str
) -> tuple[nbformat.NotebookNode, int]:
    """The student edition's notebook with the executed copy's outputs, matched by cell id where
    the source is the same, less self-check outputs; ``note`` (Markdown) goes after the edition
    banner, and every cell id gets the prefix ``stem`` (ids are anchors, unique across the
    site). Returns the page and the number of code cells that show outputs."""
    page = nbformat.from_dict(student)
    ran = {c.get("id"): c for c in executed.cells}
    shown = 0
    for cell in page.cells:
        same = ran.get(cell.get("id"))
        if cell.cell_type == "markdown":
            cell.source = _offline_markdown(cell.source)
        elif cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if same is not None and same.source == cell.source:
                if not _SELF_CHECK.search(cell.source):
                    cell.outputs = [o for o in map(_static_output, same.get("outputs", [])) if o]
                    shown += bool(cell.outputs)
                cell.execution_count = same.get("execution_count")
        if "id" in cell:
            cell.id = f"{stem}-{cell.id}"[:64]
    at = next(
        (i for i, c in enumerate(page.cells) if c.get("id", "").endswith("edition-student")), 0
    )
    page.cells.insert(at + 1, nbformat.v4.new_markdown_cell(note, id=f"{stem}-run-note"[:64]))
    return page, shown


def _run_note(run_name: str, params: dict[str, str]) -> str:
    mode = "quick" if params.get("quick", "True") == "True" else "full"
    return (
        f"> **Outputs from run `{run_name}`** (dataset {params.get('dataset', '?')}, seed "
        f"{params.get('seed', '?')}, {mode} mode): every number and figure on this page was "
        "computed in that run. The exercises are blank and their self-checks' outputs are not "
        "shown: open the notebook (Binder, Colab or locally) to work through them."
    )


def _guide(docs: Path | None) -> list[Path]:
    """The instructor guide's files, relative to ``docs``: ``workshop.md``, then every file
    under ``instructor/`` (its Markdown pages go into the table of contents)."""
    if docs is None or not docs.is_dir():
        return []
    files = [Path("workshop.md")] if (docs / "workshop.md").is_file() else []
    under = sorted(p for p in (docs / "instructor").rglob("*") if p.is_file())
    return files + [p.relative_to(docs) for p in under]


def _heading(path: Path) -> str:
    """A Markdown file's first ``# `` heading ('' for none, or for another kind of file)."""
    if path.suffix != ".md":
        return ""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return next((ln[2:].strip() for ln in lines if ln.startswith("# ")), "")


def _toc_pages(files: list[Path]) -> list[Path]:
    pages = [f for f in files if f.suffix == ".md"]
    first = [f for f in pages if f.stem.lower() in ("index", "readme")]
    return pages[:1] + first + [p for p in pages[1:] if p not in first] if pages else []


def _home(
    lessons: list[tuple[str, str, int]],
    missing: list[str],
    guide: list[tuple[Path, str]],
    run_name: str,
) -> str:
    """The home page: what the site is, the lessons, the instructor guide, the run."""
    rows = [
        f"| [{stem.split('_')[0]}](notebooks/{stem}.ipynb) | {title.replace('|', '/')} | {n} |"
        for stem, title, n in lessons
    ]
    links = [f"- [{title}](docs/{p.as_posix()})" for p, title in guide]
    return "\n".join(
        [
            "# medlab: trustworthy AI in medical imaging",
            "",
            "A course in numbered notebooks on real MedMNIST images. Each lesson page below is the "
            "**student edition** of its notebook with the outputs of one `medlab reproduce` run "
            f"(`{run_name}`), so every result can be read without running anything. The "
            "exercises are left blank: open a notebook on Binder, on Colab or locally to work "
            "through them and run their self-checks.",
            "",
            "## Lessons",
            "",
            "| notebook | lesson | cells with outputs |",
            "|---|---|---|",
            *rows,
            "",
            *(
                [f"Not in this run, so not on this site: {', '.join(missing)}.", ""]
                if missing
                else []
            ),
            "## Instructor guide",
            "",
            *(links or ["*(no guide pages in docs/ when this site was built)*"]),
            "",
            "Use the search (top right, or Ctrl+K) to find a term in every page.",
            "",
        ]
    )


def _myst_yml(lessons: list[str], guide: list[Path], template: str) -> dict[str, Any]:
    toc: list[dict[str, Any]] = [{"file": "index.md"}]
    toc.append(
        {"title": "Lessons", "children": [{"file": f"notebooks/{s}.ipynb"} for s in lessons]}
    )
    if guide:
        pages = [{"file": f"docs/{p.as_posix()}"} for p in _toc_pages(guide)]
        toc.append({"title": "Instructor guide", "children": pages})
    return {
        "version": 1,
        "project": {"title": "medlab", "toc": toc},
        "site": {"template": template, "options": {"logo_text": "medlab", "folders": True}},
    }


def _prepare(out: Path) -> Path:
    """``out/source``, emptied of a previous build's pages (its theme cache is kept); refuses an
    ``out`` that holds anything but a site this command built."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()) and not (out / MARKER).exists():
        raise SiteError(
            f"--out {out}: the folder is not empty and holds no site built by `medlab site`; "
            "pass a new or empty folder (or one an earlier `medlab site` wrote)"
        )
    (out / MARKER).write_text("built by `medlab site`; rebuilt in place\n", encoding="utf-8")
    source = out / "source"
    for stale in (source / "notebooks", source / "docs", source / "_build" / "html", out / "html"):
        shutil.rmtree(stale, ignore_errors=True)
    (source / "notebooks").mkdir(parents=True)
    return source


def _run_name(executed: Path) -> str:
    """``<run>`` or ``<run>/seed<k>``: the run folder that ``executed`` belongs to."""
    run = executed.parent
    return f"{run.parent.name}/{run.name}" if run.name.startswith("seed") else run.name


def _write_lessons(
    source: Path, executed: Path, notebooks: list[Path]
) -> list[tuple[str, str, int]]:
    """Write one lesson page per notebook into ``source/notebooks``; returns (stem, title, code
    cells with outputs) for each."""
    student = build_editions(notebooks, source / "_editions")["student"]
    lessons = []
    for path in student:
        ran = nbformat.read(executed / path.name, as_version=4)
        note = _run_note(_run_name(executed), _run_parameters(ran))
        page, shown = lesson_page(nbformat.read(path, as_version=4), ran, note=note, stem=path.stem)
        nbformat.write(page, source / "notebooks" / path.name)
        lessons.append((path.stem, lesson_title(path), shown))
    shutil.rmtree(source / "_editions")
    return lessons


def _jupyter_book() -> str:
    """The ``jupyter-book`` command of this environment (or on PATH)."""
    here = Path(sys.executable).parent / "jupyter-book"
    found = str(here) if here.exists() else shutil.which("jupyter-book")
    if found is None:
        raise SiteError(
            "the jupyter-book command is missing: pip install -c constraints.txt jupyter-book "
            "(Jupyter Book 2, in medlab's dev extra; it runs on Node.js >= 18)"
        )
    return found


def _jb_build(source: Path, template: str, timeout: float) -> Path:
    """Run ``jupyter-book build --html`` in ``source``; returns its HTML folder. Its log goes
    to ``source/build.log``; a failure raises SiteError with the log's end and the fix."""
    log = source / "build.log"
    with log.open("w", encoding="utf-8") as fh:
        try:
            done = subprocess.run(
                [_jupyter_book(), "build", "--html"],
                cwd=source,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                env={**os.environ, "BASE_URL": ""},
            )
        except subprocess.TimeoutExpired:
            raise SiteError(f"jupyter-book build took over {timeout:.0f} s; see {log}") from None
    html = source / "_build" / "html"
    if done.returncode == 0 and (html / "index.html").is_file():
        return html
    tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
    hint = ""
    if template == DEFAULT_TEMPLATE:
        hint = (
            f"\nJupyter Book downloads its theme from api.mystmd.org and GitHub; offline, pass a "
            f"theme folder with --template DIR or ${TEMPLATE_ENV} (docs/site/README.md)."
        )
    raise SiteError(
        f"jupyter-book build failed (exit code {done.returncode}); see {log}:\n{tail}{hint}"
    )


def build_site(
    run: Path,
    out: Path,
    *,
    notebooks: list[Path],
    template: str | os.PathLike[str] | None = None,
    docs: Path | None = ROOT / "docs",
    timeout: float = BUILD_TIMEOUT,
) -> dict[str, Any]:
    """Build the course site of ``run`` into ``out/html`` (its MyST project in ``out/source``)
    from ``notebooks`` (those the run executed; the others are reported as missing). Returns
    ``html`` (the folder), ``lessons`` [(stem, title, cells with outputs)], ``missing`` (stems),
    ``guide`` (files from ``docs``), ``template`` and ``seconds``."""
    start = time.perf_counter()
    executed = executed_folder(run)
    theme = site_template(template)
    ran = [p for p in notebooks if (executed / p.name).is_file()]
    if not ran:
        raise SiteError(
            f"--run {run}: {executed} holds none of the notebooks asked for "
            f"({', '.join(p.stem for p in notebooks)}); run them with `medlab reproduce` first"
        )
    source = _prepare(Path(out))
    lessons = _write_lessons(source, executed, ran)
    guide = _guide(docs)
    for rel in guide:
        (source / "docs" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(docs / rel, source / "docs" / rel)
    missing = [p.stem for p in notebooks if p not in ran]
    titles = [(rel, _heading(docs / rel) or rel.name) for rel in guide]
    home = _home(lessons, missing, titles, _run_name(executed))
    (source / "index.md").write_text(home, encoding="utf-8")
    config = _myst_yml([s for s, _, _ in lessons], guide, theme)
    (source / "myst.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    html = Path(out) / "html"
    shutil.move(_jb_build(source, theme, timeout), html)
    return {
        "html": html,
        "lessons": lessons,
        "missing": missing,
        "guide": guide,
        "template": theme,
        "seconds": time.perf_counter() - start,
    }
