"""medlab.scenario on real images: the presentation shift, K named groups per split
(assign_groups, make_scenario, from_groups) and the HCM preset of the bias lessons."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlab import scenario as S
from medlab.data import MedMNISTData
from medlab.models import SmallCNN
from medlab.train import predict

SPLITS = ("train", "val", "test")


def _random_rows(data: MedMNISTData, n: int, seed: int = 0):
    """n random training images and labels (the files are sorted by class)."""
    idx = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:n]
    return data.train.images[idx], data.train.labels[idx]


# ---------------------------------------------------------------------------------- the shift


def test_shift_validates_ranges():
    with pytest.raises(ValueError, match=r"zoom must be a number in \[0.5, 1.5\]"):
        S.PresentationShift(zoom=0.2)
    with pytest.raises(ValueError, match=r"contrast must be a number in \[0, 1\]"):
        S.PresentationShift(contrast=1.5)
    with pytest.raises(ValueError, match=r"contrast must be a number in \[0, 1\]"):
        S.PresentationShift(contrast=True)
    with pytest.raises(ValueError, match=r"strength must be a number in \[0, 2\]"):
        S.PresentationShift.from_strength(3)
    assert S.PresentationShift.from_strength(0).is_identity
    assert S.PresentationShift.from_strength(1) == S.PresentationShift(0.8, 0.5)
    assert S.PresentationShift.from_strength(2) == S.PresentationShift(0.6, 0.0)


def test_apply_shift_identity_and_errors(pneumonia):
    x, y = _random_rows(pneumonia, 10)
    out = S.apply_shift(x, y, S.PresentationShift(1.0, 1.0))
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()  # a new tensor
    with pytest.raises(ValueError, match="uint8"):
        S.apply_shift(x.float(), y, S.PresentationShift())
    with pytest.raises(ValueError, match="labels has 3 entries"):
        S.apply_shift(x, y[:3], S.PresentationShift())
    with pytest.raises(TypeError, match="PresentationShift"):
        S.apply_shift(x, y, 0.5)
    pos = pneumonia.train.labels == 1
    with pytest.raises(ValueError, match="pattern="):  # positives only: no pattern of its own
        S.apply_shift(
            pneumonia.train.images[pos][:4],
            pneumonia.train.labels[pos][:4],
            S.PresentationShift(1.0, 0.5),
        )
    with pytest.raises(ValueError, match="both diseased and healthy"):
        S.disease_pattern(x[y == 0], y[y == 0])


def test_apply_shift_weakens_the_disease_signal_of_positives_only(breast):
    x, y = breast.train.images, breast.train.labels
    p = S.disease_class(breast)
    assert p == 0  # BreastMNIST: 0 = malignant
    pos = y == p
    pat = S.disease_pattern(x, y, positive=p)
    assert torch.allclose(pat, x[pos].float().mean(0) - x[~pos].float().mean(0))

    def gap(t: torch.Tensor) -> float:
        return float((t[pos].float().mean(0) - t[~pos].float().mean(0)).norm())

    out = S.apply_shift(x, y, S.PresentationShift(zoom=1.0, contrast=0.0), pattern=pat, positive=p)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert torch.equal(out[~pos], x[~pos])  # healthy images untouched
    assert gap(x) > 300 and gap(out) < 0.05 * gap(x)  # the average difference is gone
    # individual variation is kept: the diseased images' spread is unchanged
    assert float(out[pos].float().std(0).mean()) == pytest.approx(
        float(x[pos].float().std(0).mean()), rel=0.05
    )
    half = S.apply_shift(x, y, S.PresentationShift(zoom=1.0, contrast=0.5), positive=p)
    assert 0.45 * gap(x) < gap(half) < 0.55 * gap(x)
    with pytest.raises(ValueError, match="pattern must have shape"):
        S.apply_shift(x, y, S.PresentationShift(contrast=0.5), pattern=pat[None], positive=p)


def test_apply_shift_zoom_matches_torchvision_and_is_seeded(breast):
    """The zoom is torchvision's affine scaling about the centre, on the image minus its
    border mean, with a seeded per-image jitter of +/- 25 % of the zoom-out."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    x, y = breast.train.images[:40], breast.train.labels[:40]
    s = S.PresentationShift(zoom=0.6, contrast=1.0)
    a, b = S.apply_shift(x, y, s, seed=1), S.apply_shift(x, y, s, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, S.apply_shift(x, y, s, seed=2))  # jitter depends on the seed
    u = torch.rand(40, generator=torch.Generator().manual_seed(1)) * 2 - 1
    zooms = 0.6 + (1 - 0.6) * 0.25 * u
    xf = x.float()
    border = torch.cat([xf[..., 0, :], xf[..., -1, :], xf[..., :, 0], xf[..., :, -1]], -1)
    bg = border.mean((1, 2))
    ref = (
        torch.stack(
            [
                TF.affine(
                    xf[i] - bg[i],
                    angle=0.0,
                    translate=[0, 0],
                    scale=float(zooms[i]),
                    shear=[0.0, 0.0],
                    interpolation=InterpolationMode.BILINEAR,
                )
                + bg[i]
                for i in range(40)
            ]
        )
        .round()
        .clamp(0, 255)
    )
    diff = (ref - a.float()).abs()
    assert diff.max() <= 1.0 and diff.mean() < 0.01  # equal up to rounding
    # smaller anatomy: the outer ring is now the flat background, it had texture before
    ring = torch.ones(28, 28, dtype=torch.bool)
    ring[3:-3, 3:-3] = False
    assert x[:, 0][:, ring].float().std(1).min() > 5
    assert a[:, 0][:, ring].float().std(1).max() < 1


