"""medlab.experiments: the lesson convention, run_grid, summarize (ddof=1) and the model cache."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import medlab
from medlab.experiments import (
    IMAGES_SEEN,
    ModelCache,
    binomial_se,
    cache_dir,
    cached_model,
    fingerprint,
    lesson,
    model_sources,
    paired_effect,
    run_grid,
    sd,
    source_hash,
    summarize,
)
from medlab.experiments import cache as cache_module
from medlab.models import SmallCNN
from medlab.train import fit, predict


@pytest.fixture
def threads():
    """Whatever a test does to torch's thread count is undone afterwards."""
    n = torch.get_num_threads()
    yield n
    torch.set_num_threads(n)


# ---------------------------------------------------------------------------------- lesson


def test_lesson_seeds_budget_and_tolerances(threads, monkeypatch):
    monkeypatch.delenv("MEDLAB_THREADS", raising=False)
    q = lesson(quick=True, seed=3, threads=1)
    assert q.seeds == (3, 4) and q.seed == 3 and q.mode == "quick"
    assert q.images_seen == IMAGES_SEEN[True] == 12_000
    assert q.tol["auc"] == 0.03 and q.tol["count"] == 0.0
    full = lesson(quick=False, seed=0, threads=1)
    assert full.seeds == (0, 1, 2, 3, 4) and full.images_seen == 50_000 and full.mode == "full"
    assert full.tol["auc"] < q.tol["auc"]
    custom = lesson(True, 10, n_seeds=3, images_seen=600, threads=1)
    assert custom.seeds == (10, 11, 12) and custom.images_seen == 600
    assert lesson(np.bool_(True), np.int64(2), threads=1).seeds == (2, 3)
    # tolerances are copies: editing one lesson's does not change the next
    q.tol["auc"] = 1.0
    assert lesson(True, 0, threads=1).tol["auc"] == 0.03


