"""Tests of medlab.explain: shapes, library cross-checks, faithfulness curves, bad inputs.

Real BreastMNIST images; untrained width-4 CNNs and linear models (whose attributions have
closed forms) keep this fast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medlab import explain as ex
from medlab import train as T
from medlab.models import SmallCNN

H = W = 28


class Linear(nn.Module):
    """logits = W x + b on flattened images: every attribution method has a closed form."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.lin = nn.Linear(H * W, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.flatten(1))


@pytest.fixture(scope="module")
def images(breast) -> torch.Tensor:
    """Four real BreastMNIST test images, two of each class, uint8 (4, 1, 28, 28)."""
    y = breast.test.labels.numpy()
    idx = np.r_[np.flatnonzero(y == 0)[:2], np.flatnonzero(y == 1)[:2]]
    return breast.test.images[idx]


@pytest.fixture(scope="module")
def cnn() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(1, 2, width=4).eval()


KW = {
    "Grad-CAM": {},
    "Integrated gradients": {"n_steps": 8},
    "Occlusion": {"window": 4, "stride": 4},
    "LIME": {"num_samples": 40, "patch": 7},
}


def _kw(name: str, images: torch.Tensor) -> dict:
    if name == "SHAP (expected gradients)":
        return {"background": images, "nsamples": 8}
    return KW[name]


@pytest.mark.parametrize("name", list(ex.METHODS))
def test_every_method_same_shape_and_deterministic(name, cnn, images):
    a = ex.attribute(name, cnn, images, 1, **_kw(name, images))
    b = ex.attribute(name, cnn, images, [1, 1, 1, 1], **_kw(name, images))
    assert a.shape == (4, H, W) and a.dtype == np.float32
    assert np.isfinite(a).all() and np.abs(a).sum() > 0
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # same seed -> same map
    assert not cnn.training


@pytest.mark.parametrize("name", list(ex.METHODS))
def test_every_method_restores_train_mode(name, images):
    """Maps are computed in eval mode (no dropout) and the caller's train mode comes back."""
    torch.manual_seed(0)
    model = SmallCNN(1, 2, width=4, dropout=0.5).eval()
    want = ex.attribute(name, model, images, 1, **_kw(name, images))
    model.train()
    got = ex.attribute(name, model, images, 1, **_kw(name, images))
    assert model.training and model.dropout.training
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)  # dropout was off


