"""The audit (medlab.audit, `medlab audit`): every number the model card and the report cite is
checked against the results files of a run made by the real harness (`medlab reproduce --quick`
on notebooks 00 and 01, real data), recomputed here independently (scipy for the Wilson
interval); the not-run and unofficial-data statements are checked against the run itself."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import statistics
from importlib import resources
from pathlib import Path

import pytest
from scipy.stats import binomtest

from medlab import audit, results, stats
from medlab.harness.cli import main
from medlab.harness.reproduce import reproduce
from medlab.stats import wilson_interval

NUM = r"-?\d+(?:\.\d+)?(?:e[+-]\d+)?"
MD_MARK = re.compile(rf"({NUM})<sup>\[(C\d+)\]\(([^)\s]*)\)</sup>")
HTML_MARK = re.compile(rf'({NUM})<sup><a href="([^"]*)">(C\d+)</a></sup>')
DOCS = ("audit_report.md", "model_card.md", "audit_report.html", "model_card.html")


def _name(data_dir) -> str:
    if data_dir is not None and (data_dir / "pneumoniamnist_balanced_subset.npz").exists():
        return "pneumoniamnist_balanced_subset"
    return "pneumoniamnist"


def _harness(tmp: Path, selection, data_dir, **kw) -> Path:
    status = reproduce(
        selection,
        quick=True,
        output=tmp,
        data_dir=data_dir,
        parameters={"dataset": _name(data_dir)},
        allow_new=True,
        html=False,
        **kw,
    )
    assert status == 0, f"the harness failed on {selection}"
    return results.latest_run(tmp)


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
    """A real quick run of notebooks 00 and 01 (`medlab reproduce --quick --allow-new 00 01`)."""
    return _harness(tmp_path_factory.mktemp("out"), ["00", "01"], data_dir)


@pytest.fixture(scope="module")
def built(run):
    a, paths = audit.audit(run)
    keep = os.environ.get("MEDLAB_CI_ARTIFACTS")
    if keep:  # CI keeps this quick run's audit (and its results) as part of its output
        dest = Path(keep) / "audit-quick-run"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(run, dest, ignore=shutil.ignore_patterns("*.ipynb", "logs"))
    return a, paths


# -- an independent recomputation of a citation from the results files ---------------------


def _read(run: Path, source: dict) -> float:
    doc = json.loads((run / source["file"]).read_text())
    for part in source["pointer"].strip("/").split("/"):
        doc = doc[part]
    return float(doc)


def _hanley(auc: float, n1: int, n2: int) -> tuple[float, float]:
    """Hanley & McNeil (1982), eq. 1-3: SE^2 = [A(1-A) + (n1-1)(Q1-A^2) + (n2-1)(Q2-A^2)]/(n1 n2)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = math.sqrt(
        (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n2 - 1) * (q2 - auc**2)) / (n1 * n2)
    )
    return max(0.0, auc - 1.959963984540054 * se), min(1.0, auc + 1.959963984540054 * se)


def _recompute(run: Path, c: dict) -> float:
    xs = [_read(run, s) for s in c["sources"]]
    op = c["op"]
    if op == "value":
        assert len(xs) == 1
        return xs[0]
    if op == "mean":
        return sum(xs) / len(xs)
    if op == "sd":
        return statistics.stdev(xs)
    if op.startswith("wilson"):
        p, n = sum(xs[:-1]) / len(xs[:-1]), int(xs[-1])
        k = round(p * n)
        assert abs(k / n - p) < 1e-9, "an accuracy on n cases is k/n"
        ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
        return ci.low if op.endswith("low") else ci.high
    if op.startswith("hanley"):
        auc, n, share = sum(xs[:-2]) / len(xs[:-2]), int(xs[-2]), xs[-1]
        m = round(share * n)
        a, b = _hanley(auc, m, n - m), _hanley(auc, n - m, m)
        lo, hi = a if a[1] - a[0] >= b[1] - b[0] else b
        return lo if op.endswith("low") else hi
    raise AssertionError(f"unknown op {op}")


