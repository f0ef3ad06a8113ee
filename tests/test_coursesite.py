"""The course website (``medlab site``, :mod:`medlab.harness.coursesite`): lesson pages show a
run's outputs and no answer; the built site (Jupyter Book 2) opens from a local web server with
the network blocked, in headless Chromium, and every internal link on every page resolves.

The browser test needs Jupyter Book 2 (the ``dev`` extra), Node.js, Playwright
with the system ``chromium``, and a theme: ``$MEDLAB_SITE_TEMPLATE`` (a built book theme, see
docs/site/README.md) or access to api.mystmd.org, where Jupyter Book downloads its own. Without
one of these it is skipped, and says which is missing."""

from __future__ import annotations

import functools
import re
import shutil
import socket
import threading
from collections import deque
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin

import nbformat
import plotly.graph_objects as go
import pytest

from medlab import plots
from medlab.harness import coursesite
from medlab.harness.editions import solution_regions
from medlab.harness.notebooks import ROOT, find_notebooks

FEEDBACK = "FEEDBACK-THAT-NAMES-THE-ANSWER"
#: what the theme fetches from a CDN and does without offline: the KaTeX, Font Awesome and
#: jupyter-matplotlib stylesheets, and MathJax (thebe-core loads it to render HTML outputs)
OPTIONAL = re.compile(
    r"https://(cdn\.jsdelivr\.net|cdnjs\.cloudflare\.com)/\S*(katex|font-awesome|jupyter-matplotlib|mathjax)",
    re.I,
)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request in the test output
        pass


def _plotly_output(title: str) -> dict:
    fig = plots.finish(go.Figure(go.Bar(x=["benign", "malignant"], y=[3, 5])), title=title,
                       x="class", y="images (count)")  # fmt: skip
    data = {coursesite._PLOTLY: fig.to_plotly_json(), "text/html": "<script src='https://cdn'>"}
    return nbformat.v4.new_output("display_data", data=data)


def _executed(path: Path, folder: Path, title: str) -> Path:
    """A stand-in for a reproduce run's executed copy of ``path`` (the instructor edition):
    every code cell prints its id, self-checks print feedback, one cell shows a plotly figure."""
    nb = nbformat.read(path, as_version=4)
    params = nbformat.v4.new_code_cell('quick = True\nseed = 7\ndataset = "breastmnist"\n')
    params.metadata["tags"] = ["injected-parameters"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    for c in code:
        text = f"✓ Exercise 1: correct. {FEEDBACK}" if "check_" in c.source else f"ran {c.id}"
        c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
    code[-1].outputs.append(_plotly_output(title))
    table = "<table><tr><th>split</th><td>HTML-TABLE-CELL</td></tr></table>"
    code[-1].outputs.append(nbformat.v4.new_output("display_data", data={"text/html": table}))
    nb.cells.insert(nb.cells.index(code[0]) + 1, params)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / path.name)
    return folder / path.name


# ----------------------------------------------------------------------------- lesson pages


def test_lesson_page_keeps_run_outputs_and_hides_answers():
    student = nbformat.v4.new_notebook()
    student.cells = [
        nbformat.v4.new_markdown_cell(
            "# T\n[![Open In Colab](https://colab.example/badge.svg)](https://colab.example/nb)",
            id="title",
        ),
        nbformat.v4.new_code_cell("x = 1", id="same"),
        nbformat.v4.new_code_cell("my_x = None\n...  # your answer here", id="answer"),
        nbformat.v4.new_code_cell("fb = exercise.check_prediction(my_x, x)", id="check"),
    ]
    executed = nbformat.from_dict(student)
    executed.cells[2].source = "my_x = None\n### BEGIN SOLUTION\nmy_x = 0.42\n### END SOLUTION"
    widget = {coursesite._WIDGET: {"model_id": "m"}, "text/plain": "VBox()"}
    executed.cells[1].outputs = [
        _plotly_output("fig"),
        nbformat.v4.new_output("display_data", data=widget),
    ]
    executed.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.42")]
    executed.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text=FEEDBACK)]
    page, shown = coursesite.lesson_page(student, executed, note="NOTE", stem="01_x")
    cells = {c.id: c for c in page.cells}
    assert shown == 1 and list(cells) == ["01_x-title", "01_x-run-note", "01_x-same", "01_x-answer", "01_x-check"]  # fmt: skip
    figure, widget_out = cells["01_x-same"].outputs
    assert set(figure.data) == {coursesite._PLOTLY}  # the JSON stays, its HTML copy goes
    assert widget_out.data == {"text/plain": "VBox()"}
    assert cells["01_x-answer"].outputs == [] and cells["01_x-check"].outputs == []
    assert cells["01_x-title"].source == "# T\n[Open In Colab](https://colab.example/nb)"
    assert student.cells[1].get("outputs") == []  # the input is not changed


