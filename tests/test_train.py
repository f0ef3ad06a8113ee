"""Training core: determinism, augmentation, models fit for Opacus, metrics as MedMNIST's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score

import medlab
from medlab.metrics import majority_baseline, medmnist_metrics
from medlab.models import ResNet18, SmallCNN, build_model, count_parameters
from medlab.train import BatchAugment, fit, predict, to_input


@pytest.fixture(scope="module")
def small(pneumonia):
    """A small, class-mixed slice of real data so the tests stay fast."""
    from medlab.data import MedMNISTData

    g = torch.Generator().manual_seed(0)
    tr = pneumonia.train.subset(torch.randperm(len(pneumonia.train), generator=g)[:1024])
    va = pneumonia.val.subset(torch.randperm(len(pneumonia.val), generator=g)[:128])
    te = pneumonia.test.subset(torch.randperm(len(pneumonia.test), generator=g)[:256])
    return MedMNISTData(pneumonia.name, tr, va, te, pneumonia.task, pneumonia.label_names, 1, 28,
                        pneumonia.license, "", dict(pneumonia.provenance))


def test_same_seed_same_numbers(small):
    runs = [medlab.train(small, "smallcnn", seed=3, epochs=1, batch_size=128,
                         model_kwargs={"width": 8}) for _ in range(2)]
    (m1, h1), (m2, h2) = runs
    assert [r["train_loss"] for r in h1.epochs] == [r["train_loss"] for r in h2.epochs]
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert np.array_equal(predict(m1, small.test), predict(m2, small.test))
    _, h3 = medlab.train(small, "smallcnn", seed=4, epochs=1, batch_size=128,
                         model_kwargs={"width": 8})
    assert h3.epochs[-1]["train_loss"] != h1.epochs[-1]["train_loss"]


def test_training_learns_real_signal(small):
    model, hist = medlab.train(small, "smallcnn", seed=0, epochs=5, batch_size=32)
    m = medlab.evaluate(model, small.test)
    assert m["auc"] > 0.85, f"160 steps on real chest X-rays should reach AUC > 0.85, got {m}"
    assert m["acc"] > 0.7, f"and beat the 50 % majority share clearly, got {m}"
    assert 1 <= hist.best_epoch <= 5 and len(hist.frame()) == 5


def test_sample_weight_changes_training(small):
    w = torch.ones(len(small.train))
    w[small.train.labels == 1] = 5.0
    _, h_plain = medlab.train(small, seed=0, epochs=1, model_kwargs={"width": 8})
    _, h_weighted = medlab.train(small, seed=0, epochs=1, sample_weight=w, model_kwargs={"width": 8})
    assert h_plain.epochs[0]["train_loss"] != h_weighted.epochs[0]["train_loss"]
    with pytest.raises(ValueError, match="sample_weight"):
        medlab.train(small, seed=0, epochs=1, sample_weight=torch.ones(3))


@pytest.mark.parametrize("kwargs, match", [({"epochs": 0}, "epochs"), ({"lr": -1.0}, "lr"),
                                           ({"batch_size": 0}, "batch_size"),
                                           ({"label_smoothing": 0.9}, "label_smoothing")])
def test_fit_rejects_bad_parameters(small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit(SmallCNN(width=8), small.train, **kwargs)


def test_augment_is_seeded_and_bounded():
    x = to_input(torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8))
    aug = BatchAugment()
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= -1 and a.max() <= 1 and not torch.equal(a, x)
    ident = BatchAugment(flip=0, rotate=0, shift=0, scale=0, brightness=0, contrast=0)
    assert torch.allclose(ident(x, torch.Generator().manual_seed(0)), x, atol=1e-5)
    with pytest.raises(ValueError, match="rotate"):
        BatchAugment(rotate=500)


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


def test_resnet18_matches_paper_size():
    model = build_model("resnet18", 3, 9)
    assert 11.1e6 < count_parameters(model) < 11.3e6
    out = model(torch.zeros(2, 3, 28, 28))
    assert out.shape == (2, 9)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg", 1, 2)


def test_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    s = rng.dirichlet(np.ones(3), 200)
    m = medmnist_metrics(y.reshape(-1, 1), s, "multi-class")
    ovr = np.mean([roc_auc_score(y == k, s[:, k]) for k in range(3)])
    assert m["auc"] == pytest.approx(ovr) and m["acc"] == pytest.approx(accuracy_score(y, s.argmax(1)))
    yb = rng.integers(0, 2, 100)
    sb = rng.random(100)
    mb = medmnist_metrics(yb, np.stack([1 - sb, sb], 1), "binary-class")
    assert mb["auc"] == pytest.approx(roc_auc_score(yb, sb))
    yl = rng.integers(0, 2, (100, 4))
    sl = rng.random((100, 4))
    ml = medmnist_metrics(yl, sl, "multi-label, binary-class")
    assert ml["auc"] == pytest.approx(np.mean([roc_auc_score(yl[:, j], sl[:, j]) for j in range(4)]))
    with pytest.raises(ValueError, match="rows"):
        medmnist_metrics(y[:5], s, "multi-class")


def test_majority_baseline(breast):
    b = majority_baseline(breast.train.numpy_labels(), breast.test.numpy_labels(), breast.task)
    share = max(breast.test.class_counts().values()) / len(breast.test)
    assert b["auc"] == 0.5 and b["acc"] == pytest.approx(share)


def test_predict_shapes(small):
    p = predict(SmallCNN(1, 2, width=8), small.test)
    assert p.shape == (len(small.test), 2) and np.allclose(p.sum(1), 1, atol=1e-5)
