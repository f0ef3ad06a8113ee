"""Training core: fit = make_optimizer + batches + train_steps, determinism, argument checks,
Opacus through train_steps, batched inference that restores the model's mode, models."""

from __future__ import annotations

import copy
import itertools
import math
import warnings

import numpy as np
import pytest
import torch
from conftest import data_slice
from sklearn.exceptions import UndefinedMetricWarning
from torch import nn

import medlab
from medlab.data import MedMNISTData, Split
from medlab.models import ResNet18, SmallCNN, build_model, count_parameters
from medlab.train import (
    BatchAugment,
    StepStats,
    batches,
    embeddings,
    eval_mode,
    evaluate,
    fit,
    make_optimizer,
    predict,
    to_input,
    train_model,
    train_steps,
)
from medlab.utils import seed_everything


@pytest.fixture(scope="module")
def small(pneumonia) -> MedMNISTData:
    """A small, class-mixed slice of real chest X-rays so the tests stay fast."""
    return data_slice(pneumonia, (1024, 96, 256))


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _net(seed: int = 0, **kwargs) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(1, 2, width=8, **kwargs)


# ---------------------------------------------------------------------------------- fit, train_model


def test_same_seed_same_numbers(small):
    runs = [
        train_model(small, "smallcnn", seed=3, epochs=1, batch_size=128, model_kwargs={"width": 8})
        for _ in range(2)
    ]
    (m1, h1), (m2, h2) = runs
    assert [r["train_loss"] for r in h1.epochs] == [r["train_loss"] for r in h2.epochs]
    assert _same(_weights(m1), _weights(m2))
    assert np.array_equal(predict(m1, small.test), predict(m2, small.test))
    m3, h3 = train_model(
        small, "smallcnn", seed=4, epochs=1, batch_size=128, model_kwargs={"width": 8}
    )
    assert h3.epochs[-1]["train_loss"] != h1.epochs[-1]["train_loss"]
    assert not _same(_weights(m1), _weights(m3))


def test_training_learns_real_signal(small):
    model, hist = train_model(
        small, "smallcnn", seed=0, epochs=5, batch_size=32, model_kwargs={"width": 8}
    )
    m = evaluate(model, small.test)
    assert m["auc"] > 0.85, f"160 steps on real chest X-rays should reach AUC > 0.85, got {m}"
    assert m["acc"] > 0.7, f"and beat the 50 % majority share clearly, got {m}"
    assert 1 <= hist.best_epoch <= 5 and len(hist.frame()) == 5
    # select_best: the returned weights are those of the best validation epoch
    best = max(hist.epochs, key=lambda r: r["val_auc"])
    assert hist.best_epoch == best["epoch"]
    assert evaluate(model, small.val)["auc"] == pytest.approx(best["val_auc"], abs=1e-9)
    assert not model.training  # fit leaves the model in eval mode


def test_fit_equals_its_composition(small):
    """fit(select_best=False, val=None) is exactly make_optimizer + batches + train_steps, epoch
    by epoch, with the generator from seed_everything(seed): bit-identical weights."""
    train, seed, epochs, bs, lr, wd = small.train.subset(range(200)), 7, 2, 48, 4e-3, 1e-3
    w = torch.linspace(0.5, 2.0, len(train))
    init = _net(1)
    by_fit = copy.deepcopy(init)
    hist = fit(
        by_fit,
        train,
        None,
        epochs=epochs,
        batch_size=bs,
        lr=lr,
        weight_decay=wd,
        seed=seed,
        sample_weight=w,
        select_best=False,
    )

    by_hand = copy.deepcopy(init)
    steps_per_epoch = math.ceil(len(train) / bs)  # 5: the last batch holds 8 images
    opt, sched = make_optimizer(
        by_hand, total_steps=epochs * steps_per_epoch, lr=lr, weight_decay=wd
    )
    gen = seed_everything(seed)
    src = batches(
        train, batch_size=bs, epochs=epochs, generator=gen, augment=BatchAugment(), sample_weight=w
    )
    losses = [
        train_steps(by_hand, src, opt, steps_per_epoch, scheduler=sched).loss for _ in range(epochs)
    ]
    assert next(src, None) is None  # the source held exactly `epochs` passes
    assert _same(_weights(by_fit), _weights(by_hand))
    assert [r["train_loss"] for r in hist.epochs] == losses
    assert not _same(_weights(by_fit), _weights(init))  # it trained
    # and the comparison can fail: another seed gives other weights
    other = copy.deepcopy(init)
    fit(
        other,
        train,
        None,
        epochs=epochs,
        batch_size=bs,
        lr=lr,
        weight_decay=wd,
        seed=seed + 1,
        sample_weight=w,
        select_best=False,
    )
    assert not _same(_weights(other), _weights(by_fit))


