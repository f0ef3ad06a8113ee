"""The HCM thread in the audit (issue 28): `medlab.audit.hcm_thread` reads the minority's gap of
every lesson 03-09 from a run's recorded numbers, names the lessons that did not run, and the
report's subgroup area cites the thread's keys. Results files are written by the real Recorder on
real data; the values are the TPR gaps a real model computes on it, not typed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from medlab import Recorder, audit, fairness, results, scenario
from medlab.audit import HCM_THREAD, hcm_thread


def _gaps(data, seed: int) -> list[float]:
    """Real TPR gaps (majority - minority) of simple scores on the HCM scenario's test split:
    the mean intensity of each image and its negative, at the median threshold."""
    sc = scenario.hcm(data, 0.05, seed=seed)
    mean = sc.test.images.float().mean(dim=(1, 2, 3)).numpy()
    out = []
    for s in (mean, -mean):
        s = (s - s.min()) / (s.max() - s.min())
        m = fairness.hcm_metrics(sc.test_y, s, sc.groups["test"], threshold=float(np.median(s)))
        out.append(m.row()["tpr_gap"])
    return out


def _record(out, notebook: str, data, seed: int, values: dict[str, float]) -> None:
    rec = Recorder(notebook, datasets=[data], seed=seed, quick=True, output=out)
    for key, value in values.items():
        rec.record(key, value, tol=0.05)


def test_every_lesson_03_to_09_has_its_keys_in_order():
    numbers = [n for n, _, _ in HCM_THREAD]
    assert numbers == sorted(numbers) and set(numbers) == {f"0{k}" for k in range(3, 10)}
    keys = [k for _, _, k in HCM_THREAD]
    assert len(set(keys)) == len(keys) and all(k.endswith(".tpr_gap") for k in keys)
    assert ("07", "baseline", "hcm.baseline.tpr_gap") in HCM_THREAD  # the audit left 07 out
    assert {"hcm.model.tpr_gap", "hcm.deferral.tpr_gap", "hcm.eps1.tpr_gap"} <= set(keys)


def test_recorded_not_run_and_not_recorded_from_a_real_run(tmp_path, breast):
    g = _gaps(breast, seed=0)
    _record(tmp_path, "03_bias", breast, 0, {"share5.baseline.tpr_gap": g[0]})
    _record(
        tmp_path,
        "07_synthetic",
        breast,
        0,
        {"hcm.baseline.tpr_gap": g[1], "hcm.baseline.tpr_gap_sd": abs(g[0])},
    )
    _record(tmp_path, "09_deploy", breast, 0, {"defer.minority_rate": abs(g[1])})  # no thread key
    t = hcm_thread(results.load(tmp_path))
    assert len(t) == len(HCM_THREAD) and set(t.dataset) == {"breastmnist"}
    row = t.set_index("key").loc
    assert row["share5.baseline.tpr_gap"].gap == pytest.approx(g[0])
    assert math.isnan(row["share5.baseline.tpr_gap"].sd)  # one seed, no recorded SD
    assert row["hcm.baseline.tpr_gap"].sd == pytest.approx(abs(g[0]))  # the recorded _sd
    assert row["share5.reweight.tpr_gap"].status == "not recorded"  # 03 ran without it
    assert (t[t.lesson == "09_deploy"].status == "not recorded").all()
    assert (
        t[t.lesson.isin(["04_glass_box", "05_federated", "08_robustness"])].status == "not run"
    ).all()
    assert t[t.status != "recorded"].gap.isna().all()
    assert (t.status == "recorded").sum() == 2 and t.n_seeds.max() == 1


def test_several_seeds_give_their_mean_and_sample_sd(tmp_path, breast):
    gaps = [_gaps(breast, seed=s)[0] for s in (0, 7, 13)]
    for s, gap in zip((0, 7, 13), gaps, strict=True):
        _record(tmp_path / f"seed{s}", "04_glass_box", breast, s, {"hcm.biased.tpr_gap": gap})
    rows = [results.load(tmp_path / f"seed{s}") for s in (0, 7, 13)]
    t = hcm_thread(pd.concat(rows, ignore_index=True)).set_index("key")
    assert t.loc["hcm.biased.tpr_gap"].gap == pytest.approx(np.mean(gaps))
    assert t.loc["hcm.biased.tpr_gap"].sd == pytest.approx(np.std(gaps, ddof=1))
    assert t.loc["hcm.biased.tpr_gap"].n_seeds == 3


def test_a_run_without_the_thread_names_every_lesson_as_not_run(tmp_path, breast):
    """Notebook 10 run alone: its own numbers only; the table still has every setting."""
    _record(tmp_path, "10_audit", breast, 0, {"audit.citation_errors": 0})
    t = hcm_thread(results.load(tmp_path))
    assert len(t) == len(HCM_THREAD) and set(t.status) == {"not run"}
    assert set(t.dataset) == {"breastmnist"}
    with pytest.raises(ValueError, match="results.load"):
        hcm_thread(results.load(tmp_path)[["notebook", "key"]])


def test_the_report_cites_the_thread_of_every_lesson(tmp_path, breast):
    g = _gaps(breast, seed=0)
    _record(tmp_path, "07_synthetic", breast, 0, {"hcm.add_synthetic.tpr_gap": g[0]})
    _record(tmp_path, "09_deploy", breast, 0, {"hcm.deferral.tpr_gap": g[1]})
    a = audit.build(tmp_path)
    sub = next(x for x in a.areas if x["id"] == "subgroups")
    assert [r["key"] for r in sub["rows"]] == ["hcm.add_synthetic.tpr_gap", "hcm.deferral.tpr_gap"]
    bias = next(c for c in a.checklist if c["id"] == "bias")
    assert bias["status"] == "partly assessed" and len(bias["evidence"]) == 2
