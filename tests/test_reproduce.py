"""The reproduce harness: records with provenance, the key scheme, comparison (missing keys, empty
sections), tolerances derived over seeds, run folders, input checks, quiet output, results.load."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import torch
import yaml
from conftest import tiny_notebook

import medlab
from medlab import results as results_mod
from medlab.data import UnofficialDataWarning
from medlab.harness import reproduce as R
from medlab.harness.base import ExpectedFileError, ReproduceError, Row, RunInterrupted
from medlab.harness.cli import main
from medlab.harness.compare import compare, format_table
from medlab.harness.expected import EXPECTED, check_expected, load_expected
from medlab.harness.notebooks import find_notebooks
from medlab.harness.runs import point_latest
from medlab.harness.tolerances import (
    covers_range,
    derive,
    is_rate_key,
    key_range,
    prediction_factor,
)
from medlab.harness.update import update_expected
from medlab.results import is_complete, last_complete_run, run_state

VALID_KEYS = [
    "share5.baseline.tpr_gap",
    "transfer[breastmnist].test_auc.k10",
    "faithfulness.gradcam.deletion_auc",
    "test.majority_share",
    "majority.test_acc",
    "hcm.biased.evidence_ratio",
    "pca.biased.group_probe_auc",
    "share5.group_thresholds.eod",
    "selfsup[pneumoniamnist_balanced_subset].test_acc.kall",
    "smallcnn.test_auc",
    "share2.5.baseline.acc",
    "a+b.x-y",
]
BAD_KEYS = ["AUC", "auc", "a..b", "../x.y", "a.B", "a. b", "x.y[Breast]", ".a.b", "a.b.", "a/b.c"]
PROGRESS = re.compile(
    r"^\[medlab\] (\d\d_\w+) \((quick|full)(, seed \d+)?\) \.\.\. (ok|FAILED) "
    r"\d+\.\d s"
)


@pytest.fixture()
def rec(breast, tmp_path):
    return medlab.Recorder("99_demo", datasets=[breast], seed=1, quick=True, output=tmp_path)


@pytest.fixture()
def origin(breast):
    return "official" if breast.official else "unofficial"


# ---------------------------------------------------------------------------- Recorder


def test_record_writes_provenance(rec, breast):
    assert rec.record("demo.auc", 0.8125, tol=0.01, note="why") == 0.8125
    doc = json.loads(rec.path.read_text())
    r = doc["records"]["breastmnist"]["demo.auc"]
    assert r["value"] == 0.8125 and r["tol"] == 0.01 and r["note"] == "why"
    prov = doc["provenance"]
    assert prov["seed"] == 1 and prov["quick"] is True
    assert prov["datasets"]["breastmnist"]["md5"] == breast.provenance["md5"]
    assert prov["datasets"]["breastmnist"]["official"] == breast.official
    assert prov["packages"]["torch"] and prov["packages"]["medmnist"]


def test_record_rejects_nan_and_unknown_dataset(rec):
    with pytest.raises(ValueError, match="finite"):
        rec.record("x.y", float("nan"))
    with pytest.raises(ValueError, match="unknown dataset"):
        rec.record("x.y", 1.0, dataset="dermamnist")
    with pytest.raises(ValueError, match="tol"):
        rec.record("x.y", 1.0, tol=-0.1)


@pytest.mark.parametrize("key", VALID_KEYS)
def test_record_key_scheme_accepts(rec, key):
    assert rec.record(key, 0.5) == 0.5


@pytest.mark.parametrize("key", BAD_KEYS + [""])
def test_record_key_scheme_rejects(rec, key):
    with pytest.raises(ValueError, match="key"):
        rec.record(key, 0.5)
    assert not rec.records


def test_record_key_must_be_a_string(rec):
    with pytest.raises(TypeError, match="string"):
        rec.record(3, 0.5)


@pytest.mark.parametrize(
    "value",
    [np.float32(0.25), np.float64(0.25), np.int64(2), torch.tensor(0.25), np.array(0.25), 2],
)
def test_record_accepts_numpy_and_0d_tensors(rec, value):
    out = rec.record("demo.value", value)
    assert type(out) is float and out == float(value)


@pytest.mark.parametrize(
    "value, error",
    [
        (True, TypeError),
        (np.bool_(True), TypeError),
        ("0.5", TypeError),
        (None, TypeError),
        (torch.tensor([0.1, 0.2]), ValueError),
        (np.array([0.1]), ValueError),
    ],
)
def test_record_rejects_non_numbers(rec, value, error):
    with pytest.raises(error, match="demo.value"):
        rec.record("demo.value", value)


def test_figure_is_saved(rec):
    import plotly.graph_objects as go

    rec.figure(go.Figure(go.Scatter(x=[1], y=[2])), "demo")
    assert (rec.output / "figures" / "99_demo" / "demo.html").exists()


# ---------------------------------------------------------------------------- results.load


def test_results_load_round_trip(rec, breast, tmp_path):
    rec.record("demo.test_auc", 0.8, tol=0.02, unit="", note="n")
    rec.record("demo.test_acc", np.float32(0.75))
    for where in (tmp_path, tmp_path / "results", rec.path):  # output, results folder, file
        df = results_mod.load(where)
        assert list(df.columns) == results_mod.COLUMNS
        assert set(df.key) == {"demo.test_auc", "demo.test_acc"}
        row = df.set_index("key").loc["demo.test_auc"]
        assert row.value == 0.8 and row.tol == 0.02 and row.note == "n" and row.seed == 1
        assert row.md5 == breast.provenance["md5"] and row.notebook == "99_demo"
        assert bool(row.official) == breast.official and bool(row.quick)
        assert df.attrs["provenance"]["99_demo"]["seed"] == 1
    assert len(results_mod.load(tmp_path, notebook="99")) == 2
    with pytest.raises(FileNotFoundError, match="99_demo"):
        results_mod.load(tmp_path, notebook="42")


def test_results_load_follows_latest_and_says_where_it_looked(tmp_path, monkeypatch):
    for name, value in (("20240101T000000Z-quick", 0.1), ("20240102T000000Z-quick", 0.2)):
        res = tmp_path / "out" / "runs" / name / "results"
        res.mkdir(parents=True)
        doc = {
            "notebook": "00_x",
            "provenance": {"seed": 0, "quick": True, "datasets": {}},
            "records": {"d": {"a.b": {"value": value, "official": False}}},
        }
        (res / "00_x.json").write_text(json.dumps(doc))
    (tmp_path / "out" / "latest").symlink_to("runs/20240101T000000Z-quick")
    assert results_mod.load(tmp_path / "out").value.tolist() == [0.1]
    (tmp_path / "out" / "latest").unlink()
    assert results_mod.load(tmp_path / "out").value.tolist() == [0.2]  # newest run
    monkeypatch.setenv("MEDLAB_OUTPUT_DIR", str(tmp_path / "out"))
    assert results_mod.load().value.tolist() == [0.2]
    with pytest.raises(FileNotFoundError, match=r"looked in .*empty.*medlab reproduce"):
        results_mod.load(tmp_path / "empty")


def test_latest_falls_back_to_a_text_file(tmp_path, monkeypatch):
    from pathlib import Path

    runs = [tmp_path / "runs" / name for name in ("b-quick", "a-quick")]
    for run in runs:
        (run / "results").mkdir(parents=True)
    assert point_latest(tmp_path, runs[0]) == tmp_path / "latest"
    assert results_mod.latest_run(tmp_path) == runs[0].resolve()

    def no_links(*args, **kwargs):
        raise OSError("symlinks are not supported here")

    monkeypatch.setattr(Path, "symlink_to", no_links)
    assert point_latest(tmp_path, runs[1]) == tmp_path / "latest.txt"
    assert not (tmp_path / "latest").is_symlink()  # the stale link is gone
    assert (tmp_path / "latest.txt").read_text() == "runs/a-quick\n"  # inside runs/, relative
    assert results_mod.latest_run(tmp_path) == runs[1]


def test_latest_that_is_a_real_folder_is_an_error_not_a_text_file(tmp_path):
    (tmp_path / "runs" / "a-quick").mkdir(parents=True)
    (tmp_path / "latest").mkdir()
    with pytest.raises(ReproduceError, match="real folder.*move it away"):
        point_latest(tmp_path, tmp_path / "runs" / "a-quick")
    assert not (tmp_path / "latest.txt").exists()


# ---------------------------------------------------------------------------- expected values


def _tree(origin, entries, nb="99_demo", dataset="breastmnist", mode="quick"):
    return {origin: {mode: {nb: {dataset: entries}}}}


def test_compare_reproduced_deviated_missing_new(rec, origin):
    rec.record("demo.auc", 0.80, tol=0.02)
    rec.record("demo.acc", 0.70)
    rec.record("demo.fresh", 0.1)
    results = json.loads(rec.path.read_text())
    expected = _tree(
        origin,
        {
            "demo.auc": {"value": 0.81, "tol": 0.02},
            "demo.acc": {"value": 0.5, "tol": 0.1},
            "demo.gone": {"value": 1.0, "tol": 0.0},
        },
    )
    rows = {r.key: r for r in compare(results, expected, "quick")}
    assert rows["demo.auc"].status == "reproduced" and rows["demo.acc"].status == "DEVIATED"
    assert rows["demo.fresh"].status == "new"
    assert rows["demo.gone"].status == "MISSING" and rows["demo.gone"].value is None
    other = {"official" if origin == "unofficial" else "unofficial": expected[origin]}
    assert {r.status for r in compare(results, other, "quick")} == {"new"}  # kept apart
    assert {r.status for r in compare(results, expected, "full")} == {"new"}
    table = format_table(list(rows.values()), [])
    assert "DEVIATED" in table and "MISSING" in table


def test_a_tolerance_covering_the_whole_range_is_uninformative_not_reproduced(rec, origin):
    """0.1 ± 1.3 on a TPR gap (range -1..1) and 0.6 ± 0.7 on an AUC (0..1) cannot fail: such rows
    say so. A tolerance that leaves room outside it on one side still checks something."""
    rec.record("demo.tpr_gap", 0.9)
    rec.record("demo.test_auc", 0.05)
    rec.record("demo.test_acc", 0.95)
    rec.record("demo.loss", 50.0)
    results = json.loads(rec.path.read_text())
    expected = _tree(
        origin,
        {
            "demo.tpr_gap": {"value": 0.1, "tol": 1.3},
            "demo.test_auc": {"value": 0.6, "tol": 0.7, "reason": "tiny test set"},
            "demo.test_acc": {"value": 0.5, "tol": 0.45, "reason": "tiny"},  # 0.05..0.95
            "demo.loss": {"value": 0.5, "tol": 100.0},  # unbounded: no range to cover
        },
    )
    rows = {r.key: r for r in compare(results, expected, "quick")}
    assert rows["demo.tpr_gap"].status == "uninformative"
    assert rows["demo.test_auc"].status == "uninformative"
    assert rows["demo.test_acc"].status == "reproduced"
    assert rows["demo.loss"].status == "reproduced"
    assert covers_range("demo.tpr_gap", 0.1, 1.1) and not covers_range("demo.tpr_gap", 0.1, 1.0)
    assert not covers_range("demo.seconds", 0.0, 1e9)
    expected[origin]["quick"]["99_demo"]["breastmnist"]["demo.test_acc"]["tol"] = 0.44
    rows = {r.key: r for r in compare(results, expected, "quick")}  # 0.95 outside 0.5 ± 0.44
    assert rows["demo.test_acc"].status == "DEVIATED"


def test_machine_measurements_are_shown_never_compared(rec, origin, tmp_path):
    rec.record("demo.latency_ms", 3.5, unit="ms", machine=True, note="2 cores")
    rec.record("demo.auc", 0.80)
    results = json.loads(rec.path.read_text())
    assert results["records"]["breastmnist"]["demo.latency_ms"]["machine"] is True
    assert "machine" not in results["records"]["breastmnist"]["demo.auc"]
    loaded = medlab.results.load(rec.path)
    assert loaded.set_index("key").machine.to_dict() == {"demo.latency_ms": True, "demo.auc": False}
    # an old expected entry for it (from before it was marked) is ignored, not a deviation
    expected = _tree(origin, {"demo.latency_ms": {"value": 100.0, "tol": 1.0}})
    rows = {r.key: r for r in compare(results, expected, "quick")}
    assert rows["demo.latency_ms"].status == "measured" and rows["demo.latency_ms"].machine
    assert rows["demo.latency_ms"].value == 3.5 and rows["demo.auc"].status == "new"
    # --update-expected writes the results, not the machine's speed
    path = tmp_path / "expected.yaml"
    machine = [
        Row("99_demo", "breastmnist", "demo.latency_ms", v, origin, seed=s, machine=True)
        for s, v in enumerate([3.0, 9.0, 4.0])
    ]
    update_expected(_rows(origin, [0.8, 0.81, 0.805]) + machine, "quick", path=path)
    assert set(load_expected(path)[origin]["quick"]["99_demo"]["breastmnist"]) == {"demo.test_auc"}
    with pytest.raises(ValueError, match="takes no tol"):
        rec.record("demo.seconds", 1.0, machine=True, tol=0.5)
    with pytest.raises(TypeError, match="machine"):
        rec.record("demo.seconds", 1.0, machine="yes")


def test_a_dataset_only_used_is_not_checked_for_missing_keys(rec, origin):
    """Notebook 02 on the pneumonia subset pretrains on BreastMNIST: BreastMNIST is in its
    provenance, but BreastMNIST's expected section belongs to runs *on* BreastMNIST."""
    rec.record("demo.auc", 0.80)
    results = json.loads(rec.path.read_text())
    results["provenance"]["datasets"]["other_source"] = dict(
        results["provenance"]["datasets"]["breastmnist"]
    )
    tree = _tree(origin, {"demo.auc": {"value": 0.8, "tol": 0.01}})
    tree[origin]["quick"]["99_demo"]["other_source"] = {"demo.auc": {"value": 0.7, "tol": 0.01}}
    rows = compare(results, tree, "quick")
    assert [(r.dataset, r.status) for r in rows] == [("breastmnist", "reproduced")]
    results["records"]["other_source"] = {"demo.x": {"value": 1.0, "official": False}}
    statuses = {(r.dataset, r.key): r.status for r in compare(results, tree, "quick")}
    assert statuses[("other_source", "demo.auc")] == "MISSING"  # now it recorded there