def test_sample_weight_changes_training(small):
    tr = data_slice(small, (256, 96, 32))
    w = torch.ones(len(tr.train))
    w[tr.train.labels == 1] = 5.0
    kw = dict(seed=0, epochs=1, model_kwargs={"width": 8})
    _, h_plain = train_model(tr, **kw)
    _, h_weighted = train_model(tr, sample_weight=w, **kw)
    assert h_plain.epochs[0]["train_loss"] != h_weighted.epochs[0]["train_loss"]
    assert h_weighted.config["weighted"] and not h_plain.config["weighted"]
    with pytest.raises(ValueError, match="sample_weight"):
        train_model(tr, seed=0, epochs=1, sample_weight=torch.ones(3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.0}, r"epochs must be an integer.*\(use 2\)"),
        ({"epochs": True}, "epochs must be an integer"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 32.5}, "batch_size must be an integer"),
        ({"lr": -1.0}, "lr"),
        ({"label_smoothing": 0.9}, "label_smoothing"),
        ({"sample_weight": "nan"}, "finite"),
        ({"sample_weight": "inf"}, "finite"),
        ({"sample_weight": "negative"}, "non-negative"),
        ({"sample_weight": "zero"}, "all zero"),
    ],
)
def test_fit_rejects_bad_parameters(small, kwargs, match):
    n = len(small.train)
    bad = {
        "nan": np.r_[np.ones(n - 1), np.nan],
        "inf": np.r_[np.ones(n - 1), np.inf],
        "negative": np.r_[np.ones(n - 1), -1.0],
        "zero": np.zeros(n),
    }
    if "sample_weight" in kwargs:
        kwargs = {"sample_weight": bad[kwargs["sample_weight"]]}
    model = _net()
    before = _weights(model)
    with pytest.raises(ValueError, match=match):
        fit(model, small.train, **kwargs)
    assert _same(before, _weights(model))  # refused before any step


def test_fit_accepts_numpy_integers(small):
    train = small.train.subset(range(64))
    hist = fit(_net(), train, None, epochs=np.int64(1), batch_size=np.int32(32), augment=False)
    assert len(hist.epochs) == 1 and hist.config["epochs"] == 1
    assert type(hist.config["epochs"]) is int and type(hist.config["batch_size"]) is int


def test_fit_checks_the_validation_split(small):
    train = small.train.subset(range(64))
    empty = small.val.subset([])
    with pytest.raises(ValueError, match="validation split is empty"):
        fit(_net(), train, empty, epochs=1)
    one_class = small.val.subset(np.flatnonzero(small.val.labels.numpy() == 0)[:16])
    with pytest.raises(ValueError, match="one class only"):
        fit(_net(), train, one_class, epochs=1)
    # without model selection a one-class validation split is only monitored
    model = _net()
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # AUC of one class: NaN
        hist = fit(model, train, one_class, epochs=1, select_best=False, augment=False)
    assert hist.best_epoch == 1 and math.isnan(hist.epochs[0]["val_auc"])
    assert not model.training
    with pytest.raises(ValueError, match="empty"):
        fit(_net(), small.train.subset([]), None, epochs=1)
    with pytest.raises(TypeError, match="val must be a medlab Split"):
        fit(_net(), train, small, epochs=1)


