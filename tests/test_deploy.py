"""medlab.deploy: cost, pruning, int8 quantisation, calibration, deferral and conformal sets,
each cross-checked against a library or against the algorithm written out."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import data_slice
from torchmetrics.classification import MulticlassCalibrationError

import medlab
from medlab import deploy as dp
from medlab.data import Split
from medlab.models import ResNet18, SmallCNN, count_parameters
from medlab.train import predict, to_input


def _probs(n: int, c: int, seed: int, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * scale
    y = np.array([rng.choice(c, p=p) for p in dp.softmax(logits / 2)])  # overconfident logits
    return logits, y


# --------------------------------------------------------------------------------------------
# calibration


@pytest.mark.parametrize("n_classes,n_bins,seed", [(2, 15, 0), (2, 10, 1), (3, 15, 2), (5, 7, 3)])
def test_ece_matches_torchmetrics(n_classes, n_bins, seed):
    logits, y = _probs(500, n_classes, seed)
    p = dp.softmax(logits)
    p[0] = np.eye(n_classes)[0]  # a confidence of exactly 1.0 (the last bin's edge)
    ref = MulticlassCalibrationError(num_classes=n_classes, n_bins=n_bins, norm="l1")
    expected = float(ref(torch.tensor(p, dtype=torch.float64), torch.tensor(y)))
    assert dp.ece(y, p, n_bins=n_bins) == pytest.approx(expected, abs=1e-6)


def test_reliability_table_adds_up():
    logits, y = _probs(300, 2, 4)
    t = dp.reliability(y, dp.softmax(logits), n_bins=10)
    assert t.n.sum() == 300 and (t.confidence >= 0.5 - 1e-12).all()
    manual = (t.n / 300 * (t.accuracy - t.confidence).abs()).sum()
    assert t.attrs["ece"] == pytest.approx(manual)


def test_temperature_recovers_a_known_temperature_and_lowers_ece():
    logits, y = _probs(4000, 3, 5)  # labels drawn from softmax(logits / 2)
    t = dp.fit_temperature(logits, y)
    assert t == pytest.approx(2.0, rel=0.15)
    assert dp.ece(y, dp.softmax(logits, t)) < 0.5 * dp.ece(y, dp.softmax(logits))
    # temperature never changes the predicted class
    assert (dp.softmax(logits, t).argmax(1) == logits.argmax(1)).all()


# --------------------------------------------------------------------------------------------
# selective prediction


def test_coverage_risk_by_hand():
    logits, y = _probs(200, 2, 6)
    p = dp.softmax(logits)
    c = dp.coverage_risk(y, p)
    assert len(c) == 200 and c.coverage.iloc[-1] == 1.0
    assert c.risk.iloc[-1] == pytest.approx(float((p.argmax(1) != y).mean()))
    keep = p.max(1) >= c.confidence.iloc[149]  # the 150 most confident cases
    assert c.risk.iloc[149] == pytest.approx(float((p.argmax(1) != y)[keep].mean()))
    assert c.risk.iloc[149] < c.risk.iloc[-1]  # these logits carry signal: deferring helps


def test_deferral_threshold_defers_the_requested_share():
    p = dp.softmax(_probs(1000, 2, 7)[0])
    thr = dp.deferral_threshold(p, 0.15)
    assert abs((p.max(1) < thr).mean() - 0.15) <= 0.002


# --------------------------------------------------------------------------------------------
# pruning and quantisation


def _trained(breast):
    d = data_slice(breast, (200, 60, 100))
    model, _ = medlab.train_model(d, "smallcnn", seed=0, model_kwargs={"width": 16}, epochs=2,
                                  batch_size=32, desc="test")  # fmt: skip
    return d, model


def test_prune_groups_is_really_smaller_and_keeps_kept_channels(breast):
    torch.manual_seed(0)
    model = SmallCNN(width=16).eval()
    x = to_input(breast.test.images[:8])
    same = dp.prune_groups(model, 0.0)
    assert torch.equal(same(x), model(x))
    sizes = [dp.state_dict_bytes(model)]
    for amount in (0.25, 0.5, 0.75):
        p = dp.prune_groups(model, amount)
        conv, norm = p.features[0][0], p.features[0][1]
        assert norm.num_groups == 8 - round(8 * amount) and conv.out_channels == 2 * norm.num_groups
        assert count_parameters(p) < count_parameters(model)
        sizes.append(dp.state_dict_bytes(p))
        # the kept channels of the first block compute exactly what they did before
        kept = [i for i in range(16) if any(torch.equal(model.features[0][0].weight[i], w)
                                            for w in conv.weight)]  # fmt: skip
        assert len(kept) == conv.out_channels
        with torch.no_grad():
            assert torch.allclose(p.features[0](x), model.features[0](x)[:, kept], atol=1e-6)
        assert p(x).shape == (8, 2)
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 0.2 * sizes[0]


def test_quantize_int8_really_quantises_every_conv(breast):
    d, model = _trained(breast)
    q = dp.quantize_int8(model, d.val)
    layers = dp.int8_layers(q)
    convs = layers[layers.type.isin(["Conv2d", "ConvReLU2d", "Linear"])]
    assert len(convs) == 7 and (convs.computes_in == "int8").all()
    assert (convs.weight_dtype == "qint8").all()
    assert set(layers[layers.computes_in == "float32"].type) == {"GroupNorm"}
    assert not any(type(m) is torch.nn.Conv2d for m in q.modules())  # no float conv left
    assert dp.state_dict_bytes(q) < 0.5 * dp.state_dict_bytes(model)
    pf, pq = predict(model, d.test), predict(q, d.test)
    assert np.abs(pf - pq).max() < 0.1 and (pf.argmax(1) == pq.argmax(1)).mean() >= 0.9
    # a ResNet-18 (BatchNorm) is quantised completely: BN folds into the int8 convolutions
    rl = dp.int8_layers(dp.quantize_int8(ResNet18(), d.val.images[:32]))
    assert len(rl) == 21 and (rl.computes_in == "int8").all()


def test_measure_cost(breast):
    small, big = SmallCNN(width=8), ResNet18()
    a = dp.measure_cost(small, breast.test.images, batch_size=16, warmup=1, repeats=3)
    b = dp.measure_cost(big, breast.test.images, batch_size=16, warmup=1, repeats=3)
    assert a.params == count_parameters(small) and b.params == count_parameters(big)
    assert a.size_mb < b.size_mb and a.latency_ms > 0 and a.throughput > 0
    assert b.size_mb == pytest.approx(4 * b.params / 1e6, rel=0.02)  # float32: 4 bytes each


# --------------------------------------------------------------------------------------------
# conformal prediction


def _mapie_sets(model, cal, test, confidence_level, temperature=1.0):
    from mapie.classification import SplitConformalClassifier

    est = dp.TorchClassifier(model, n_classes=cal.n_classes, temperature=temperature)
    mapie = SplitConformalClassifier(
        estimator=est, confidence_level=confidence_level, conformity_score="lac", prefit=True
    )
    mapie.conformalize(cal.images.numpy(), cal.numpy_labels().reshape(-1))
    return np.asarray(mapie.predict_set(test.images.numpy())[1][:, :, 0], dtype=bool)


def test_conformal_sets_are_mapies_exactly_and_cover(breast):
    """notebook 09's split conformal cell (conformal_quantile, prediction_sets), as
    dp.conformal_sets runs it, gives exactly MAPIE's SplitConformalClassifier(prefit=True) sets."""
    d, model = _trained(breast)
    alpha = 0.1
    sets, q_hat = dp.conformal_sets(model, d.val, d.test, confidence_level=1 - alpha)
    assert np.array_equal(sets, _mapie_sets(model, d.val, d.test, 1 - alpha))
    assert sets.any(1).all() and 0 < q_hat < 1
    # and on other calibrations: sizes, confidence levels, a temperature
    for k, (n_cal, level, t) in enumerate([(20, 0.9, 1.0), (33, 0.8, 0.7), (60, 0.95, 2.0)]):
        perm = torch.randperm(len(d.test), generator=torch.Generator().manual_seed(k))
        cal, test = d.test.subset(perm[:n_cal]), d.test.subset(perm[n_cal:])
        ours, _ = dp.conformal_sets(model, cal, test, confidence_level=level, temperature=t)
        assert np.array_equal(ours, _mapie_sets(model, cal, test, level, t)), (n_cal, level, t)
    # the guarantee: averaged over random calibration/test splits of exchangeable data
    pooled = Split(
        d.val.name,
        "val+test",
        torch.cat([d.val.images, d.test.images]),
        torch.cat([d.val.labels, d.test.labels]),
        d.val.task,
        d.val.label_names,
    )
    covers = []
    for s in range(10):
        perm = torch.randperm(len(pooled), generator=torch.Generator().manual_seed(s))
        cal, test = pooled.subset(perm[:80]), pooled.subset(perm[80:])
        st, _ = dp.conformal_sets(model, cal, test, confidence_level=1 - alpha)
        covers.append(st[np.arange(len(test)), test.numpy_labels().reshape(-1)].mean())
    assert abs(np.mean(covers) - (1 - alpha)) <= dp.coverage_error_bound(80, 80 * 10, alpha)


