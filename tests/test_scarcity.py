"""Tests for medlab.scarcity (notebook 02): budgets, pretraining cache, learning curves."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import data_slice

from medlab import scarcity as S
from medlab.data import MedMNISTData, Split
from medlab.models import SmallCNN
from medlab.scarcity import curves
from medlab.train import fit

TINY = S.Schedule(epochs=1, min_steps=3, batch_size=16, lr=3e-3, width=4)


@pytest.fixture(scope="module")
def target(breast) -> MedMNISTData:
    return data_slice(breast)


@pytest.fixture(scope="module")
def source(pneumonia) -> MedMNISTData:
    return data_slice(pneumonia, (64, 32, 32), seed=1)


# ---------------------------------------------------------------------------------- budgets


def test_check_budgets_sorts_and_rejects_bad_values():
    assert S.check_budgets(["all", 50, 10, 10]) == [10, 50, "all"]
    for bad in (0, -3, 2.5, "most", True, None):
        with pytest.raises(ValueError, match="budget"):
            S.check_budgets([bad])
    with pytest.raises(ValueError, match="at least one"):
        S.check_budgets([])


def test_subsample_per_class_counts_nested_and_seeded(breast):
    split = breast.train  # 147 malignant, 399 normal or benign
    small = S.subsample_per_class(split, 5, seed=3)
    big = S.subsample_per_class(split, 200, seed=3)
    # min(budget, class size) per class, cross-checked with numpy
    assert np.bincount(small.labels.numpy(), minlength=2).tolist() == [5, 5]
    assert np.bincount(big.labels.numpy(), minlength=2).tolist() == [147, 200]
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


def test_subsample_rejects_multilabel(breast):
    split = breast.train
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


def test_rotation_split_matches_numpy_rot90(target):
    split = target.train
    rot = S.rotation_split(split)
    n = len(split)
    assert rot.images.shape == (4 * n, 1, 28, 28) and rot.n_classes == 4
    assert np.bincount(rot.labels.numpy()).tolist() == [n] * 4
    for k in range(4):
        i = k * n + 7
        want = np.rot90(split.images[7].numpy(), k, axes=(1, 2))
        assert np.array_equal(rot.images[i].numpy(), want) and int(rot.labels[i]) == k


def test_pretraining_is_cached_and_loaded_weights_only(source, target, tmp_path):
    first = S.pretrain_supervised(source, schedule=TINY, seed=1, folder=tmp_path)
    assert not first.cached and first.path.exists() and first.path.parent == tmp_path
    assert first.path.name.startswith(f"pretrain-transfer-{source.name}-seed1-")
    assert first.md5 == source.provenance["md5"] and first.source == source.name
    assert 0.0 <= first.info["val"]["auc"] <= 1.0
    second = S.pretrain_supervised(source, schedule=TINY, seed=1, folder=tmp_path)
    assert second.cached and second.path == first.path
    assert all(torch.equal(first.state[k], second.state[k]) for k in first.state)
    blob = torch.load(first.path, weights_only=True)
    assert set(blob) == {"state", "info", "key"}  # the key: a cache hit is checked (issue 24.1)
    assert all(torch.equal(blob["state"][f"features.{k}"], v) for k, v in first.state.items())
    # another seed, another setting or another file -> another cache entry
    assert S.pretrain_supervised(source, schedule=TINY, seed=2, folder=tmp_path).path != first.path
    other = S.Schedule(epochs=2, min_steps=3, batch_size=16, width=4)
    assert S.pretrain_supervised(source, schedule=other, seed=1, folder=tmp_path).path != first.path
    changed = dataclasses.replace(source, provenance={**source.provenance, "md5": "0" * 32})
    moved = S.pretrain_supervised(changed, schedule=TINY, seed=1, folder=tmp_path)
    assert moved.path != first.path and not moved.cached and moved.md5 == "0" * 32
    n_files = len(list(tmp_path.glob("*.pt")))
    forced = S.pretrain_supervised(source, schedule=TINY, seed=1, folder=tmp_path, force=True)
    assert not forced.cached and forced.path == first.path
    assert len(list(tmp_path.glob("*.pt"))) == n_files
    ssl = S.pretrain_rotation(target, schedule=TINY, seed=1, folder=tmp_path, max_images=40)
    assert ssl.kind == "selfsup" and ssl.info["settings"]["n_out"] == 4
    assert 0.0 <= ssl.info["val"]["acc"] <= 1.0
    assert ssl.path.name.startswith(f"pretrain-selfsup-{target.name}-seed1-")
    seen = []  # the pretext task it is given (notebook 02 passes its own rotation_split)

    def pretext(split):
        seen.append(split.split)
        return S.rotation_split(split)

    again = S.pretrain_rotation(
        target, schedule=TINY, seed=1, folder=tmp_path, max_images=40, pretext=pretext
    )
    assert seen == ["train", "val"] and again.cached and again.path == ssl.path
    with pytest.raises(ValueError, match="max_images"):
        S.pretrain_rotation(target, schedule=TINY, folder=tmp_path, max_images=0)


def test_load_features_copies_backbone_and_keeps_a_new_head(target):
    torch.manual_seed(0)
    src = SmallCNN(1, 11, width=4)
    model = S.fresh_model(target, width=4, pretrained=src.features.state_dict())
    for k, v in src.features.state_dict().items():
        assert torch.equal(model.features.state_dict()[k], v)
    assert model.head.out_features == 2  # new head for the target's classes
    # RGB source -> grayscale target: first conv summed over input channels
    rgb = SmallCNN(3, 2, width=4)
    gray = S.load_features(SmallCNN(1, 2, width=4), rgb.features.state_dict())
    w = rgb.features.state_dict()["0.0.weight"]
    assert torch.allclose(gray.features.state_dict()["0.0.weight"], w.sum(1, keepdim=True))


# ---------------------------------------------------------------------------------- curves


def test_learning_curve_is_tidy_seeded_cached_and_validates(source, target, cache):
    pre = {
        "transfer": S.pretrain_supervised(source, schedule=TINY),
        "selfsup": S.pretrain_rotation(target, schedule=TINY, max_images=80),
    }
    assert {p.path.parent for p in pre.values()} == {cache.resolve()}
    variants = ("scratch", "augment", "transfer", "selfsup", "transfer+augment")
    df = S.learning_curve(
        target, budgets=(5, "all"), seeds=(0, 1), variants=variants, pretrained=pre, schedule=TINY
    )
    assert len(df) == 2 * 2 * len(variants)
    assert list(df.columns[:7]) == [
        "dataset",
        "variant",
        "source",
        "budget",
        "per_class",
        "n_train",
        "seed",
    ]
    assert {"test_auc", "test_acc", "epochs", "steps", "seconds", "cached"} <= set(df.columns)
    assert df["test_auc"].between(0, 1).all() and not df["cached"].any()
    assert set(df[df["budget"] == "5"]["n_train"]) == {10}
    assert set(df[df["budget"] == "all"]["per_class"]) == {len(target.train) / 2}
    assert set(df[df["variant"] == "transfer"]["source"]) == {source.name}
    assert set(df[df["variant"] == "scratch"]["source"]) == {""}
    assert set(df[df["budget"] == "5"]["steps"]) == {3}  # min_steps on 10 images
    # a variant is its own model: the budget-5 runs of one seed differ between variants
    five = df[(df["budget"] == "5") & (df["seed"] == 0)].set_index("variant")["test_auc"]
    assert five.nunique() > 1
    n_files = len(list(cache.glob("*.pt")))
    assert n_files == 2 + len(df)  # two backbones + one model per run
    # the same call again is read from the cache, with the same numbers
    again = S.learning_curve(
        target, budgets=(5, "all"), seeds=(0, 1), variants=variants, pretrained=pre, schedule=TINY
    )
    assert again["cached"].all() and len(list(cache.glob("*.pt"))) == n_files
    cols = ["variant", "budget", "seed", "test_auc", "test_acc", "n_train", "steps"]
    pd.testing.assert_frame_equal(again[cols], df[cols])
    # and without the cache: trained again (bit-identical), nothing written
    fresh = S.learning_curve(
        target, budgets=(5,), seeds=(0,), variants=("augment",), schedule=TINY, cache=False
    )
    first = df[(df["budget"] == "5") & (df["seed"] == 0) & (df["variant"] == "augment")]
    assert fresh["test_auc"].iloc[0] == first["test_auc"].iloc[0] and not fresh["cached"].any()
    assert len(list(cache.glob("*.pt"))) == n_files
    with pytest.raises(ValueError, match="unknown variant"):
        S.learning_curve(target, variants=("magic",), schedule=TINY)
    with pytest.raises(ValueError, match="needs pretrained"):
        S.learning_curve(target, variants=("transfer",), schedule=TINY)
    with pytest.raises(ValueError, match="online"):
        S.learning_curve(target, variants=("imagenet",), schedule=TINY)
    with pytest.raises(ValueError, match="seeds"):
        S.learning_curve(target, seeds=(-1,), schedule=TINY)
    with pytest.raises(ValueError, match="variants must be a list"):
        S.learning_curve(target, variants="scratch", schedule=TINY)


def test_output_spread_tells_a_collapsed_model_from_a_trained_one(target):
    torch.manual_seed(0)
    model = SmallCNN(1, 2, width=8)
    fit(model, target.train, None, epochs=15, batch_size=16, seed=0, desc="t")
    from medlab.train import predict

    p = predict(model, target.train)
    assert S.output_spread(model, target.train) == pytest.approx(p.std(0, ddof=1).max())
    assert S.output_spread(model, target.train) > S.COLLAPSE_SPREAD
    with torch.no_grad():  # a zero head answers softmax(bias) whatever the image
        model.head.weight.zero_()
    assert S.output_spread(model, target.train) < 1e-6
    with pytest.raises(ValueError, match="at least 2 images"):
        S.output_spread(model, target.train.subset(torch.arange(1)))


@pytest.mark.parametrize("always", [False, True])
def test_learning_curve_restarts_a_collapsed_run_once_at_a_lower_lr(target, monkeypatch, always):
    lrs = []
    real_fit = fit

    def collapsing_fit(model, *args, lr, **kwargs):
        lrs.append(lr)
        hist = real_fit(model, *args, lr=lr, **kwargs)
        if always or len(lrs) == 1:
            with torch.no_grad():
                model.head.weight.zero_()
        return hist

    monkeypatch.setattr(curves, "fit", collapsing_fit)  # the loop learning_curve calls
    sch = dataclasses.replace(TINY, min_steps=20, width=8)
    df = S.learning_curve(
        target, budgets=(20,), seeds=(0,), variants=("scratch",), schedule=sch, cache=False
    )
    assert lrs == [sch.lr, sch.lr / S.RESTART_LR_DIVISOR]  # restarted once, never twice
    row = df.iloc[0]
    assert row["restarted"] and row["collapsed"] == always
    if always:
        assert row["test_auc"] == pytest.approx(0.5)  # a constant score ranks nothing


def test_learning_curve_cache_tells_backbones_apart(target, cache):
    torch.manual_seed(0)
    states = [SmallCNN(1, 2, width=4).features.state_dict() for _ in range(2)]
    runs = []
    for state in states:
        pre = S.Pretrained("transfer", "handmade", "", state, cache / "x.pt", False, {})
        runs.append(
            S.learning_curve(
                target,
                budgets=(5,),
                seeds=(0,),
                variants=("transfer",),
                pretrained={"transfer": pre},
                schedule=TINY,
            )
        )
    assert not runs[1]["cached"].iloc[0]


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
    summ = S.curve_table(df)
    row = summ[(summ["variant"] == "augment") & (summ["budget"] == "10")].iloc[0]
    ref = df[(df["variant"] == "augment") & (df["budget"] == "10")]["test_auc"]
    assert list(summ.columns) == ["variant", "budget", "per_class", "mean", "sd", "n_seeds"]
    assert row["mean"] == pytest.approx(ref.mean())
    assert row["sd"] == pytest.approx(np.std(ref.to_numpy(), ddof=1)) and row["n_seeds"] == 3
    assert row["sd"] == pytest.approx(0.04)  # 0.70, 0.78, 0.74: sample SD, not 0.0327
    assert summ["per_class"].is_monotonic_increasing
    assert summ["variant"].tolist() == ["augment", "scratch"] * 2  # by budget, then variant
    one = S.curve_table(df[df["seed"] == 0])
    assert one["sd"].isna().all() and (one["n_seeds"] == 1).all()
    g = S.gain_at(df, "augment", 10)
    assert g["gain"] == pytest.approx(0.74 - 0.62)
    assert g["spread"] == pytest.approx(max(ref.std(ddof=1), np.std([0.60, 0.64, 0.62], ddof=1)))
    assert g["paired_min"] == pytest.approx(0.10)
    assert g["paired_sd"] == pytest.approx(np.std([0.10, 0.14, 0.12], ddof=1))
    assert g["paired_sd"] == pytest.approx(0.02)
    assert g["augment"] == pytest.approx(0.74) and g["scratch"] == pytest.approx(0.62)
    assert "paired_std" not in g
    with pytest.raises(ValueError, match="no rows"):
        S.gain_at(df, "transfer", 10)
    with pytest.raises(ValueError, match="metric"):
        S.curve_table(df, metric="f1")


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