def _marks(folder: Path) -> list[tuple[str, str, str, str]]:
    """(document, number shown, citation id, link) for every citation mark in every document."""
    out = []
    for name in DOCS:
        text = (folder / name).read_text(encoding="utf-8")
        if name.endswith(".md"):
            out += [(name, num, cid, href) for num, cid, href in MD_MARK.findall(text)]
        else:
            out += [(name, num, cid, href) for num, href, cid in HTML_MARK.findall(text)]
    return out


# -- the checks ------------------------------------------------------------------------------


def test_writes_the_four_documents_where_the_index_links_them(run, built):
    _, paths = built
    for name in ("model_card.md", "model_card.html", "audit_report.md", "audit_report.html"):
        assert paths[name] == run / "audit" / name and paths[name].stat().st_size > 1000
    assert audit.FILES["audit_report.html"] == "audit/audit_report.html"


def test_every_cited_number_matches_the_results_files(run, built):
    a, paths = built
    folder = paths["audit_report.md"].parent
    meta = json.loads((folder / "citations.json").read_text())
    cites = {c["id"]: c for c in meta["citations"]}
    marks = _marks(folder)
    assert len(cites) >= 10 and len(marks) >= len(cites)
    for name in DOCS:  # no superscript escapes the patterns: every mark is checked below
        n = sum(m[0] == name for m in marks)
        assert n > 0 and n == (folder / name).read_text(encoding="utf-8").count("<sup>"), name
    for doc, shown, cid, href in marks:
        c = cites[cid]  # a mark names a known citation ...
        assert shown == c["shown"], f"{doc}: {cid} shows {shown}, citation says {c['shown']}"
        assert href.endswith(f"#{cid.lower()}"), (doc, cid, href)
    for c in cites.values():  # ... and each citation is what its results files give
        now = _recompute(run, c)
        assert math.isclose(now, c["value"], rel_tol=1e-9, abs_tol=1e-12), (c["id"], now)
        assert shown_ok(c["shown"], now), (c["id"], c["shown"], now)
    used = {m[2] for m in marks if m[0] == "audit_report.md"}
    assert used == set(cites), "every citation appears in the report"
    # the report cites 01's headline numbers, the same the results table holds
    df = results.load(run)
    auc = df[(df.notebook == "01_baseline") & (df.key == "smallcnn.test_auc")].value.item()
    assert any(c["key"] == "smallcnn.test_auc" and c["value"] == auc for c in cites.values())
    recorded = {(r.notebook, r.dataset, r.key) for r in df.itertuples()}
    cited = {(c["notebook"], c["dataset"], c["key"]) for c in cites.values() if c["op"] == "value"}
    assert recorded <= cited, f"recorded but not in the report: {recorded - cited}"
    assert audit.verify(folder) == []


def shown_ok(shown: str, value: float) -> bool:
    """The text shows the value to 4 significant digits (integers in full)."""
    return shown == (str(int(value)) if float(value).is_integer() else f"{value:.4g}")


def test_model_card_metadata_values_are_the_cited_values(run, built):
    from huggingface_hub import ModelCard

    _, paths = built
    card = ModelCard.load(paths["model_card.md"])
    cites = {
        c["id"]: c for c in json.loads((run / "audit/citations.json").read_text())["citations"]
    }
    evals = card.data.eval_results
    assert evals and {e.metric_type for e in evals} == {"roc_auc", "accuracy"}
    for e in evals:
        cid = re.search(r"\[(C\d+)\]", e.metric_name).group(1)
        assert e.metric_value == _recompute(run, cites[cid])
        assert (run / "audit" / e.source_url).resolve().is_file()
        assert ("unofficial" in e.dataset_name) == (cites[cid]["official"] is False)


def test_links_to_notebooks_results_and_figures_resolve(run, built):
    _, paths = built
    folder = paths["audit_report.md"].parent
    text = paths["audit_report.md"].read_text()
    links = [h for h in re.findall(r"\]\(([^)#\s][^)\s]*)\)", text) if not h.startswith("http")]
    targets = {(folder / h.split("#")[0]).resolve() for h in links}
    assert all(t.exists() for t in targets), [t for t in targets if not t.exists()]
    assert (run / "executed/01_baseline.ipynb").resolve() in targets
    assert (run / "results/01_baseline.json").resolve() in targets
    assert any(t.suffix == ".html" and "figures" in t.parts for t in targets), "figures linked"


