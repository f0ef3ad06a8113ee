"""medlab.metrics: MedMNIST's ACC/AUC, per-group metrics for K groups (cross-checked with
fairlearn and scikit-learn by hand), calibration (sklearn's calibration_curve) and Youden's J."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from medlab.metrics import (
    calibration,
    group_metrics,
    majority_baseline,
    medmnist_metrics,
    youden_threshold,
)
from medlab.stats import wilson_interval

NAMES3 = {0: "site A", 1: "site B", 2: "site C"}


def _scores(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two groups; the minority's (group 1) diseased patients score lower."""
    rng = np.random.default_rng(seed)
    g = np.repeat([0, 1], n // 2)
    y = np.tile([0, 1], n // 2)
    s = rng.normal(0.3 + 0.4 * y - 0.25 * y * g, 0.15).clip(0.001, 0.999)
    return y, s, g


def _scores3(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three groups of different sizes; group 2's diseased patients score lowest, group 1's
    healthy patients highest."""
    rng = np.random.default_rng(seed)
    g = np.repeat([0, 1, 2], [300, 200, 100])
    y = (rng.random(len(g)) < 0.4).astype(int)
    mean = 0.3 + 0.4 * y - 0.3 * y * (g == 2) + 0.15 * (1 - y) * (g == 1)
    return y, rng.normal(mean, 0.15).clip(0.001, 0.999), g


# ---------------------------------------------------------------------------------- MedMNIST


def test_medmnist_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    s = rng.dirichlet(np.ones(3), 200)
    m = medmnist_metrics(y.reshape(-1, 1), s, "multi-class")
    ovr = np.mean([roc_auc_score(y == k, s[:, k]) for k in range(3)])
    assert m["auc"] == pytest.approx(ovr)
    assert m["acc"] == pytest.approx(accuracy_score(y, s.argmax(1)))
    yb = rng.integers(0, 2, 100)
    sb = rng.random(100)
    mb = medmnist_metrics(yb, np.stack([1 - sb, sb], 1), "binary-class")
    assert mb["auc"] == pytest.approx(roc_auc_score(yb, sb))
    yl = rng.integers(0, 2, (100, 4))
    sl = rng.random((100, 4))
    ml = medmnist_metrics(yl, sl, "multi-label, binary-class")
    want = np.mean([roc_auc_score(yl[:, j], sl[:, j]) for j in range(4)])
    assert ml["auc"] == pytest.approx(want)
    with pytest.raises(ValueError, match="rows"):
        medmnist_metrics(y[:5], s, "multi-class")


def test_majority_baseline(breast):
    b = majority_baseline(breast.train.numpy_labels(), breast.test.numpy_labels(), breast.task)
    share = max(breast.test.class_counts().values()) / len(breast.test)
    assert b["auc"] == 0.5 and b["acc"] == pytest.approx(share)


# ---------------------------------------------------------------------------------- K groups


def test_group_metrics_three_groups_match_hand_computed_rates():
    y, s, g = _scores3()
    t = 0.45
    gm = group_metrics(y, s, g, threshold=t, names=NAMES3, reference=0)
    assert gm.groups == list(NAMES3.values())  # display order of names=
    pred = (s >= t).astype(int)
    for k, name in NAMES3.items():
        m = g == k
        row = gm.by_group.loc[name]
        assert row["auc"] == pytest.approx(roc_auc_score(y[m], s[m]))
        assert row["tpr"] == pytest.approx(pred[m][y[m] == 1].mean())
        assert row["fnr"] == pytest.approx(1 - pred[m][y[m] == 1].mean())
        assert row["fpr"] == pytest.approx(pred[m][y[m] == 0].mean())
        assert row["selection_rate"] == pytest.approx(pred[m].mean())
        assert row["accuracy"] == pytest.approx(accuracy_score(y[m], pred[m]))
    assert gm.overall["auc"] == pytest.approx(roc_auc_score(y, s))
    assert gm.overall["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert gm.overall["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    # the groups really differ (else the checks above would be weak)
    assert gm.by_group["tpr"].max() - gm.by_group["tpr"].min() > 0.3
    assert gm.by_group["fpr"].max() - gm.by_group["fpr"].min() > 0.2


def test_difference_ratio_and_eod_match_fairlearn():
    from fairlearn.metrics import (
        MetricFrame,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    y, s, g = _scores3(seed=1)
    gm = group_metrics(y, s, g, names=NAMES3)
    pred = (s >= 0.5).astype(int)
    mf = MetricFrame(
        metrics={
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "selection_rate": selection_rate,
            "accuracy": accuracy_score,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=g,
    )
    for m in ("tpr", "fpr", "selection_rate", "accuracy"):
        assert gm.difference()[m] == pytest.approx(mf.difference()[m])
        assert gm.ratio()[m] == pytest.approx(mf.ratio()[m])
        vals = gm.by_group[m]
        assert gm.difference()[m] == pytest.approx(vals.max() - vals.min())
    aucs = [roc_auc_score(y[g == k], s[g == k]) for k in range(3)]
    assert gm.difference()["auc"] == pytest.approx(max(aucs) - min(aucs))
    assert gm.ratio()["auc"] == pytest.approx(min(aucs) / max(aucs))
    eod = equalized_odds_difference(y, pred, sensitive_features=g)
    assert gm.overall["eod"] == pytest.approx(eod) == gm.equalized_odds_difference
    assert eod == pytest.approx(max(gm.difference()["tpr"], gm.difference()["fpr"]))
    t = gm.table()
    assert list(t.index) == [*NAMES3.values(), "difference (max - min)", "ratio (min / max)"]
    assert t.loc["ratio (min / max)", "tpr"] == pytest.approx(mf.ratio()["tpr"])


def test_gap_sign_and_reference():
    y, s, g = _scores3()
    gm = group_metrics(y, s, g, names=NAMES3, reference=0)
    gap = gm.gap("site C")  # reference minus site C; site C's diseased score lower
    for m, v in gap.items():
        assert v == pytest.approx(gm.by_group.loc["site A", m] - gm.by_group.loc["site C", m])
    assert gap["tpr"] > 0.3 and gap["fnr"] < -0.3 and gap["auc"] > 0
    assert gm.gap("site B")["fpr"] < 0  # site B's healthy patients are flagged more often
    with pytest.raises(ValueError, match="say which"):
        gm.gap()  # three groups: which one?
    with pytest.raises(ValueError, match="unknown group"):
        gm.gap("site A")
    with pytest.raises(ValueError, match="no reference"):
        group_metrics(y, s, g, names=NAMES3).gap("site B")
    row = gm.row({"site A": "a", "site B": "b", "site C": "c"})
    assert row["tpr_c"] == pytest.approx(gm.by_group.loc["site C", "tpr"])
    assert row["tpr_diff"] == pytest.approx(gm.difference()["tpr"])
    assert not any(k.endswith("_gap") for k in row)  # gaps are for two groups only
    assert row["eod"] == gm.overall["eod"] and row["acc"] == gm.overall["accuracy"]


def test_two_groups_minority_is_worse():
    y, s, g = _scores()
    names = {0: "majority", 1: "minority"}
    gm = group_metrics(y, s, g, threshold=0.5, names=names, reference=0)
    gap = gm.gap()
    assert gap["tpr"] > 0.4 and gap["auc"] > 0.1  # the minority is worse
    assert gm.equalized_odds_difference == pytest.approx(max(abs(gap["tpr"]), abs(gap["fpr"])))
    row = gm.row({"majority": "maj", "minority": "min"})
    assert row["tpr_min"] == pytest.approx(gm.by_group.loc["minority", "tpr"])
    assert row["tpr_gap"] == pytest.approx(gap["tpr"]) and row["auc_gap"] == pytest.approx(
        gap["auc"]
    )
    # decisions from elsewhere: rates follow y_pred, AUC still follows the scores
    pred = np.where(g == 1, s >= 0.3, s >= 0.5).astype(int)
    other = group_metrics(y, s, g, y_pred=pred, names=names, reference=0)
    assert other.by_group["auc"].equals(gm.by_group["auc"])
    m = g == 1
    assert other.by_group.loc["minority", "tpr"] == pytest.approx(pred[m][y[m] == 1].mean())
    assert other.gap()["tpr"] < gap["tpr"]
    # a group with one class only: its AUC is undefined (NaN), the rest still computes
    one = group_metrics(
        y[(g == 0) | (y == 0)], s[(g == 0) | (y == 0)], g[(g == 0) | (y == 0)], names=names
    )
    assert math.isnan(one.by_group.loc["minority", "auc"])
    assert one.by_group.loc["minority", "fpr"] == pytest.approx(np.mean(s[m & (y == 0)] >= 0.5))


def test_group_metrics_bootstrap_and_errors():
    y, s, g = _scores()
    gm = group_metrics(y, s, g, n_boot=50, seed=0)
    lo, hi = gm.ci["lo"], gm.ci["hi"]
    assert (lo["tpr"] <= gm.by_group["tpr"] + 1e-12).all()
    assert (gm.by_group["tpr"] <= hi["tpr"] + 1e-12).all()
    assert (hi["auc"] - lo["auc"] > 0).all()
    again = group_metrics(y, s, g, n_boot=50, seed=0)
    assert again.ci["lo"].equals(lo)  # seeded
    assert group_metrics(y, s, g).ci is None
    with pytest.raises(ValueError, match="same length"):
        group_metrics(y[:-1], s, g)
    with pytest.raises(ValueError, match="at least two groups"):
        group_metrics(y, s, np.zeros_like(g))
    with pytest.raises(ValueError, match=r"threshold must be a number in \(0, 1\)"):
        group_metrics(y, s, g, threshold=1.0)
    with pytest.raises(ValueError, match="0/1"):
        group_metrics(y + 1, s, g)
    with pytest.raises(ValueError, match="NaN"):
        group_metrics(y, np.where(g == 0, s, np.nan), g)
    with pytest.raises(ValueError, match="does not name"):
        group_metrics(y, s, g, names={0: "only one"})
    with pytest.raises(ValueError, match="reference"):
        group_metrics(y, s, g, reference=5)
    with pytest.raises(ValueError, match="entries"):
        group_metrics(y, s, g[:10])
    with pytest.raises(ValueError, match="y_pred"):
        group_metrics(y, s, g, y_pred=np.zeros(3))


def test_group_metrics_analytic_intervals_agree_with_a_long_bootstrap():
    """Wilson (rates) and Hanley-McNeil (AUC) intervals cover the point estimate and are about
    as wide as a 2000-resample percentile bootstrap of each group's patients (stratified by
    class, written here with numpy and scikit-learn), without any resampling."""
    y, s, g = _scores3()
    an = group_metrics(y, s, g, names=NAMES3, ci="analytic")
    rng = np.random.default_rng(0)
    for k, name in NAMES3.items():
        yt, st = y[g == k], s[g == k]
        pos, neg = np.flatnonzero(yt == 1), np.flatnonzero(yt == 0)
        tpr = rng.binomial(len(pos), an.by_group.loc[name, "tpr"], 2000) / len(pos)
        aucs = []
        for _ in range(500):
            i = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
            aucs.append(roc_auc_score(yt[i], st[i]))
        for m, boot, slack in (("tpr", tpr, 0.25), ("auc", np.array(aucs), 0.7)):
            lo, hi = an.ci["lo"].loc[name, m], an.ci["hi"].loc[name, m]
            assert lo <= an.by_group.loc[name, m] <= hi, (name, m)
            b_lo, b_hi = np.quantile(boot, [0.025, 0.975])
            assert abs((hi - lo) / (b_hi - b_lo) - 1) < slack, (name, m, lo, hi, b_lo, b_hi)
    n_pos = pd.Series(y).groupby(g).sum().to_numpy()
    assert np.allclose(
        an.ci["lo"]["tpr"].to_numpy(),
        [wilson_interval(p, int(n))[0] for p, n in zip(an.by_group["tpr"], n_pos, strict=True)],
    )
    with pytest.raises(ValueError, match="'bootstrap', 'analytic'"):
        group_metrics(y, s, g, ci="percentile")
    with pytest.raises(ValueError, match="needs n_boot"):
        group_metrics(y, s, g, ci="bootstrap")


# ---------------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("n_bins", [2, 5, 8])
def test_calibration_matches_sklearn(n_bins):
    from sklearn.calibration import calibration_curve

    y, s, g = _scores3(seed=2)
    table = calibration(y, s, n_bins=n_bins)
    true, pred = calibration_curve(y, s, n_bins=n_bins, strategy="quantile")
    np.testing.assert_allclose(table["observed"], true)
    np.testing.assert_allclose(table["mean_predicted"], pred)
    assert table["n"].sum() == len(y) and set(table["group"]) == {"all"}
    ece = (table["n"] / len(y) * (table["observed"] - table["mean_predicted"]).abs()).sum()
    assert table.attrs["ece"]["all"] == pytest.approx(ece)
    per = calibration(y, s, g, n_bins=n_bins, names=NAMES3)
    assert list(dict.fromkeys(per["group"])) == list(NAMES3.values())
    for k, name in NAMES3.items():
        m = g == k
        true, pred = calibration_curve(y[m], s[m], n_bins=n_bins, strategy="quantile")
        d = per[per["group"] == name]
        np.testing.assert_allclose(d["observed"], true)
        np.testing.assert_allclose(d["mean_predicted"], pred)
        assert d["n"].sum() == m.sum()


def test_calibration_error_of_a_calibrated_and_a_shifted_score():
    rng = np.random.default_rng(0)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(int)
    assert calibration(y, p, n_bins=10).attrs["ece"]["all"] < 0.02
    shifted = np.clip(p + 0.2, 0, 1)
    assert calibration(y, shifted, n_bins=10).attrs["ece"]["all"] > 0.15
    with pytest.raises(ValueError, match="n_bins"):
        calibration(y, p, n_bins=1)
    with pytest.raises(ValueError, match="string"):
        calibration(y, p, "group")


def test_one_binning_two_forms_match_sklearn_and_torchmetrics():
    """calibration_bins / expected_calibration_error (notebook 09's cell): quantile bins are
    sklearn's calibration_curve(strategy="quantile"); uniform bins of the top-label confidence
    give torchmetrics' MulticlassCalibrationError."""
    import torch
    from sklearn.calibration import calibration_curve
    from torchmetrics.classification import MulticlassCalibrationError

    from medlab.metrics import calibration_bins, expected_calibration_error

    y, s, _ = _scores3(seed=4)
    for binning in ("quantile", "uniform"):
        t = calibration_bins(s, y, 8, binning)
        true, pred = calibration_curve(y, s, n_bins=8, strategy=binning)
        np.testing.assert_allclose(t["observed"], true)
        np.testing.assert_allclose(t["score"], pred)
        assert t["n"].sum() == len(y)
    assert expected_calibration_error(s, y, 8, "quantile") == calibration(y, s).attrs["ece"]["all"]
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(3) * 0.7, size=500)
    p[0] = np.eye(3)[0]  # a confidence of exactly 1.0: the last bin's edge
    yy = rng.integers(0, 3, 500)
    ref = MulticlassCalibrationError(num_classes=3, n_bins=15, norm="l1")
    expected = float(ref(torch.tensor(p, dtype=torch.float64), torch.tensor(yy)))
    ece = expected_calibration_error(p.max(1), p.argmax(1) == yy)
    assert ece == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="'uniform' or 'quantile'"):
        calibration_bins(s, y, 8, "equal")


# ---------------------------------------------------------------------------------- Youden


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_youden_threshold_maximises_tpr_minus_fpr(seed):
    y, s, g = _scores3(seed)
    s = np.round(s, 2)  # ties, as with real probabilities
    t = youden_threshold(y, s)

    def j(thr: float) -> float:
        pred = s >= thr
        return pred[y == 1].mean() - pred[y == 0].mean()

    brute = max(j(c) for c in np.unique(s))
    assert j(t) == pytest.approx(brute)
    assert 0 < t < 1
    with pytest.raises(ValueError, match="both classes"):
        youden_threshold(np.zeros(10), s[:10])


def test_metric_interval_brackets_the_auc_and_narrows_with_more_data():
    from sklearn.metrics import roc_auc_score

    from medlab.metrics import metric_interval

    rng = np.random.default_rng(0)

    def sample(n):
        y = rng.integers(0, 2, n)
        s = np.clip(0.5 + 0.25 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
        return y, np.stack([1 - s, s], 1)

    y, p = sample(150)
    lo, hi = metric_interval(y, p, "binary-class", n_boot=300, seed=1)
    auc = roc_auc_score(y, p[:, 1])
    assert lo < auc < hi and 0.02 < hi - lo < 0.3
    y2, p2 = sample(3000)
    lo2, hi2 = metric_interval(y2, p2, "binary-class", n_boot=100, seed=1)
    assert hi2 - lo2 < (hi - lo) / 2
    assert metric_interval(y, p, "binary-class", n_boot=300, seed=1) == (lo, hi)
    with pytest.raises(ValueError, match="metric must be"):
        metric_interval(y, p, "binary-class", metric="f1")


def test_auc_se_matches_the_spread_of_simulated_aucs():
    """Hanley & McNeil's SE = the SD of AUCs over many simulated test sets (binormal, AUC ~0.76)."""
    from sklearn.metrics import roc_auc_score

    from medlab.metrics import auc_se

    rng = np.random.default_rng(0)
    n_pos, n_neg = 40, 120
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    aucs = [
        roc_auc_score(y, np.r_[rng.normal(1, 1, n_pos), rng.normal(0, 1, n_neg)])
        for _ in range(2000)
    ]
    se = auc_se(float(np.mean(aucs)), n_pos, n_neg)
    assert abs(se - np.std(aucs, ddof=1)) < 0.1 * se, (se, np.std(aucs, ddof=1))
    with pytest.raises(ValueError, match="n_pos"):
        auc_se(0.7, 0, 10)
