"""The report site of a reproduce run: built by the real harness on a cheap notebook and a failing
one, read with the standard library's HTML parser (always) and opened offline in headless Chromium
(Playwright with the system ``chromium``; ``.ci/run`` installs both)."""

from __future__ import annotations

import os
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from conftest import tiny_notebook

from medlab.harness import reproduce as R
from medlab.harness import site
from medlab.harness.base import NotebookRun, Row
from medlab.harness.monitor import KernelMonitor, hwm_kb

CHEAP = """\
import medlab
from medlab import plots
data = medlab.load("breastmnist", data_dir=data_dir)
rec = medlab.Recorder("00_site", datasets=[data], seed=seed, quick=quick)
rec.record("test.images", len(data.test))
counts = data.test.class_counts()
fig = plots.bar(list(counts), list(counts.values()), title="Test images per class",
                xlabel="class", ylabel="images (count)", text_format="{:.0f}")
rec.save()
rec.figure(fig, "class_counts")
"""
FAILING = "x = 1\nassert x == 2, 'lesson does not hold'"


def _notebook(path: Path, title: str, source: str) -> None:
    tiny_notebook(path, source, title=title, dataset="breastmnist")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    """A real reproduce run (quick) of one cheap notebook and one failing notebook."""
    if data_dir is None:
        pytest.skip("needs the shared data folder (MEDLAB_TEST_DATA_DIR)")
    tmp = tmp_path_factory.mktemp("site")
    folder = tmp / "nbs"
    folder.mkdir()
    _notebook(folder / "00_site.ipynb", "00 · Site: one number & one figure", CHEAP)
    _notebook(folder / "01_fail.ipynb", "01 · Failing <on purpose>", FAILING)
    expected = tmp / "expected.yaml"
    expected.write_text(
        "unofficial:\n  quick:\n    00_site:\n      breastmnist:\n"
        "        test.images: {value: 156, tol: 0}\n"
    )
    status = R.reproduce(
        None,
        quick=True,
        output=tmp / "out",
        data_dir=data_dir,
        folder=folder,
        expected=expected,
    )
    assert status == 1  # 01_fail failed
    (run,) = (tmp / "out" / "runs").iterdir()
    return run