# ---------------------------------------------------------------------------------- K groups


def test_assign_groups_is_stratified_exact_and_seeded(pneumonia):
    y = pneumonia.train.labels.numpy()
    shares = [0.6, 0.3, 0.1]
    g = S.assign_groups(y, shares, seed=4)
    assert g.shape == y.shape and g.dtype == np.int64 and set(g.tolist()) == {0, 1, 2}
    for c in np.unique(y):
        n_c = (y == c).sum()
        counts = np.bincount(g[y == c], minlength=3)
        assert counts.sum() == n_c
        assert np.all(np.abs(counts - np.array(shares) * n_c) < 1)  # largest remainder
    assert np.array_equal(g, S.assign_groups(torch.from_numpy(y), shares, seed=4))
    assert not np.array_equal(g, S.assign_groups(y, shares, seed=5))
    with pytest.raises(ValueError, match="sum to 1"):
        S.assign_groups(y, [0.5, 0.4])
    with pytest.raises(ValueError, match="list of group shares"):
        S.assign_groups(y, "0.5")
    with pytest.raises(ValueError, match="non-negative"):
        S.assign_groups(y, [1.5, -0.5])


def test_make_scenario_three_groups(breast):
    names = {0: "site A", 1: "site B", 2: "site C"}
    shares = [0.5, 0.3, 0.2]
    sc = S.make_scenario(breast, shares, names=names, seed=1)
    assert sc.n_groups == 3 and list(sc.group_names.values()) == list(names.values())
    assert sc.info["shares"] == shares and sc.info["test_shares"] == pytest.approx([1 / 3] * 3)
    for split, want in (("train", shares), ("val", shares), ("test", [1 / 3] * 3)):
        g, y = sc.groups[split], breast[split].labels.numpy()
        assert len(g) == len(breast[split])  # split sizes never change
        assert sum(sc.shares(split).values()) == pytest.approx(1.0)
        for c in (0, 1):
            counts = np.bincount(g[y == c], minlength=3)
            assert np.all(np.abs(counts - np.array(want) * (y == c).sum()) < 1), (split, c)
        # no shifts: the images and labels are the dataset's
        assert torch.equal(sc[split].images, breast[split].images)
        assert torch.equal(sc[split].labels, breast[split].labels)
    assert sc.shares("train") == pytest.approx(
        dict(zip(names.values(), shares, strict=True)), abs=0.01
    )
    counts = sc.counts()
    assert counts["images"].sum() == sum(len(breast[s]) for s in SPLITS)
    assert {"split", "group", "images", "share of split", "malignant"} <= set(counts.columns)
    assert sc.positive is None
    with pytest.raises(ValueError, match="positive=None"):
        sc.y("test")
    skewed = S.make_scenario(breast, shares, test_shares=[0.2, 0.3, 0.5], seed=1)
    assert skewed.shares("test")["group 2"] == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="test_shares has 2 groups"):
        S.make_scenario(breast, shares, test_shares=[0.5, 0.5])
    with pytest.raises(ValueError, match="names must name groups 0..2"):
        S.make_scenario(breast, shares, names={0: "a", 1: "b"})
    with pytest.raises(ValueError, match="sum to 1"):
        S.make_scenario(breast, [0.5, 0.3])


