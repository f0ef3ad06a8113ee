"""medlab.start: the one notebook preamble and its provenance banner."""

from __future__ import annotations

import warnings

import pytest

import medlab
from medlab.preamble import start


def test_start_returns_the_lesson_the_data_and_a_recorder(data_dir, tmp_path, capsys):
    if data_dir is None or not (data_dir / "breastmnist.npz").exists():
        pytest.skip("needs the shared BreastMNIST copy ($MEDLAB_TEST_DATA_DIR)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the banner says "unofficial" instead of a warning
        L, data, rec = start("05_federated", quick=True, seed=3, dataset="breastmnist",
                             data_dir=data_dir, output=tmp_path)  # fmt: skip
    out = capsys.readouterr().out
    assert (L.seed, L.quick, data.name, rec.notebook) == (3, True, "breastmnist", "05_federated")
    assert rec.path == tmp_path / "results" / "05_federated.json"
    assert "05_federated · quick mode · seeds 3, 4" in out
    assert data.provenance["md5"] in out
    assert "UNOFFICIAL COPY" in out and "not the paper's benchmark" in out
    assert medlab.start is start


def test_start_names_the_fix_for_a_bad_parameter(tmp_path):
    with pytest.raises(ValueError, match="quick must be True or False"):
        start("05_federated", quick="True", data_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written