def test_lesson_threads_from_the_environment(threads, monkeypatch):
    monkeypatch.setenv("MEDLAB_THREADS", "1")
    L = lesson(True, 0)
    assert L.threads == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("MEDLAB_THREADS", "2")
    assert lesson(True, 0).threads == torch.get_num_threads() == 2
    assert lesson(True, 0, threads=1).threads == 1  # an explicit count wins over the variable
    monkeypatch.setenv("MEDLAB_THREADS", "two")
    with pytest.raises(ValueError, match="MEDLAB_THREADS must be a positive integer.*'two'"):
        lesson(True, 0)
    monkeypatch.setenv("MEDLAB_THREADS", "0")
    with pytest.raises(ValueError, match="MEDLAB_THREADS must be a positive integer"):
        lesson(True, 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"quick": "False"}, r"quick must be True or False, got 'False' \(str\)"),
        ({"quick": 1}, "quick must be True or False"),
        ({"quick": None}, "quick must be True or False"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"seed": "0"}, "seed must be an integer"),
        ({"n_seeds": 0}, "n_seeds"),
        ({"images_seen": 0}, "images_seen"),
        ({"threads": 0}, "threads"),
    ],
)
def test_lesson_rejects_bad_parameters(kwargs, match, threads):
    args = {"quick": True, "seed": 0, "threads": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        lesson(**args)


def test_lesson_epochs(threads):
    L = lesson(True, 0, threads=1)
    assert L.epochs(546) == round(12_000 / 546) == 22
    assert L.epochs(100_000) == 1  # at least one epoch
    assert L.epochs(100_000, minimum=5) == 5
    assert L.epochs(546, maximum=10) == 10
    assert L.epochs(2428, scale=0.5) == round(6_000 / 2428)
    with pytest.raises(ValueError, match="n_train"):
        L.epochs(0)
    with pytest.raises(ValueError, match="minimum"):
        L.epochs(10, minimum=0)


# ---------------------------------------------------------------------------------- run_grid


def test_run_grid_cartesian_in_order():
    calls = []

    def fn(share, method, seed):
        calls.append((share, method, seed))
        return {"auc": share + seed / 10, "label": f"{method}-{seed}"}

    df = run_grid(fn, {"share": [0.05, 0.5], "method": ["a", "b"]}, [0, 1])
    want = [(s, m, k) for s in (0.05, 0.5) for m in ("a", "b") for k in (0, 1)]
    assert calls == want  # grid order, seeds innermost
    assert list(df.columns) == ["share", "method", "seed", "auc", "label"]
    assert list(df.itertuples(index=False, name=None)) == [
        (s, m, k, s + k / 10, f"{m}-{k}") for s, m, k in want
    ]
    one = run_grid(
        lambda share, seed: {"auc": share}, {"share": np.array([0.1, 0.2, 0.3])}, [5], desc="x"
    )
    assert one["auc"].tolist() == [0.1, 0.2, 0.3] and set(one["seed"]) == {5}


def test_run_grid_points_and_several_rows_per_call():
    points = [{"share": 0.05, "mitigation": "baseline"}, {"share": 0.05, "mitigation": "reweight"}]
    df = run_grid(
        lambda share, mitigation, seed: [
            {"method": mitigation, "v": 1},
            {"method": "thresholds", "v": 2},
        ],
        points,
        (7, 8),
    )
    assert len(df) == 2 * 2 * 2
    assert df["seed"].tolist() == [7, 7, 8, 8] * 2
    assert df["method"].tolist() == ["baseline", "thresholds"] * 2 + ["reweight", "thresholds"] * 2
    assert df["mitigation"].tolist() == ["baseline"] * 4 + ["reweight"] * 4


@pytest.mark.parametrize(
    "grid, seeds, err, match",
    [
        ({"method": "baseline"}, [0], ValueError, r"grid\['method'\] must be a list"),
        ({"share": []}, [0], ValueError, "empty"),
        ({"share": 0.5}, [0], ValueError, "must be a list"),
        ("share", [0], ValueError, "grid must be"),
        ([], [0], ValueError, "non-empty"),
        ({"share": [0.1]}, [], ValueError, "seeds is empty"),
        ({"share": [0.1]}, 3, ValueError, "list of integers"),
        ({"share": [0.1]}, "01", ValueError, "list of integers"),
        ({"share": [0.1]}, [0, 0], ValueError, "repeated"),
        ({"share": [0.1]}, [-1], ValueError, "seeds"),
    ],
)
def test_run_grid_rejects_bad_grids_and_seeds(grid, seeds, err, match):
    def fn(**kw):
        raise AssertionError("fn must not run on a bad grid")

    with pytest.raises(err, match=match):
        run_grid(fn, grid, seeds)


def test_run_grid_rejects_name_clashes_and_bad_results():
    with pytest.raises(ValueError, match=r"reuse the grid's names \['share'\]"):
        run_grid(lambda share, seed: {"share": 1.0}, {"share": [0.1]}, [0])
    with pytest.raises(ValueError, match=r"\['seed'\]"):
        run_grid(lambda share, seed: [{"auc": 1}, {"seed": 3}], {"share": [0.1]}, [0])
    with pytest.raises(TypeError, match="dict"):
        run_grid(lambda share, seed: [], {"share": [0.1]}, [0])
    with pytest.raises(TypeError, match="dict"):
        run_grid(lambda share, seed: [0.5], {"share": [0.1]}, [0])
    with pytest.raises(TypeError, match="callable"):
        run_grid("fn", {"share": [0.1]}, [0])


@pytest.mark.parametrize("result", [None, 0.5])
def test_run_grid_explains_a_missing_return(result):
    with pytest.raises(TypeError, match="fn must return a dict"):
        run_grid(lambda share, seed: result, {"share": [0.1]}, [0])


# ---------------------------------------------------------------------------------- summarize


def test_summarize_sample_sd_mean_and_n_seeds():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "share": np.repeat([0.5, 0.05], 4),
            "seed": np.tile(range(4), 2),
            "auc": rng.random(8),
            "tpr": rng.random(8),
            "method": "baseline",
        }
    )
    out = summarize(df, by="share", metrics=["auc", "tpr"])
    assert list(out.columns) == ["share", "auc", "auc_sd", "tpr", "tpr_sd", "n_seeds"]
    assert out["share"].tolist() == [0.5, 0.05]  # order of first appearance
    for share in (0.5, 0.05):
        v = df[df["share"] == share]["auc"]
        row = out[out["share"] == share].iloc[0]
        assert row["auc"] == pytest.approx(v.mean())
        assert row["auc_sd"] == pytest.approx(np.std(v.to_numpy(), ddof=1))
        assert row["auc_sd"] == pytest.approx(v.std())  # pandas' default is ddof=1 too
        assert row["auc_sd"] != pytest.approx(np.std(v.to_numpy(), ddof=0))
        assert row["n_seeds"] == 4
    default = summarize(df, by=["share", "method"])  # every numeric column but seed
    assert list(default.columns) == ["share", "method", "auc", "auc_sd", "tpr", "tpr_sd", "n_seeds"]
    one = summarize(df[df["seed"] == 0], by="share", metrics="auc")
    assert one["auc_sd"].isna().all() and (one["n_seeds"] == 1).all()
    assert one["auc"].tolist() == df[df["seed"] == 0]["auc"].tolist()
    with pytest.raises(ValueError, match="lacks"):
        summarize(df, by="nope")
    with pytest.raises(ValueError, match="unknown metrics"):
        summarize(df, by="share", metrics="f1")
    with pytest.raises(ValueError, match="non-empty"):
        summarize(df.iloc[:0], by="share")


