"""Tests for medlab.fairness: the simulated scenario, the metrics and the diversity indices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlab import fairness as fa
from medlab.data import MedMNISTData, Split


def _toy(n: tuple[int, int, int] = (200, 40, 80), seed: int = 0) -> MedMNISTData:
    """A small binary dataset in MedMNIST layout: healthy = dark blob, diseased = bright blob
    (only for testing the plumbing; no result is computed on it)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    blob = np.exp(-((yy - 14) ** 2 + (xx - 14) ** 2) / 60.0)
    splits = {}
    for s, k in zip(("train", "val", "test"), n, strict=True):
        labels = np.tile([0, 1], k // 2)
        imgs = 60 + 40 * blob[None] + 100 * labels[:, None, None] * blob[None]
        imgs = imgs + rng.normal(0, 10, size=(k, 28, 28))
        images = torch.from_numpy(np.clip(imgs, 0, 255).astype(np.uint8)).unsqueeze(1)
        splits[s] = Split(
            "toy",
            s,
            images,
            torch.from_numpy(labels).long(),
            "binary-class",
            {0: "normal", 1: "pneumonia"},
        )
    return MedMNISTData(
        "toy",
        splits["train"],
        splits["val"],
        splits["test"],
        "binary-class",
        {0: "normal", 1: "pneumonia"},
        1,
        28,
        "CC BY 4.0",
        "toy",
    )


@pytest.fixture(scope="module")
def toy() -> MedMNISTData:
    return _toy()


# ---------------------------------------------------------------------------------- shift


def test_shift_validates_ranges():
    with pytest.raises(ValueError, match=r"zoom must be in \[0.5, 1.5\]"):
        fa.PresentationShift(zoom=0.2)
    with pytest.raises(ValueError, match=r"contrast must be in \[0, 1\]"):
        fa.PresentationShift(contrast=1.5)
    with pytest.raises(ValueError, match=r"strength must be in \[0, 2\]"):
        fa.PresentationShift.from_strength(3)
    assert fa.PresentationShift.from_strength(0).is_identity
    assert fa.PresentationShift.from_strength(1) == fa.PresentationShift(0.8, 0.5)


def test_apply_shift_identity_and_errors(toy):
    x, y = toy.train.images[:10], toy.train.labels[:10]
    assert torch.equal(fa.apply_shift(x, y, fa.PresentationShift(1.0, 1.0)), x)
    with pytest.raises(ValueError, match="uint8"):
        fa.apply_shift(x.float(), y, fa.PresentationShift())
    with pytest.raises(ValueError, match="labels has 3 entries"):
        fa.apply_shift(x, y[:3], fa.PresentationShift())
    with pytest.raises(ValueError, match="pattern="):
        pos = toy.train.labels == 1
        fa.apply_shift(
            toy.train.images[pos][:4], toy.train.labels[pos][:4], fa.PresentationShift(1.0, 0.5)
        )


def test_apply_shift_weakens_the_disease_signal_of_positives_only(toy):
    x, y = toy.train.images, toy.train.labels
    pat = fa.disease_pattern(x, y)
    assert torch.allclose(pat, x[y == 1].float().mean(0) - x[y == 0].float().mean(0))
    out = fa.apply_shift(x, y, fa.PresentationShift(zoom=1.0, contrast=0.0), pattern=pat)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out[y == 0], x[y == 0])  # healthy images untouched
    centre = (slice(None), 0, slice(10, 18), slice(10, 18))
    gap_before = x[y == 1].float()[centre].mean() - x[y == 0].float()[centre].mean()
    gap_after = out[y == 1].float()[centre].mean() - out[y == 0].float()[centre].mean()
    assert gap_before > 50 and abs(gap_after) < 0.05 * gap_before
    # individual variation is kept: the diseased images' spread is unchanged
    assert float(out[y == 1].float().std(0).mean()) == pytest.approx(
        float(x[y == 1].float().std(0).mean()), rel=0.05
    )
    half = fa.apply_shift(x, y, fa.PresentationShift(zoom=1.0, contrast=0.5))  # own pattern
    gap_half = half[y == 1].float()[centre].mean() - half[y == 0].float()[centre].mean()
    assert 0.45 * gap_before < gap_half < 0.55 * gap_before
    with pytest.raises(ValueError, match="pattern must have shape"):
        fa.apply_shift(x, y, fa.PresentationShift(contrast=0.5), pattern=pat[None])


def test_apply_shift_zoom_shrinks_anatomy_and_is_seeded(toy):
    x, y = toy.train.images[:20], toy.train.labels[:20]
    s = fa.PresentationShift(zoom=0.6, contrast=1.0)
    a, b = fa.apply_shift(x, y, s, seed=1), fa.apply_shift(x, y, s, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, fa.apply_shift(x, y, s, seed=2))  # jitter depends on the seed
    # the bright blob gets smaller: fewer pixels above the background
    bright = lambda t: (t.float() > 100).float().sum((1, 2, 3))  # noqa: E731
    assert (bright(a) < bright(x)).float().mean() > 0.9