def test_executed_folder_finds_the_run(tmp_path):
    run = tmp_path / "out" / "runs" / "20260101T000000Z-quick"
    (run / "seed10" / "executed").mkdir(parents=True)
    (run / "seed7" / "executed").mkdir(parents=True)
    assert coursesite.executed_folder(run) == run / "seed7" / "executed"  # the lowest seed
    (run / "executed").mkdir()
    (tmp_path / "out" / "latest").symlink_to(run)
    assert coursesite.executed_folder(tmp_path / "out") == run / "executed"
    assert coursesite.executed_folder(run) == run / "executed"
    with pytest.raises(coursesite.SiteError, match="no executed/ folder"):
        coursesite.executed_folder(tmp_path)


def test_template_and_output_folder_are_checked(tmp_path, monkeypatch):
    monkeypatch.delenv(coursesite.TEMPLATE_ENV, raising=False)
    assert coursesite.site_template() == coursesite.DEFAULT_TEMPLATE
    with pytest.raises(coursesite.SiteError, match="no template.yml"):
        coursesite.site_template(tmp_path)
    (tmp_path / "template.yml").write_text("jtex: v1\n")
    monkeypatch.setenv(coursesite.TEMPLATE_ENV, str(tmp_path))
    assert coursesite.site_template() == str(tmp_path.resolve())
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(coursesite.SiteError, match="not empty"):
        coursesite._prepare(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_guide_lists_workshop_then_instructor_pages(tmp_path):
    (tmp_path / "instructor").mkdir()
    for name in ("workshop.md", "instructor/b.md", "instructor/README.md", "instructor/a.png"):
        (tmp_path / name).write_text("x")
    files = coursesite._guide(tmp_path)
    assert files[0] == Path("workshop.md") and Path("instructor/a.png") in files
    assert coursesite._toc_pages(files) == [
        Path("workshop.md"), Path("instructor/README.md"), Path("instructor/b.md")
    ]  # fmt: skip


# ------------------------------------------------------------ the built site, in Chromium


def _requirements() -> tuple[str, str]:
    """(chromium, theme) or skip, naming what is missing."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        exe = None
    missing = []
    if exe is None:
        missing.append("playwright and the system chromium (dev extra; apt-get install chromium)")
    if shutil.which("node") is None:
        missing.append("Node.js >= 18 (Jupyter Book 2 runs on it)")
    try:
        coursesite._jupyter_book()
    except coursesite.SiteError:
        missing.append("jupyter-book (dev extra: pip install -c constraints.txt jupyter-book)")
    theme = coursesite.site_template()
    if theme == coursesite.DEFAULT_TEMPLATE:
        try:
            socket.create_connection(("api.mystmd.org", 443), timeout=5).close()
        except OSError:
            missing.append(
                f"a theme: ${coursesite.TEMPLATE_ENV} (a built book theme, docs/site/README.md) "
                "or access to api.mystmd.org, where Jupyter Book downloads its own"
            )
    if missing:
        pytest.skip("the course-site build needs " + "; ".join(missing))
    return exe, theme


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    exe, theme = _requirements()
    tmp = tmp_path_factory.mktemp("coursesite")
    chosen = find_notebooks(["00", "01"])
    run = tmp / "out" / "runs" / "20260101T000000Z-quick"
    for nb in chosen:
        _executed(nb, run / "executed", title=f"Figure of {nb.stem}")
    docs = tmp / "docs"
    (docs / "instructor").mkdir(parents=True)
    (docs / "workshop.md").write_text("# Workshop\n\nSee [the guide](instructor/guide.md).\n")
    (docs / "instructor" / "guide.md").write_text(
        "# Guide\n\n[Lesson 01](../../notebooks/01_baseline.ipynb), [workshop](../workshop.md)\n"
    )
    built = coursesite.build_site(run, tmp / "site", notebooks=chosen, template=theme, docs=docs)
    return exe, built, chosen


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_Quiet, directory=str(site[1]["html"]))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_site_has_no_answer_and_no_feedback(site):
    _, built, chosen = site
    assert [s for s, _, _ in built["lessons"]] == [p.stem for p in chosen]
    assert all(n > 0 for _, _, n in built["lessons"]), built["lessons"]
    text = "\n".join(
        p.read_text(encoding="utf-8", errors="ignore")
        for p in built["html"].rglob("*")
        if p.is_file() and p.suffix in (".html", ".json", ".ipynb")
    )
    assert FEEDBACK not in text
    solutions = [
        line.strip()
        for nb in chosen
        for region in solution_regions(nbformat.read(nb, as_version=4))
        for line in region.splitlines()
        if len(line.strip()) >= 12 and not line.strip().startswith("#")
    ]
    leaked = [line for line in solutions if line in text]
    assert not leaked, f"solution lines on the site: {leaked[:3]}"


def _crawl(page, base: str) -> dict[str, int]:
    """Visit every page reachable by internal links from the home page; every link must give a
    200 and every #fragment an element with that id. Returns {url: links on it}."""
    seen: dict[str, int] = {}
    todo, anchors = deque([base + "/"]), {}
    while todo:
        url = todo.popleft()
        if url in seen:
            continue
        response = page.goto(url)
        status = response.status if response is not None else None
        assert status == 200, f"{url}: HTTP {status}"
        page.wait_for_load_state("networkidle")
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        seen[url] = len(hrefs)
        for href in hrefs:
            target, fragment = urldefrag(urljoin(url, href))
            if target.startswith(base):
                todo.append(target if target != base else base + "/")
                if fragment:
                    anchors.setdefault(target, set()).add((unquote(fragment), url))
    for target, wanted in anchors.items():
        page.goto(target)
        for fragment, source in sorted(wanted):
            found = page.evaluate("id => document.getElementById(id) !== null", fragment)
            assert found, f"#{fragment} on {target} (linked from {source}) does not exist"
    return seen


def _scroll_to_figure(page) -> None:
    for _ in range(200):  # outputs render as they scroll into view
        if page.locator(".js-plotly-plot .main-svg").count():
            return
        page.mouse.wheel(0, 700)
        page.wait_for_timeout(100)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20_000)


