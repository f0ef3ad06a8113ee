"""Membership inference: is this image in the model's training set?

* :func:`attack_metrics` - the ROC of any membership score on members against held-out
  non-members: AUC and the true-positive rate at a low false-positive rate (1 %, 0.1 %), which is
  what matters for a single patient (Carlini et al. 2022);
* the loss-threshold attack (Yeom et al. 2018, :func:`loss_threshold_scores`, run on a model by
  :func:`loss_scores`) and offline LiRA with shadow models (Carlini et al. 2022,
  :func:`lira_scores`, checked and run by :func:`lira_offline`): both scores are written in
  notebook 06 and exported here;
* :func:`resolvable_fprs` and :func:`chance_tpr` - which low FPRs a number of non-members can
  resolve at all, and the TPR a random-score attack reaches there at the same numbers;
* :func:`art_blackbox` - IBM ART's black-box attack: a second, learned attack on the same loss
  signal (it checks our loss threshold's read-out, not LiRA).

Higher score = more likely a member, everywhere in this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medlab.data import Split
from medlab.train import eval_mode, predict, to_input
from medlab.utils import check_int, check_scalar

__all__ = [
    "FPR_LEVELS",
    "MIN_FALSE_POSITIVES",
    "attack_metrics",
    "resolvable_fprs",
    "chance_tpr",
    "describe_tpr",
    "per_example_loss",
    "loss_scores",
    "true_class_logit",
    "lira_offline",
    "art_blackbox",
    "loss_threshold_scores",
    "lira_scores",
]

FPR_LEVELS: tuple[float, ...] = (0.01, 0.001)
#: A TPR "at FPR f" is reported only where f * (non-members) allows at least this many false
#: positives: below one, "at 0.1 %" is the TPR at zero false positives, whatever f says.
MIN_FALSE_POSITIVES = 1


def resolvable_fprs(
    n_nonmembers: int, levels: tuple[float, ...] = FPR_LEVELS, *,
    min_false_positives: int = MIN_FALSE_POSITIVES,
) -> tuple[float, ...]:  # fmt: skip
    """The FPR levels (sorted, lowest first) that ``n_nonmembers`` resolve: those allowing at
    least ``min_false_positives`` false positives, ``level * n_nonmembers >= k``."""
    n = check_int("n_nonmembers", n_nonmembers, 1)
    k = check_int("min_false_positives", min_false_positives, 1)
    return tuple(sorted(float(f) for f in levels if f * n >= k - 1e-9))


def chance_tpr(
    n_members: int, n_nonmembers: int, fpr: float, *, n_runs: int = 1, n_sim: int = 4000,
    seed: int = 0,
) -> dict[str, float]:  # fmt: skip
    """The TPR at ``fpr`` of an attack that scores at random, at these numbers of members and
    non-members, read out as :func:`attack_metrics` does (the members above the
    ``floor(fpr * n_nonmembers) + 1``-th highest non-member), averaged over ``n_runs``
    independent runs (e.g. seeds) and simulated ``n_sim`` times. Returns ``{"mean", "p95"}``:
    an attack's TPR is better than chance only above ``p95``."""
    m, n = check_int("n_members", n_members, 1), check_int("n_nonmembers", n_nonmembers, 1)
    runs = check_int("n_runs", n_runs, 1)
    check_scalar("fpr", fpr, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False,
                 fix="e.g. 0.01")  # fmt: skip
    k = int(np.floor(fpr * n + 1e-9))  # false positives allowed
    rng = np.random.default_rng(check_int("seed", seed, 0))
    tpr = np.zeros(n_sim)
    for _ in range(runs):
        neg = rng.random((n_sim, n))
        cut = -np.partition(-neg, k, axis=1)[:, k] if k < n else np.full(n_sim, -np.inf)
        tpr += (rng.random((n_sim, m)) > cut[:, None]).mean(1) / runs
    return {"mean": float(tpr.mean()), "p95": float(np.quantile(tpr, 0.95))}