def test_sd_is_the_sample_sd_of_finite_values():
    assert sd([1.0, 2.0, 4.0]) == pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1))
    assert sd([1.0, np.nan, 3.0]) == pytest.approx(np.std([1.0, 3.0], ddof=1))
    assert math.isnan(sd([1.0])) and math.isnan(sd([]))
    assert medlab.summarize is summarize and medlab.run_grid is run_grid


def test_binomial_se_matches_the_spread_of_simulated_test_sets():
    """The SE of a mean over S seeds of a difference of two accuracies, each on n patients,
    against the SD of that mean over 20 000 simulated test sets."""
    rng = np.random.default_rng(0)
    p1, p2, n, s = 0.8, 0.6, 39, 3
    a = rng.binomial(n, p1, size=(20_000, s)) / n
    b = rng.binomial(n, p2, size=(20_000, s)) / n
    empirical = np.std((a - b).mean(axis=1), ddof=1)
    assert binomial_se(([p1] * s, n), ([p2] * s, n)) == pytest.approx(empirical, rel=0.03)
    assert binomial_se(([p1] * s, [n] * s)) == pytest.approx(math.sqrt(p1 * (1 - p1) / n / s))
    # Laplace: a TPR of 1.0 on 5 patients still has noise; without it, none
    assert binomial_se(([1.0], 5)) == 0 and binomial_se(([1.0], 5), laplace=True) > 0.1


@pytest.mark.parametrize(
    "args, match",
    [
        ((), "at least one"),
        (([0.5],), "pair"),
        ((([0.5], 0),), "positive"),
        ((([1.5], 10),), r"\[0, 1\]"),
        ((([np.nan], 10),), r"\[0, 1\]"),
        ((([0.5, 0.6], [10, 10, 10]),), "one value per seed"),
        ((([0.5, 0.6], 10), ([0.5], 10)), "one value per seed"),
    ],
)
def test_binomial_se_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        binomial_se(*args)


def test_paired_effect_takes_the_larger_standard_error():
    e = paired_effect(pd.Series([0.10, 0.20, 0.15], index=[0, 10, 20]))
    assert e.n == 3 and e.mean == pytest.approx(0.15)
    assert e.se == e.seed_se == pytest.approx(0.05 / math.sqrt(3))
    assert e.clear() and not e.reversed() and list(e.per_seed.index) == [0, 10, 20]
    wide = paired_effect([0.10, 0.20, 0.15], binomial=0.1)  # few test patients dominate
    assert wide.se == 0.1 and not wide.clear() and not wide.reversed() and wide.clear(1)
    down = paired_effect([-0.3, -0.35])
    assert down.reversed() and not down.clear()
    one = paired_effect([0.2])  # one seed: no seed spread
    assert one.seed_se == 0 and one.se == 0 and one.clear()
    assert str(e) == "+0.150 ± 0.029 (SE over 3 seeds)" and "1 seed)" in str(one)