def test_evaluate_and_predict_reject_empty_splits(small):
    empty = small.test.subset([])
    with pytest.raises(ValueError, match="empty"):
        evaluate(_net(), empty)
    with pytest.raises(ValueError, match="empty"):
        predict(_net(), empty)
    with pytest.raises(ValueError, match="empty"):
        embeddings(_net(), empty)
    with pytest.raises(TypeError, match="medlab Split"):
        evaluate(_net(), small.test.images)


# ---------------------------------------------------------------------------------- the three parts


def test_batches_are_seeded_permutations(small):
    split = small.train.subset(range(50))
    out = list(batches(split, batch_size=16, epochs=2, seed=3))
    assert [len(b[0]) for b in out] == [16, 16, 16, 2] * 2
    gen = torch.Generator().manual_seed(3)
    for epoch in range(2):
        perm = torch.randperm(50, generator=gen)  # one fresh permutation per epoch
        xs = torch.cat([b[0] for b in out[4 * epoch : 4 * epoch + 4]])
        ys = torch.cat([b[1] for b in out[4 * epoch : 4 * epoch + 4]])
        assert torch.equal(xs, to_input(split.images[perm])) and torch.equal(ys, split.labels[perm])
    again = list(
        batches(split, batch_size=16, epochs=2, generator=torch.Generator().manual_seed(3))
    )
    assert all(torch.equal(a[0], b[0]) for a, b in zip(out, again, strict=True))
    w = torch.arange(50, dtype=torch.float32)
    x, y, wb = next(batches(split, batch_size=16, seed=3, sample_weight=w))
    assert torch.equal(wb, w[torch.randperm(50, generator=torch.Generator().manual_seed(3))[:16]])
    endless = batches(split, batch_size=16, epochs=None, seed=0)
    assert len(list(itertools.islice(endless, 11))) == 11  # more than two epochs
    aug = next(batches(split, batch_size=16, seed=3, augment=BatchAugment()))[0]
    assert aug.shape == out[0][0].shape and not torch.equal(aug, out[0][0])
    for kwargs, err in [
        ({"batch_size": 0}, ValueError),
        ({"epochs": 1.5}, ValueError),
        ({"sample_weight": torch.ones(3)}, ValueError),
    ]:
        with pytest.raises(err):
            batches(split, **kwargs)
    with pytest.raises(ValueError, match="empty"):
        batches(split.subset([]))
    with pytest.raises(TypeError, match="Split"):
        batches(split.images)


def test_k_local_steps_continue_from_the_optimizer_state(small):
    """train_steps(it, opt, 3) twice == train_steps(it2, opt2, 6) once (FedAvg's local steps)."""
    split = small.train.subset(range(192))
    runs = []
    for chunks in ((3, 3), (6,)):
        model = _net(2)
        opt, sched = make_optimizer(model, total_steps=6, lr=5e-3)
        it = batches(split, batch_size=32, epochs=None, seed=5)
        torch.manual_seed(11)  # dropout
        stats = [train_steps(model, it, opt, k, scheduler=sched) for k in chunks]
        runs.append((model, opt, sched, stats))
    (m1, o1, s1, st1), (m2, o2, s2, st2) = runs
    assert _same(_weights(m1), _weights(m2))
    assert [s.steps for s in st1] == [3, 3] and st2[0].steps == 6
    assert sum(s.images for s in st1) == st2[0].images == 6 * 32
    steps = [float(s["step"]) for s in o1.state_dict()["state"].values()]
    assert steps and set(steps) == {6.0}
    for a, b in zip(
        o1.state_dict()["state"].values(), o2.state_dict()["state"].values(), strict=True
    ):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(
            a["exp_avg_sq"], b["exp_avg_sq"]
        )
    assert s1.last_epoch == s2.last_epoch == 6 and s1.get_last_lr() == s2.get_last_lr()
    # a fresh optimizer for the second chunk loses the state: different weights
    model = _net(2)
    opt, sched = make_optimizer(model, total_steps=6, lr=5e-3)
    it = batches(split, batch_size=32, epochs=None, seed=5)
    torch.manual_seed(11)
    train_steps(model, it, opt, 3, scheduler=sched)
    train_steps(model, it, make_optimizer(model, total_steps=6, lr=5e-3)[0], 3)
    assert not _same(_weights(model), _weights(m1))