def _scores(name: str, x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores (one per image), got {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name} is empty: the attack needs at least one image on each side")
    if not np.isfinite(a).all():
        raise ValueError(
            f"{name} holds NaN or inf: clip the losses (e.g. np.clip) or drop those images"
        )
    return a


def attack_metrics(
    member_scores: Any,
    nonmember_scores: Any,
    *,
    fpr_levels: tuple[float, ...] = FPR_LEVELS,
) -> dict[str, Any]:
    """ROC of a membership attack (higher score = more likely a member).

    Args:
        member_scores: float (M,), scores of training images (positives).
        nonmember_scores: float (K,), scores of held-out images (negatives).
        fpr_levels: false-positive rates at which to read the true-positive rate.
    Returns a dict: ``auc`` (float), ``tpr_at_fpr`` ({fpr level: TPR}, the highest TPR whose
    FPR is <= the level; with K non-members the smallest non-zero FPR is 1/K, so a level below
    1/K reads the TPR at zero false positives), ``resolved`` (the levels K resolves,
    :func:`resolvable_fprs`: report only these), ``fpr`` and ``tpr`` (the ROC, float arrays
    from (0, 0) to (1, 1)), ``n_members``, ``n_nonmembers``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    pos = _scores("member_scores", member_scores)
    neg = _scores("nonmember_scores", nonmember_scores)
    for lvl in fpr_levels:
        check_scalar("each fpr level", lvl, kind=float, lo=0, hi=1, lo_inclusive=False,
                     hi_inclusive=False, fix="e.g. 0.01")  # fmt: skip
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    s = np.r_[pos, neg]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    tpr_at = {float(lvl): float(tpr[fpr <= lvl + 1e-12].max()) for lvl in fpr_levels}
    return {
        "auc": float(roc_auc_score(y, s)),
        "tpr_at_fpr": tpr_at,
        "resolved": resolvable_fprs(len(neg), tuple(tpr_at)),
        "fpr": fpr,
        "tpr": tpr,
        "n_members": len(pos),
        "n_nonmembers": len(neg),
    }


def describe_tpr(att: dict[str, Any], *, n_runs: int = 1, tpr: dict | None = None) -> str:
    """One sentence on an attack's TPR at each FPR level of ``att`` (an :func:`attack_metrics`
    result): at a level its non-members resolve, the TPR (``tpr``: e.g. a mean over ``n_runs``
    seeds, default ``att``'s own) next to a random attack's mean and 95th percentile at the same
    numbers; at a level they do not resolve, that it is not reported."""
    tpr = tpr or att["tpr_at_fpr"]
    n_pos, n_neg = att["n_members"], att["n_nonmembers"]
    parts = []
    for f in sorted(att["tpr_at_fpr"], reverse=True):
        if f not in att["resolved"]:
            parts.append(f"at {f:.1%} FPR not reported ({n_neg} non-members allow "
                         f"{f * n_neg:.2f} false positives)")  # fmt: skip
            continue
        c = chance_tpr(n_pos, n_neg, f, n_runs=n_runs)
        parts.append(f"at {f:.1%} FPR {tpr[f]:.3f} (random attack: mean {c['mean']:.3f}, "
                     f"95th percentile {c['p95']:.3f})")  # fmt: skip
    return "TPR " + "; ".join(parts)


def _images_labels(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, Split):
        if data.multilabel:
            raise ValueError(
                f"{data.name} is multi-label: the loss attack here needs one class per image"
            )
        return data.images, data.labels
    if isinstance(data, tuple | list) and len(data) == 2:
        x, y = torch.as_tensor(data[0]), torch.as_tensor(data[1])
        if x.ndim != 4 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(
                "give (images, labels) as images (N, C, H, W) and labels (N,) of the same N, "
                f"got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        return x, y.long()
    raise TypeError(
        "pass a medlab Split (e.g. data.train) or a tuple (images, labels), got "
        f"{type(data).__name__}"
    )


def _logits_labels(
    model: nn.Module, data: Any, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model``'s logits (N, K) on ``data`` (a Split or (images, labels)) and its labels."""
    x, y = _images_labels(data)
    if len(x) == 0:
        raise ValueError("no images: the split or tensor is empty")
    batch_size = check_int("batch_size", batch_size, 1)
    logits = torch.as_tensor(predict(model, x, batch_size=batch_size, logits=True))
    if int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise ValueError(
            f"labels must be class indices in [0, {logits.shape[1] - 1}] for this model"
        )
    return logits, y


def per_example_loss(
    model: nn.Module, split_or_images_labels: Any, *, batch_size: int = 256
) -> np.ndarray:
    """Cross-entropy of each image under ``model`` (eval mode), float64 (N,), in nats."""
    logits, y = _logits_labels(model, split_or_images_labels, batch_size)
    return F.cross_entropy(logits.double(), y, reduction="none").cpu().numpy()


def loss_scores(
    model: nn.Module,
    split_or_images_labels: Any,
    *,
    batch_size: int = 256,
    score: Callable[[torch.Tensor, torch.Tensor], np.ndarray] | None = None,
) -> np.ndarray:
    """The loss-threshold attack's membership scores on ``model``: ``score(logits, labels)``
    (default :func:`loss_threshold_scores`, the negative per-image loss), float64 (N,).
    Thresholding it at ``-t`` guesses "member" for every image with loss below ``t``."""
    logits, y = _logits_labels(model, split_or_images_labels, batch_size)
    return (score or loss_threshold_scores)(logits, y)


def true_class_logit(
    model: nn.Module, split_or_images_labels: Any, *, batch_size: int = 256
) -> np.ndarray:
    """LiRA's statistic: the logit-scaled confidence in the true class,
    ``phi = log p_y - log(1 - p_y)``, float64 (N,). Near-Gaussian over models, unlike ``p_y``."""
    x, y = _images_labels(split_or_images_labels)
    if len(x) == 0:
        raise ValueError("no images: the split or tensor is empty")
    logits = torch.as_tensor(predict(model, x, batch_size=batch_size, logits=True)).double()
    logp = torch.log_softmax(logits, 1)
    lp_y = logp.gather(1, y.long().view(-1, 1)).squeeze(1)
    others = logp.clone()
    others.scatter_(1, y.long().view(-1, 1), -torch.inf)
    return (lp_y - torch.logsumexp(others, 1)).cpu().numpy()


def lira_offline(
    target_phi: Any,
    shadow_phi: Any,
    shadow_in: Any,
    *,
    min_out: int = 1,
    score: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Offline LiRA scores (higher = more likely a member), float64 (N,): checks the inputs,
    then ``score(target_phi, shadow_phi, shadow_in)`` (default :func:`lira_scores`: per image a
    Gaussian fitted to ``phi`` under the shadows that did NOT train on it, and the target's
    ``phi`` scored by how far above that OUT distribution it lies).

    Args:
        target_phi: float (N,), :func:`true_class_logit` of the target model.
        shadow_phi: float (K, N), the same statistic under K shadow models.
        shadow_in: bool (K, N), True where shadow k trained on image n.
        min_out: images with fewer OUT shadows raise (train more shadows).
    """
    t = _scores("target_phi", target_phi)
    s = np.asarray(shadow_phi, dtype=np.float64)
    inside = np.asarray(shadow_in, dtype=bool)
    if s.ndim != 2 or s.shape[1] != len(t) or inside.shape != s.shape:
        raise ValueError(
            f"shadow_phi and shadow_in must both be (K shadows, N={len(t)} images), got "
            f"{s.shape} and {inside.shape}"
        )
    n_out = (~inside).sum(0)
    if int(n_out.min()) < min_out:
        raise ValueError(
            f"{int((n_out < min_out).sum())} images have fewer than {min_out} OUT shadow "
            "models: train more shadow models (each image must be left out of some)"
        )
    return (score or lira_scores)(t, s, inside)


def art_blackbox(
    model: nn.Module,
    members: Split,
    nonmembers: Split,
    *,
    seed: int = 0,
    attack_model_type: str = "rf",
    input_type: str = "loss",
) -> dict[str, Any]:
    """ART 1.20's ``MembershipInferenceBlackBox`` on ``model`` (wrapped in ART's
    ``PyTorchClassifier``), a learned attack on the loss threshold's signal: it checks that
    attack with independent code, not LiRA. Its attack model (``attack_model_type="rf"``: a random forest) learns
    membership from ``input_type`` features ("loss": the model's loss on the image, computed by
    ART; "prediction": its outputs and the label). Cross-fitted: fitted on one half of the
    members and non-members, it scores the other half, and vice versa, so every image is scored
    by an attack that never saw it. Returns :func:`attack_metrics` of the member probabilities.
    """
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import PyTorchClassifier

    for name, s in (("members", members), ("nonmembers", nonmembers)):
        if not isinstance(s, Split) or len(s) < 4:
            raise ValueError(f"{name} must be a medlab Split with at least 4 images")
    if input_type not in ("loss", "prediction"):
        raise ValueError(f"input_type must be 'loss' or 'prediction', got {input_type!r}")
    rng = np.random.default_rng(seed)
    data = []
    for s in (members, nonmembers):
        half = rng.permutation(len(s)) < len(s) // 2  # bool (N,): fold A
        data.append((to_input(s.images).cpu().numpy(), s.labels.cpu().numpy(), half))
    scores: list[list[np.ndarray]] = [[], []]
    with eval_mode(model):
        clf = PyTorchClassifier(
            model=model,
            loss=nn.CrossEntropyLoss(),
            input_shape=tuple(members.images.shape[1:]),
            nb_classes=len(members.label_names),
            clip_values=(-1.0, 1.0),
            device_type="cpu",  # ART's default ("gpu") moves the caller's model in place
        )
        for fold in (True, False):
            attack = MembershipInferenceBlackBox(
                clf, input_type=input_type, attack_model_type=attack_model_type
            )
            (mx, my, mh), (nx, ny, nh) = data
            np.random.seed(seed)  # ART's random forest draws from NumPy's global stream
            attack.fit(mx[mh == fold], my[mh == fold], nx[nh == fold], ny[nh == fold])
            for i, (x, y, h) in enumerate(data):
                p = np.asarray(attack.infer(x[h != fold], y[h != fold], probabilities=True))
                scores[i].append(p[:, -1] if p.ndim == 2 else p.reshape(-1))
    return attack_metrics(np.concatenate(scores[0]), np.concatenate(scores[1]))


# fmt: off
# %% exported from notebooks/06_privacy.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def loss_threshold_scores(logits: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """The loss-threshold attack (Yeom et al. 2018): a model fits its training images better
    than unseen ones, so the membership score of an image is minus its cross-entropy,
    -l(x, y) = log p(y | x), float64 (N,). Higher = more likely a member."""
    loss = F.cross_entropy(logits.double(), labels, reduction="none")  # nats, one per image
    return -loss.numpy()
# %% end of export


# %% exported from notebooks/06_privacy.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def lira_scores(target_phi: np.ndarray, shadow_phi: np.ndarray,
                shadow_in: np.ndarray) -> np.ndarray:
    """Offline LiRA (Carlini et al. 2022), float64 (N,): per image, a Gaussian fitted to phi
    under the shadows that did NOT train on it (its own mean, one global SD), and the target's
    phi scored by how far above it lies. target_phi (N,), shadow_phi (K, N), shadow_in (K, N)."""
    out = ~shadow_in                                                # OUT shadows of each image
    mu_out = np.where(out, shadow_phi, 0.0).sum(0) / out.sum(0)     # per-image OUT mean
    resid = np.where(out, shadow_phi - mu_out, np.nan)              # OUT residuals only
    sd_out = float(np.nanstd(resid, ddof=1)) if np.isfinite(resid).sum() > 1 else 1.0
    return (target_phi - mu_out) / max(sd_out, 1e-6)                # one global SD
# %% end of export