# ---------------------------------------------------------------------------------- scenario


def test_make_scenario_shares_groups_and_shift(toy):
    sc = fa.make_scenario(toy, 0.1, seed=3)
    g = sc.groups
    assert set(g) == {"train", "val", "test"}
    assert len(g["train"]) == len(toy.train) and g["train"].dtype == np.int64
    assert g["train"].mean() == pytest.approx(0.1, abs=0.01)
    # stratified: the same minority share in each class; test is 50/50 within each class
    for c in (0, 1):
        assert g["train"][toy.train.labels.numpy() == c].mean() == pytest.approx(0.1, abs=0.01)
        assert g["test"][toy.test.labels.numpy() == c].mean() == pytest.approx(0.5, abs=0.02)
    maj, mino = g["train"] == 0, g["train"] == 1
    assert torch.equal(sc.train.images[maj], toy.train.images[maj])
    assert not torch.equal(sc.train.images[mino], toy.train.images[mino])
    assert torch.equal(sc.train.labels, toy.train.labels)
    # seeded, and the test patients' groups do not depend on the share
    again = fa.make_scenario(toy, 0.1, seed=3)
    assert torch.equal(again.train.images, sc.train.images)
    other = fa.make_scenario(toy, 0.5, seed=3)
    assert np.array_equal(other.groups["test"], g["test"])
    assert other.groups["train"].mean() == pytest.approx(0.5, abs=0.01)
    assert sc.positive == 1 and set(sc.test_y) == {0, 1}
    assert {"split", "group", "images"} <= set(sc.counts().columns)


def test_make_scenario_errors(toy):
    with pytest.raises(ValueError, match=r"minority_share must be in \[0, 0.5\]"):
        fa.make_scenario(toy, 0.7)
    with pytest.raises(ValueError, match="positive=5"):
        fa.make_scenario(toy, 0.1, positive=5)
    multi = MedMNISTData(
        "m", toy.train, toy.val, toy.test, "multi-class", {0: "a", 1: "b"}, 1, 28, "", ""
    )
    with pytest.raises(ValueError, match="binary-class"):
        fa.make_scenario(multi, 0.1)


def test_group_weights_and_resampling():
    g = np.array([0] * 90 + [1] * 10)
    w = fa.group_weights(g)
    assert w.mean() == pytest.approx(1.0)
    assert w[g == 0].sum() == pytest.approx(w[g == 1].sum())
    idx = fa.group_balanced_index(g, seed=0)
    assert np.bincount(g[idx]).tolist() == [90, 90]
    assert set(range(100)) <= set(idx.tolist())  # nothing dropped


def test_train_scenario_runs_with_each_mitigation(toy):
    sc = fa.make_scenario(toy, 0.1, seed=0)
    with pytest.raises(ValueError, match="mitigation must be one of"):
        fa.train_scenario(sc, mitigation="magic")
    for mit in fa.MITIGATIONS:
        model, hist = fa.train_scenario(
            sc, seed=0, mitigation=mit, epochs=1, width=4, augment=False
        )
        s = fa.disease_scores(model, sc)
        assert s.shape == (len(toy.test),) and np.all((s >= 0) & (s <= 1))
        assert hist.config["mitigation"] == mit


# ---------------------------------------------------------------------------------- metrics