def test_states_which_notebooks_did_not_run_and_unofficial_data(run, built, data_dir):
    a, paths = built
    text = paths["audit_report.md"].read_text()
    missing = [stem for n, (stem, _) in audit.CURRICULUM.items() if n not in ("00", "01")]
    assert a.not_run == missing
    line = next(x for x in text.splitlines() if x.startswith("- **Not run in this run:**"))
    assert all(m in line for m in missing) and "00_tour" not in line and "01_baseline" not in line
    for area in a.areas:  # an area none of whose notebooks ran says so
        if area["id"] in ("privacy", "robustness", "calibration", "cost", "synthetic"):
            assert area["status"] == "not assessed" and not area["rows"]
    assert a.areas[0]["status"] == "partly assessed"
    privacy = next(c for c in a.checklist if c["id"] == "privacy")
    assert privacy["status"] == "not assessed" and not privacy["evidence"]
    assert "### Privacy safeguards: not assessed" in text
    cites = json.loads((run / "audit/citations.json").read_text())["citations"]
    official = {d["dataset"]: d["official"] for d in a.datasets}
    df = results.load(run)
    assert official == df.groupby("dataset").official.all().to_dict()
    assert a.unofficial == [d for d, o in official.items() if not o]
    n_unoff = sum(c["official"] is False for c in cites)
    if a.unofficial:
        assert f"**Unofficial data:** {n_unoff} of the {len(cites)} cited numbers" in text
        assert n_unoff == len(cites)  # one unofficial dataset: every number is on it
        head = f"| 01_baseline | {a.unofficial[0]} | `"  # rows of the area tables
        rows = [x for x in text.splitlines() if x.startswith(head)]
        assert rows and all(r.rstrip(" |").endswith("**unofficial**") for r in rows)
    else:
        assert "**Unofficial data:** none" in text


def test_a_number_changed_by_hand_is_caught(run, built, tmp_path):
    _, paths = built
    folder = tmp_path / "audit"
    shutil.copytree(paths["audit_report.md"].parent, folder)
    md = folder / "audit_report.md"
    text = md.read_text()
    num, cid, _ = MD_MARK.search(text).groups()
    md.write_text(text.replace(f"{num}<sup>[{cid}]", f"{num}1<sup>[{cid}]", 1))
    problems = audit.verify(folder)
    assert problems and cid in problems[0] and "audit_report.md" in problems[0]


def test_a_changed_results_file_is_caught(run, tmp_path, capsys):
    """An edit after recording fails verify (digest and value), build and `medlab audit`."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    _, paths = audit.audit(copy)
    assert audit.verify(paths["audit_report.md"].parent) == []
    f = copy / "results/01_baseline.json"
    doc = json.loads(f.read_text())
    ds = next(iter(doc["records"]))
    doc["records"][ds]["smallcnn.test_auc"]["value"] = 0.99
    f.write_text(json.dumps(doc, indent=2))
    problems = audit.verify(paths["audit_report.md"].parent)
    assert problems and any("results give 0.99" in p for p in problems)
    assert any("01_baseline.json was changed after it was recorded" in p for p in problems)
    with pytest.raises(audit.AuditError) as err:
        audit.build(copy)
    assert re.search(
        r"results/01_baseline\.json was changed after it was recorded: its SHA-256 [0-9a-f]{64} "
        r"differs from the run's manifest \(results/MANIFEST\.sha256: [0-9a-f]{64}\); re-run "
        r"the notebook \(`medlab reproduce 01_baseline`\)",
        str(err.value),
    ), err.value
    report = paths["audit_report.md"].read_text()
    assert main(["audit", str(copy)]) == 2
    out, err = capsys.readouterr()
    assert "all verified" not in out and "0.99" not in out + err
    assert err.count("\n") == 1 and "changed after it was recorded" in err
    assert paths["audit_report.md"].read_text() == report  # the earlier audit stays as it was


def _copy(run: Path, tmp_path: Path) -> Path:
    """A copy of the real run, without its audit folder."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True, ignore=shutil.ignore_patterns("audit"))
    return copy