@pytest.mark.parametrize(
    "text, gist",
    [
        ("unofficial: [1, 2", "not valid YAML"),
        ("- 1\n- 2\n", "top level"),
        ("elsewhere:\n  quick: {}\n", "unknown data origin"),
        ("unofficial:\n  fast: {}\n", "unknown mode"),
        ("unofficial:\n  quick:\n    00_x: [1]\n", "must be a mapping"),
        ("unofficial: {quick: {00_x: {d: {a.b: {value: high, tol: 0.1}}}}}", "`value` must be"),
        ("unofficial: {quick: {00_x: {d: {a.b: {value: 0.5, tol: 1e-3}}}}}", "YAML reads 1e-3"),
        ("unofficial: {quick: {00_x: {d: {a.b: {value: 0.5, tol: -0.1}}}}}", "must be >= 0"),
        ("unofficial: {quick: {00_x: {d: {a.b: {value: 0.5}}}}}", "lacks `tol`"),
        ("unofficial: {quick: {00_x: {d: {a.b: {value: .nan, tol: 0.1}}}}}", "finite"),
        (
            "unofficial: {quick: {00_x: {d: {a.b: {value: 0.5, tol: 0.1, tolerance: 1}}}}}",
            "unknown field",
        ),
        ("unofficial: {quick: {00_x: {d: {AUC: {value: 0.5, tol: 0.1}}}}}", "key scheme"),
        ("unofficial: {quick: {00_x: {d: {a.test_auc: {value: 0.5, tol: 0.2}}}}}", "reason"),
    ],
)
def test_corrupt_expected_file_is_named_with_the_fix(tmp_path, text, gist):
    path = tmp_path / "expected.yaml"
    path.write_text(text)
    with pytest.raises(ExpectedFileError) as err:
        load_expected(path)
    msg = str(err.value)
    assert gist in msg and str(path) in msg
    assert "--update-expected" in msg or "Fix" in msg


