"""Tests for medlab.scarcity (notebook 02): budgets, pretraining cache, learning curves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from medlab import scarcity as S
from medlab.data import MedMNISTData, Split
from medlab.models import SmallCNN

TINY = S.Schedule(epochs=1, min_steps=3, batch_size=16, lr=3e-3, width=4)


def _split(n_per_class: tuple[int, ...], split: str, seed: int, channels: int = 1) -> Split:
    """Synthetic, learnable images: class c has a bright square at a class-specific place."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in enumerate(n_per_class)])
    imgs = (torch.rand(len(labels), channels, 12, 12, generator=g) * 60).to(torch.uint8)
    for i, c in enumerate(labels.tolist()):
        imgs[i, :, 2 + 3 * c : 5 + 3 * c, 2:6] = 220
    names = {c: f"class {c}" for c in range(len(n_per_class))}
    task = "binary-class" if len(n_per_class) == 2 else "multi-class"
    return Split("toy", split, imgs, labels, task, names)


def _data(
    name: str = "toy",
    n_per_class: tuple[int, ...] = (30, 20),
    md5: str = "0123456789abcdef",
    channels: int = 1,
) -> MedMNISTData:
    tr, va, te = (
        _split(n_per_class, s, i, channels) for i, s in enumerate(("train", "val", "test"))
    )
    for s in (tr, va, te):
        s.name = name
    return MedMNISTData(
        name,
        tr,
        va,
        te,
        tr.task,
        dict(tr.label_names),
        channels,
        12,
        "CC BY",
        "synthetic test data",
        {"md5": md5, "official": False},
    )


# ---------------------------------------------------------------------------------- budgets


def test_check_budgets_sorts_and_rejects_bad_values():
    assert S.check_budgets(["all", 50, 10, 10]) == [10, 50, "all"]
    for bad in (0, -3, 2.5, "most", True, None):
        with pytest.raises(ValueError, match="budget"):
            S.check_budgets([bad])
    with pytest.raises(ValueError, match="at least one"):
        S.check_budgets([])


def test_subsample_per_class_counts_nested_and_seeded():
    split = _data(n_per_class=(30, 20, 7)).train
    small = S.subsample_per_class(split, 5, seed=3)
    big = S.subsample_per_class(split, 15, seed=3)
    # min(budget, class size) per class, cross-checked with numpy
    assert np.bincount(small.labels.numpy(), minlength=3).tolist() == [5, 5, 5]
    assert np.bincount(big.labels.numpy(), minlength=3).tolist() == [15, 15, 7]
    # nested: every image of the small subset is in the big one (same seed)
    as_rows = {tuple(x.flatten().tolist()) for x in big.images}
    assert all(tuple(x.flatten().tolist()) in as_rows for x in small.images)
    again = S.subsample_per_class(split, 5, seed=3)
    other = S.subsample_per_class(split, 5, seed=4)
    assert torch.equal(again.images, small.images)
    assert not torch.equal(other.images, small.images)
    assert len(S.subsample_per_class(split, "all")) == len(split)
    with pytest.raises(ValueError, match="budget"):
        S.subsample_per_class(split, 0)


def test_subsample_rejects_multilabel():
    split = _data().train
    ml = Split(
        "ml",
        "train",
        split.images,
        torch.zeros(len(split), 3),
        "multi-label, binary-class",
        {0: "a", 1: "b", 2: "c"},
    )
    with pytest.raises(ValueError, match="single-label"):
        S.subsample_per_class(ml, 5)


def test_epochs_for_gives_min_steps_to_small_budgets():
    sch = S.Schedule(epochs=10, min_steps=150, batch_size=64)
    assert S.epochs_for(20, sch) == (150, 20, 150)  # batch = all 20 images, 150 epochs
    assert S.epochs_for(200, sch) == (38, 64, 152)  # 4 steps per epoch
    assert S.epochs_for(2428, sch) == (10, 64, 380)  # large budget: schedule.epochs
    with pytest.raises(ValueError, match="at least one"):
        S.epochs_for(0, sch)
    for bad in (dict(epochs=0), dict(min_steps=-1), dict(width=2.5), dict(lr=5.0)):
        with pytest.raises(ValueError, match="Schedule"):
            S.Schedule(**bad)


# ---------------------------------------------------------------------------------- pretraining