def test_train_steps_weights_and_bad_batches(small):
    split = small.train.subset(range(40))
    x, y = to_input(split.images), split.labels
    results = []
    for batch in ((x, y), (x, y, torch.ones(40)), (x.clone(), y, torch.full((40,), 3.0))):
        model = _net(3, dropout=0.0)
        opt, _ = make_optimizer(model, total_steps=1)
        st = train_steps(model, [batch], opt, 1)
        results.append((_weights(model), st))
    assert _same(results[0][0], results[1][0])  # unit weights == plain mean
    assert results[0][1].loss == pytest.approx(results[2][1].loss)  # normalised by sum(w)
    # a zero weight drops an image: same step as training without it
    model_a, model_b = _net(4, dropout=0.0), _net(4, dropout=0.0)
    w = torch.ones(40)
    w[:10] = 0.0
    train_steps(model_a, [(x, y, w)], make_optimizer(model_a, total_steps=1)[0], 1)
    train_steps(model_b, [(x[10:], y[10:])], make_optimizer(model_b, total_steps=1)[0], 1)
    for k, v in _weights(model_a).items():
        torch.testing.assert_close(v, _weights(model_b)[k], rtol=1e-5, atol=1e-6)
    # steps=None: one pass over a finite source; an empty batch (Opacus's Poisson sampling can
    # draw one) is still a step, with zero loss, and adds no images
    model = _net()
    st = train_steps(
        model, [(x[:0], y[:0]), (split.images[:8], y[:8])], make_optimizer(model, total_steps=2)[0]
    )
    assert (st.steps, st.images) == (2, 8) and math.isfinite(st.loss)
    assert isinstance(st, StepStats) and model.training
    with pytest.raises(TypeError, match=r"\(x, y\)"):
        train_steps(model, [x], make_optimizer(model, total_steps=1)[0], 1)
    with pytest.raises(ValueError, match="steps"):
        train_steps(model, [(x, y)], make_optimizer(model, total_steps=1)[0], -1)
    with pytest.raises(ValueError, match="total_steps"):
        make_optimizer(model, total_steps=0)


def test_make_optimizer_warmup_and_cosine():
    model = _net()
    opt, sched = make_optimizer(model, total_steps=100, lr=1e-2, weight_decay=0.0)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 0.0
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    n_warm = 10  # 10 % of 100 steps
    for step in (0, 5, 9, 10, 50, 99):
        want = 1e-2 * min(1.0, (step + 1) / n_warm) * 0.5 * (1 + math.cos(math.pi * step / 100))
        assert lrs[step] == pytest.approx(want)
    assert max(lrs) == pytest.approx(lrs[9]) and lrs[-1] < 1e-4


@pytest.mark.filterwarnings("ignore:Secure RNG turned off")
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_opacus_trains_through_train_steps(small):
    """Opacus wraps a medlab SmallCNN (GroupNorm), an optimizer from make_optimizer and a
    DataLoader; train_steps trains the private triple (Poisson-sampled batches)."""
    from opacus import PrivacyEngine
    from opacus.data_loader import DPDataLoader
    from opacus.optimizers import DPOptimizer
    from torch.utils.data import DataLoader, TensorDataset

    train = small.train.subset(range(256))

    def private_run(noise_seed: int):
        torch.manual_seed(0)  # Poisson sampling draws from the global generator
        model = SmallCNN(1, 2, width=8)
        before = _weights(model)
        opt, sched = make_optimizer(model, total_steps=20, lr=1e-2)
        loader = DataLoader(TensorDataset(train.images, train.labels), batch_size=32)
        engine = PrivacyEngine(accountant="rdp")
        p_model, p_opt, p_loader = engine.make_private(
            module=model,
            optimizer=opt,
            data_loader=loader,
            noise_multiplier=1.0,
            max_grad_norm=1.0,
            noise_generator=torch.Generator().manual_seed(noise_seed),
        )
        stats = train_steps(p_model, p_loader, p_opt, 4, scheduler=sched)
        return model, before, engine, p_opt, p_loader, sched, stats

    model, before, engine, p_opt, p_loader, sched, stats = private_run(0)
    assert isinstance(p_opt, DPOptimizer) and isinstance(p_loader, DPDataLoader)
    assert stats.steps == 4 and stats.images > 0 and math.isfinite(stats.loss)
    assert not _same(before, _weights(model))
    # every step went through the DP optimizer: the accountant counted them
    assert sum(n for _, _, n in engine.accountant.history) == 4
    eps = engine.get_epsilon(1e-5)
    assert math.isfinite(eps) and eps > 0
    # the scheduler acts on the parameter groups the DP optimizer steps with
    assert p_opt.param_groups[0]["lr"] == pytest.approx(sched.get_last_lr()[0])
    assert sched.last_epoch == 4
    # seeded: the same run again is bit-identical; other noise gives other weights
    assert _same(_weights(private_run(0)[0]), _weights(model))
    assert not _same(_weights(private_run(1)[0]), _weights(model))