def test_legacy_entries_load_with_a_warning(tmp_path):
    path = tmp_path / "expected.yaml"
    path.write_text("unofficial: {quick: {00_x: {d: {a.test_auc: {value: 0.5, tol: 0.05}}}}}")
    assert load_expected(path)["unofficial"]["quick"]["00_x"]["d"]["a.test_auc"]["tol"] == 0.05
    assert any("derived" in w for w in check_expected(load_expected(path), str(path)))
    assert load_expected(tmp_path / "absent.yaml") == {}
    # the committed file is at least well-formed (wide tolerances are a warning while regenerating)
    check_expected(yaml.safe_load(EXPECTED.read_text()), strict=False)


def test_wide_tolerance_on_auc_or_accuracy_needs_a_reason():
    def tree(key, **entry):
        return {"unofficial": {"quick": {"00_x": {"d": {key: {"value": 0.5, **entry}}}}}}

    for key in (
        "m.test_auc",
        "share5.baseline.acc",
        "faithfulness.ig.deletion_auc",
        "augment.test_acc.k50",
    ):
        assert is_rate_key(key)
        with pytest.raises(ExpectedFileError, match="reason"):
            check_expected(tree(key, tol=0.2))
        check_expected(tree(key, tol=0.2, reason="few test images"))
        check_expected(tree(key, tol=0.1))
        assert any("reason" in w for w in check_expected(tree(key, tol=0.2), strict=False))
    for key in ("hcm.biased.evidence_ratio", "test.images", "share5.baseline.eod"):
        assert not is_rate_key(key)
        check_expected(tree(key, tol=0.2))