@pytest.mark.parametrize(
    "values, kw",
    [([], {}), ([0.1, np.nan], {}), ([0.1], {"binomial": -1}), ([0.1], {"binomial": math.inf})],
)
def test_paired_effect_rejects_bad_input(values, kw):
    with pytest.raises(ValueError, match="paired_effect|binomial"):
        paired_effect(values, **kw)


# ---------------------------------------------------------------------------------- the cache


def _subsets(breast, n: int = 64):
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(breast.train), generator=g)
    return breast.train.subset(perm[:n]), breast.train.subset(perm[n : 2 * n])


class _Counter:
    """A cheap stand-in for training: deterministic weights, counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model: torch.nn.Module) -> dict:
        self.calls += 1
        with torch.no_grad():
            model.head.bias.fill_(float(self.calls))
        return {"trained": self.calls}


def _build():
    return SmallCNN(1, 2, width=4)


def test_different_subsets_get_different_keys(breast, cache):
    a, b = _subsets(breast)
    assert len(a) == len(b) == 64  # the same size: the old key (name + size) collided
    store = ModelCache()
    assert store.folder == cache.resolve() == cache_dir()
    ka, kb = (store.key("smallcnn", data=breast, train=s, seed=0) for s in (a, b))
    assert ka != kb
    assert store.key("smallcnn", data=breast, train=a.subset(range(64)), seed=0) == ka
    # a different label on one image is another training set
    relabel = a.subset(range(64))
    relabel.labels[0] = 1 - relabel.labels[0]
    assert store.key("smallcnn", data=breast, train=relabel, seed=0) != ka
    assert ka.startswith("smallcnn-breastmnist-seed0-")
    assert fingerprint(a.images, a.labels) == fingerprint(a.images.numpy(), a.labels.numpy())
    assert fingerprint(a.images) != fingerprint(a.images.float())  # dtype counts
    assert fingerprint(a.images) != fingerprint(a.images.reshape(64, 28, 28))  # shape counts
    assert fingerprint(None) != fingerprint(np.zeros(0))


def test_cache_hits_and_misses(breast, cache):
    a, b = _subsets(breast)
    train = _Counter()

    def get(split=a, seed=0, settings=None, data=breast, weights=None, val=None):
        return cached_model(
            "smallcnn",
            _build,
            train,
            data=data,
            train_split=split,
            seed=seed,
            settings=settings or {"epochs": 1},
            weights=weights,
            val_split=val,
        )

    m1, info1 = get()
    assert train.calls == 1 and info1["cached"] is False and info1["trained"] == 1
    m2, info2 = get()
    assert train.calls == 1, "the same subset, seed and settings must not train again"
    assert info2["cached"] is True and info2["key"] == info1["key"] and info2["trained"] == 1
    assert all(torch.equal(v, m2.state_dict()[k]) for k, v in m1.state_dict().items())
    assert not m2.training
    other_md5 = type(breast)(
        **{**breast.__dict__, "provenance": {**breast.provenance, "md5": "0" * 32}}
    )
    misses = [
        get(split=b),
        get(seed=1),
        get(settings={"epochs": 2}),
        get(data=other_md5),
        get(weights=torch.ones(64)),
        get(val=breast.val),
    ]
    assert train.calls == 1 + len(misses)
    keys = {info1["key"]} | {info["key"] for _, info in misses}
    assert len(keys) == 1 + len(misses) and not any(info["cached"] for _, info in misses)
    assert len(list(cache.glob("*.pt"))) == len(keys)
    assert not list(cache.glob(".tmp-*"))  # atomic writes leave no temporary file


def test_cache_files_load_weights_only(breast, cache):
    a, _ = _subsets(breast)
    model, info = cached_model("smallcnn", _build, _Counter(), data=breast, train_split=a, seed=0)
    path = ModelCache().path(info["key"])
    blob = torch.load(path, weights_only=True)
    assert set(blob) == {"key", "state", "info"} and blob["key"] == info["key"]
    assert json.loads(blob["info"]) == {"trained": 1}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in blob["state"].items())

    # a file that needs unpickling of arbitrary objects is refused (and retrained)
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"state": Payload(), "info": "{}"}, path)
    train = _Counter()
    with pytest.warns(UserWarning, match="ignoring unreadable cached model"):
        _, again = cached_model("smallcnn", _build, train, data=breast, train_split=a, seed=0)
    assert train.calls == 1 and again["cached"] is False
    assert torch.load(path, weights_only=True)["info"] == '{"trained": 1}'  # replaced


def test_corrupt_cache_file_is_ignored_with_a_warning(breast, cache):
    a, _ = _subsets(breast)
    store = ModelCache()
    key = store.key("smallcnn", data=breast, train=a, seed=0, settings={"x": 1})
    cache.mkdir(parents=True)
    store.path(key).write_bytes(b"not a torch file")
    train = _Counter()
    with pytest.warns(UserWarning, match="(?s)ignoring unreadable cached model.*retrained"):
        model, info = cached_model(
            "smallcnn", _build, train, data=breast, train_split=a, seed=0, settings={"x": 1}
        )
    assert train.calls == 1 and not info["cached"] and info["key"] == key
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the replacement reads back cleanly
        _, hit = cached_model(
            "smallcnn", _build, train, data=breast, train_split=a, seed=0, settings={"x": 1}
        )
    assert hit["cached"] and train.calls == 1


def test_retraining_after_a_bad_file_starts_from_the_seeded_init(breast, cache):
    a, _ = _subsets(breast)
    store = ModelCache()
    key = store.key("smallcnn", data=breast, train=a, seed=0)
    stale = _build()
    with torch.no_grad():
        for p in stale.parameters():
            p.fill_(0.5)
    state = stale.state_dict()
    state.pop("head.bias")  # e.g. written by another version of the model
    cache.mkdir(parents=True)
    torch.save({"key": key, "state": state, "info": "{}"}, store.path(key))
    seen = {}

    def train(model):
        seen["start"] = {k: v.clone() for k, v in model.state_dict().items()}
        return {}

    with pytest.warns(UserWarning, match="ignoring unreadable"):
        cached_model("smallcnn", _build, train, data=breast, train_split=a, seed=0)
    fresh, _ = cached_model(
        "smallcnn", _build, lambda m: {}, data=breast, train_split=a, seed=0, cache=False
    )
    assert all(torch.equal(v, seen["start"][k]) for k, v in fresh.state_dict().items())


def test_cache_paths_stay_inside_the_folder(breast, cache):
    a, _ = _subsets(breast)
    evil = type(breast)(**{**breast.__dict__, "name": "../../x"})
    store = ModelCache()
    key = store.key("../../kind", data=evil, train=a, seed=0)
    assert "/" not in key and ".." not in key
    _, info = cached_model("../../kind", _build, _Counter(), data=evil, train_split=a, seed=0)
    files = [p for p in cache.parent.rglob("*") if p.is_file()]
    assert files and all(p.parent == cache for p in files)
    assert store.path("../../../etc/passwd").parent == cache.resolve()
    assert store.path(info["key"]).exists()


def test_cache_false_writes_nothing_and_always_trains(breast, cache):
    a, _ = _subsets(breast)
    train = _Counter()
    for _ in range(2):
        _, info = cached_model(
            "smallcnn", _build, train, data=breast, train_split=a, seed=0, cache=False
        )
        assert info["cached"] is False and "key" not in info
    assert train.calls == 2 and not cache.exists()
    # an explicit folder instead of the default one
    other = cache.parent / "other"
    cached_model("smallcnn", _build, train, data=breast, train_split=a, seed=0, cache=other)
    assert len(list(other.glob("*.pt"))) == 1 and not cache.exists()


def test_cached_model_returns_the_trained_model(breast, cache):
    """A real (tiny) training through the cache: the cached copy predicts exactly the same."""
    a, _ = _subsets(breast)

    def train(model):
        return fit(model, a, None, epochs=1, batch_size=32, seed=0, augment=False).as_dict()

    m1, i1 = cached_model(
        "smallcnn", _build, train, data=breast, train_split=a, seed=0, settings={"epochs": 1}
    )
    m2, i2 = cached_model(
        "smallcnn", _build, train, data=breast, train_split=a, seed=0, settings={"epochs": 1}
    )
    assert (i1["cached"], i2["cached"]) == (False, True)
    assert i2["epochs"] == i1["epochs"] and i2["config"]["seed"] == 0
    np.testing.assert_array_equal(predict(m1, breast.test), predict(m2, breast.test))
    untrained = _build()
    assert not np.array_equal(predict(untrained, breast.test), predict(m2, breast.test))


def test_keys_sharing_a_long_prefix_get_their_own_models(breast, cache):
    """The collision of issue 24: the old file name cut the key to 60 characters, so with a long
    kind and dataset name two settings shared one file and the second got the first's model."""
    a, _ = _subsets(breast, n=32)
    long_name = type(breast)(**{**breast.__dict__, "name": "pneumoniamnist_balanced_subset"})
    kind = "smallcnn-synthetic-" + "k" * 40  # leaves no room for the digest in the old scheme

    def train_with(epochs):
        def train(model):
            return fit(model, a, None, epochs=epochs, batch_size=16, seed=40, augment=False,
                       lr=0.05).as_dict()  # fmt: skip

        return train

    models = {}
    for epochs in (1, 2):
        models[epochs], info = cached_model(kind, _build, train_with(epochs), data=long_name,
                                            train_split=a, seed=40, settings={"epochs": epochs})  # fmt: skip
        assert info["cached"] is False
    one, two = (models[e].state_dict() for e in (1, 2))
    assert any(not torch.equal(one[k], two[k]) for k in one), "the two trainings must differ"
    store = ModelCache()
    keys = [
        store.key(kind, data=long_name, train=a, seed=40, settings={"epochs": e}) for e in (1, 2)
    ]
    assert keys[0][:80] == keys[1][:80]  # a long common prefix: the old 60-character name
    assert keys[0] != keys[1]  # collided, the new one does not
    assert store.path(keys[0]) != store.path(keys[1])
    for epochs in (1, 2):  # each one back, from the cache, with its own weights
        never = _Counter()
        got, info = cached_model(kind, _build, never, data=long_name, train_split=a, seed=40,
                                 settings={"epochs": epochs})  # fmt: skip
        assert info["cached"] is True and never.calls == 0 and len(info["epochs"]) == epochs
        mine = models[epochs].state_dict()
        assert all(torch.equal(v, mine[k]) for k, v in got.state_dict().items())