def test_oversight_calibrates_on_test_halves_and_shows_a_shift_breaking_validation(pneumonia):
    d = data_slice(pneumonia, (400, 200, 10))
    model, _ = medlab.train_model(d, "smallcnn", seed=2, model_kwargs={"width": 16}, epochs=6,
                                  batch_size=32, desc="test")  # fmt: skip
    test, groups, alpha = pneumonia.test, np.arange(len(pneumonia.test)) % 2, 0.1
    out = dp.oversight(model, d.val, test, groups, confidence_level=1 - alpha, seed=5)
    # by hand: two random halves of the test split, each calibrated on the other
    y = test.numpy_labels().reshape(-1)
    perm = np.random.default_rng(5).permutation(len(y))
    halves, covered = (perm[: len(y) // 2], perm[len(y) // 2 :]), np.zeros(len(y), bool)
    t = dp.fit_temperature(predict(model, d.val, logits=True), d.val.numpy_labels().ravel())
    for cal, held in (halves, halves[::-1]):
        sets, _ = dp.conformal_sets(model, test.subset(cal), test.subset(held),
                                    confidence_level=1 - alpha, temperature=t)  # fmt: skip
        covered[held] = sets[np.arange(len(held)), y[held]]
    assert out["coverage"] == pytest.approx(covered.mean())
    assert out["coverage_g1"] == pytest.approx(covered[groups == 1].mean())
    assert out["n_calibration"] == len(y) // 2 and out["n_test"] == len(y)
    # a shift between validation and test (darker, noisier test images): calibrated on the other
    # test half the coverage holds; calibrated on validation it falls short of the target
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(test.images.shape, generator=g) * 40
    dark = (test.images.float() * 0.6 + noise).clamp(0, 255).to(torch.uint8)
    shifted = Split(test.name, "test", dark, test.labels, test.task, test.label_names)
    out = dp.oversight(model, d.val, shifted, groups, confidence_level=1 - alpha, seed=5)
    n = len(y)
    assert abs(out["coverage"] - (1 - alpha)) <= dp.coverage_error_bound(n // 2, n, alpha)
    assert out["coverage_val"] < 1 - alpha - dp.coverage_error_bound(len(d.val), n, alpha)


def test_conformal_quantile_is_the_split_conformal_order_statistic():
    scores = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0])
    # n = 10, alpha = 0.2: the ceil(11 * 0.8) = 9th smallest score
    assert dp.conformal_quantile(scores, 0.2) == 0.8
    assert dp.conformal_quantile(scores, 0.5) == 0.5  # ceil(5.5) = 6th smallest
    with pytest.raises(ValueError, match="too few"):
        dp.conformal_quantile(scores, 0.05)  # ceil(11 * 0.95) = 11 > 10
    p = np.array([[0.7, 0.3], [0.5, 0.5]])
    assert dp.prediction_sets(p, 0.5).tolist() == [[True, False], [True, True]]


def test_coverage_error_bound():
    b = dp.coverage_error_bound(78, 156, 0.1)
    assert b == pytest.approx(2 * math.sqrt(0.09 * (1 / 80 + 1 / 156)))


# --------------------------------------------------------------------------------------------
# bad inputs name the fix


def _oversight_on(n_test: int, *, groups: int | None = None) -> dict:
    def split(name: str, n: int) -> Split:
        labels = torch.arange(n).remainder(2)
        return Split("tiny", name, torch.zeros(n, 1, 28, 28, dtype=torch.uint8), labels,
                     "binary-class", {0: "a", 1: "b"})  # fmt: skip

    g = np.zeros(n_test if groups is None else groups, int)
    return dp.oversight(SmallCNN(width=8), split("val", 8), split("test", n_test), g)


def _conformal_on(n_cal: int) -> tuple:
    def split(name: str, n: int) -> Split:
        labels = torch.arange(n).remainder(2)
        return Split("tiny", name, torch.zeros(n, 1, 28, 28, dtype=torch.uint8), labels,
                     "binary-class", {0: "a", 1: "b"})  # fmt: skip

    return dp.conformal_sets(SmallCNN(width=8), split("val", n_cal), split("test", 4))


@pytest.mark.parametrize(
    "call,exc,words",
    [
        (lambda: dp.prune_groups(ResNet18(), 0.5), TypeError, "SmallCNN"),
        (lambda: dp.prune_groups(SmallCNN(width=8), 1.0), ValueError, "[0, 1)"),
        (lambda: dp.prune_groups(SmallCNN(width=8, norm="batch"), 0.5), TypeError, "GroupNorm"),
        (
            lambda: dp.quantize_int8(SmallCNN(width=8), torch.zeros(0, 1, 28, 28)),
            ValueError,
            "non-empty",
        ),
        (
            lambda: dp.quantize_int8(SmallCNN(width=8), torch.zeros(2, 1, 28, 28), backend="nope"),
            ValueError,
            "choose one of",
        ),
        (lambda: dp.ece([0, 1], np.array([[2.0, -1.0], [0.5, 0.5]])), ValueError, "softmax"),
        (lambda: dp.ece([0, 1, 1], np.full((2, 2), 0.5)), ValueError, "len(y_true)"),
        (lambda: dp.deferral_threshold(np.full((3, 2), 0.5), 0), ValueError, "e.g. 0.15"),
        (
            lambda: dp.measure_cost(
                SmallCNN(width=8), torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
            ),
            ValueError,
            "batch_size",
        ),
        (lambda: dp.conformal_sets(SmallCNN(width=8), None, None), TypeError, "data.val"),
        (lambda: _oversight_on(3), ValueError, "at least 4 test images"),
        (lambda: _conformal_on(5), ValueError, "5 calibration cases are too few"),
        (lambda: dp.ece([0, 1], np.full((2, 2), 0.5), n_bins=0), ValueError, "n_bins"),
        (lambda: _oversight_on(8, groups=5), ValueError, "test_groups has 5 entries"),
        (
            lambda: dp.TorchClassifier().predict_proba(np.zeros((1, 1, 28, 28))),
            ValueError,
            "TorchClassifier(model)",
        ),
    ],  # fmt: skip
)
def test_bad_inputs_name_the_fix(call, exc, words):
    with pytest.raises(exc) as e:
        call()
    assert words.lower() in str(e.value).lower()


def test_compare_latency_interleaves_and_keeps_the_fastest_turn():
    import time as _time

    from torch import nn

    class Sleepy(nn.Module):
        def __init__(self, seconds):
            super().__init__()
            self.seconds = seconds

        def forward(self, x):
            _time.sleep(self.seconds)
            return x

    imgs = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    t = dp.compare_latency({"slow": Sleepy(0.004), "fast": Sleepy(0.0)}, imgs, rounds=4,
                           repeats=2, warmup=0)  # fmt: skip
    assert list(t.index) == ["slow", "fast"] and (t["rounds"] == 4).all()
    assert t.loc["slow", "min_ms"] >= 4.0 and t.loc["fast", "min_ms"] < 4.0
    assert t.loc["fast", "rounds_fastest"] == 4 and t.loc["slow", "rounds_fastest"] == 0
    assert (t.min_ms <= t.median_ms).all()
    with pytest.raises(ValueError, match="non-empty mapping"):
        dp.compare_latency({}, imgs)
    with pytest.raises(TypeError, match="nn.Module"):
        dp.compare_latency({"a": lambda x: x}, imgs)


def test_forward_flops_counts_a_convolution_by_hand():
    from torch import nn

    conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False))
    imgs = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    # one image: 28*28 outputs x 4 channels x (3*3*1) multiply-adds x 2 operations each
    assert dp.forward_flops(conv, imgs) == 28 * 28 * 4 * 9 * 2
    from medlab.models import ResNet18, SmallCNN

    assert dp.forward_flops(ResNet18(1, 2), imgs) > 10 * dp.forward_flops(SmallCNN(1, 2), imgs)
    with pytest.raises(TypeError, match="nn.Module"):
        dp.forward_flops("resnet", imgs)