def test_the_recorder_records_each_results_files_sha256(run):
    lines = (run / "results" / results.MANIFEST).read_text().splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in lines)
    assert sorted(listed) == sorted(p.name for p in (run / "results").glob("*.json"))
    for name, digest in listed.items():
        assert hashlib.sha256((run / "results" / name).read_bytes()).hexdigest() == digest


def test_a_deleted_or_added_results_file_is_caught(run, tmp_path):
    copy = _copy(run, tmp_path)
    _, paths = audit.audit(copy)
    folder = paths["audit_report.md"].parent
    shutil.copy(copy / "results/01_baseline.json", copy / "results/01_copy.json")
    problems = audit.verify(folder)
    assert any("results/01_copy.json was added after the audit was written" in p for p in problems)
    (copy / "results/01_copy.json").unlink()
    assert audit.verify(folder) == []
    (copy / "results/01_baseline.json").unlink()
    with pytest.raises(audit.AuditError, match="01_baseline.json is listed in the run's manifest"):
        audit.build(copy)
    assert any("is missing" in p for p in audit.verify(folder))


def _insert(path: Path, before: str, line: str) -> int:
    """Insert ``line`` before the first line ``before`` of ``path``; returns its line number."""
    lines = path.read_text(encoding="utf-8").split("\n")
    at = lines.index(before)
    path.write_text("\n".join(lines[:at] + [line] + lines[at:]), encoding="utf-8")
    return at + 1


@pytest.mark.parametrize(
    "line, bare",
    [
        ("Test AUC 0.99 on the official test split.", "0.99"),
        ("Accuracy 99 % on the test split.", "99"),
        ("AUC `0.99`, see `smallcnn.test_auc`.", "0.99"),
        ("AUC 9.9e-01 (seed 3).", "9.9e-01, 3"),
        ("An AUC of [0.99](audit_report.md#c4).", "0.99"),
        ("| 01_baseline | x | `k` | -0.5 | - | official |", "-0.5"),
    ],
)
def test_a_number_without_a_citation_is_flagged(built, tmp_path, line, bare):
    _, paths = built
    folder = tmp_path / "audit"
    shutil.copytree(paths["audit_report.md"].parent, folder)
    n = _insert(folder / "model_card.md", "## Uses", line)
    m = _insert(folder / "audit_report.md", "## Intended use", line)
    problems = audit.verify(folder)
    for name, k in (("model_card.md", n), ("audit_report.md", m)):
        assert any(p.startswith(f"{name}, line {k}: {bare} carries no citation") for p in problems)
    assert sum("carries no citation" in p for p in problems) == 2, problems


def test_a_number_in_the_card_metadata_without_a_citation_is_flagged(built, tmp_path):
    _, paths = built
    folder = tmp_path / "audit"
    shutil.copytree(paths["audit_report.md"].parent, folder)
    card = folder / "model_card.md"
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    card.write_text(
        "---\ndescription: Test AUC 0.99 on the official test split\nepochs: 40\n" + text[4:],
        encoding="utf-8",
    )
    problems = audit.verify(folder)
    assert any("front matter" in p and "0.99 carries no citation" in p for p in problems)
    assert any("metadata epochs holds the number 40" in p for p in problems), problems


def test_the_documents_come_from_template_files_that_ship_with_the_package():
    folder = resources.files("medlab.audit") / "templates"
    for name in ("report.md.j2", "card.md.j2"):
        assert (folder / name).is_file(), f"{name} is not installed with medlab.audit"
    assert audit.CARD_TEMPLATE == (folder / "card.md.j2").read_text(encoding="utf-8")
    assert "## Read this first" in (folder / "report.md.j2").read_text(encoding="utf-8")