class _Page(HTMLParser):
    """Rows of the curriculum and numbers tables, links and asset references of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[dict[str, str]] = []
        self.numbers: list[str] = []
        self.links: list[tuple[str, str]] = []  # (class, href)
        self.assets: list[str] = []  # src of script/img/iframe, href of stylesheets
        self.text: list[str] = []
        self.ids: set[str] = set()
        self._cell: list[str] | None = None
        self._row: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "tr" and a.get("class") == "run":
            self._row = {k.removeprefix("data-"): v for k, v in a.items() if k.startswith("data-")}
            self._row["cells"] = ""
            self.runs.append(self._row)
        elif tag == "tr" and a.get("class") == "number":
            self.numbers.append(a["data-status"])
        elif tag == "a" and "href" in a:
            self.links.append((a.get("class", ""), a["href"]))
        if tag in ("script", "img", "iframe") and a.get("src"):
            self.assets.append(a["src"])
        if tag == "link" and "stylesheet" in a.get("rel", ""):
            self.assets.append(a.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._row is not None:
            self._row["cells"] += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.mark.notebook
def test_site_lists_notebooks_numbers_and_links(run_dir):
    page = _parse(run_dir / "index.html")
    status = {r["notebook"]: r["status"] for r in page.runs}
    assert status == {"00_site": "ok", "01_fail": "FAILED"}
    ok, bad = page.runs
    assert "00 · Site: one number & one figure" in ok["cells"]  # the title, unescaped once
    assert "Failing <on purpose>" in bad["cells"]
    assert "AssertionError" in bad["cells"] and "lesson does not hold" in bad["cells"]
    assert "FAILED" in "".join(page.text[:40])  # the summary says the run failed
    assert page.numbers == ["reproduced"]
    assert float(ok["peak-mb"]) > 100  # a python kernel that imports torch: far above 100 MB
    assert f"{float(ok['peak-mb']):.0f}" in ok["cells"]
    classes = {c for c, _ in page.links}
    assert {"nb-html", "nb-ipynb", "nb-log", "figure"} <= classes
    for _, href in page.links:
        if href.startswith("#"):  # a figure count links to that notebook's figures
            assert href[1:] in page.ids, href
            continue
        assert not urlparse(href).scheme, href  # relative: opens offline from the file system
        assert (run_dir / unquote(href)).is_file(), href
    csv = (run_dir / "notebooks_quick.csv").read_text().splitlines()
    assert csv[0].startswith("notebook,lesson,seed,status,seconds,peak_mb")
    assert csv[1].startswith("00_site,") and ",ok," in csv[1]
    assert ",FAILED," in csv[2]


@pytest.mark.notebook
def test_exported_notebooks_use_no_cdn(run_dir):
    pages = [run_dir / "index.html", *sorted((run_dir / "html").glob("*.html"))]
    assert {p.name for p in pages} >= {"index.html", "00_site.html", "01_fail.html"}
    for p in pages:
        for src in _parse(p).assets:
            assert not urlparse(src).scheme and not src.startswith("//"), (p.name, src)
    body = (run_dir / "html" / "00_site.html").read_text(encoding="utf-8")
    assert "plotly-graph-div" in body and "Plotly.newPlot" in body  # plotly.js travels inline


@pytest.mark.notebook
def test_audit_report_is_linked_when_present(run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path / "run", symlinks=True)
    run = tmp_path / "run"
    (run / "audit").mkdir()
    (run / "audit" / "model_card.html").write_text("<html><body>card</body></html>")
    (run / "audit" / "audit_report.html").write_text("<html><body>report</body></html>")
    nb_run = NotebookRun("00_site", True, 1.0, run / "executed" / "00_site.ipynb", peak_mb=500)
    site.write_site(run, [], [nb_run], mode="quick")
    hrefs = [h for c, h in _parse(run / "index.html").links if c == "audit"]
    assert hrefs == ["audit/audit_report.html", "audit/model_card.html"]


def test_uninformative_rows_pass_and_are_explained(tmp_path):
    """A row whose tolerance covers its whole range does not fail the run; the page names it and
    says what it means."""
    row = Row("00_x", "breastmnist", "demo.tpr_gap", 0.4, "unofficial", 0.1, 1.3, "uninformative")
    bad = Row("00_x", "breastmnist", "demo.test_auc", 0.4, "unofficial", 0.9, 0.1, "DEVIATED")
    nb_run = NotebookRun("00_x", True, 1.0, tmp_path / "00_x.ipynb", peak_mb=500)
    page = _parse(site.write_site(tmp_path, [row], [nb_run], mode="quick"))
    assert page.numbers == ["uninformative"] and "status-legend" in page.ids
    text = " ".join(page.text)
    assert "PASSED" in text and "could not have failed" in text
    page = _parse(site.write_site(tmp_path, [row, bad], [nb_run], mode="quick"))
    assert "FAILED" in " ".join(page.text)


def test_write_site_rejects_unknown_mode(tmp_path):
    with pytest.raises(ValueError, match="quick"):
        site.write_site(tmp_path, [], [], mode="fast")


def test_lesson_title(tmp_path):
    _notebook(tmp_path / "a.ipynb", "02 · Data scarcity", "x = 1")
    assert site.lesson_title(tmp_path / "a.ipynb") == "02 · Data scarcity"
    assert site.lesson_title(tmp_path / "missing.ipynb") == ""


def test_kernel_monitor_measures_a_child(tmp_path):
    import subprocess
    import sys

    code = "import numpy as np, time; a = np.ones(40 * 2**20 // 8); time.sleep(0.5)"
    with KernelMonitor(interval=0.05) as mon:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert mon.peak_mb > 40  # the 40 MB array, plus the interpreter
    assert hwm_kb(os.getpid()) > 0
    with pytest.raises(ValueError, match="positive"):
        KernelMonitor(interval=0)


def test_kernel_monitor_counts_a_forked_child_once(tmp_path):
    """A kernel that forks (subprocess.run, a DataLoader worker) is not counted twice: the child
    adds only the memory it alone holds, not the pages it shares with the kernel. The child lives
    until the monitor has seen it (a file handshake, not a sleep)."""
    import subprocess
    import sys
    import time

    go = tmp_path / "go"
    code = (
        "import numpy as np, os, pathlib, time\n"
        "a = np.ones(200 * 2**20 // 8)\n"  # 200 MB, resident
        "pid = os.fork()\n"
        "if pid == 0:\n"  # the child touches nothing: it shares every page with its parent
        f"    while not pathlib.Path({str(go)!r}).exists(): time.sleep(0.01)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    with KernelMonitor(interval=0.05) as mon:
        proc = subprocess.Popen([sys.executable, "-c", code])
        t0 = time.monotonic()
        while len(mon._seen) < 2 and time.monotonic() - t0 < 120:  # safety only
            time.sleep(0.02)
        seen = len(mon._seen)
        time.sleep(0.2)  # a few more polls of both processes
        go.write_text("")
        assert proc.wait(timeout=120) == 0
    assert seen == 2, "the monitor never saw the forked child"
    assert 200 < mon.peak_mb < 200 + 150, mon.peak_mb  # the interpreter and numpy, once


# ------------------------------------------------------------------- headless Chromium (Playwright)


def _chromium() -> str:
    """Path of the system Chromium and an importable Playwright, or skip (fail on CI, which
    installs both: a skipped site test there would hide a broken install)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        exe = None
    if exe is None:
        why = (
            "needs the playwright package (dev extra) and the system chromium "
            "(apt-get install -y chromium); .ci/run installs both"
        )
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return exe


@pytest.mark.notebook
def test_site_renders_in_headless_chromium(run_dir):
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def offline(route):  # the page must need nothing but the file system
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=args)
        try:
            context = browser.new_context()
            context.route("**/*", offline)
            page = context.new_page()
            page.goto((run_dir / "index.html").as_uri())
            rows = page.locator("#curriculum-table tbody tr")
            assert rows.count() == 2
            failed = page.locator("tr[data-notebook='01_fail'] .status")
            assert failed.inner_text() == "FAILED" and failed.is_visible()
            color = failed.evaluate("e => getComputedStyle(e).color")
            assert color == "rgb(198, 40, 40)"  # shown in red
            ok = page.locator("tr[data-notebook='00_site']")
            assert ok.locator(".status").inner_text() == "ok"
            assert page.locator("#numbers-table .status").all_inner_texts() == ["reproduced"]
            # the executed notebook opens and its plotly figure renders without a network
            ok.locator("a.nb-html").click()
            page.wait_for_load_state("load")
            assert page.url.endswith("/html/00_site.html")
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20_000)
            assert "Test images per class" in page.inner_text("body")
            page.go_back()
            page.locator("a.figure").first.click()
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=20_000)
            time.sleep(0.2)
        finally:
            browser.close()
    assert blocked == []


def test_speed_reference_trains_on_real_images_and_rejects_bad_steps(breast):
    from medlab.harness.speed import speed_reference

    t = speed_reference(breast.train, steps=2, batch_size=8)
    assert isinstance(t, float) and 0 < t < 60
    with pytest.raises(ValueError, match="steps"):
        speed_reference(breast.train, steps=0)