def test_file_names_are_collision_free_and_carry_the_whole_digest(cache):
    store = ModelCache()
    prefix = "smallcnn-synthetic-pneumoniamnist_balanced_subset-seed40-"
    keys = [prefix + "abc" + tail for tail in ("0" * 61, "1" * 61)]
    keys += ["a/b", "a\x00b", "a_b", "a b", "a_b_", "x", "_", "\u00e9", "a" * 300, "a" * 301]
    names = [store.path(k).name for k in keys]
    assert len(set(names)) == len(keys)
    for k, n in zip(keys, names, strict=True):
        digest = hashlib.sha256(k.encode("utf-8", "surrogatepass")).hexdigest()
        assert n.endswith(f"-{digest}.pt") and len(n) <= 128
        assert store.path(k).parent == cache.resolve()
    with pytest.raises(TypeError, match="ModelCache.key"):
        store.path("")


def test_a_file_holding_another_key_is_a_miss(breast, cache):
    a, _ = _subsets(breast)
    store = ModelCache()
    _, info = cached_model("smallcnn", _build, _Counter(), data=breast, train_split=a, seed=0)
    other = store.key("smallcnn", data=breast, train=a, seed=0, settings={"epochs": 9})
    shutil.copy(store.path(info["key"]), store.path(other))  # e.g. a renamed or copied file
    train = _Counter()
    with pytest.warns(UserWarning, match="saved for another key"):
        _, again = cached_model("smallcnn", _build, train, data=breast, train_split=a, seed=0,
                                settings={"epochs": 9})  # fmt: skip
    assert train.calls == 1 and again["cached"] is False
    assert torch.load(store.path(other), weights_only=True)["key"] == other  # replaced
    blob = torch.load(store.path(info["key"]), weights_only=True)
    blob.pop("key")  # a file from before keys were stored: cannot be checked, so a miss
    torch.save(blob, store.path(info["key"]))
    with pytest.warns(UserWarning, match="saved for another key"):
        _, old = cached_model("smallcnn", _build, train, data=breast, train_split=a, seed=0)
    assert old["cached"] is False and train.calls == 2


