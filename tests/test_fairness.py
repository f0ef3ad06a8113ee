"""medlab.fairness (the bias lesson) on real BreastMNIST: the lesson's training config, training
through the model cache with each mitigation, thresholds, diversity indices, the sweep, its
figures and the explorer. The scenario itself is tested in test_scenario.py, per-group metrics
in test_metrics.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlab import fairness as fa
from medlab import scenario as S
from medlab.experiments import Lesson
from medlab.metrics import group_metrics, youden_threshold
from medlab.train import predict

#: The smallest training that exercises the plumbing (width-4 SmallCNN, one epoch).
TINY = dict(width=4, epochs=1, batch_size=64, lr=5e-3, augment=False)


@pytest.fixture(scope="module")
def sweep(breast, tmp_path_factory):
    """One small sweep on real BreastMNIST, its models cached in a temporary folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return fa.run_sweep(breast, [0.1, 0.5], [0], config=TINY, mitigations=("reweight",))


def _scores(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic scores where the minority's diseased patients score lower."""
    rng = np.random.default_rng(seed)
    g = np.repeat([0, 1], n // 2)
    y = np.tile([0, 1], n // 2)
    s = rng.normal(0.3 + 0.4 * y - 0.25 * y * g, 0.15).clip(0.001, 0.999)
    return y, s, g


# ---------------------------------------------------------------------------------- config


def test_hcm_config_follows_the_lesson(breast):
    quick = Lesson(True, 0, (0, 1), 12_000, 1)
    full = Lesson(False, 0, (0, 1, 2, 3, 4), 50_000, 1)
    assert fa.hcm_config(breast, quick) == dict(width=8, epochs=22, batch_size=64, lr=5e-3)
    assert fa.hcm_config(breast, full) == dict(width=16, epochs=37, batch_size=64, lr=5e-3)
    big = Lesson(True, 0, (0, 1), 1_000, 1)
    assert fa.hcm_config(breast, big)["epochs"] == 5  # at least 5 quick
    with pytest.raises(TypeError, match="medlab.lesson"):
        fa.hcm_config(breast, {"quick": True})


def test_hcm_metrics_are_group_metrics_with_the_majority_as_reference():
    y, s, g = _scores()
    hm = fa.hcm_metrics(y, s, g, threshold=0.4)
    gm = group_metrics(y, s, g, threshold=0.4, names=fa.GROUP_NAMES, reference=0)
    assert hm.by_group.equals(gm.by_group) and hm.reference == fa.GROUP_NAMES[0]
    row = hm.row(fa.SHORT)
    assert row["tpr_gap"] == pytest.approx(row["tpr_maj"] - row["tpr_min"]) and row["tpr_gap"] > 0.3
    assert {"auc_maj", "auc_min", "auc_gap", "eod", "acc"} <= set(row)


# ---------------------------------------------------------------------------------- mitigations


def test_group_weights_and_resampling():
    g = np.array([0] * 90 + [1] * 10)
    w = fa.group_weights(g)
    assert w.mean() == pytest.approx(1.0)
    assert w[g == 0].sum() == pytest.approx(w[g == 1].sum())
    w3 = fa.group_weights(np.array([0] * 6 + [1] * 3 + [2]))
    assert [w3[:6].sum(), w3[6:9].sum(), w3[9]] == pytest.approx([10 / 3] * 3)
    idx = fa.group_balanced_index(g, seed=0)
    assert np.bincount(g[idx]).tolist() == [90, 90]
    assert set(range(100)) <= set(idx.tolist())  # nothing dropped
    assert np.array_equal(idx, fa.group_balanced_index(g, seed=0))
    assert not np.array_equal(idx, fa.group_balanced_index(g, seed=1))


def test_train_scenario_each_mitigation_through_the_cache(breast, cache):
    sc = S.hcm(breast, 0.1, seed=0)
    with pytest.raises(ValueError, match="mitigation must be one of"):
        fa.train_scenario(sc, mitigation="magic")
    with pytest.raises(ValueError, match="sets sample_weight itself"):
        fa.train_scenario(sc, mitigation="reweight", sample_weight=np.ones(len(sc.train)))
    with pytest.raises(TypeError, match="medlab.scenario"):
        fa.train_scenario(breast)
    kw = {**TINY, "epochs": 2}
    models = {}
    for mit in fa.MITIGATIONS:
        model, hist = fa.train_scenario(sc, seed=0, mitigation=mit, **kw)
        s = S.disease_scores(model, sc)
        assert s.shape == (len(breast.test),) and np.all((s >= 0) & (s <= 1))
        assert hist.config["mitigation"] == mit and hist.config["scenario"] == sc.info
        assert hist.config["weighted"] is (mit == "reweight")
        assert not model.training
        models[mit] = model
    # resampling doubles the majority-sized set, so it gets fewer epochs (equal compute):
    # 546 images, minority 55 -> 2 x 491 = 982 images, round(2 * 546 / 982) = 1 epoch
    assert fa.train_scenario(sc, seed=0, mitigation="resample", **kw)[1].config["epochs"] == 1
    assert len(list(cache.glob("*.pt"))) == 3  # one model per mitigation, nothing else
    # the second call is read from the cache: same weights, same history, no new file; a
    # scenario rebuilt from the same arguments (notebook 04 rebuilding 03's) is the same key
    again, hist = fa.train_scenario(S.hcm(breast, 0.1, seed=0), seed=0, mitigation=None, **kw)
    for k, v in models[None].state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    assert len(hist.epochs) == 2 and hist.best_epoch >= 1
    assert len(list(cache.glob("*.pt"))) == 3
    # another seed, share or width is another model
    fa.train_scenario(sc, seed=1, **kw)
    fa.train_scenario(S.hcm(breast, 0.2, seed=0), seed=0, **kw)
    fa.train_scenario(sc, seed=0, **{**kw, "width": 8})
    assert len(list(cache.glob("*.pt"))) == 6


def test_decision_threshold_is_youden_on_validation(breast, cache):
    sc = S.hcm(breast, 0.1, seed=0)
    model, _ = fa.train_scenario(sc, seed=0, **TINY)
    t = fa.decision_threshold(model, sc)
    y, s = sc.y("val"), S.disease_scores(model, sc, "val")
    assert t == youden_threshold(y, s)

    def j(thr: float) -> float:
        pred = s >= thr
        return pred[y == 1].mean() - pred[y == 0].mean()

    assert j(t) == pytest.approx(max(j(c) for c in np.unique(s)))


def test_group_thresholds_reduce_the_equalized_odds_gap():
    y, s, g = _scores(seed=1, n=800)
    before = fa.hcm_metrics(y, s, g)
    pred = fa.group_thresholds(y, s, g, seed=0)
    after = fa.hcm_metrics(y, s, g, y_pred=pred)
    assert set(np.unique(pred)) <= {0, 1}
    assert after.equalized_odds_difference < 0.5 * before.equalized_odds_difference
    assert after.by_group["auc"].equals(before.by_group["auc"])  # ranking is untouched
    assert np.array_equal(pred, fa.group_thresholds(y, s, g, seed=0))  # seeded
    tpr = fa.group_thresholds(
        y, s, g, constraints="true_positive_rate_parity", objective="balanced_accuracy_score"
    )
    assert abs(fa.hcm_metrics(y, s, g, y_pred=tpr).gap()["tpr"]) < 0.5 * before.gap()["tpr"]
    with pytest.raises(ValueError, match="folds must be >= 2"):
        fa.group_thresholds(y, s, g, folds=1)


def test_score_classifier_is_a_prefit_passthrough():
    clf = fa.ScoreClassifier()
    p = clf.predict_proba(np.array([[0.2], [0.9]]))
    assert np.allclose(p, [[0.8, 0.2], [0.1, 0.9]])
    assert clf.predict(np.array([[0.2], [0.9]])).tolist() == [0, 1]
    assert clf.fit(None) is clf and clf.__sklearn_is_fitted__()


# ---------------------------------------------------------------------------------- diversity


@pytest.mark.parametrize("counts", [[95, 5], [50, 50], [1, 2, 3, 4], [10, 0, 30]])
def test_shannon_matches_scipy(counts):
    from scipy.stats import entropy

    assert fa.shannon_index(counts) == pytest.approx(entropy(counts))
    k = len(counts)
    assert fa.shannon_index(counts, normalized=True) == pytest.approx(entropy(counts) / np.log(k))


def test_gini_measures():
    # Gini-Simpson: 1 - sum p^2 = probability two draws (with replacement) differ
    assert fa.gini_simpson([95, 5]) == pytest.approx(1 - 0.95**2 - 0.05**2)
    assert fa.gini_simpson([50, 50]) == pytest.approx(0.5)
    assert fa.gini_simpson([7]) == 0.0
    # Lorenz-curve Gini vs the sorted-cumulative formula G = (n+1-2*sum(cum)/cum[-1]) / n
    for counts in ([95, 5], [1, 2, 3, 4], [10, 0, 30], [5, 5, 5]):
        x = np.sort(np.asarray(counts, dtype=float))
        cum = np.cumsum(x)
        n = len(x)
        lorenz = (n + 1 - 2 * (cum / cum[-1]).sum()) / n
        assert fa.gini_coefficient(counts) == pytest.approx(lorenz)
    assert fa.gini_coefficient([50, 50]) == 0.0
    assert fa.gini_coefficient([95, 5]) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="non-negative"):
        fa.shannon_index([3, -1])
    c = fa.composition(np.array([0] * 95 + [1] * 5))
    assert c["minority_share"] == pytest.approx(0.05)
    assert (c["n_majority"], c["n_minority"]) == (95, 5)
    assert c["shannon_evenness"] == pytest.approx(fa.shannon_index([95, 5]) / np.log(2))


# ---------------------------------------------------------------------------------- sweep, figures


def test_sweep_rows_and_summary(sweep, breast):
    rows = sweep.rows
    assert set(rows["method"]) == {"baseline", "reweight", fa.THRESHOLD_METHOD}
    assert len(rows) == 2 * 2 + 1  # baseline + thresholds per share, 1 reweight
    assert sweep.strength == 2.0  # BreastMNIST's default shift strength
    low = rows[(rows["share"] == 0.1) & (rows["method"] == "baseline")].iloc[0]
    assert (low["n_majority"], low["n_minority"]) == (491, 55)  # largest remainder per class
    assert low["shannon_evenness"] == pytest.approx(fa.shannon_index([491, 55], normalized=True))
    # every row is the per-group metrics of the stored scores at the stored threshold
    sc = sweep.scenarios[(0.1, 0)]
    s, t = sweep.scores[(0.1, 0, "baseline")], sweep.thresholds[(0.1, 0, "baseline")]
    np.testing.assert_array_equal(s, S.disease_scores(sweep.models[(0.1, 0, "baseline")], sc))
    want = fa.hcm_metrics(sc.test_y, s, sc.groups["test"], threshold=t).row(fa.SHORT)
    for k in ("auc_maj", "auc_min", "tpr_gap", "eod", "acc"):
        assert low[k] == pytest.approx(want[k], nan_ok=True)
    assert low["threshold"] == t == fa.decision_threshold(sweep.models[(0.1, 0, "baseline")], sc)
    summ = fa.sweep_table(rows)
    assert {"tpr_gap", "tpr_gap_sd", "n_seeds"} <= set(summ.columns)
    assert summ["share"].is_monotonic_increasing and (summ["n_seeds"] == 1).all()
    assert summ["tpr_gap_sd"].isna().all()  # one seed: no sample SD
    with pytest.raises(ValueError, match="mitigations must be among"):
        fa.run_sweep(breast, [0.1], [0], config=TINY, mitigations=("magic",))
    with pytest.raises(ValueError, match="lists"):
        fa.run_sweep(breast, "0.1", [0], config=TINY)


def test_sweep_figures(sweep, breast):
    rows, sc = sweep.rows, sweep.scenarios[(0.1, 0)]
    y, s, g = sc.test_y, sweep.scores[(0.1, 0, "baseline")], sc.groups["test"]
    cal = fa.calibration_curves(y, s, g, n_bins=4)
    for fig in (
        fa.gap_vs_share(rows, "tpr_gap"),
        fa.score_distributions(y, s, g),
        cal,
        fa.shift_examples(sc, breast, n=3),
    ):
        assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    from medlab.metrics import calibration

    ece = calibration(y, s, g, n_bins=4, names=fa.GROUP_NAMES).attrs["ece"]
    assert [t.name for t in cal.data[1:]] == [
        f"{name} (ECE {ece[name]:.3f})" for name in fa.GROUP_NAMES.values()
    ]
    with pytest.raises(ValueError, match="unknown metric"):
        fa.gap_vs_share(rows, "nonsense")


def test_shift_examples_use_the_scenarios_shift(sweep, breast):
    sc = sweep.scenarios[(0.1, 0)]
    fig = fa.shift_examples(sc, breast, n=3, seed=0)
    img = np.asarray(fig.data[0].z)
    assert img.shape == (4 * 28, 3 * 28, 3)  # 2 classes x (as is, minority), 3 images each
    rng = np.random.default_rng(0)
    healthy = rng.choice(np.flatnonzero(breast.test.labels.numpy() == 1), 3, replace=False)
    x = breast.test.images[healthy]
    shifted = S.apply_shift(
        x, breast.test.labels[healthy], sc.shift, seed=0, positive=0, pattern=sc.pattern
    )
    assert np.array_equal(img[:28, :, 0], np.concatenate(list(x[:, 0].numpy()), axis=1))
    assert np.array_equal(img[28:56, :, 0], np.concatenate(list(shifted[:, 0].numpy()), axis=1))


def test_explorer_reevaluates_the_sweeps_models(sweep, breast):
    widget, update = fa.explorer(sweep, breast)
    assert len(widget.children) == 2
    # at the sweep's own strength, the table is the sweep's per-group metrics
    table, fig = update(0.1, sweep.strength)
    sc = sweep.scenarios[(0.1, 0)]
    s, t = sweep.scores[(0.1, 0, "baseline")], sweep.thresholds[(0.1, 0, "baseline")]
    want = fa.hcm_metrics(sc.test_y, s, sc.groups["test"], threshold=t).by_group
    assert set(table.index) == set(fa.GROUP_NAMES.values())
    for g in fa.GROUP_NAMES.values():
        for m in ("auc", "tpr", "fpr"):
            assert table.loc[g, m] == pytest.approx(round(want.loc[g, m], 3), abs=1e-9)
    assert fig.layout.title.text and fig.layout.yaxis.title.text
    # strength 0: the minority's test images are the unshifted originals
    s0 = predict(sweep.models[(0.5, 0, "baseline")], breast.test)[:, 0]
    table0, _ = update(0.45, 0.0)  # nearest trained share: 0.5
    want0 = fa.hcm_metrics(
        sc.test_y, s0, sc.groups["test"], threshold=sweep.thresholds[(0.5, 0, "baseline")]
    ).by_group
    assert table0.loc[fa.GROUP_NAMES[1], "auc"] == pytest.approx(
        round(want0.loc[fa.GROUP_NAMES[1], "auc"], 3), abs=1e-9
    )
    with pytest.raises(ValueError, match="no 'resample' models"):
        fa.explorer(sweep, breast, method="resample")


def test_image_grid_lays_rows_out_and_rejects_mismatched_names():
    from medlab.plots import image_grid

    a = np.full((2, 1, 4, 5), 200, np.uint8)
    b = np.full((3, 1, 4, 5), 50, np.uint8)
    fig = image_grid([a, b], ["bright", "dark"], title="t", x="image", y="row")
    z = np.asarray(fig.data[0].z)
    assert z.shape == (8, 15, 3)
    assert (z[:4, :10] == 200).all() and (z[:4, 10:] == 0).all() and (z[4:] == 50).all()
    assert fig.layout.xaxis.title.text == "image (5 x 4 px each)"
    with pytest.raises(ValueError, match="one name per row"):
        image_grid([a], ["x", "y"], title="t")