def test_key_range_reads_the_bounds_off_the_key():
    assert key_range("share5.baseline.acc") == (0.0, 1.0)
    assert key_range("faithfulness.ig.deletion_auc") == (0.0, 1.0)
    for key in ("share5.reweight.tpr_gap", "share10.baseline.eod", "share5.baseline.auc_gap"):
        assert key_range(key) == (-1.0, 1.0)
    for key in ("test.images", "hcm.biased.evidence_ratio", "cost.latency_ms"):
        assert key_range(key) is None
    # a spread over seeds is never negative: at most the two ends' sample SD (ddof=1)
    assert key_range("fedavg.test_acc_sd.iid") == (0.0, pytest.approx(np.std([0, 1], ddof=1)))
    assert key_range("hcm.fedavg.tpr_gap_sd") == (0.0, pytest.approx(np.std([-1, 1], ddof=1)))
    assert key_range("cost.latency_ms_sd") is None


def test_prediction_factor_is_the_t_prediction_interval():
    from scipy.stats import t

    assert prediction_factor(3) == pytest.approx(t.ppf(0.995, 2) * (4 / 3) ** 0.5)
    assert prediction_factor(5) == pytest.approx(5.0435, abs=1e-4)
    assert prediction_factor(1000) == pytest.approx(2.577, abs=1e-2)  # tends to z_0.995
    # what it promises: over many simulated seed sets, about 1 % of new runs fall outside
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 6))
    past, new = x[:, :5], x[:, 5]
    k = prediction_factor(5)
    outside = np.abs(new - past.mean(1)) > k * past.std(1, ddof=1)
    assert 0.005 < outside.mean() < 0.015
    with pytest.raises(ValueError, match=">= 2"):
        prediction_factor(1)


def test_derive_tolerance_from_seed_spread():
    e = derive([0.80, 0.82, 0.81])
    assert e["value"] == pytest.approx(0.81) and e["sd"] == pytest.approx(0.01)
    assert e["tol"] == pytest.approx(0.115) and e["n_seeds"] == 3  # 11.46 * 0.01, rounded up
    assert "11.5*SD" in e["derived"] and "prediction interval" in e["derived"]
    e = derive([0.80, 0.82, 0.81, 0.79, 0.83])
    assert e["tol"] == pytest.approx(0.0798, abs=1e-4) and "5.04*SD" in e["derived"]
    e = derive([0.8000, 0.8005, 0.8010])  # tiny spread: the default floor
    assert e["tol"] == 0.01 and "default floor" in e["derived"]
    e = derive([0.800, 0.801, 0.802], hint=0.05)
    assert e["tol"] == 0.05 and "hint" in e["derived"]
    assert derive([468.0] * 3) == {
        "value": 468.0,
        "tol": 0.0,
        "sd": 0.0,
        "n_seeds": 3,
        "derived": "SD 0 over 3 seeds (exact); tol = 0",
    }
    assert derive([0.5] * 3, hint=1e-6)["tol"] == 1e-6
    assert derive([0.1, 0.2, 0.4])["tol"] == pytest.approx(1.76)  # 11.46 * 0.1528 rounded up
    with pytest.raises(ValueError, match="at least 3"):
        derive([0.1, 0.2])


def _rows(origin, values, key="demo.test_auc", hint=None, note="", nb="99_demo"):
    return [
        Row(nb, "breastmnist", key, v, origin, seed=s, hint=hint, note=note)
        for s, v in enumerate(values)
    ]


def _update_many(path, nb, start, rounds):
    start.wait()
    for i in range(rounds):
        update_expected(_rows("unofficial", [0.8, 0.81, 0.8 + i / 1000], nb=nb), "quick", path=path)


def test_two_updates_at_once_keep_both_sections(tmp_path):
    """Two --update-expected runs that finish at the same moment (two datasets regenerated side
    by side, or ``--jobs``) each keep the other's section: the read-modify-write is exclusive."""
    import multiprocessing as mp

    path = tmp_path / "expected.yaml"
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_update_many, args=(path, nb, start, 25)) for nb in ("97_a", "98_b")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    sections = load_expected(path)["unofficial"]["quick"]
    assert set(sections) == {"97_a", "98_b"}
    assert all(sections[nb]["breastmnist"]["demo.test_auc"]["value"] == pytest.approx((0.8 + 0.81 + 0.824) / 3)
               for nb in sections)  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expected.yaml"]  # no lock file left