def test_from_groups_shifts_only_its_group(breast):
    rng = np.random.default_rng(0)
    groups = {s: rng.integers(0, 3, len(breast[s])) for s in SPLITS}
    names = {0: "A", 1: "B", 2: "C"}
    calls = []

    def invert(images, labels, *, seed):
        calls.append((images.dtype, len(images), seed, labels.clone()))
        return 255 - images

    before = {s: breast[s].images.clone() for s in SPLITS}
    sc = S.from_groups(breast, groups, names, shifts={2: invert}, seed=5)
    assert [c[2] for c in calls] == [15, 16, 17]  # seeded per split
    for k, s in enumerate(SPLITS):
        g = groups[s]
        assert np.array_equal(sc.groups[s], g)
        assert calls[k][0] == torch.uint8 and calls[k][1] == (g == 2).sum()
        assert torch.equal(calls[k][3], breast[s].labels[torch.from_numpy(g == 2)])
        assert torch.equal(sc[s].images[g != 2], breast[s].images[g != 2])
        assert torch.equal(sc[s].images[g == 2], 255 - breast[s].images[g == 2])
        assert torch.equal(sc[s].labels, breast[s].labels)
    assert all(torch.equal(breast[s].images, before[s]) for s in SPLITS)  # data untouched
    with pytest.raises(ValueError, match="same shape"):
        S.from_groups(breast, groups, names, shifts={1: lambda x, y, seed: x.float()})
    with pytest.raises(ValueError, match="callables"):
        S.from_groups(breast, groups, names, shifts={1: "invert"})
    with pytest.raises(ValueError, match="callables"):
        S.from_groups(breast, groups, names, shifts={7: invert})
    with pytest.raises(ValueError, match="'val' is missing"):
        S.from_groups(breast, {"train": groups["train"], "test": groups["test"]}, names)
    with pytest.raises(ValueError, match=r"ids \[2\]"):
        S.from_groups(breast, groups, {0: "A", 1: "B"})
    with pytest.raises(ValueError, match="entries"):
        S.from_groups(breast, {**groups, "val": groups["val"][:5]}, names)
    with pytest.raises(TypeError, match="medlab.load"):
        S.from_groups(breast.train, groups, names)


def test_group_subsets(breast):
    sc = S.make_scenario(breast, [0.7, 0.3], names={0: "home", 1: "away"}, seed=2)
    for gid, name in sc.group_names.items():
        part = sc.group("train", gid)
        m = sc.groups["train"] == gid
        assert len(part) == m.sum() and torch.equal(part.images, sc.train.images[m])
        assert torch.equal(part.labels, sc.train.labels[m])
        assert torch.equal(sc.group("train", name).images, part.images)
    assert len(sc.group("test", "away")) + len(sc.group("test", 0)) == len(breast.test)
    with pytest.raises(KeyError, match="no group named"):
        sc.group("train", "elsewhere")
    with pytest.raises(KeyError, match="no group 5"):
        sc.group("train", 5)
    with pytest.raises(KeyError, match="unknown split"):
        sc.group("dev", 0)


# ---------------------------------------------------------------------------------- HCM preset


def test_default_strength_per_dataset(breast, pneumonia):
    assert S.default_strength(breast) == 2.0 == S.default_strength("breastmnist")
    assert S.default_strength(pneumonia) == 1.0 == S.default_strength("pneumoniamnist")
    sc = S.hcm(breast, 0.05, seed=0)
    assert sc.info["strength"] == 2.0 and sc.shift == S.PresentationShift.from_strength(2.0)
    assert S.hcm(breast, 0.05, strength=0.5, seed=0).shift == S.PresentationShift(0.9, 0.75)
    assert S.hcm(pneumonia, 0.05, seed=0).info["strength"] == 1.0