def test_explain_uses_the_one_inference_helper(cnn, images):
    assert ex._eval_mode is T.eval_mode and not hasattr(ex, "embeddings")
    x = ex._as_input(images)
    with torch.no_grad():
        ref = cnn(x)
    np.testing.assert_allclose(
        ex._logits(cnn, x, batch_size=3).numpy(), ref.numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(ex._targets(cnn, x, None).numpy(), ref.argmax(1).numpy())


def test_integrated_gradients_is_exact_for_a_linear_model(images):
    model = Linear()
    x = ex._as_input(images)
    a = ex.integrated_gradients(model, images, 1, baseline=-1.0)
    w = model.lin.weight[1].detach().view(H, W).numpy()
    expected = w[None] * (x[:, 0].numpy() + 1.0)  # w * (x - baseline)
    np.testing.assert_allclose(a, expected, rtol=1e-4, atol=1e-5)


def test_integrated_gradients_completeness_on_a_cnn(cnn, images):
    """sum of the map = logit(x) - logit(baseline). GroupNorm makes the path steep near a
    constant baseline, so the Riemann sum needs many steps (64 steps are ~30 % off here)."""
    a = ex.integrated_gradients(cnn, images, 0, n_steps=1024)
    x = ex._as_input(images)
    with torch.no_grad():
        diff = cnn(x)[:, 0] - cnn(torch.full_like(x, -1.0))[:, 0]
    np.testing.assert_allclose(a.sum((1, 2)), diff.numpy(), rtol=0.02, atol=0.005)


def test_occlusion_one_pixel_window_is_exact_for_a_linear_model(images):
    model = Linear(1)
    a = ex.occlusion(model, images, 0, window=1, stride=1, baseline=-1.0)
    x = ex._as_input(images)[:, 0].numpy()
    w = model.lin.weight[0].detach().view(H, W).numpy()
    np.testing.assert_allclose(a, w[None] * (x + 1.0), rtol=1e-4, atol=1e-5)


def test_occlusion_in_chunks_equals_captum_in_one_call(cnn, breast):
    """medlab runs captum's Occlusion on chunks of 16 images (bounded memory): on 20 real images
    (two chunks) the maps equal one captum call on all of them."""
    from captum.attr import Occlusion

    x = breast.test.images[:20]
    t = torch.tensor([0, 1] * 10)
    ours = ex.occlusion(cnn, x, t, window=4, stride=4)
    with torch.no_grad():
        ref = Occlusion(cnn).attribute(
            ex._as_input(x),
            sliding_window_shapes=(1, 4, 4),
            strides=(1, 4, 4),
            baselines=ex.BLACK,
            target=t,
            perturbations_per_eval=64,
        )
    np.testing.assert_allclose(ours, ref[:, 0].numpy(), rtol=1e-5, atol=1e-6)


def test_gradcam_equals_captum(cnn, images):
    """medlab's Grad-CAM (written out in notebook 04) == captum's LayerGradCam, upsampled with
    LayerAttribution.interpolate: the same numbers, bit for bit, with and without the ReLU."""
    from captum.attr import LayerAttribution, LayerGradCam

    x = ex._as_input(images)
    for target, relu in ((1, False), (0, True), ([0, 1, 1, 0], False)):
        t = torch.as_tensor(np.broadcast_to(target, (len(x),)).copy())
        with torch.enable_grad():
            ref = LayerGradCam(cnn, cnn.last_conv).attribute(x, target=t, relu_attributions=relu)
        ref = LayerAttribution.interpolate(ref, (H, W), interpolate_mode="bilinear")
        np.testing.assert_array_equal(
            ex.gradcam(cnn, images, target, relu=relu), ref[:, 0].detach().numpy()
        )
    assert ex.gradcam(cnn, images, 1, relu=True).min() >= 0


def test_gradcam_hook_is_removed(cnn, images):
    """The forward hook that catches the layer's output is removed afterwards, also when the
    explanation fails (here: a layer the model never runs)."""
    ex.gradcam(cnn, images)
    assert not cnn.last_conv._forward_hooks
    stray = nn.Conv2d(1, 1, 3)
    with pytest.raises(IndexError):
        ex.gradcam(cnn, images, layer=stray)
    assert not stray._forward_hooks


def test_shap_expected_gradients_for_a_linear_model(images):
    """For a linear model, expected gradients = w * (x - E[background]) (up to sampling)."""
    model = Linear(2)
    bg = images[:2]
    a = ex.shap_gradient(model, images, 1, background=bg, nsamples=200, seed=0)
    x, b = ex._as_input(images)[:, 0].numpy(), ex._as_input(bg)[:, 0].numpy().mean(0)
    w = model.lin.weight[1].detach().view(H, W).numpy()
    r = np.corrcoef(a.ravel(), (w[None] * (x - b[None])).ravel())[0, 1]
    assert r > 0.9, r
    state = np.random.get_state()[1][:5].copy()
    ex.shap_gradient(model, images, 1, background=bg, nsamples=4, seed=3)
    np.testing.assert_array_equal(np.random.get_state()[1][:5], state)  # global RNG untouched


def test_lime_recovers_the_sign_of_a_linear_model():
    """7x7 superpixels; the linear model rewards superpixel 0 and punishes superpixel 6."""
    model = Linear(3)
    with torch.no_grad():
        model.lin.weight.zero_()
        model.lin.bias.zero_()
        w = torch.zeros(H, W)
        w[0:7, 0:7], w[7:14, 14:21] = 0.1, -0.1
        model.lin.weight[1] = w.flatten()
    img = torch.full((1, 1, H, W), 255, dtype=torch.uint8)
    a = ex.lime(model, img, 1, num_samples=300, patch=7, hide_value=-1.0, seed=0)[0]
    assert a[0, 0] > 0 > a[10, 17]
    assert abs(a[24, 24]) < 0.1 * a[0, 0]
    assert np.allclose(a[0:7, 0:7], a[0, 0])  # one weight per superpixel


def test_deletion_curve_endpoints_and_order(images):
    model = Linear(4)
    x = ex._as_input(images)
    t = torch.tensor([1, 1, 1, 1])
    exact = ex.integrated_gradients(model, images, t)
    fr, s = ex.deletion_curve(model, images, exact, t, steps=8)
    with torch.no_grad():
        p0 = torch.softmax(model(x), 1)[:, 1].numpy()
        p1 = torch.softmax(model(torch.full_like(x, -1.0)), 1)[:, 1].numpy()
    assert fr.shape == (9,) and s.shape == (4, 9)
    np.testing.assert_allclose(s[:, 0], p0, rtol=1e-5)
    np.testing.assert_allclose(s[:, -1], p1, rtol=1e-5)
    # deleting the exact evidence first removes the score fastest: below random orders and
    # below the reversed order
    _, rnd = ex.deletion_curve(model, images, ex.random_maps((4, H, W), seed=1), t, steps=8)
    _, rev = ex.deletion_curve(model, images, -exact, t, steps=8)
    d = ex.curve_auc(fr, s)
    assert (d < ex.curve_auc(fr, rnd)).all() and (d < ex.curve_auc(fr, rev)).all()
    fr_i, ins = ex.deletion_curve(model, images, exact, t, mode="insertion", steps=8)
    np.testing.assert_allclose(ins[:, 0], p1, rtol=1e-5)
    np.testing.assert_allclose(ins[:, -1], p0, rtol=1e-5)
    assert (ex.curve_auc(fr_i, ins) > ex.curve_auc(fr, rnd)).all()


def test_curve_auc_matches_sklearn():
    from sklearn.metrics import auc

    rng = np.random.default_rng(0)
    fr = np.linspace(0, 1, 11)
    s = rng.random((3, 11))
    np.testing.assert_allclose(ex.curve_auc(fr, s), [auc(fr, row) for row in s])


def test_faithfulness_table(images):
    model = Linear(5)
    maps = {"IG": ex.integrated_gradients(model, images, 1)}
    table, curves = ex.faithfulness(model, images, maps, 1, steps=4, n_random=2)
    assert list(table.index) == ["IG", "random"]
    assert table.loc["IG", "deletion_auc"] < table.loc["random", "deletion_auc"]
    assert table.loc["IG", "insertion_auc"] > table.loc["random", "insertion_auc"]
    assert curves["IG"]["deletion"].shape == (4, 5) and curves["fractions"].shape == (5,)


def test_randomize_model(cnn, images):
    r1, r2 = ex.randomize_model(cnn, seed=1), ex.randomize_model(cnn, seed=1)
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    r3 = ex.randomize_model(cnn, seed=2)
    for k, v in cnn.state_dict().items():
        assert torch.equal(v, before[k])  # the original is untouched
    w = "features.0.0.weight"
    assert torch.equal(r1.state_dict()[w], r2.state_dict()[w])
    assert not torch.equal(r1.state_dict()[w], r3.state_dict()[w])
    assert not torch.equal(r1.state_dict()[w], cnn.state_dict()[w])
    with pytest.raises(ValueError, match="reset_parameters"):
        ex.randomize_model(nn.ReLU())


def test_map_similarity_against_scipy_and_skimage():
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, H, W)), rng.standard_normal((3, H, W))
    np.testing.assert_allclose(ex.map_similarity(a, a), 1.0)
    np.testing.assert_allclose(ex.map_similarity(a, -a), 1.0)  # absolute values
    s = ex.map_similarity(a, b)
    assert s[1] == pytest.approx(spearmanr(np.abs(a[1]).ravel(), np.abs(b[1]).ravel())[0])
    assert np.abs(s).max() < 0.4
    ss = ex.map_similarity(a, b, metric="ssim")
    ref = structural_similarity(
        np.abs(a[0]) / np.abs(a[0]).max(),
        np.abs(b[0]) / np.abs(b[0]).max(),
        data_range=1.0,
        win_size=7,
    )
    assert ss[0] == pytest.approx(ref)
    assert np.isnan(ex.map_similarity(np.zeros((1, H, W)), a[:1])[0])  # constant: undefined
    with pytest.raises(ValueError, match="metric"):
        ex.map_similarity(a, b, metric="pearson")
    with pytest.raises(ValueError, match="same shape"):
        ex.map_similarity(a, b[:2])