def test_names_dates_and_marks_are_not_uncited_numbers():
    ok = (
        "- `smallcnn.test_auc` (01_baseline, pneumoniamnist_balanced_subset, official): "
        "0.9607<sup>[C4](audit_report.md#c4)</sup>; run `20261206T050304Z-quick` of 2026-12-06, "
        "ResNet-18 on 28x28 images, MedMNIST v2, int8, C7, licence CC BY 4.0, "
        "95 % CI 0.9<sup>[C5](#c5)</sup> (Wilson, n = 468<sup>[C3](#c3)</sup>), SD over 2 seeds"
    )
    assert audit.uncited_numbers(ok) == []
    table = "| id | value | seeds |\n|---|---|---|\n| C1 | 0.5<sup>[C1](#c1)</sup> | 0, 10 |"
    assert audit.uncited_numbers(table) == []
    assert audit.uncited_numbers(table.replace("C1 |", "C1 0.4 |"))  # an id is only an id
    assert audit.uncited_numbers(table.replace("0, 10", "0.99"))  # seeds are only seeds
    assert audit.uncited_numbers(table.replace("| id |", "| id 3 |"))  # a header is checked
    assert audit.uncited_numbers("Known gap: 780 images from 600 women")  # not a card's gap
    unit = "0.88<sup>[C1](#c1)</sup> accuracy (0-1)"  # a cited number's recorded unit
    assert audit.uncited_numbers(unit, units=["accuracy (0-1)"]) == []
    assert audit.uncited_numbers(unit, units=["ms"]) and audit.uncited_numbers(unit + " 2")


def test_a_results_file_without_a_manifest_entry_is_origin_unknown(run, tmp_path, capsys):
    copy = _copy(run, tmp_path)
    doc = json.loads((copy / "results/01_baseline.json").read_text())
    ds = next(iter(doc["records"]))
    doc["notebook"] = "08_robustness"  # written by hand: the values are 01's real ones
    doc["records"] = {ds: {"standard.test_acc": doc["records"][ds]["smallcnn.test_acc"]}}
    (copy / "results/08_robustness.json").write_text(json.dumps(doc))
    a, paths = audit.audit(copy)
    assert a.unknown_origin == ["results/08_robustness.json"]
    for c in a.citations.values():
        uses = any(s["file"] == "results/08_robustness.json" for s in c.sources)
        assert c.origin == ("origin unknown" if uses else "recorded"), c
    text = paths["audit_report.md"].read_text()
    row = next(x for x in text.splitlines() if x.startswith("| 08_robustness |"))
    assert row.rstrip(" |").endswith("**origin unknown**")
    assert "- **Origin unknown:**" in text and "results/08_robustness.json" in text
    assert "every results file matches the SHA-256" not in text
    card = paths["model_card.md"].read_text()
    assert "**origin unknown**: their results files (results/08_robustness.json)" in card
    problems = audit.verify(paths["audit_report.md"].parent)
    assert problems == [
        "results/08_robustness.json: origin unknown (the run's manifest does not list it), so "
        "its numbers are not verified; re-run its notebook to record them"
    ]
    assert main(["audit", str(copy)]) == 1
    assert "all verified" not in capsys.readouterr().out


def test_the_official_data_sentence_follows_the_numbers(tmp_path, breast):
    """ "Every number comes from an official file" only when every cited number does."""
    official = dataclasses.replace(breast, provenance={**breast.provenance, "official": True})
    rec = results.Recorder("01_baseline", datasets=[official], seed=0, quick=True, output=tmp_path)
    rec.record("smallcnn.test_auc", 0.9)
    a, paths = audit.audit(tmp_path)
    text = paths["audit_report.md"].read_text()
    assert "**Unofficial data:** none; every number comes from an official file." in text
    assert "All numbers come from official data files." in paths["model_card.md"].read_text()
    assert audit.verify(paths["audit_report.md"].parent) == []
    doc = json.loads(rec.path.read_text())  # a second file, by hand, whose rows say unofficial
    doc["notebook"] = "09_deploy"
    doc["records"] = {"breastmnist": {"default.test_acc": {"value": 0.5, "official": False}}}
    doc["provenance"]["datasets"] = {}
    (tmp_path / "results/09_deploy.json").write_text(json.dumps(doc))
    a, paths = audit.audit(tmp_path)
    text = paths["audit_report.md"].read_text()
    assert "every number comes from an official file" not in text
    n = sum(c.official is False for c in a.citations.values())
    assert n and f"**Unofficial data:** {n} of the {len(a.citations)} cited numbers" in text
    assert "All numbers come from official" not in paths["model_card.md"].read_text()