def test_update_expected_keeps_other_sections_and_needs_3_seeds(tmp_path):
    path = tmp_path / "expected.yaml"
    other = {"value": 0.5, "tol": 0.05}
    path.write_text(
        yaml.safe_dump(
            {
                "official": {"full": {"00_x": {"d": {"a.b": other}}}},
                "unofficial": {
                    "quick": {"99_demo": {"old": {"a.b": other}}, "98_y": {"d": {"a.b": other}}}
                },
            }
        )
    )
    with pytest.raises(ReproduceError, match="3 seeds"):
        update_expected(_rows("unofficial", [0.8, 0.81]), "quick", path=path)
    rows = (
        _rows("unofficial", [0.8, 0.81, 0.805])
        + _rows("unofficial", [0.5, 0.7, 0.9], key="demo.test_acc")
        + _rows("unofficial", [0.5, 0.7, 0.9], key="demo.wide_auc", note="tiny test set")
        + _rows("unofficial", [468.0] * 3, key="test.images")
        + _rows("unofficial", [-0.3, 0.1, 0.5], key="demo.tpr_gap")
        + _rows("unofficial", [0.1, 0.105, 0.11], key="demo.eod")
    )
    notes = update_expected(rows, "quick", path=path)
    unexplained = [n for n in notes if "UNEXPLAINED" in n]
    assert len(unexplained) == 1 and "demo.test_acc" in unexplained[0]
    # 0.7 ± 11.5 * 0.2 covers 0-1, and 0.1 ± 11.5 * 0.4 covers a gap's -1 to 1: said plainly
    # (a spread of 0.01 would not)
    vacuous = sorted(n.split(":")[0] for n in notes if "cannot fail" in n)
    assert vacuous == [
        "99_demo breastmnist demo.test_acc",
        "99_demo breastmnist demo.tpr_gap",
        "99_demo breastmnist demo.wide_auc",
    ]
    gap = next(n for n in notes if "tpr_gap" in n)
    assert "whole -1 to 1 range" in gap and "k = 11.5 with 3 seeds, 4.36 with 6" in gap
    assert len(notes) == 4
    text = path.read_text()
    assert text.startswith("# Expected values") and "max(k * sd, floor)" in text
    tree = load_expected(path)  # valid: the wide ones carry a reason
    assert tree["official"]["full"]["00_x"]["d"]["a.b"] == other
    assert tree["unofficial"]["quick"]["98_y"]["d"]["a.b"] == other
    section = tree["unofficial"]["quick"]["99_demo"]
    assert set(section) == {"breastmnist", "old"}  # per dataset: "old" (another dataset) stays
    auc = section["breastmnist"]["demo.test_auc"]
    assert set(auc) == {"value", "tol", "sd", "n_seeds", "seeds", "derived"}
    assert auc["n_seeds"] == 3 and auc["seeds"] == [0, 1, 2] and auc["tol"] == pytest.approx(0.0574)
    assert section["breastmnist"]["demo.test_acc"]["reason"].startswith("UNEXPLAINED")
    assert section["breastmnist"]["demo.wide_auc"]["reason"] == "tiny test set"
    assert section["breastmnist"]["test.images"]["tol"] == 0.0
    before = path.read_text()
    four = _rows("unofficial", [0.1, 0.2, 0.3, 0.4]) + _rows("unofficial", [1.0] * 3, key="x.y")
    with pytest.raises(ReproduceError, match="every seed"):
        update_expected(four, "quick", path=path)
    assert path.read_text() == before  # refused: nothing written


# ---------------------------------------------------------------------------- bad input


def test_find_notebooks_selection():
    stems = [p.stem for p in find_notebooks(["01"])]
    assert stems == ["01_baseline"]
    with pytest.raises(ReproduceError, match="no notebook matches"):
        find_notebooks(["99"])


@pytest.mark.parametrize(
    "args, gist",
    [
        (["--quick", "-p", "quick=false"], "contradicts --quick"),
        (["-p", "quick=true"], "contradicts no --quick"),
        (["--quick", "-p", "x"], "NAME=VALUE"),
        (["--quick", "-p", "=3"], "not a parameter name"),
        (["--quick", "-p", "a=[1"], "not valid YAML"),
        (["--quick", "-p", "nosuch=1"], "no parameter nosuch; its parameters"),
        (["--quick", "--seed", "-1"], "non-negative"),
        (["--quick", "--seed", "x"], "non-negative"),
        (["--quick", "-p", "seed=-2"], "non-negative"),
        (["--quick", "--seed", "1", "--seeds", "0", "1", "2"], "not allowed with"),
        (["--quick", "--data-dir", "no/such/folder"], "does not exist"),
        (["--quick", "-p", "data_dir=no/such/folder"], "does not exist"),
        (["--quick", "--output", "{file}"], "is a file"),
        (["--quick", "--update-expected", "--seeds", "0", "1"], "at least 3"),
        (["--quick", "--update-expected"], "at least 3"),
        (["--quick", "--expected", "{bad}"], "not valid YAML"),
        (["--quick", "-p", "dataset=a", "-p", "dataset=b"], "given twice"),
    ],
)
def test_cli_rejects_bad_input_before_running(tmp_path, monkeypatch, capsys, args, gist):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    (tmp_path / "bad.yaml").write_text("unofficial: [")
    args = [a.format(file=tmp_path / "file", bad=tmp_path / "bad.yaml") for a in args]
    out = tmp_path / "out"
    if "--output" not in args:
        args += ["--output", str(out)]
    status = main(["reproduce", "00", *args])
    cap = capsys.readouterr()
    assert status == 2, cap
    assert gist in cap.err and "Traceback" not in cap.err + cap.out
    assert not out.exists()  # nothing written, nothing ran


def test_update_expected_api_refuses_two_seeds(tmp_path):
    with pytest.raises(ReproduceError, match="at least 3 seeds"):
        R.reproduce(
            ["00"],
            quick=True,
            output=tmp_path / "out",
            seeds=[0, 1],
            update=True,
            expected=tmp_path / "e.yaml",
        )
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- runs (tiny notebooks)


def _notebook(path, source):
    tiny_notebook(path, source)