def test_embeddings_pca_and_separability(cnn, images):
    e = T.embeddings(cnn, images)
    assert e.shape == (4, 16)
    with torch.no_grad():
        np.testing.assert_allclose(e, cnn.embed(ex._as_input(images)).numpy(), rtol=1e-5, atol=1e-6)
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1], 50)
    feats = rng.standard_normal((100, 6))
    coords, ratio = ex.pca(feats, 2)
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    ref = PCA(2).fit(StandardScaler().fit_transform(feats))
    np.testing.assert_allclose(ratio, ref.explained_variance_ratio_)
    assert coords.shape == (100, 2)
    assert 0.3 < ex.group_separability(feats, groups) < 0.7
    feats[groups == 1, 0] += 4.0
    assert ex.group_separability(feats, groups) > 0.95
    with pytest.raises(ValueError, match="n_components"):
        ex.pca(feats, 7)
    with pytest.raises(ValueError, match="group labels"):
        ex.group_separability(feats, groups[:10])
    with pytest.raises(TypeError, match="embed"):
        T.embeddings(Linear(), images)


def test_attribution_stats_by_hand():
    m = np.zeros((2, 8, 8))
    m[0, 3, 3] = 2.0  # centre (the central 4 x 4 square is rows/cols 2..5)
    m[0, 0, 0] = 2.0  # corner
    m[0, 7, 7] = -1.0  # negative evidence counts in the magnitude only
    m[1, 4, 4] = 1.0
    st = ex.attribution_stats(m, center=0.5)
    np.testing.assert_allclose(st["evidence"], [4.0, 1.0])
    np.testing.assert_allclose(st["magnitude"], [5.0, 1.0])
    np.testing.assert_allclose(st["center_share"], [0.5, 1.0])
    table = ex.group_attribution_stats(m, np.array([0, 1]), {0: "a", 1: "b"})
    assert table.loc["a", "evidence"] == 4.0 and table.loc["b", "n"] == 1
    with pytest.raises(ValueError, match="center"):
        ex.attribution_stats(m, center=0)
    with pytest.raises(ValueError, match="group labels"):
        ex.group_attribution_stats(m, np.array([0]))