def test_site_opens_offline_and_every_link_resolves(site, server):
    exe, built, chosen = site
    from playwright.sync_api import sync_playwright

    blocked, errors = [], []

    def offline(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            blocked.append((route.request.resource_type, route.request.url))
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        try:
            context = browser.new_context()
            context.route("**/*", offline)
            page = context.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            pages = _crawl(page, server)
            lessons = [f"{server}/notebooks/{s.split('_', 1)[1]}" for s in (p.stem for p in chosen)]
            guide = [f"{server}/docs/workshop", f"{server}/docs/instructor/guide"]
            assert set(lessons + guide + [server + "/"]) <= set(pages), sorted(pages)
            page.goto(lessons[1])
            page.wait_for_load_state("networkidle")
            assert "Outputs from run" in page.inner_text("article")
            _scroll_to_figure(page)
            assert "Figure of 01_baseline" in page.inner_text("article")
            assert "HTML-TABLE-CELL" in page.inner_text("article")
            page.keyboard.press("Control+k")
            page.fill("#search-input", "baseline")
            hit = page.locator("#search-list [role=option] a").first
            hit.wait_for(timeout=10_000)
            assert hit.get_attribute("href") == "/notebooks/baseline"
        finally:
            browser.close()
    assert not errors, errors
    unexpected = [(kind, url) for kind, url in blocked if not OPTIONAL.match(url)]
    assert not unexpected, f"the site fetched from the network: {unexpected}"


def test_real_guide_is_found():
    files = coursesite._guide(ROOT / "docs")
    assert Path("workshop.md") in files and not any(f.parts[0] == "site" for f in files)