def _scores(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic scores where the minority's diseased patients score lower."""
    rng = np.random.default_rng(seed)
    g = np.repeat([0, 1], n // 2)
    y = np.tile([0, 1], n // 2)
    s = rng.normal(0.3 + 0.4 * y - 0.25 * y * g, 0.15).clip(0.001, 0.999)
    return y, s, g


def test_group_metrics_against_hand_computed_rates():
    from sklearn.metrics import roc_auc_score

    y, s, g = _scores()
    gm = fa.group_metrics(y, s, g, threshold=0.5)
    for k, name in fa.GROUP_NAMES.items():
        m = g == k
        pred = s[m] >= 0.5
        row = gm.by_group.loc[name]
        assert row["auc"] == pytest.approx(roc_auc_score(y[m], s[m]))
        assert row["tpr"] == pytest.approx(pred[y[m] == 1].mean())
        assert row["fnr"] == pytest.approx(1 - pred[y[m] == 1].mean())
        assert row["fpr"] == pytest.approx(pred[y[m] == 0].mean())
        assert row["selection_rate"] == pytest.approx(pred.mean())
    assert gm.gap["tpr"] > 0.4 and gm.gap["auc"] > 0.1  # the minority is worse
    tpr_gap = abs(gm.gap["tpr"])
    fpr_gap = abs(gm.gap["fpr"])
    assert gm.equalized_odds_difference == pytest.approx(max(tpr_gap, fpr_gap))
    t = gm.table()
    assert "difference (max - min)" in t.index and "ratio (min / max)" in t.index
    assert gm.row()["tpr_min"] == pytest.approx(gm.by_group.loc[fa.GROUP_NAMES[1], "tpr"])


def test_group_metrics_bootstrap_and_errors():
    y, s, g = _scores()
    gm = fa.group_metrics(y, s, g, n_boot=50, seed=0)
    lo, hi = gm.ci["lo"], gm.ci["hi"]
    assert (lo["tpr"] <= gm.by_group["tpr"] + 1e-12).all()
    assert (gm.by_group["tpr"] <= hi["tpr"] + 1e-12).all()
    assert (hi["auc"] - lo["auc"] > 0).all()
    with pytest.raises(ValueError, match="same length"):
        fa.group_metrics(y[:-1], s, g)
    with pytest.raises(ValueError, match="both 0"):
        fa.group_metrics(y, s, np.zeros_like(g))
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\)"):
        fa.group_metrics(y, s, g, threshold=1.0)


def test_group_thresholds_reduce_the_equalized_odds_gap():
    y, s, g = _scores(seed=1, n=800)
    before = fa.group_metrics(y, s, g)
    pred = fa.group_thresholds(y, s, g, seed=0)
    after = fa.group_metrics(y, s, g, y_pred=pred)
    assert set(np.unique(pred)) <= {0, 1}
    assert after.equalized_odds_difference < 0.5 * before.equalized_odds_difference
    assert after.by_group["auc"].equals(before.by_group["auc"])  # ranking is untouched
    tpr = fa.group_thresholds(
        y, s, g, constraints="true_positive_rate_parity", objective="balanced_accuracy_score"
    )
    assert abs(fa.group_metrics(y, s, g, y_pred=tpr).gap["tpr"]) < 0.5 * before.gap["tpr"]
    with pytest.raises(ValueError, match="folds must be >= 2"):
        fa.group_thresholds(y, s, g, folds=1)


def test_score_classifier_is_a_prefit_passthrough():
    clf = fa.ScoreClassifier()
    p = clf.predict_proba(np.array([[0.2], [0.9]]))
    assert np.allclose(p, [[0.8, 0.2], [0.1, 0.9]])
    assert clf.predict(np.array([[0.2], [0.9]])).tolist() == [0, 1]


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
    assert c["shannon_evenness"] == pytest.approx(fa.shannon_index([95, 5]) / np.log(2))


# ---------------------------------------------------------------------------------- sweep, figures


def test_sweep_summary_figures_and_widget(toy):
    sw = fa.run_sweep(
        toy, [0.1, 0.5], [0], mitigations=("reweight",), epochs=1, width=4, augment=False
    )
    rows = sw.rows
    assert set(rows["method"]) == {"baseline", "reweight", fa.THRESHOLD_METHOD}
    assert len(rows) == 2 * 2 + 1  # baseline + thresholds per share, 1 reweight
    assert rows.loc[rows.share == 0.1, "shannon_evenness"].iloc[0] == pytest.approx(
        fa.shannon_index([180, 20], normalized=True)
    )
    summ = fa.summarize(rows)
    assert {"tpr_gap", "tpr_gap_sd", "n_seeds"} <= set(summ.columns)
    for fig in (
        fa.gap_vs_share(rows, "tpr_gap"),
        fa.score_distributions(
            toy.test.labels.numpy(),
            sw.scores[(0.1, 0, "baseline")],
            sw.scenarios[(0.1, 0)].groups["test"],
        ),
        fa.calibration_curves(
            toy.test.labels.numpy(),
            sw.scores[(0.1, 0, "baseline")],
            sw.scenarios[(0.1, 0)].groups["test"],
            n_bins=4,
        ),
        fa.shift_examples(toy, n=3),
    ):
        assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    with pytest.raises(ValueError, match="unknown metric"):
        fa.gap_vs_share(rows, "nonsense")
    widget, update = fa.explorer(sw, toy)
    table, fig = update(0.1, 0.0)
    assert list(table.index) == sorted(fa.GROUP_NAMES.values())
    # strength 0: the minority's test images are unshifted, the same images as the majority get
    table2, _ = update(0.5, 2.0)
    assert table2.shape == table.shape
    assert len(widget.children) == 2
    with pytest.raises(ValueError, match="mitigations must be among"):
        fa.run_sweep(toy, [0.1], [0], mitigations=("magic",))


def test_real_data_scenario_and_disease_class(breast):
    assert fa.disease_class(breast) == 0  # 0 = malignant, 1 = normal or benign
    sc = fa.make_scenario(breast, 0.05, seed=0)
    assert sc.positive == 0 and sc.test_y.sum() == (breast.test.labels == 0).sum()
    counts = sc.counts().set_index(["split", "group"])
    assert (
        counts.loc[("test", fa.GROUP_NAMES[0]), "diseased"]
        == counts.loc[("test", fa.GROUP_NAMES[1]), "diseased"]
    )
    assert counts.loc[("train", fa.GROUP_NAMES[1]), "images"] == 27  # 5 % of 546, per class
