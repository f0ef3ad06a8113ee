"""``grad_sample_mode="vmap"`` (medlab.privacy.persample): per-sample gradients from one
``torch.func.vmap`` over the whole model, checked against Opacus's own hooks (independent code)
on real images; an empty Poisson batch is still a step; the model is left without hooks."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from medlab import privacy as P
from medlab.models import SmallCNN
from medlab.privacy.persample import per_sample_gradients, vmap_step
from medlab.train import to_input, train_steps


@pytest.fixture()
def batch(breast):
    """40 real BreastMNIST training images (model scale) and their labels."""
    return to_input(breast.train.images[:40]), breast.train.labels[:40]


def test_vmap_per_sample_gradients_equal_opacus_hooks(batch):
    from opacus import GradSampleModule

    x, y = batch
    torch.manual_seed(0)
    model = SmallCNN(1, 2, width=8, dropout=0.0)  # training mode, as DP-SGD trains
    gsm = GradSampleModule(model)
    torch.nn.functional.cross_entropy(gsm(x), y).backward()
    theirs = {n: p.grad_sample.clone() for n, p in model.named_parameters()}
    gsm._close()  # Opacus's hooks off: torch.func traces the plain model
    ours, losses = per_sample_gradients(model)(x, y)
    assert set(ours) == set(theirs)
    for n, g in ours.items():
        assert g.shape == (40, *dict(model.named_parameters())[n].shape)
        torch.testing.assert_close(g, theirs[n], rtol=1e-4, atol=1e-6)
    per_image = torch.nn.functional.cross_entropy(model(x), y, reduction="none")
    torch.testing.assert_close(losses, per_image.detach(), rtol=1e-5, atol=1e-6)


def test_dropout_draws_for_each_image(batch):
    """In training mode each image gets its own dropout mask (randomness="different"): two
    copies of one image get different gradients."""
    x, y = batch
    torch.manual_seed(0)
    model = SmallCNN(1, 2, width=8, dropout=0.5).train()
    same = x[:1].repeat(8, 1, 1, 1)
    grads, _ = per_sample_gradients(model)(same, y[:1].repeat(8))
    head = grads["head.weight"].flatten(1)
    assert not torch.allclose(head[0], head[1:], atol=0)


def test_an_empty_poisson_batch_is_still_a_noised_counted_step(batch):
    from opacus import PrivacyEngine

    x, y = batch
    torch.manual_seed(0)
    model = SmallCNN(1, 2, width=4, dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(x, y), batch_size=20)
    engine = PrivacyEngine(accountant="rdp")
    gsm, dp_opt, _ = engine.make_private(
        module=model, optimizer=opt, data_loader=loader, noise_multiplier=1.0, max_grad_norm=1.0
    )
    gsm._close()
    before = [p.detach().clone() for p in model.parameters()]
    empty = (x[:0], y[:0])
    stats = train_steps(model, [empty], dp_opt, None, step=vmap_step(model))
    assert (stats.steps, stats.images) == (1, 0) and math.isnan(stats.loss)
    assert sum(h[2] for h in engine.accountant.history) == 1  # counted
    moved = [not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True)]
    assert all(moved)  # noise alone moved every parameter


def test_train_dp_vmap_leaves_a_plain_model(small_train_vmap):
    model = SmallCNN(1, 2, width=4, dropout=0.0)
    r = P.train_dp(
        model, small_train_vmap, epochs=1, batch_size=30, noise_multiplier=1.0, seed=0,
        grad_sample_mode="vmap",
    )  # fmt: skip
    assert r.grad_sample_mode == "vmap" and r.steps == 4 and r.epsilon > 0
    assert not model._forward_hooks and not model._backward_hooks
    assert all(not hasattr(p, "grad_sample") for p in model.parameters())


@pytest.fixture()
def small_train_vmap(breast):
    return breast.train.subset(torch.arange(120))


def test_multi_label_targets_get_train_steps_loss(batch):
    """Multi-label 0/1 targets (B, L) get binary cross-entropy, as train_steps trains them (not
    cross-entropy over soft labels): each image's vmap gradient equals plain autograd's on that
    image alone."""
    x, _ = batch
    x = x[:6]
    torch.manual_seed(0)
    model = SmallCNN(1, 3, width=4, dropout=0.0)
    y = torch.randint(0, 2, (6, 3)).float()
    ours, losses = per_sample_gradients(model)(x, y)
    for i in range(6):
        model.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(x[i : i + 1]), y[i : i + 1]
        )
        loss.backward()
        assert float(losses[i]) == pytest.approx(float(loss), rel=1e-5)
        for n, p in model.named_parameters():
            torch.testing.assert_close(ours[n][i], p.grad, rtol=1e-4, atol=1e-6)