def test_rotation_split_matches_numpy_rot90():
    split = _data().train
    rot = S.rotation_split(split)
    n = len(split)
    assert rot.images.shape == (4 * n, 1, 12, 12) and rot.n_classes == 4
    assert np.bincount(rot.labels.numpy()).tolist() == [n] * 4
    for k in range(4):
        i = k * n + 7
        want = np.rot90(split.images[7].numpy(), k, axes=(1, 2))
        assert np.array_equal(rot.images[i].numpy(), want) and int(rot.labels[i]) == k


def test_pretraining_is_cached_and_loaded_weights_only(tmp_path):
    src = _data("toysource", md5="feedbeef12345678")
    first = S.pretrain_supervised(src, schedule=TINY, seed=1, folder=tmp_path)
    assert not first.cached and first.path.exists()
    assert first.path.name.startswith("transfer-toysource-md5feedbeef-seed1-")
    second = S.pretrain_supervised(src, schedule=TINY, seed=1, folder=tmp_path)
    assert second.cached and second.path == first.path
    assert all(torch.equal(first.state[k], second.state[k]) for k in first.state)
    blob = torch.load(first.path, weights_only=True)
    assert set(blob) == {"features", "info"}
    # another seed, another setting or another file -> another cache entry
    assert S.pretrain_supervised(src, schedule=TINY, seed=2, folder=tmp_path).path != first.path
    other = S.Schedule(epochs=2, min_steps=3, batch_size=16, width=4)
    assert S.pretrain_supervised(src, schedule=other, seed=1, folder=tmp_path).path != first.path
    changed = _data("toysource", md5="0000000012345678")
    assert S.pretrain_supervised(changed, schedule=TINY, seed=1, folder=tmp_path).path != first.path
    ssl = S.pretrain_rotation(src, schedule=TINY, seed=1, folder=tmp_path, max_images=40)
    assert ssl.kind == "selfsup" and ssl.info["settings"]["n_out"] == 4
    assert 0.0 <= ssl.info["val"]["acc"] <= 1.0
    with pytest.raises(ValueError, match="max_images"):
        S.pretrain_rotation(src, schedule=TINY, folder=tmp_path, max_images=0)


def test_load_features_copies_backbone_and_keeps_a_new_head():
    torch.manual_seed(0)
    src = SmallCNN(1, 11, width=4)
    model = S.fresh_model(_data(), width=4, pretrained=src.features.state_dict())
    for k, v in src.features.state_dict().items():
        assert torch.equal(model.features.state_dict()[k], v)
    assert model.head.out_features == 2  # new head for the target's classes
    # RGB source -> grayscale target: first conv summed over input channels
    rgb = SmallCNN(3, 2, width=4)
    gray = S.load_features(SmallCNN(1, 2, width=4), rgb.features.state_dict())
    w = rgb.features.state_dict()["0.0.weight"]
    assert torch.allclose(gray.features.state_dict()["0.0.weight"], w.sum(1, keepdim=True))


# ---------------------------------------------------------------------------------- curves


def test_learning_curve_is_tidy_seeded_and_validates(tmp_path):
    data = _data()
    pre = {
        "transfer": S.pretrain_supervised(_data("toysource"), schedule=TINY, folder=tmp_path),
        "selfsup": S.pretrain_rotation(data, schedule=TINY, folder=tmp_path),
    }
    variants = ("scratch", "augment", "transfer", "selfsup", "transfer+augment")
    df = S.learning_curve(
        data, budgets=(5, "all"), seeds=(0, 1), variants=variants, pretrained=pre, schedule=TINY
    )
    assert len(df) == 2 * 2 * len(variants)
    assert {
        "dataset",
        "variant",
        "source",
        "budget",
        "per_class",
        "n_train",
        "seed",
        "test_auc",
        "test_acc",
        "steps",
    } <= set(df.columns)
    assert df["test_auc"].between(0, 1).all()
    assert set(df[df["budget"] == "5"]["n_train"]) == {10}
    assert set(df[df["budget"] == "all"]["per_class"]) == {25.0}
    assert set(df[df["variant"] == "transfer"]["source"]) == {"toysource"}
    again = S.learning_curve(data, budgets=(5,), seeds=(0,), variants=("augment",), schedule=TINY)
    first = df[(df["budget"] == "5") & (df["seed"] == 0) & (df["variant"] == "augment")]
    assert again["test_auc"].iloc[0] == pytest.approx(first["test_auc"].iloc[0], abs=1e-12)
    with pytest.raises(ValueError, match="unknown variant"):
        S.learning_curve(data, variants=("magic",), schedule=TINY)
    with pytest.raises(ValueError, match="needs pretrained"):
        S.learning_curve(data, variants=("transfer",), schedule=TINY)
    with pytest.raises(ValueError, match="online"):
        S.learning_curve(data, variants=("imagenet",), schedule=TINY)
    with pytest.raises(ValueError, match="seeds"):
        S.learning_curve(data, seeds=(-1,), schedule=TINY)