RECORDING = """\
import os
import medlab
assert os.path.isabs(data_dir), data_dir
data = medlab.load("breastmnist", data_dir=data_dir)
rec = medlab.Recorder("00_rec", datasets=[data], seed=seed, quick=quick)
rec.record("demo.test_auc", 0.8 + 0.01 * (seed // 10), tol=0.005)
rec.record("test.images", 156)
rec.record("demo.test_acc", 0.5 + 0.1 * (seed // 10))
print("Kernel is running over TCP")  # noise inside the kernel stays in the notebook
assert os.environ["MEDLAB_OUTPUT_DIR"].startswith(os.environ["MEDLAB_RUN_DIR"])
os.makedirs(os.environ["MEDLAB_CACHE_DIR"], exist_ok=True)
open(os.path.join(os.environ["MEDLAB_CACHE_DIR"], "used"), "w").close()
"""


@pytest.fixture()
def recording(tmp_path, data_dir):
    if data_dir is None:
        pytest.skip("needs the shared data folder")
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "00_rec.ipynb", RECORDING)
    return folder


def test_ctrl_c_marks_the_run_interrupted_and_keeps_latest(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "00_x.ipynb", "pass")
    (tmp_path / "e.yaml").write_text("")
    out = tmp_path / "out"
    earlier = out / "runs" / "20200101T000000Z-quick"
    (earlier / "results").mkdir(parents=True)  # an unmarked older run that recorded results
    point_latest(out, earlier)

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(R, "run_notebook", ctrl_c)
    kw = {"quick": True, "output": out, "folder": folder, "expected": tmp_path / "e.yaml"}
    with pytest.raises(RunInterrupted) as err:
        R.reproduce(None, **kw)
    (partial,) = [r for r in (out / "runs").iterdir() if r != earlier]
    assert run_state(partial)["status"] == "interrupted" and not is_complete(partial)
    assert str(partial) in str(err.value) and f"latest still points at {earlier}" in str(err.value)
    assert (out / "latest").resolve() == earlier.resolve()
    assert last_complete_run(out) == earlier  # unmarked (older) runs count as complete
    (out / "runs" / "20990101T000000Z-quick").mkdir()  # unmarked and empty: not complete
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "results").mkdir(parents=True)
    (out / "runs" / "20991231T000000Z-quick").symlink_to(elsewhere)  # a link: never followed
    assert last_complete_run(out) == earlier
    assert medlab.results.latest_run(out) == earlier.resolve()
    assert "00_x (quick, seed 0) ... interrupted" in capsys.readouterr().out
    # the command: one line on stderr, exit status 130 (128 + SIGINT)
    assert main(["reproduce", "--quick", "--output", str(out), "00"]) == 130
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("[medlab] interrupted: run ")
    assert (out / "latest").resolve() == earlier.resolve()


@pytest.mark.notebook
def test_failed_notebook_is_named_with_its_cell(tmp_path, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "00_ok.ipynb", "assert quick")
    _notebook(folder / "01_bad.ipynb", "x = 1\nassert x == 2, 'lesson does not hold'")
    (tmp_path / "none.yaml").write_text("")  # an empty expected file: nothing expected
    status = R.reproduce(
        None,
        quick=True,
        output=tmp_path / "out",
        html=False,
        folder=folder,
        expected=tmp_path / "none.yaml",
    )
    out = capsys.readouterr().out
    assert status == 1
    assert (
        "01_bad" in out
        and "cell 2" in out
        and "AssertionError" in out
        and "lesson does not hold" in out
    )
    assert "00_ok" in out and "recorded no numbers" in out
    # a run whose notebooks failed still finished: marked complete, outcome failed, and latest
    # points at it (its table says what failed)
    run = (tmp_path / "out" / "latest").resolve()
    state = run_state(run)
    assert state["status"] == "complete" and state["outcome"] == "failed"
    assert state["exit_code"] == 1 and state["failed_runs"] == 2


@pytest.mark.notebook
def test_the_kernel_connection_file_is_gone_once_the_kernel_is_up(tmp_path, monkeypatch):
    import tempfile

    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(
        folder / "00_k.ipynb",
        "import os\nfrom ipykernel.kernelapp import IPKernelApp\n"
        "path = IPKernelApp.instance().abs_connection_file\n"
        "assert 'medlab-kernel-' in path and not os.path.exists(path), path",
    )
    run = R.run_notebook(folder / "00_k.ipynb", tmp_path / "run", {})
    assert run.ok, run.error
    assert list(private.iterdir()) == []  # nothing left in the temp folder


@pytest.mark.notebook
def test_ctrl_c_kills_the_kernel_and_raises_from_run_notebook_itself(tmp_path):
    """Under load a Ctrl-C raised inside papermill's event loop was once swallowed there, and
    the run waited until CI's 300-s net. Now Ctrl-C kills the kernel and raises nothing inside
    the jupyter stack: papermill stops on the dead kernel and run_notebook itself raises
    KeyboardInterrupt (its own frame is the last of the traceback); the handler is put back."""
    import os
    import signal
    import threading
    import traceback

    from processes import alive, wait_for

    folder = tmp_path / "nbs"
    folder.mkdir()
    marker = tmp_path / "started"
    _notebook(
        folder / "00_s.ipynb",
        f"import os, pathlib, time\npathlib.Path({str(marker)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(600)",  # only a net: the kernel is killed long before
    )

    def ctrl_c() -> None:
        wait_for(marker.exists, "the kernel to start its cell")
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=ctrl_c, daemon=True).start()
        with pytest.raises(KeyboardInterrupt) as err:
            R.run_notebook(folder / "00_s.ipynb", tmp_path / "run", {})
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    finally:
        signal.signal(signal.SIGINT, previous)
    last = traceback.extract_tb(err.value.__traceback__)[-1]
    assert last.name == "run_notebook" and last.filename.endswith("notebooks.py"), last
    assert not alive(int(marker.read_text()))  # killed, not left sleeping