def test_summarize_counts_values_behind_a_mean_with_missing_values():
    df = pd.DataFrame(
        {
            "share": [0.05] * 3 + [0.5] * 3,
            "seed": [0, 1, 2] * 2,
            "auc": [0.7, np.nan, 0.8, 0.9, 0.85, 0.95],
            "acc": [0.6, 0.7, 0.8, 0.9, 0.9, 0.9],
        }
    )
    out = summarize(df, by="share")
    assert list(out.columns) == ["share", "auc", "auc_sd", "auc_n", "acc", "acc_sd", "n_seeds"]
    low = out.iloc[0]
    assert low["auc_n"] == 2 and low["n_seeds"] == 3
    assert low["auc"] == pytest.approx(0.75) and low["auc_sd"] == pytest.approx(
        np.std([0.7, 0.8], ddof=1)
    )
    assert out.iloc[1]["auc_n"] == 3


# --------------------------------------------------------------------------------------------
# the source hash in the cache key: only code that changes a trained model


def _package_copy(tmp_path):
    """A copy of the medlab package (source files only), with a harness, an audit package and
    a lesson package's figures and explorer in it whatever the tree holds today."""
    root = tmp_path / "medlab"
    shutil.copytree(
        Path(medlab.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__")
    )
    for rel in ("harness/cli.py", "audit/report.py", "fairness/figures.py", "x/explorer.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text('"""A model-free module: it only reports."""\n')
    return root


def _reword(path, old="model", new="mod3l"):
    """Change one word of ``path`` (or add a comment line when it lacks the word)."""
    text = path.read_text()
    path.write_text(text.replace(old, new, 1) if old in text else text + f"# {new}\n")


def test_source_hash_ignores_reporting_code(tmp_path):
    root = _package_copy(tmp_path)
    before = source_hash(root)
    assert before == source_hash(root) and len(before) == 64
    for rel in ("harness/cli.py", "audit/report.py", "plots.py", "cards.py",
                "fairness/figures.py", "x/explorer.py"):  # fmt: skip
        _reword(root / rel)
    (root / "harness" / "new_tool.py").write_text("print('a new harness tool')\n")
    source_hash.cache_clear()
    assert source_hash(root) == before
    assert not {p.relative_to(root).as_posix() for p in model_sources(root)} & {
        "harness/cli.py",
        "audit/report.py",
        "plots.py",
        "cards.py",
        "x/explorer.py",
    }


@pytest.mark.parametrize("rel", ["train/loop.py", "models.py", "data/npz.py"])
def test_source_hash_covers_model_changing_code(tmp_path, rel):
    root = _package_copy(tmp_path)
    if not (root / rel).exists():  # the train package's files, whatever their names
        rel = next(p.relative_to(root).as_posix() for p in sorted((root / "train").glob("*.py")))
    before = source_hash(root)
    _reword(root / rel, "the", "th3")
    source_hash.cache_clear()
    assert source_hash(root) != before
    assert rel in {p.relative_to(root).as_posix() for p in model_sources(root)}


def test_the_cache_key_carries_the_source_hash(breast, tmp_path, monkeypatch):
    store = ModelCache(tmp_path)
    key = store.key("smallcnn", data=breast, train=breast.train, seed=0)
    monkeypatch.setattr(cache_module, "source_hash", lambda: "0" * 64)  # edited training code
    assert store.key("smallcnn", data=breast, train=breast.train, seed=0) != key
    package = Path(medlab.__file__).parent
    assert not any(p.relative_to(package).parts[0] == "harness" for p in model_sources())