def _frame() -> pd.DataFrame:
    rows = []
    for seed, (a, b) in enumerate([(0.60, 0.70), (0.64, 0.78), (0.62, 0.74)]):
        rows += [
            {
                "dataset": "d",
                "variant": "scratch",
                "source": "",
                "budget": "10",
                "per_class": 10.0,
                "seed": seed,
                "test_auc": a,
            },
            {
                "dataset": "d",
                "variant": "augment",
                "source": "",
                "budget": "10",
                "per_class": 10.0,
                "seed": seed,
                "test_auc": b,
            },
            {
                "dataset": "d",
                "variant": "scratch",
                "source": "",
                "budget": "all",
                "per_class": 300.0,
                "seed": seed,
                "test_auc": 0.9,
            },
            {
                "dataset": "d",
                "variant": "augment",
                "source": "",
                "budget": "all",
                "per_class": 300.0,
                "seed": seed,
                "test_auc": 0.91,
            },
        ]
    return pd.DataFrame(rows)


def test_summarize_and_gain_match_pandas():
    df = _frame()
    summ = S.summarize(df)
    row = summ[(summ["variant"] == "augment") & (summ["budget"] == "10")].iloc[0]
    ref = df[(df["variant"] == "augment") & (df["budget"] == "10")]["test_auc"]
    assert row["mean"] == pytest.approx(ref.mean())
    assert row["std"] == pytest.approx(ref.std(ddof=0))
    assert summ["per_class"].is_monotonic_increasing
    g = S.gain_at(df, "augment", 10)
    assert g["gain"] == pytest.approx(0.74 - 0.62)
    assert g["spread"] == pytest.approx(max(ref.std(ddof=0), np.std([0.60, 0.64, 0.62])))
    assert g["paired_min"] == pytest.approx(0.10)
    assert g["paired_std"] == pytest.approx(np.std([0.10, 0.14, 0.12]))
    with pytest.raises(ValueError, match="no rows"):
        S.gain_at(df, "transfer", 10)
    with pytest.raises(ValueError, match="metric"):
        S.summarize(df, metric="f1")


def test_curve_figure_has_log_axis_labels_and_bands():
    fig = S.curve_figure(_frame())
    assert fig.layout.xaxis.type == "log"
    assert "per class" in fig.layout.xaxis.title.text
    assert "AUC" in fig.layout.yaxis.title.text and fig.layout.title.text
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["scratch", "augment"]
    assert list(lines[1].y) == pytest.approx([0.74, 0.91])
    assert list(lines[1].x) == [10.0, 300.0]


# ---------------------------------------------------------------------------------- sources


def test_choose_source_falls_back_honestly_to_real_data(data_dir):
    import medlab

    if data_dir is None or not (data_dir / "pneumoniamnist_balanced_subset.npz").exists():
        pytest.skip("the shared real data is not here")
    target = medlab.load("pneumoniamnist_balanced_subset", data_dir=data_dir)
    src, note = S.choose_source("organamnist", target, data_dir=data_dir, download=False)
    assert src is not None and src.name == "breastmnist"
    assert "organamnist" in note and "missing" in note and "breastmnist" in note
    with pytest.raises(ValueError, match="target itself"):
        S.choose_source("pneumoniamnist_balanced_subset", target, data_dir=data_dir)


def test_imagenet_variant_is_guarded(monkeypatch):
    model = S.imagenet_resnet18(2, pretrained=False, size=32)
    out = model(torch.rand(3, 1, 28, 28) * 2 - 1)
    assert out.shape == (3, 2) and math.isfinite(float(out.sum()))
    import torchvision.models as tvm

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvm, "resnet18", offline)
    with pytest.raises(S.OnlineWeightsUnavailable, match="network"):
        S.imagenet_resnet18(2)
    with pytest.raises(ValueError, match="n_classes"):
        S.imagenet_resnet18(0, pretrained=False)