def test_plot_maps(cnn, images):
    maps = {"Grad-CAM": ex.gradcam(cnn, images), "IG": ex.integrated_gradients(cnn, images)}
    fig = ex.plot_maps(images, maps, row_labels=["a", "b", "c", "d"], title="t")
    assert fig.layout.title.text == "t" and fig.layout.xaxis.title.text
    assert len(fig.data) == 4 * 3
    with pytest.raises(ValueError, match="empty"):
        ex.plot_maps(images, {})
    with pytest.raises(ValueError, match="shape"):
        ex.plot_maps(images, {"x": np.zeros((4, 3, 3))})


def test_bad_inputs(cnn, images):
    with pytest.raises(ValueError, match="target"):
        ex.gradcam(cnn, images, 2)
    with pytest.raises(ValueError, match="one class per image"):
        ex.gradcam(cnn, images, [0, 1])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ex.gradcam(cnn, images[0])
    with pytest.raises(ValueError, match="empty"):
        ex.gradcam(cnn, images[:0])
    with pytest.raises(ValueError, match="last_conv"):
        ex.gradcam(Linear(), images)
    with pytest.raises(ValueError, match="unknown method"):
        ex.attribute("saliency", cnn, images)
    with pytest.raises(ValueError, match="window"):
        ex.occlusion(cnn, images, window=H + 1)
    with pytest.raises(ValueError, match="n_steps"):
        ex.integrated_gradients(cnn, images, n_steps=1)
    with pytest.raises(ValueError, match="num_samples"):
        ex.lime(cnn, images, num_samples=2)
    with pytest.raises(ValueError, match="background"):
        ex.shap_gradient(cnn, images, background=torch.zeros(2, 1, 5, 5, dtype=torch.uint8))
    maps = np.zeros((4, H, W))
    with pytest.raises(ValueError, match="mode"):
        ex.deletion_curve(cnn, images, maps, mode="erase")
    with pytest.raises(ValueError, match="steps"):
        ex.deletion_curve(cnn, images, maps, steps=0)
    with pytest.raises(ValueError, match="one map per image"):
        ex.deletion_curve(cnn, images, maps[:2])
    with pytest.raises(ValueError, match="NaN"):
        ex.deletion_curve(cnn, images, maps * np.nan)