def _cells(path, sources):
    """A notebook with a parameters cell and one code cell per source."""
    import nbformat

    tiny_notebook(path, sources[0])
    nb = nbformat.read(path, 4)
    nb.cells += [nbformat.v4.new_code_cell(src) for src in sources[1:]]
    nbformat.write(nb, path)


@pytest.mark.notebook
def test_the_executed_notebook_is_not_written_twice_per_cell(tmp_path, monkeypatch):
    """papermill's own engine writes the whole notebook twice per cell (about 4 s of a 50 s
    quick notebook once it holds plotly.js); medlab's writes it at most once per cell, and the
    executed copy is complete."""
    import nbformat
    import papermill.engines as engines

    writes = []
    write = engines.write_ipynb
    monkeypatch.setattr(
        engines, "write_ipynb", lambda nb, path: writes.append(path) or write(nb, path)
    )
    folder = tmp_path / "nbs"
    folder.mkdir()
    _cells(folder / "00_w.ipynb", [f"print('cell {k}')" for k in range(6)])  # 7 cells in all
    run = R.run_notebook(folder / "00_w.ipynb", tmp_path / "run", {})
    assert run.ok, run.error
    assert 2 <= len(writes) <= 2 + 7, writes  # papermill's engine: 2 + 2 per cell = 16
    nb = nbformat.read(run.executed, 4)
    printed = [
        o["text"] for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout"
    ]
    assert printed == [f"cell {k}\n" for k in range(6)]
    assert all(c.metadata.papermill["duration"] is not None for c in nb.cells)


def test_a_cell_end_writes_only_when_the_writes_stay_a_small_share(tmp_path, monkeypatch):
    """medlab.harness.engine on a fake clock, with a write that takes 0.05 s (so a cell's end
    writes once 1 s has passed since the last write): five cells of 0.1 s are not written, a
    cell of 600 s is written as soon as it ends (a run killed later keeps it), six more short
    cells are not, and the end of the run writes whatever is left."""
    import datetime as dt

    import nbformat
    import papermill.engines as engines

    from medlab.harness.engine import SPARSE, SparseSaves

    assert SPARSE * 0.05 == 1.0
    clock, writes = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)], []

    def tick(seconds):
        clock[0] += dt.timedelta(seconds=seconds)

    def write(nb, path):
        tick(0.05)
        writes.append(clock[0])

    monkeypatch.setattr(engines, "write_ipynb", write)
    monkeypatch.setattr(SparseSaves, "now", lambda self: clock[0])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"x = {k}") for k in range(12)])
    nb.metadata.papermill = {}  # as papermill.execute_notebook prepares it
    man = SparseSaves(nb, output_path=str(tmp_path / "x.ipynb"), progress_bar=False)
    man.notebook_start()
    seen = []
    for k, cell in enumerate(nb.cells):
        man.cell_start(cell, k)
        tick(600 if k == 5 else 0.1)
        man.cell_complete(cell, k)
        seen.append(len(writes))
    assert seen == [1] * 5 + [2] * 7, seen  # papermill's manager: 2 per cell
    assert writes[1] - writes[0] >= dt.timedelta(seconds=600)
    man.notebook_complete()
    assert len(writes) == 3


@pytest.mark.notebook
@pytest.mark.parametrize(
    ("stop", "error"),
    [("raise ValueError('boom')", "ValueError: boom"), ("import os\nos._exit(1)", "DeadKernel")],
)
def test_a_run_that_stops_leaves_the_cells_it_ran(tmp_path, stop, error):
    """Without a write per cell, the executed copy still holds what a reviewer needs after a
    failing cell (papermill writes it, with the traceback) or a kernel death (e.g. Binder's
    memory limit; the engine's ``finally`` writes it): the cells before it."""
    import nbformat

    folder = tmp_path / "nbs"
    folder.mkdir()
    _cells(folder / "00_d.ipynb", ["print('before')", stop, "print('after')"])
    run = R.run_notebook(folder / "00_d.ipynb", tmp_path / "run", {})
    assert not run.ok and error in run.error, run.error
    outs = [o for c in nbformat.read(run.executed, 4).cells for o in c.get("outputs", [])]
    assert [o["text"] for o in outs if o.get("name") == "stdout"] == ["before\n"]
    assert any(o.get("ename") == "ValueError" for o in outs) == error.startswith("ValueError")


@pytest.mark.notebook
def test_missing_key_and_empty_section_fail(recording, tmp_path, data_dir, origin, capsys):
    expected = tmp_path / "expected.yaml"
    entries = {
        "demo.test_auc": {"value": 0.8, "tol": 0.01},
        "test.images": {"value": 156.0, "tol": 0.0},
        "demo.test_acc": {"value": 0.5, "tol": 0.01},
        "demo.dropped": {"value": 1.0, "tol": 0.0},
    }
    expected.write_text(yaml.safe_dump(_tree(origin, entries, nb="00_rec")))
    kw = {
        "quick": True,
        "data_dir": data_dir,
        "html": False,
        "folder": recording,
        "expected": expected,
    }
    assert R.reproduce(None, output=tmp_path / "a", **kw) == 1
    out = capsys.readouterr().out
    assert re.search(r"demo\.dropped .* MISSING", out) and "1 missing" in out
    expected.write_text(yaml.safe_dump({origin: {"quick": {}}}))  # empty section
    assert R.reproduce(None, output=tmp_path / "b", **kw) == 1
    out = capsys.readouterr().out
    assert "nothing was checked" in out and "3 new" in out
    assert R.reproduce(None, output=tmp_path / "c", allow_new=True, **kw) == 0