def test_an_accuracy_on_part_of_the_test_split_gets_the_interval_of_its_own_n(tmp_path, breast):
    """The bug this guards: the Wilson interval used the whole test split's n for every accuracy,
    so 05's smallest-site accuracy (39 patients) was cited with the interval of 156."""
    rec = results.Recorder("05_federated", datasets=[breast], seed=0, quick=True, output=tmp_path)
    rec.record("local.test_acc.smallest_site", 0.859, n=39)
    rec.record("central.test_acc", 0.859)  # the whole test split
    a, paths = audit.audit(tmp_path)
    by_key = {}
    for c in a.citations.values():
        by_key.setdefault((c.key, c.op), c.value)
    n_split = len(breast.test)
    assert by_key["local.test_acc.smallest_site: test cases (n)", "value"] == 39
    wil = {k: v for (k, op), v in by_key.items() if op.startswith("wilson")}
    lows = sorted(v for (k, op), v in by_key.items() if op == "wilson_low")
    assert lows == pytest.approx(sorted([wilson_interval(0.859, 39)[0],
                                         wilson_interval(0.859, n_split)[0]]))  # fmt: skip
    assert wil and audit.verify(paths["audit_report.md"].parent) == []
    text = paths["audit_report.md"].read_text()
    assert "n = " in text and "39" in text


EVIL = "<img src=x onerror=alert(1)>"


def test_names_from_the_data_cannot_become_html(run, tmp_path):
    """A dataset, notebook, record key, unit and figure named like HTML stay text in the pages
    (a results file written by hand: load_custom and Recorder refuse such names)."""
    copy = _copy(run, tmp_path)
    doc = json.loads((copy / "results/01_baseline.json").read_text())
    ds = next(iter(doc["records"]))
    rec = dict(doc["records"][ds]["smallcnn.test_auc"], unit=EVIL)
    doc["notebook"] = f"01_{EVIL}"
    doc["records"] = {EVIL: {"smallcnn.test_auc": rec, f"a.`b` {EVIL}": rec}}
    doc["provenance"]["datasets"] = {EVIL: dict(doc["provenance"]["datasets"][ds], kind=EVIL)}
    doc["provenance"]["seed"] = EVIL
    doc["figures"] = [f"figures/x) {EVIL} [y](javascript:alert(1)).html"]
    (copy / "results/01_evil.json").write_text(json.dumps(doc))
    _, paths = audit.audit(copy)
    for name in ("audit_report.html", "model_card.html"):
        page = paths[name].read_text()
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, name  # shown, as text
        assert "<img" not in page and not re.search(r"<[^>]*onerror=", page), name
        assert 'href="javascript' not in page, name
    assert "01_evil.json" in paths["audit_report.md"].read_text()


def test_an_audit_written_elsewhere_verifies(run, built, tmp_path):
    _, paths = audit.audit(run, folder=tmp_path / "elsewhere")
    assert paths["audit_report.md"].parent == tmp_path / "elsewhere"
    assert audit.verify(tmp_path / "elsewhere") == []


