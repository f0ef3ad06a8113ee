"""medlab.privacy (the privacy lesson) on real data: the attack metrics, the loss-threshold
attack, LiRA-lite with shadow models, ART's black-box attack as a cross-check, DP-SGD with
Opacus and its accountant."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from medlab import privacy as P
from medlab.models import SmallCNN
from medlab.train import fit, predict, to_input

# ------------------------------------------------------------------------- attack metrics


def test_attack_metrics_perfect_and_reversed_attacks():
    m = P.attack_metrics([5.0, 6.0, 7.0], [1.0, 2.0, 3.0, 4.0])
    assert m["auc"] == 1.0 and m["tpr_at_fpr"] == {0.01: 1.0, 0.001: 1.0}
    assert m["n_members"] == 3 and m["n_nonmembers"] == 4
    assert (m["fpr"][0], m["tpr"][0], m["fpr"][-1], m["tpr"][-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(m["fpr"]) >= 0) and np.all(np.diff(m["tpr"]) >= 0)
    r = P.attack_metrics([1.0, 2.0], [5.0, 6.0])
    assert r["auc"] == 0.0 and r["tpr_at_fpr"][0.01] == 0.0


def test_attack_metrics_hand_computed_roc():
    # members 3, 1; non-members 2, 0 -> pairs (3>2, 3>0, 1<2, 1>0): AUC 3/4
    m = P.attack_metrics([3.0, 1.0], [2.0, 0.0], fpr_levels=(0.4, 0.5))
    assert m["auc"] == pytest.approx(0.75)
    # at FPR 0 the threshold 3 catches one member of two; FPR 0.5 (threshold 1) catches both
    assert m["tpr_at_fpr"] == {0.4: 0.5, 0.5: 1.0}


def test_attack_metrics_agree_with_sklearn_and_chance_on_random_scores():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.3, 1, 3000), rng.normal(0, 1, 5000)
    m = P.attack_metrics(pos, neg)
    y = np.r_[np.ones(3000), np.zeros(5000)]
    assert m["auc"] == pytest.approx(roc_auc_score(y, np.r_[pos, neg]))
    # independent read-out of TPR at 1 % FPR: the threshold above 99 % of the non-members
    t = np.sort(neg)[-int(0.01 * len(neg))]
    assert m["tpr_at_fpr"][0.01] == pytest.approx((pos >= t).mean(), abs=2e-3)
    same = P.attack_metrics(rng.normal(0, 1, 4000), rng.normal(0, 1, 4000))
    assert abs(same["auc"] - 0.5) < 0.03 and same["tpr_at_fpr"][0.01] < 0.03


@pytest.mark.parametrize(
    "args, match",
    [
        (([], [1.0]), "empty"),
        (([[1.0, 2.0]], [1.0]), "1-D"),
        (([np.nan], [1.0]), "NaN"),
    ],
)
def test_attack_metrics_bad_scores(args, match):
    with pytest.raises(ValueError, match=match):
        P.attack_metrics(*args)


def test_attack_metrics_bad_fpr_level():
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        P.attack_metrics([1.0], [0.0], fpr_levels=(0.0,))


# ----------------------------------------------------------------------- loss threshold


@pytest.fixture(scope="module")
def overfit(breast):
    """A width-8 SmallCNN overfitted on 100 random real BreastMNIST training images; 100 other
    training images are the non-members."""
    torch.manual_seed(0)
    perm = torch.randperm(len(breast.train), generator=torch.Generator().manual_seed(0))
    members = breast.train.subset(perm[:100])
    model = SmallCNN(1, 2, width=8, dropout=0.0)
    fit(model, members, epochs=80, batch_size=32, lr=5e-3, augment=False, seed=0)
    return model, members, breast.train.subset(perm[100:200])


def test_loss_scores_are_the_negative_cross_entropy(overfit):
    model, members, _ = overfit
    s = P.loss_scores(model, members)
    logits = torch.as_tensor(predict(model, members, logits=True))
    ref = F.cross_entropy(logits.double(), members.labels, reduction="none").numpy()
    assert s.shape == (len(members),) and s.dtype == np.float64
    np.testing.assert_allclose(s, -ref, rtol=1e-6)
    # (images, labels) gives the same as the Split; float images on [-1, 1] too
    np.testing.assert_allclose(P.loss_scores(model, (members.images, members.labels)), s)
    np.testing.assert_allclose(
        P.loss_scores(model, (to_input(members.images), members.labels)), s, rtol=1e-6
    )


def test_loss_attack_finds_members_of_an_overfitted_model(overfit):
    model, members, held_out = overfit
    m = P.attack_metrics(P.loss_scores(model, members), P.loss_scores(model, held_out))
    assert m["auc"] > 0.6


def test_loss_scores_bad_inputs(overfit):
    model, members, _ = overfit
    with pytest.raises(TypeError, match="Split"):
        P.loss_scores(model, members.images)
    with pytest.raises(ValueError, match="same N"):
        P.loss_scores(model, (members.images, members.labels[:3]))
    with pytest.raises(ValueError, match="class indices"):
        P.loss_scores(model, (members.images[:2], torch.tensor([0, 5])))