@pytest.mark.notebook
def test_runs_are_kept_apart_quiet_and_resolve_relative_paths(
    recording, tmp_path, data_dir, origin, monkeypatch, capfd
):
    monkeypatch.delenv("MEDLAB_CACHE_DIR", raising=False)
    caller = tmp_path / "caller"
    caller.mkdir()
    (caller / "data").symlink_to(data_dir)
    monkeypatch.chdir(caller)
    expected = tmp_path / "expected.yaml"
    expected.write_text(
        yaml.safe_dump(
            _tree(
                origin,
                {
                    "demo.test_auc": {"value": 0.8, "tol": 0.01},
                    "test.images": {"value": 156.0, "tol": 0.0},
                    "demo.test_acc": {"value": 0.5, "tol": 0.01},
                },
                nb="00_rec",
            )
        )
    )
    kw = {"quick": True, "output": "out", "folder": recording, "expected": expected}
    assert R.reproduce(None, data_dir="data", html=False, **kw) == 0
    assert R.reproduce(None, parameters={"data_dir": "data"}, **kw) == 0
    cap = capfd.readouterr()
    assert "Kernel is running over TCP" not in cap.out + cap.err
    assert "KeyboardInterrupt" not in cap.out + cap.err and not cap.err.strip()
    progress = [line for line in cap.out.splitlines() if line.startswith("[medlab] 00_rec")]
    assert len(progress) == 2 and all(PROGRESS.match(p) for p in progress), cap.out
    assert "00_rec (quick, seed 0) ... ok" in progress[0]
    assert not (recording / "data").exists()  # nothing resolved against the notebooks folder
    runs = sorted((caller / "out" / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.endswith(("-quick", "-quick-2")) for r in runs)
    for run in runs:
        assert (run / "results" / "00_rec.json").exists()
        assert (run / "executed" / "00_rec.ipynb").exists()
        assert (run / "reproduce_quick.txt").exists() and (run / "reproduce_quick.csv").exists()
    assert (runs[1] / "html" / "00_rec.html").exists()
    assert (caller / "out" / "latest").resolve() == runs[1].resolve()
    assert (caller / "out" / "cache" / "used").exists()  # the kernels' shared cache
    df = results_mod.load(caller / "out")
    assert set(df.key) == {"demo.test_auc", "test.images", "demo.test_acc"}
    assert df.file.iloc[0].startswith(str(data_dir.resolve()))


@pytest.mark.notebook
def test_update_expected_over_three_seeds(recording, tmp_path, data_dir, origin, capsys):
    expected = tmp_path / "expected.yaml"
    kw = {
        "quick": True,
        "data_dir": data_dir,
        "html": False,
        "folder": recording,
        "expected": expected,
        "output": tmp_path / "out",
    }
    assert R.reproduce(None, seeds=[0, 10, 20], update=True, **kw) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"^\[medlab\] 00_rec \(quick, seed \d+\) \.\.\. ok", out, re.M)) == 3
    assert "UNEXPLAINED" in out  # demo.test_acc spreads by 0.1 per seed: warned and marked
    tree = load_expected(expected)
    entries = tree[origin]["quick"]["00_rec"]["breastmnist"]
    auc = entries["demo.test_auc"]
    assert auc["value"] == pytest.approx(0.81) and auc["sd"] == pytest.approx(0.01)
    assert auc["tol"] == pytest.approx(0.115) and auc["n_seeds"] == 3
    assert auc["seeds"] == [0, 10, 20] and "11.5*SD" in auc["derived"]
    assert entries["test.images"]["tol"] == 0.0 and entries["test.images"]["value"] == 156
    assert entries["demo.test_acc"]["reason"].startswith("UNEXPLAINED")
    run = (tmp_path / "out" / "latest").resolve()
    for s in (0, 10, 20):  # every seed reproduces what was written
        doc = json.loads((run / f"seed{s}" / "results" / "00_rec.json").read_text())
        status = {r.key: r.status for r in compare(doc, tree, "quick")}
        assert status == {
            "demo.test_auc": "reproduced",
            "test.images": "reproduced",
            "demo.test_acc": "uninformative",  # 0.6 ± 1.15 covers 0-1: it could not fail
        }
    assert sorted(results_mod.load(run).seed.unique()) == [0, 10, 20]


# ---------------------------------------------------------------------------- other commands


def test_cli_datasets_lists_cards(capsys):
    assert main(["datasets"]) == 0
    assert "breastmnist" in capsys.readouterr().out


def test_cli_download_reports_failure(tmp_path, capsys, monkeypatch):
    from medlab import data as D

    def offline(name, **kw):
        raise D.DataNotFoundError(f"{name}.npz is not in {tmp_path} and downloading it failed")

    monkeypatch.setattr(D, "download", offline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialDataWarning)
        assert main(["download", "breastmnist", "--data-dir", str(tmp_path)]) == 1
    assert "downloading it failed" in capsys.readouterr().err


def test_a_trailing_seed_that_names_a_notebook_is_pointed_out(monkeypatch, capsys):
    """`--seeds 0 1 2 10`: bare numbers after --seeds are seeds (documented); the last one also
    names notebook 10, so the command says how to select it instead of staying silent."""
    from medlab.harness import cli

    calls = []
    monkeypatch.setattr(R, "reproduce", lambda sel, **kw: calls.append((sel, kw["seeds"])) or 0)
    assert cli.main(["reproduce", "--quick", "--seeds", "0", "1", "2", "10"]) == 0
    assert calls[-1] == ([], [0, 1, 2, 10])
    assert "10 (10_audit) read as a seed" in capsys.readouterr().err
    assert cli.main(["reproduce", "--quick", "--seeds", "0", "10", "20", "10_audit"]) == 0
    assert calls[-1] == (["10_audit"], [0, 10, 20])
    assert cli.main(["reproduce", "--quick", "--seeds", "0", "10", "20", "01"]) == 0
    assert calls[-1] == (["01"], [0, 10, 20]) and "read as a seed" not in capsys.readouterr().err