# ---------------------------------------------------------------------------------- inference


class _Boom(SmallCNN):
    """A model whose forward (and embed) raises, recording the mode it was called in."""

    def __init__(self) -> None:
        super().__init__(1, 2, width=4)
        self.seen: list[bool] = []

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.training)
        raise RuntimeError("boom")


@pytest.mark.parametrize("fn", [predict, embeddings])
def test_inference_restores_the_mode_even_when_it_raises(small, fn):
    x = small.test.images[:5]
    for training in (True, False):
        boom = _Boom().train(training)
        with pytest.raises(RuntimeError, match="boom"):
            fn(boom, x)
        assert boom.seen == [False]  # ran in eval mode
        assert boom.training is training and all(m.training is training for m in boom.modules())
        model = _net().train(training)
        fn(model, x)
        assert model.training is training
    model = _net().train()
    with pytest.raises(KeyError):
        with eval_mode(model):
            assert not model.training and not model.dropout.training
            raise KeyError("inside the block")
    assert model.training and model.dropout.training


def test_inference_restores_mixed_submodule_modes(small):
    model = _net().train()
    model.features.eval()  # e.g. a frozen pretrained backbone while the head trains
    predict(model, small.test.images[:2])
    assert model.training and not model.features.training


def test_predict_batches_scales_and_logits(small):
    model = _net(5)
    model.train()  # dropout on: predict must switch it off, or batches would differ
    full = predict(model, small.test)
    assert full.shape == (len(small.test), 2) and full.dtype == np.float32
    np.testing.assert_allclose(full.sum(1), 1, atol=1e-5)
    for bs in (1, 7, 1000):
        np.testing.assert_allclose(
            predict(model, small.test, batch_size=bs), full, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(
            embeddings(model, small.test, batch_size=bs),
            embeddings(model, small.test),
            rtol=1e-5,
            atol=1e-6,
        )
    # uint8, [-1, 1] floats and numpy all give the same; logits=True is the raw output
    as_float = predict(model, to_input(small.test.images))
    np.testing.assert_array_equal(as_float, full)
    np.testing.assert_array_equal(predict(model, small.test.images.numpy()), full)
    logits = predict(model, small.test, logits=True)
    with torch.no_grad():
        ref = model.eval()(to_input(small.test.images))
    np.testing.assert_allclose(logits, ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        torch.softmax(torch.from_numpy(logits), 1).numpy(), full, rtol=1e-5, atol=1e-6
    )
    e = embeddings(model, small.test)
    assert e.shape == (len(small.test), 32)
    np.testing.assert_allclose(
        model.head(torch.from_numpy(e)).detach().numpy(), logits, rtol=1e-4, atol=1e-5
    )
    ml = predict(model, small.test.images[:4], task="multi-label, binary-class")
    np.testing.assert_allclose(ml, torch.sigmoid(torch.from_numpy(logits[:4])).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        predict(model, small.test.images[0])
    with pytest.raises(TypeError, match="uint8"):
        predict(model, small.test.images.long())
    with pytest.raises(TypeError, match="embed"):
        embeddings(nn.Linear(2, 2), small.test.images)


# ---------------------------------------------------------------------------------- pieces


def test_augment_is_seeded_and_bounded():
    x = to_input(torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8))
    aug = BatchAugment()
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= -1 and a.max() <= 1 and not torch.equal(a, x)
    ident = BatchAugment(flip=0, rotate=0, shift=0, scale=0, brightness=0, contrast=0)
    assert torch.allclose(ident(x, torch.Generator().manual_seed(0)), x, atol=1e-5)
    flip = BatchAugment(flip=1, rotate=0, shift=0, scale=0, brightness=0, contrast=0)
    assert torch.allclose(flip(x, torch.Generator().manual_seed(0)), x.flip(-1), atol=1e-5)
    with pytest.raises(ValueError, match="rotate"):
        BatchAugment(rotate=500)
    with pytest.raises(ValueError, match="flip"):
        BatchAugment(flip=True)


def test_to_input_range():
    x = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    assert to_input(x).tolist() == [[[[-1.0, 1.0]]]]
    with pytest.raises(TypeError):
        to_input(x.float())


@pytest.mark.parametrize("model", [SmallCNN(1, 2), ResNet18(3, 9, norm="group")])
def test_models_pass_opacus_validation(model):
    from opacus.validators import ModuleValidator

    assert ModuleValidator.validate(model, strict=False) == []
    assert not any(getattr(m, "inplace", False) for m in model.modules())


def test_batchnorm_resnet_fails_opacus_validation():
    from opacus.validators import ModuleValidator

    assert ModuleValidator.validate(ResNet18(3, 9, norm="batch"), strict=False)


def test_resnet18_matches_paper_size():
    model = build_model("resnet18", 3, 9)
    assert 11.1e6 < count_parameters(model) < 11.3e6
    out = model(torch.zeros(2, 3, 28, 28))
    assert out.shape == (2, 9)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", 1, 2)


def test_train_model_needs_a_dataset(small):
    with pytest.raises(TypeError, match="medlab.load"):
        train_model(small.train)
    assert medlab.train_model is train_model and medlab.fit is fit
    assert medlab.predict is predict and medlab.embeddings is embeddings


def test_predict_shapes(small):
    p = predict(SmallCNN(1, 2, width=8), small.test)
    assert p.shape == (len(small.test), 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    three = Split(
        "x",
        "test",
        small.test.images[:6],
        torch.zeros(6, dtype=torch.int64),
        "multi-class",
        {0: "a", 1: "b", 2: "c"},
    )
    assert predict(SmallCNN(1, 3, width=4), three).shape == (6, 3)


def test_progress_bar_stays_off_when_stderr_is_not_a_terminal(tmp_path):
    """A benchmark piped into a file prints clean lines: no bar, only the static line."""
    import os
    import subprocess
    import sys

    code = "from medlab.utils import progress\nfor _ in progress(range(3), desc='runs'): pass\n"
    env = {k: v for k, v in os.environ.items() if k not in ("MEDLAB_QUIET", "CI")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "%|" not in done.stderr and "\r" not in done.stderr, done.stderr
    assert done.stderr.strip().split(" in ")[0] == "runs: 3 of 3"


def test_progress_leaves_one_static_line_even_when_quiet_or_stopped_early(capsys, monkeypatch):
    from medlab.utils import progress

    monkeypatch.setenv("MEDLAB_QUIET", "1")
    assert list(progress(range(4), desc="epochs")) == [0, 1, 2, 3]
    for i in progress(range(10), desc="early"):
        if i == 2:
            break
    assert list(progress(iter("ab"), desc="gen")) == ["a", "b"]
    list(progress(range(2)))  # no desc: no line
    cap = capsys.readouterr()
    err = (cap.out + cap.err).splitlines()  # stdout in a kernel (ipykernel loaded), else stderr
    assert [e.split(" in ")[0] for e in err] == ["epochs: 4 of 4", "early: 3 of 10", "gen: 2"]
