"""Lesson 07 (synthetic data): generators, the scorecard metrics on known inputs (at one equal
n), the held-out real images, and the Fréchet distance cross-checked against torchmetrics'
FrechetInceptionDistance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import data_slice

import medlab
from medlab import privacy, scenario
from medlab import synthetic as sy
from medlab.models import SmallCNN
from medlab.utils import seed_everything


@pytest.fixture(scope="module")
def small(pneumonia):
    return data_slice(pneumonia, (96, 32, 64), seed=1)


# ---------------------------------------------------------------- fidelity


def test_frechet_matches_torchmetrics_fid_with_a_custom_feature_extractor(small):
    from torchmetrics.image.fid import FrechetInceptionDistance

    seed_everything(0)
    fx = sy.FeatureExtractor(SmallCNN(1, 2, width=8))
    assert isinstance(fx.num_features, int) and fx.num_features == 32
    real, fake = small.train.images, small.test.images.flip(-1)  # two different image sets
    fid = FrechetInceptionDistance(feature=fx)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    ours = sy.frechet_distance(fx(real).numpy(), fx(fake).numpy())
    assert ours > 0
    assert ours == pytest.approx(float(fid.compute()), rel=1e-4, abs=1e-8)


def test_frechet_on_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (20_000, 2))
    b = rng.normal(0, 1, (20_000, 2)) * np.array([2.0, 1.0]) + np.array([3.0, 0.0])
    # closed form for diagonal covariances: |mu_a - mu_b|^2 + sum (sd_a - sd_b)^2 = 9 + 1
    assert sy.frechet_distance(a, b) == pytest.approx(10.0, rel=0.03)
    assert sy.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fidelity_scores_compare_at_one_n_and_refuse_a_smaller_set():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 4)), rng.normal(size=(120, 4))
    out = sy.fidelity_scores(real, fake, n_half=5)
    assert out["n"] == 120  # the larger set is cut to the smaller one's size
    assert sy.fidelity_scores(real, fake, n=60, n_half=5)["n"] == 60
    assert set(out) >= {"frechet", "frechet_spread", "frechet_inf", "coverage", "precision"}
    with pytest.raises(ValueError, match="same n"):
        sy.fidelity_scores(real, fake, n=121)
    # at n == both sizes nothing is left out: FD is the plain FD of the two sets
    same = sy.fidelity_scores(real[:120], fake, n=120, n_half=5)
    assert same["frechet"] == pytest.approx(sy.frechet_distance(real[:120], fake))


def test_frechet_depends_on_n_and_the_extrapolation_removes_the_bias():
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(16, 16)) / 4.0

    def draw(m, shift=0.0):
        return rng.normal(size=(m, 16)) @ mix + shift

    same = [sy.fidelity_scores(draw(200), draw(200), n_half=20, seed=k) for k in range(10)]
    fd, half, inf = (
        np.mean([s[k] for s in same]) for k in ("frechet", "frechet_half", "frechet_inf")
    )
    assert half > 1.6 * fd > 0.3  # same distribution: FD ~ c / n, about twice at n/2
    assert abs(inf) < 0.25 * fd  # extrapolated to 1/n = 0: near the true 0
    shifted = [sy.fidelity_scores(draw(200), draw(200, 0.25), n_half=20, seed=k)["frechet_inf"]
               for k in range(10)]  # fmt: skip
    assert np.mean(shifted) == pytest.approx(16 * 0.25**2, abs=0.15)  # true FD: |mu|^2 = 1


def test_prdc_identical_sets_and_silence(capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    out = sy.prdc_scores(x, x.copy(), nearest_k=5)
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["coverage"] == 1.0
    assert out["density"] == pytest.approx(1.0)
    far = sy.prdc_scores(x, x + 100.0, nearest_k=5)
    assert far["precision"] == 0.0 and far["coverage"] == 0.0
    assert capsys.readouterr().out == ""


def test_prdc_matches_the_library_and_caps_n():
    from prdc import compute_prdc

    rng = np.random.default_rng(1)
    r, f = rng.normal(size=(150, 3)), rng.normal(0.3, 1.0, size=(120, 3))
    ref = compute_prdc(real_features=r, fake_features=f, nearest_k=4)
    ours = sy.prdc_scores(r, f, nearest_k=4)
    assert ours == pytest.approx({k: float(v) for k, v in ref.items()})
    capped = sy.prdc_scores(rng.normal(size=(400, 3)), f, nearest_k=4, max_n=100)
    assert set(capped) == {"precision", "recall", "density", "coverage"}


# ---------------------------------------------------------------- diversity


@pytest.mark.parametrize(
    "labels, k, shannon, gini",
    [
        ([0, 1, 2, 3] * 5, 4, math.log(4), 0.0),  # uniform: maximal H, no inequality
        ([2] * 10, 4, 0.0, 0.75),  # one class only: H = 0, G = 1 - 1/K
        ([0, 1, 1, 1], 2, -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), 0.25),
    ],
)
def test_class_diversity_on_known_distributions(labels, k, shannon, gini):
    d = sy.class_diversity(np.array(labels), k)
    assert d["shannon"] == pytest.approx(shannon)
    assert d["gini"] == pytest.approx(gini)
    assert d["evenness"] == pytest.approx(shannon / math.log(k))


def test_within_class_variety():
    same = np.ones((6, 3))
    assert sy.within_class_variety(same, [0, 0, 0, 1, 1, 1]) == 0.0
    two = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [0.0, 1.0]])
    assert sy.within_class_variety(two, [0, 0, 1, 1]) == pytest.approx((5.0 + 1.0) / 2)


# ---------------------------------------------------------------- privacy


def test_dcr_finds_copies_and_distances(small):
    ref = small.train.images[:20]
    q = torch.cat([ref[7:8], torch.zeros_like(ref[:1])])
    d, idx = sy.dcr(q, ref, batch_size=1)
    assert d[0] == 0.0 and idx[0] == 7
    flat = ref.flatten(1).float() / 255.0
    assert d[1] == pytest.approx(float(flat.norm(dim=1).min()), rel=1e-5)


def test_held_out_images_are_disjoint_from_generator_training_and_from_the_same_split(small):
    ho = sy.hold_out_real(small.train, 20, seed=3)
    assert ho.n == len(ho.held) == 20 and len(ho.train) == len(small.train) - 20
    assert ho.held.split == ho.train.split == "train" and ho.held.name == small.train.name
    assert not set(ho.held_idx) & set(ho.train_idx)
    assert sorted([*ho.held_idx, *ho.train_idx]) == list(range(len(small.train)))
    assert torch.equal(ho.held.images, small.train.images[torch.from_numpy(ho.held_idx)])
    assert torch.equal(ho.train.images, small.train.images[torch.from_numpy(ho.train_idx)])
    for seed in (0, 1):  # the real-vs-real floor: n reference images, none of them held out
        ref = ho.reference_idx(seed=seed)
        assert len(ref) == ho.n == len(set(ref)) and not set(ho.train_idx[ref]) & set(ho.held_idx)
        assert torch.equal(ho.reference(seed=seed).images, ho.train.images[torch.from_numpy(ref)])
    assert not np.array_equal(ho.reference_idx(seed=0), ho.reference_idx(seed=1))
    assert np.array_equal(sy.hold_out_real(small.train, 20, seed=3).held_idx, ho.held_idx)
    assert sy.hold_out_real(small.train, 500, seed=3).n == round(0.25 * len(small.train))
    with pytest.raises(ValueError, match="held-out"):
        sy.hold_out_real(small.train.subset(range(3)), 2)


def test_loss_attack_on_an_overfitted_generator_finds_members(small, cache):
    ho = sy.hold_out_real(small.train.subset(range(32)), 16, seed=0, max_share=0.5)
    members, others = ho.train, ho.held  # non-members of the same split, never trained on
    kw = dict(data=small, seed=0, steps=800, batch_size=16, width=16, latent=32, lr=3e-3)
    vae, info = sy.train_generator("vae", members, **kw)
    assert info["cached"] is False
    m = privacy.attack_metrics(sy.attack_scores(vae, members), sy.attack_scores(vae, others))
    assert m["auc"] > 0.65  # 16 images memorised by a small VAE (0.77 measured)
    again, info2 = sy.train_generator("vae", members, **kw)
    assert info2["cached"] is True
    assert all(
        torch.equal(a, b)
        for a, b in zip(vae.state_dict().values(), again.state_dict().values(), strict=True)
    )


# ---------------------------------------------------------------- generators


def test_noise_schedule_definitions():
    for kind in ("cosine", "linear"):
        s = sy.noise_schedule(50, kind=kind)
        ab = s["alpha_bar"]
        assert ab.shape == (50,) and bool((ab[1:] < ab[:-1]).all())
        assert 0.98 < float(ab[0]) < 1.0 and float(ab[-1]) < 0.01
        assert torch.allclose(torch.cumprod(s["alpha"].double(), 0).float(), ab, atol=1e-6)
        assert torch.allclose(s["alpha"], 1 - s["beta"])


def test_ddpm_forward_process_and_sampling_are_seeded():
    seed_everything(0)
    m = sy.DDPM(1, 2, steps=10, width=8).eval()
    x0 = torch.zeros(4000, 1, 28, 28)
    t = torch.full((4000,), 9)
    xt = m.q_sample(x0, t, torch.randn_like(x0))
    assert float(xt.std()) == pytest.approx(math.sqrt(1 - float(m.alpha_bar[9])), rel=0.01)
    assert m.loss(x0[:8], torch.zeros(8, dtype=torch.long)).shape == (8,)
    a = sy.generate(m, torch.tensor([0, 1, 1]), seed=3)
    b = sy.generate(m, torch.tensor([0, 1, 1]), seed=3)
    assert a.dtype == torch.uint8 and a.shape == (3, 1, 28, 28) and torch.equal(a, b)
    assert not torch.equal(a, sy.generate(m, torch.tensor([0, 1, 1]), seed=4))


@torch.no_grad()
def _sample_by_hand(m, y, w, gen):
    """The textbook loop: two separate passes for guidance, the posterior mean as one fraction."""
    x = torch.randn(len(y), 1, 28, 28, generator=gen)
    none = torch.full_like(y, m.n_classes)
    for t in reversed(range(m.steps)):
        ab, beta, alpha = m.alpha_bar[t], m.beta[t], m.alpha[t]
        ab_prev = m.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
        tt = torch.full((len(y),), t)
        eps = (1 + w) * m.net(x, tt, y) - w * m.net(x, tt, none)
        x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
        x = (ab_prev.sqrt() * beta * x0 + alpha.sqrt() * (1 - ab_prev) * x) / (1 - ab)
        if t > 0:
            x = x + (beta * (1 - ab_prev) / (1 - ab)).sqrt() * torch.randn(x.shape, generator=gen)
    return x.clamp(-1, 1)


def test_the_sampling_loop_written_in_notebook_07_follows_the_ddpm_posterior():
    seed_everything(0)
    m = sy.DDPM(1, 2, steps=6, width=8).eval()
    y = torch.tensor([0, 1, 1, 0])
    a = m.sample(y, guidance=2.0, generator=torch.Generator().manual_seed(1))
    hand = _sample_by_hand(m, y, 2.0, torch.Generator().manual_seed(1))
    assert float((a - hand).abs().max()) < 1e-4  # float rounding only
    calls = []

    def spy(model, labels, w, generator):
        calls.append(w)
        return sy.reverse_diffusion(model, labels, w, generator)

    b = sy.generate(m, y, seed=2, guidance=2.0, sampler=spy)
    assert calls == [2.0] and torch.equal(b, sy.generate(m, y, seed=2, guidance=2.0))
    assert torch.equal(m.eps(a, 3, y, 0.0), sy.guided_eps(m, a, 3, y, 0.0))


def test_lesson_config_is_the_lessons_settings(small):
    lesson = medlab.lesson(True, 0, threads=1)
    s = sy.lesson_config(small, lesson)
    assert s.n_fake == 128 and s.guidance == 4.0 and s.ddpm["T"] == 25 and s.vae["latent"] == 16
    assert s.n_held == min(128, round(0.25 * len(small.train))) and s.mia_draws == 16
    assert s.clf_small == {"width": 8, "epochs": 15} and s.clf["width"] == 8
    other = sy.lesson_config(small, lesson, n_synthetic=400, guidance=1)
    assert other.guidance == 1.0 and other.clf_small["epochs"] == 5
    assert dict(s.replace(n_fake=64))["n_fake"] == 64


def test_vae_shapes_and_loss():
    seed_everything(0)
    m = sy.ConditionalVAE(1, 3, latent=4, width=8)
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    y = torch.tensor([0, 1, 2, 0, 1])
    logits, mu, logvar = m(x, y)
    assert logits.shape == x.shape and mu.shape == (5, 4)
    loss = m.loss(x, y)
    assert loss.shape == (5,) and bool((loss > 0).all())
    assert sy.generate(m, y, seed=0).shape == (5, 1, 28, 28)


def test_requested_labels_follow_the_class_shares(small):
    y = sy.requested_labels(small.train, 50)
    share = float((small.train.labels == 1).float().mean())
    assert len(y) == 50 and abs(int((y == 1).sum()) - 50 * share) <= 1


# ---------------------------------------------------------------- bias lesson and misuse


def test_hold_out_then_add_to_group(pneumonia):
    sc = scenario.hcm(pneumonia, 0.2, seed=0)
    small, reserve = sy.hold_out_group(sc, group=1, share=0.05, seed=0)
    assert small.shares("train")[scenario.GROUP_NAMES[1]] == pytest.approx(0.05, abs=0.002)
    assert small.shares("val")[scenario.GROUP_NAMES[1]] == pytest.approx(0.05, abs=0.01)
    n_min = int((sc.groups["train"] == 1).sum())
    assert len(reserve) + int((small.groups["train"] == 1).sum()) == n_min
    grown = sy.add_to_group(small, reserve.images[:30], reserve.labels[:30], source="real")
    assert len(grown.train) == len(small.train) + 30
    assert int((grown.groups["train"] == 1).sum()) == int((small.groups["train"] == 1).sum()) + 30
    assert grown.info["added"] == {"real": 30} and torch.equal(grown.test.images, sc.test.images)
    with pytest.raises(ValueError, match="larger share"):
        sy.hold_out_group(sc, group=1, share=0.3)


def test_detector_separates_obvious_fakes(small, cache):
    real = small.train.images
    fake = 255 - real  # inverted images: trivially detectable
    auc = sy.detector_auc(real, fake, data=small, seed=0, epochs=3, width=8)
    assert auc > 0.9


# ---------------------------------------------------------------- bad input


def test_bad_inputs_name_the_fix(small):
    with pytest.raises(ValueError, match="kind must be one of"):
        sy.make_generator("gan", 1, 2)
    with pytest.raises(ValueError, match="multiple of 8"):
        sy.DDPM(1, 2, width=12)
    with pytest.raises(ValueError, match="cosine"):
        sy.noise_schedule(10, kind="quadratic")
    with pytest.raises(ValueError, match="feature dimensions differ"):
        sy.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="N >= 2"):
        sy.frechet_distance(np.zeros(5), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="NaN"):
        sy.prdc_scores(np.full((10, 2), np.nan), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="labels must lie in"):
        sy.class_diversity([0, 5], 2)
    with pytest.raises(TypeError, match="uint8"):
        sy.dcr(torch.zeros(2, 1, 28, 28), small.train.images)
    with pytest.raises(TypeError, match="generate"):
        sy.synthetic_split(torch.zeros(2, 1, 28, 28), [0, 1], like=small.train)
    with pytest.raises(TypeError, match="Split"):
        sy.fit_generator(sy.ConditionalVAE(), small.train.images, steps=1)
    with pytest.raises(TypeError, match="embed"):
        sy.FeatureExtractor(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="scenario"):
        sy.add_to_group(small, small.train.images[:2], [0, 1])


def test_group_conditions_and_pairs_figure(small):
    tr = small.train
    g = np.arange(len(tr)) % 2
    cond = sy.group_conditions(tr, g)
    assert cond.n_classes == 4 and torch.equal(cond.labels, torch.from_numpy(g) * 2 + tr.labels)
    fig = sy.pairs_figure(tr.images[:3], tr.images[3:6], title="t", rows=("a", "b"))
    assert fig.layout.title.text == "t" and fig.data[0].z.shape == (56, 84, 3)
    with pytest.raises(ValueError, match="groups must be"):
        sy.group_conditions(tr, g[:-1])