def test_hcm_groups_shift_and_labels(breast):
    sc = S.hcm(breast, 0.1, seed=3)
    g, y = sc.groups, breast.train.labels.numpy()
    assert list(sc.group_names) == [0, 1] and sc.group_names == S.GROUP_NAMES
    assert sc.minority_share == 0.1 and sc.positive == S.disease_class(breast) == 0
    assert g["train"].mean() == pytest.approx(0.1, abs=0.01)
    for c in (0, 1):  # stratified: the same minority share in each class; test 50/50
        assert g["train"][y == c].mean() == pytest.approx(0.1, abs=0.01)
        assert g["test"][breast.test.labels.numpy() == c].mean() == pytest.approx(0.5, abs=0.02)
    maj, mino = g["train"] == 0, g["train"] == 1
    assert torch.equal(sc.train.images[maj], breast.train.images[maj])
    assert not torch.equal(sc.train.images[mino], breast.train.images[mino])
    assert torch.equal(sc.train.labels, breast.train.labels)
    assert torch.equal(
        sc.pattern, S.disease_pattern(breast.train.images, breast.train.labels, positive=0)
    )
    # every split's minority uses the training split's pattern
    m = torch.from_numpy(g["test"] == 1)
    want = S.apply_shift(
        breast.test.images[m],
        breast.test.labels[m],
        sc.shift,
        seed=3 * 3 + 2,
        positive=0,
        pattern=sc.pattern,
    )
    assert torch.equal(sc.test.images[m], want)
    np.testing.assert_array_equal(sc.test_y, (breast.test.labels.numpy() == 0).astype(int))
    assert sc.y("val").sum() == (breast.val.labels == 0).sum()


def test_hcm_is_reproducible_for_notebooks_03_and_04(breast):
    """Notebook 04 rebuilds notebook 03's scenario from (data, share, seed): it must be the
    same images and groups, bit for bit."""
    for seed in (0, 1):
        a, b = S.hcm(breast, 0.05, seed=seed), S.hcm(breast, 0.05, seed=seed)
        for s in SPLITS:
            assert torch.equal(a[s].images, b[s].images)
            assert np.array_equal(a.groups[s], b.groups[s])
    c = S.hcm(breast, 0.05, seed=1)
    assert not np.array_equal(S.hcm(breast, 0.05, seed=0).groups["train"], c.groups["train"])
    # the test patients and their images do not depend on the training share
    d = S.hcm(breast, 0.5, seed=1)
    assert np.array_equal(d.groups["test"], c.groups["test"])
    assert torch.equal(d.test.images, c.test.images)
    assert d.groups["train"].mean() == pytest.approx(0.5, abs=0.01)


def test_hcm_errors(breast):
    with pytest.raises(ValueError, match=r"share must be a number in \[0, 0.5\]"):
        S.hcm(breast, 0.7)
    with pytest.raises(ValueError, match="positive=5"):
        S.hcm(breast, 0.1, positive=5)
    with pytest.raises(ValueError, match="strength"):
        S.hcm(breast, 0.1, strength=3.0)
    multi = MedMNISTData(
        "m", breast.train, breast.val, breast.test, "multi-class", {0: "a", 1: "b"}, 1, 28, "", ""
    )
    with pytest.raises(ValueError, match="binary-class"):
        S.hcm(multi, 0.1)
    with pytest.raises(TypeError, match="medlab.load"):
        S.hcm(breast.train, 0.1)


def test_real_data_scenario_counts_and_disease_class(breast, pneumonia):
    assert S.disease_class(pneumonia) == 1  # 1 = pneumonia
    sc = S.hcm(breast, 0.05, seed=0)
    assert sc.positive == 0 and sc.test_y.sum() == (breast.test.labels == 0).sum()
    counts = sc.counts().set_index(["split", "group"])
    assert (
        counts.loc[("test", S.GROUP_NAMES[0]), "diseased"]
        == counts.loc[("test", S.GROUP_NAMES[1]), "diseased"]
    )
    assert counts.loc[("train", S.GROUP_NAMES[1]), "images"] == 27  # 5 % of 546, per class
    assert counts.loc[("train", S.GROUP_NAMES[1]), "diseased"] == 7  # 5 % of 147 malignant


def test_disease_scores_are_the_positive_column(breast):
    sc = S.hcm(breast, 0.05, seed=0)
    torch.manual_seed(0)
    model = SmallCNN(1, 2, width=4)
    s = S.disease_scores(model, sc)
    assert s.dtype == np.float64 and s.shape == (len(breast.test),)
    np.testing.assert_array_equal(s, predict(model, sc.test)[:, 0])
    np.testing.assert_array_equal(S.disease_scores(model, sc, "val"), predict(model, sc.val)[:, 0])
    np.testing.assert_array_equal(
        S.disease_scores(model, sc.test, positive=1), predict(model, sc.test)[:, 1]
    )