def test_cli_audits_a_run_and_the_latest_run(run, capsys):
    assert main(["audit", str(run)]) == 0
    out = capsys.readouterr().out
    assert "all verified" in out and "not run (not assessed): 02_data_scarcity" in out
    for name in ("model_card.md", "model_card.html", "audit_report.md", "audit_report.html"):
        assert f"wrote {run / 'audit' / name}" in out
    assert main(["audit", "--output", str(run.parent.parent)]) == 0  # default: the latest run
    assert str(run) in capsys.readouterr().out


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "holds no results"),
        (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "is a file"),
        (lambda p: (p / "runs").mkdir() or p, "holds no runs yet"),
    ],
    ids=["missing", "empty", "file", "no-runs"],
)
def test_cli_rejects_bad_run_folders(tmp_path, capsys, make, message):
    assert main(["audit", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "medlab reproduce" in err or "outputs/runs" in err


def test_no_run_at_all_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLAB_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(audit.AuditError, match="medlab reproduce --quick"):
        audit.build()
    with pytest.raises(TypeError, match="folder path"):
        audit.build(3)


def test_several_seeds_give_mean_and_sample_sd(tmp_path, data_dir):
    run = _harness(tmp_path, ["00"], data_dir, seeds=[0, 1])
    a, paths = audit.audit(run)
    cites = list(a.citations.values())
    means = [c for c in cites if c.op == "mean"]
    sds = [c for c in cites if c.op == "sd"]
    assert means and sds and all(len(c.sources) == 2 and c.seeds == [0, 1] for c in means)
    for c in means + sds:
        assert c.value == pytest.approx(_recompute(run, c.__dict__), abs=1e-12)
    assert audit.verify(paths["audit_report.md"].parent) == []


def test_contract_keys_land_in_their_areas_and_checklist(run, tmp_path):
    """Routing only: a results file of notebook 06 with the contract's keys (the values are
    copied from 01's real test AUC, so nothing is invented) turns privacy into evidence."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    doc = json.loads((copy / "results/01_baseline.json").read_text())
    ds = next(iter(doc["records"]))
    auc = doc["records"][ds]["smallcnn.test_auc"]
    doc["notebook"] = "06_privacy"
    keys = (
        "eps3.epsilon",
        "nondp.attack_lira_auc",
        "eps3.attack_lira_auc",
        "eps3.attack_lira_auc_sd",
    )
    doc["records"] = {ds: {k: dict(auc) for k in keys}}
    (copy / "results/06_privacy.json").write_text(json.dumps(doc))
    a = audit.build(copy)
    privacy = next(x for x in a.areas if x["id"] == "privacy")
    keys = [r["key"] for r in privacy["rows"]]
    assert keys == ["nondp.attack_lira_auc", "eps3.epsilon", "eps3.attack_lira_auc"]
    assert "SD (`eps3.attack_lira_auc_sd`)" in privacy["rows"][2]["interval"]
    check = next(c for c in a.checklist if c["id"] == "privacy")
    assert check["status"] == "partly assessed" and len(check["evidence"]) == 3
    assert "06_privacy" not in a.not_run


def test_the_intervals_are_the_ones_of_medlab_stats():
    assert audit.wilson_interval is stats.wilson_interval
    assert audit.hanley_mcneil_interval is stats.hanley_mcneil_interval
    assert audit.Z95 == stats.Z95


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (50, 100), (411, 468), (156, 156)])
def test_wilson_interval_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert audit.wilson_interval(k / n, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_hanley_mcneil_at_chance_is_the_mann_whitney_null_variance():
    n1, n2 = 40, 60
    lo, hi = audit.hanley_mcneil_interval(0.5, n1, n2)
    se = math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))  # variance of U / (n1 n2) under H0
    assert (hi - lo) / 2 == pytest.approx(1.959963984540054 * se, rel=1e-12)
    assert (
        audit.hanley_mcneil_interval(0.9, 400, 600)[1]
        - audit.hanley_mcneil_interval(0.9, 400, 600)[0]
        < hi - lo
    )
    with pytest.raises(ValueError, match="both classes"):
        audit.hanley_mcneil_interval(0.9, 0, 10)
    with pytest.raises(ValueError, match="n >= 1"):
        audit.wilson_interval(1.5, 10)


def test_machine_measurements_say_so_in_the_report(run, tmp_path):
    """A latency recorded with machine=True is cited with a word on the CPU it ran on (the
    value is copied from 01's real results, so nothing is invented)."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy, symlinks=True)
    doc = json.loads((copy / "results/01_baseline.json").read_text())
    ds = next(iter(doc["records"]))
    rec = dict(doc["records"][ds]["smallcnn.test_auc"], unit="ms", tol=None, machine=True)
    doc["notebook"] = "09_deploy"
    doc["records"] = {ds: {"default.latency_ms": rec, "default.size_mb": dict(rec, machine=False)}}
    (copy / "results/09_deploy.json").write_text(json.dumps(doc))
    rows = {
        r["key"]: r for r in next(x for x in audit.build(copy).areas if x["id"] == "cost")["rows"]
    }
    assert "this run's machine" in rows["default.latency_ms"]["interval"]
    assert "machine" not in rows["default.size_mb"]["interval"]
