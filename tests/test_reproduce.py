"""The reproduce harness: records with provenance, comparison, expected-file updates, failures."""

from __future__ import annotations

import json
import warnings

import nbformat
import pytest

import medlab
from medlab import reproduce as R
from medlab.data import UnofficialDataWarning


@pytest.fixture()
def rec(breast, tmp_path):
    return medlab.Recorder("99_demo", datasets=[breast], seed=1, quick=True, output=tmp_path)


def test_record_writes_provenance(rec, breast):
    assert rec.record("auc", 0.8125, tol=0.01) == 0.8125
    doc = json.loads(rec.path.read_text())
    assert doc["records"]["breastmnist"]["auc"]["value"] == 0.8125
    prov = doc["provenance"]
    assert prov["seed"] == 1 and prov["quick"] is True
    assert prov["datasets"]["breastmnist"]["md5"] == breast.provenance["md5"]
    assert prov["datasets"]["breastmnist"]["official"] == breast.official
    assert prov["packages"]["torch"] and prov["packages"]["medmnist"]


def test_record_rejects_nan_and_unknown_dataset(rec):
    with pytest.raises(ValueError, match="finite"):
        rec.record("x", float("nan"))
    with pytest.raises(ValueError, match="unknown dataset"):
        rec.record("x", 1.0, dataset="dermamnist")


def test_figure_is_saved(rec):
    import plotly.graph_objects as go

    rec.figure(go.Figure(go.Scatter(x=[1], y=[2])), "demo")
    assert (rec.output / "figures" / "99_demo" / "demo.html").exists()


def test_compare_and_update(rec, tmp_path, monkeypatch):
    rec.record("auc", 0.80, tol=0.02)
    rec.record("acc", 0.70)
    results = json.loads(rec.path.read_text())
    origin = "official" if rec.datasets["breastmnist"].official else "unofficial"
    expected = {origin: {"quick": {"99_demo": {"breastmnist": {"auc": {"value": 0.81, "tol": 0.02},
                                                              "acc": {"value": 0.5, "tol": 0.1}}}}}}
    rows = {r.key: r for r in R.compare(results, expected, "quick")}
    assert rows["auc"].status == "reproduced" and rows["acc"].status == "DEVIATED"
    other = {"official" if origin == "unofficial" else "unofficial": expected[origin]}
    assert {r.status for r in R.compare(results, other, "quick")} == {"new"}  # kept apart
    assert {r.status for r in R.compare(results, expected, "full")} == {"new"}
    path = tmp_path / "expected.yaml"
    R.update_expected(list(rows.values()), "quick", path=path)
    again = {r.key: r for r in R.compare(results, R.load_expected(path), "quick")}
    assert {r.status for r in again.values()} == {"reproduced"}
    assert again["auc"].tol == 0.02 and again["acc"].tol == R.DEFAULT_TOL
    assert "DEVIATED" in R.format_table(list(rows.values()), [])


def _notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("quick = True\nseed = 0\ndataset = 'x'\ndata_dir = None",
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.notebook
def test_failed_notebook_is_named_with_its_cell(tmp_path, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "00_ok.ipynb", "assert quick")
    _notebook(folder / "01_bad.ipynb", "x = 1\nassert x == 2, 'lesson does not hold'")
    status = R.reproduce(None, quick=True, output=tmp_path / "out", html=False, folder=folder)
    out = capsys.readouterr().out
    assert status == 1
    assert "01_bad" in out and "cell 2" in out and "AssertionError" in out and "lesson does not hold" in out
    assert "00_ok" in out and "recorded no results" in out


def test_find_notebooks_selection():
    stems = [p.stem for p in R.find_notebooks(["01"])]
    assert stems == ["01_baseline"]
    with pytest.raises(SystemExit, match="no notebook matches"):
        R.find_notebooks(["99"])


def test_cli_datasets_lists_cards(capsys):
    from medlab.cli import main

    assert main(["datasets"]) == 0
    assert "breastmnist" in capsys.readouterr().out


def test_cli_download_reports_failure(tmp_path, capsys, monkeypatch):
    from medlab import data as D
    from medlab.cli import main

    def offline(name, **kw):
        raise D.DataNotFoundError(f"{name}.npz is not in {tmp_path} and downloading it failed")

    monkeypatch.setattr(D, "download", offline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialDataWarning)
        assert main(["download", "breastmnist", "--data-dir", str(tmp_path)]) == 1
    assert "downloading it failed" in capsys.readouterr().err
