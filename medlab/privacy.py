"""Privacy: membership-inference attacks and the DP-SGD defence.

Attacks (written here, because they are what the lesson teaches):

* :func:`loss_scores` - the loss-threshold attack (Yeom et al. 2018): a training image tends to
  have a lower loss than an unseen one, so the membership score is the negative loss;
* :func:`attack_metrics` - the ROC of any membership score on members against held-out
  non-members: AUC and the true-positive rate at a low false-positive rate (1 %, 0.1 %), which is
  what matters for a single patient (Carlini et al. 2022).

Higher score = more likely a member, everywhere in this module.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medlab.data import Split
from medlab.train import predict
from medlab.utils import check_int, check_scalar

__all__ = [
    "FPR_LEVELS",
    "attack_metrics",
    "loss_scores",
    "per_example_loss",
    "true_class_logit",
    "lira_offline",
    "shadow_splits",
    "default_delta",
    "check_dp_params",
    "check_private",
    "epsilon_for",
    "DPResult",
    "train_dp",
    "art_blackbox",
    "EPSILONS",
    "setting_name",
    "lesson_config",
    "Population",
    "population",
    "member_mask",
    "train_target",
    "train_shadows",
    "attacks",
    "run_point",
    "roc_figure",
    "tradeoff_figure",
    "explorer",
]

FPR_LEVELS: tuple[float, ...] = (0.01, 0.001)


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
    1/K reads the TPR at zero false positives), ``fpr`` and ``tpr`` (the ROC, float arrays from
    (0, 0) to (1, 1)), ``n_members``, ``n_nonmembers``.
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
        "fpr": fpr,
        "tpr": tpr,
        "n_members": len(pos),
        "n_nonmembers": len(neg),
    }


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


def per_example_loss(
    model: nn.Module, split_or_images_labels: Any, *, batch_size: int = 256
) -> np.ndarray:
    """Cross-entropy of each image under ``model`` (eval mode), float64 (N,), in nats."""
    x, y = _images_labels(split_or_images_labels)
    if len(x) == 0:
        raise ValueError("no images: the split or tensor is empty")
    batch_size = check_int("batch_size", batch_size, 1)
    logits = torch.as_tensor(predict(model, x, batch_size=batch_size, logits=True))
    if int(y.max()) >= logits.shape[1] or int(y.min()) < 0:
        raise ValueError(
            f"labels must be class indices in [0, {logits.shape[1] - 1}] for this model"
        )
    return F.cross_entropy(logits.double(), y, reduction="none").numpy()


def loss_scores(
    model: nn.Module, split_or_images_labels: Any, *, batch_size: int = 256
) -> np.ndarray:
    """The loss-threshold attack's membership scores: the negative per-image loss, float64
    (N,). Thresholding it at ``-t`` guesses "member" for every image with loss below ``t``."""
    return -per_example_loss(model, split_or_images_labels, batch_size=batch_size)


# --------------------------------------------------------------------------------------------
# LiRA-lite: the offline likelihood-ratio attack with shadow models (Carlini et al. 2022)


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
    return (lp_y - torch.logsumexp(others, 1)).numpy()


def lira_offline(
    target_phi: Any,
    shadow_phi: Any,
    shadow_in: Any,
    *,
    min_out: int = 1,
) -> np.ndarray:
    """Offline LiRA scores (higher = more likely a member), float64 (N,).

    For each image, the attacker fits a Gaussian to ``phi`` under the shadow models that did NOT
    train on it (mean per image, one global SD: "fixed variance", robust with few shadows), and
    scores the target's ``phi`` by how far above that OUT distribution it lies:
    ``(phi_target - mu_out) / sd_out`` (a one-sided likelihood-ratio test ranks the same way).

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
    out = ~inside
    n_out = out.sum(0)
    if int(n_out.min()) < min_out:
        raise ValueError(
            f"{int((n_out < min_out).sum())} images have fewer than {min_out} OUT shadow "
            "models: train more shadow models (each image must be left out of some)"
        )
    mu = np.where(out, s, 0.0).sum(0) / n_out
    resid = np.where(out, s - mu, np.nan)
    sd_out = float(np.nanstd(resid, ddof=1)) if np.isfinite(resid).sum() > 1 else 1.0
    return (t - mu) / max(sd_out, 1e-6)


def shadow_splits(n: int, n_shadows: int, *, seed: int = 0) -> np.ndarray:
    """Random halves for shadow models: bool (K, n), True = shadow k trains on image i. Each
    image is IN exactly half of the shadows when K is even (balanced, as in Carlini et al.)."""
    n = check_int("n", n, 2)
    k = check_int("n_shadows", n_shadows, 2)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    order = np.argsort(rng.random((k, n)), axis=0)  # per image a random ranking of shadows
    return order < k // 2


# --------------------------------------------------------------------------------------------
# DP-SGD with Opacus: parameters, accountant, training through medlab's open loop

#: Privacy accountants this module uses: Opacus's default PRV, RDP as cross-check and fallback.
ACCOUNTANTS = ("prv", "rdp")
GRAD_SAMPLE_MODES = ("hooks", "functorch", "ghost")
#: Opacus/torch warnings that say nothing to a student of this lesson: secure RNG is off (we
#: seed the noise for reproducibility; production DP needs ``secure_mode=True``), and a full
#: backward hook fires on the first layer whose input needs no gradient (images).
_QUIET = (
    "Secure RNG turned off",
    "Full backward hook is firing",
    "Optimal order is the largest alpha",  # RDP (also inside PRV's domain search): loose, valid
)


@contextlib.contextmanager
def _quiet() -> Any:
    with warnings.catch_warnings():
        for text in _QUIET:
            warnings.filterwarnings("ignore", message=text)
        yield


def default_delta(n_train: int) -> float:
    """The delta of this lesson: ``0.1 / n_train``, well below ``1 / n_train`` (a mechanism
    that publishes one random record outright has delta = 1/N)."""
    return 0.1 / check_int("n_train", n_train, 1)


def check_dp_params(
    *,
    n_train: int,
    epsilon: float | None = None,
    delta: float | None = None,
    max_grad_norm: float | None = None,
    noise_multiplier: float | None = None,
) -> None:
    """Raise a ValueError naming the fix for a DP parameter that makes no sense."""
    n_train = check_int("n_train", n_train, 1)
    if epsilon is not None:
        check_scalar(
            "target epsilon", epsilon, kind=float, lo=0, lo_inclusive=False,
            fix="e.g. 1, 3 or 8; for a non-private model train without Opacus",
        )  # fmt: skip
    if delta is not None:
        check_scalar(
            "delta", delta, kind=float, lo=0, hi=1.0 / n_train, lo_inclusive=False,
            hi_inclusive=False,
            fix=f"(0, 1/N) for N={n_train} training images: a delta of 1/N allows leaking a "
            f"whole record; use medlab.privacy.default_delta(N) = {default_delta(n_train):.3g}",
        )  # fmt: skip
    if max_grad_norm is not None:
        check_scalar(
            "the clipping norm max_grad_norm", max_grad_norm, kind=float, lo=0,
            lo_inclusive=False,
            fix="e.g. 1.0: every per-sample gradient is scaled to at most this norm",
        )  # fmt: skip
    if noise_multiplier is not None:
        check_scalar(
            "noise_multiplier", noise_multiplier, kind=float, lo=0,
            fix="noise SD / clipping norm, e.g. 1.0",
        )  # fmt: skip


def check_private(model: nn.Module) -> None:
    """Raise a ValueError with Opacus's ``ModuleValidator`` message and the fix when Opacus
    cannot compute per-sample gradients for ``model`` (BatchNorm mixes the images of a batch)."""
    from opacus.validators import ModuleValidator

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        msg = " ".join(
            dict.fromkeys(str(e).strip().rstrip(".") + "." for e in errors)
        )  # one per kind
        raise ValueError(
            f"Opacus cannot make {type(model).__name__} private ({len(errors)} layers fail "
            f"ModuleValidator.validate): {msg} Fix: "
            "model = opacus.validators.ModuleValidator.fix(model) (BatchNorm -> GroupNorm), or "
            "build it with norm='group' (medlab's SmallCNN default)"
        )


def _accountant(name: str) -> Any:
    from opacus.accountants import create_accountant

    if name not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {name!r}")
    return create_accountant(mechanism=name)


def _discrete_mean(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and "Discrete mean differs" in str(exc)


def epsilon_for(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    *,
    accountant: str = "prv",
) -> tuple[float, str, str]:
    """Epsilon of ``steps`` DP-SGD steps (Poisson rate ``sample_rate``, noise multiplier) at
    ``delta``, from a fresh Opacus accountant. Returns ``(epsilon, accountant used, message)``:
    PRV can raise "Discrete mean differs" for some settings; then RDP answers and the message
    says so."""
    sigma = check_scalar(
        "noise_multiplier", noise_multiplier, kind=float, lo=0, fix="noise SD / clipping norm"
    )
    q = check_scalar(
        "sample_rate", sample_rate, kind=float, lo=0, hi=1, lo_inclusive=False,
        fix="the Poisson sampling rate is batch_size / N",
    )  # fmt: skip
    steps = check_scalar("steps", steps, lo=1, fix="the number of DP-SGD steps taken")
    delta = check_scalar(
        "delta", delta, kind=float, lo=0, hi=1, lo_inclusive=False, hi_inclusive=False,
        fix="use medlab.privacy.default_delta(N), well below 1/N",
    )  # fmt: skip
    if sigma == 0:
        return float("inf"), accountant, "noise multiplier 0: no privacy guarantee (epsilon = inf)"
    acc = _accountant(accountant)
    acc.history = [(sigma, q, steps)]
    try:
        return _get_epsilon(acc, delta), accountant, ""
    except RuntimeError as exc:
        if not _discrete_mean(exc) or accountant == "rdp":
            raise
        why = "failed ('Discrete mean differs significantly')"
    except MemoryError:  # PRV discretises a domain that grows with the number of steps
        why = "needs more memory than there is"
    rdp = _accountant("rdp")
    rdp.history = list(acc.history)
    msg = (
        f"the PRV accountant {why} for sigma={sigma:.3g}, q={q:.3g}, {steps} steps: epsilon "
        "comes from RDP, an upper bound that is a little looser"
    )
    return _get_epsilon(rdp, delta), "rdp", msg


def _get_epsilon(acc: Any, delta: float) -> float:
    """``acc.get_epsilon(delta)`` without RDP's "optimal order is the largest alpha" warning
    (the bound is valid, only perhaps loose; RDP is the cross-check here)."""
    with _quiet():
        return float(acc.get_epsilon(delta=delta))


@dataclass
class DPResult:
    """What :func:`train_dp` did: the (epsilon, delta) guarantee and how it was reached."""

    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    accountant: str
    epsilon_rdp: float
    target_epsilon: float | None = None
    grad_sample_mode: str = "hooks"
    message: str = ""
    seconds: float = 0.0
    loss: float = float("nan")
    n_train: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _GhostLoss:
    """Adapter for Opacus's fast gradient clipping: its criterion returns a tensor-like object
    whose ``backward`` runs the two passes; :func:`~medlab.train.train_steps` takes ``.mean()``
    of per-image losses, so the object is handed back as its own mean."""

    def __init__(self, criterion: Any) -> None:
        self.criterion = criterion

    def __call__(self, logits: torch.Tensor, y: torch.Tensor) -> Any:
        return _GhostMean(self.criterion(logits, y))


class _GhostMean:
    def __init__(self, loss: Any) -> None:
        self.loss = loss

    def mean(self) -> Any:
        return self.loss

    def sum(self) -> Any:
        return self.loss


def _make_private(
    engine: Any,
    kw: dict[str, Any],
    target_epsilon: float | None,
    noise_multiplier: float | None,
    delta: float,
    epochs: int,
) -> Any:
    """``make_private_with_epsilon`` (target epsilon) or ``make_private`` (noise multiplier);
    None when PRV fails with "Discrete mean differs" while searching the noise."""
    if target_epsilon is None:
        return engine.make_private(**kw, noise_multiplier=float(noise_multiplier))
    try:
        return engine.make_private_with_epsilon(
            **kw, target_epsilon=float(target_epsilon), target_delta=delta, epochs=epochs
        )
    except RuntimeError as exc:
        if _discrete_mean(exc) and engine.accountant.mechanism() != "rdp":
            return None
        raise


def train_dp(
    model: nn.Module,
    split: Split,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 5e-3,
    max_grad_norm: float = 1.0,
    target_epsilon: float | None = None,
    noise_multiplier: float | None = None,
    delta: float | None = None,
    seed: int = 0,
    grad_sample_mode: str = "hooks",
    accountant: str = "prv",
    weight_decay: float = 0.0,
    algorithm: str = "sgd",
) -> DPResult:
    """Train ``model`` in place with DP-SGD: Opacus's ``PrivacyEngine`` wraps the model, the
    optimizer of :func:`~medlab.train.make_optimizer` and a DataLoader over ``split`` (Poisson
    sampling, rate ``batch_size / N``), and :func:`~medlab.train.train_steps` runs the steps.

    Give exactly one of ``target_epsilon`` (``make_private_with_epsilon`` finds the noise
    multiplier) or ``noise_multiplier`` (``make_private``). ``delta`` defaults to
    :func:`default_delta` of N. Each per-sample gradient is clipped to L2 norm
    ``max_grad_norm``, then Gaussian noise of SD ``noise_multiplier * max_grad_norm`` is added to
    their sum. Returns a :class:`DPResult`; epsilon comes from the engine's accountant (PRV; RDP
    when PRV fails, with a message), with RDP as a cross-check.
    """
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    from medlab.train import make_optimizer, to_input, train_steps
    from medlab.utils import seed_everything

    if not isinstance(split, Split):
        raise TypeError(f"train_dp needs a medlab Split, got {type(split).__name__}")
    n = len(split)
    if n < 2:
        raise ValueError(f"DP training needs at least 2 training images, got {n}")
    if (target_epsilon is None) == (noise_multiplier is None):
        raise ValueError(
            "give exactly one of target_epsilon (e.g. 3.0) or noise_multiplier (e.g. 1.0)"
        )
    delta = default_delta(n) if delta is None else delta
    check_dp_params(
        n_train=n,
        epsilon=target_epsilon,
        delta=delta,
        max_grad_norm=max_grad_norm,
        noise_multiplier=noise_multiplier,
    )
    if grad_sample_mode not in GRAD_SAMPLE_MODES:
        raise ValueError(
            f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}, got {grad_sample_mode!r}"
        )
    _accountant(accountant)
    epochs = check_int("epochs", epochs, 1)
    batch_size = check_int("batch_size", batch_size, 1, n)
    check_private(model)
    gen = seed_everything(seed)
    loader = DataLoader(
        TensorDataset(to_input(split.images), split.labels),
        batch_size=batch_size,
        shuffle=True,
        generator=gen,
    )
    total = epochs * len(loader)
    opt, sched = make_optimizer(
        model, total_steps=total, lr=lr, weight_decay=weight_decay, algorithm=algorithm
    )
    kw: dict[str, Any] = dict(
        module=model,
        optimizer=opt,
        data_loader=loader,
        max_grad_norm=float(max_grad_norm),
        noise_generator=torch.Generator().manual_seed(seed + 1),
        grad_sample_mode=grad_sample_mode,
    )
    if grad_sample_mode == "ghost":
        kw["criterion"] = nn.CrossEntropyLoss()
    message = ""
    with _quiet():
        engine = PrivacyEngine(accountant=accountant)
        out = _make_private(engine, kw, target_epsilon, noise_multiplier, delta, epochs)
    if out is None:  # PRV failed while searching the noise: RDP
        message = (
            "the PRV accountant failed ('Discrete mean differs significantly') while "
            f"searching the noise for epsilon={target_epsilon}: the RDP accountant is used"
        )
        accountant = "rdp"
        with _quiet():
            engine = PrivacyEngine(accountant="rdp")
            out = _make_private(engine, kw, target_epsilon, noise_multiplier, delta, epochs)
    if grad_sample_mode == "ghost":
        gsm, dp_opt, criterion, dp_loader = out
        loss_fn: Any = _GhostLoss(criterion)
    else:
        (gsm, dp_opt, dp_loader), loss_fn = out, None
    t0 = time.perf_counter()
    losses = []
    try:
        with _quiet():
            for _ in range(epochs):
                st = train_steps(gsm, dp_loader, dp_opt, None, scheduler=sched, loss_fn=loss_fn)
                losses.append(st.loss)
    finally:
        seconds = time.perf_counter() - t0
        gsm._close()  # remove Opacus's hooks: the caller's model is plain again
    model.eval()
    sigma, q = float(dp_opt.noise_multiplier), 1.0 / len(loader)
    steps = sum(h[2] for h in engine.accountant.history)
    eps, used, msg = epsilon_for(sigma, q, steps, delta, accountant=accountant)
    eps_rdp = epsilon_for(sigma, q, steps, delta, accountant="rdp")[0]
    return DPResult(
        epsilon=eps,
        delta=float(delta),
        noise_multiplier=sigma,
        max_grad_norm=float(max_grad_norm),
        sample_rate=q,
        steps=int(steps),
        accountant=used,
        epsilon_rdp=eps_rdp,
        target_epsilon=None if target_epsilon is None else float(target_epsilon),
        grad_sample_mode=grad_sample_mode,
        message="; ".join(m for m in (message, msg) if m),
        seconds=seconds,
        loss=float(losses[-1]) if losses else float("nan"),
        n_train=n,
    )


# --------------------------------------------------------------------------------------------
# the cross-check: ART's black-box membership inference


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
    ``PyTorchClassifier``): its attack model (``attack_model_type="rf"``: a random forest) learns
    membership from ``input_type`` features ("loss": the model's loss on the image, computed by
    ART; "prediction": its outputs and the label). Cross-fitted: fitted on one half of the
    members and non-members, it scores the other half, and vice versa, so every image is scored
    by an attack that never saw it. Returns :func:`attack_metrics` of the member probabilities.
    """
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import PyTorchClassifier

    from medlab.train import eval_mode, to_input

    for name, s in (("members", members), ("nonmembers", nonmembers)):
        if not isinstance(s, Split) or len(s) < 4:
            raise ValueError(f"{name} must be a medlab Split with at least 4 images")
    if input_type not in ("loss", "prediction"):
        raise ValueError(f"input_type must be 'loss' or 'prediction', got {input_type!r}")
    rng = np.random.default_rng(seed)
    data = []
    for s in (members, nonmembers):
        half = rng.permutation(len(s)) < len(s) // 2  # bool (N,): fold A
        data.append((to_input(s.images).numpy(), s.labels.numpy(), half))
    n_classes = len(members.label_names)
    scores: list[list[np.ndarray]] = [[], []]
    with eval_mode(model):
        clf = PyTorchClassifier(
            model=model,
            loss=nn.CrossEntropyLoss(),
            input_shape=tuple(members.images.shape[1:]),
            nb_classes=n_classes,
            clip_values=(-1.0, 1.0),
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


# --------------------------------------------------------------------------------------------
# the lesson's experiment: one population, an overfitted target, shadows, DP targets

#: The lesson's settings, weakest privacy last: target epsilons, then the non-private model.
EPSILONS: tuple[float, ...] = (1.0, 3.0, 8.0)
#: The minority's share of the HCM population in this lesson.
HCM_SHARE = 0.1


def setting_name(epsilon: float | None) -> str:
    """``None`` -> ``"nondp"``, 3.0 -> ``"eps3"``, 0.5 -> ``"eps0_5"`` (record-key segments):
    the shortest decimal that reads back as the same float, so two epsilons never share one."""
    if epsilon is None:
        return "nondp"
    eps = check_scalar(
        "epsilon", epsilon, kind=float, lo=0, lo_inclusive=False,
        fix="a DP setting has a finite target epsilon > 0 (e.g. 3.0); None is the non-private model",
    )  # fmt: skip
    return "eps" + np.format_float_positional(eps, trim="-").replace(".", "_")


def lesson_config(data: Any, lesson: Any) -> dict[str, Any]:
    """How every model of the privacy lesson is trained (one place, shared by the notebook, the
    tests and the benchmark). Quick: a 300-image population, width-8 CNNs, 4 shadow models;
    full: 600 images, 16 shadows. Targets train on a random half of the population."""
    from medlab.experiments import Lesson

    if not isinstance(lesson, Lesson):
        raise TypeError(f"lesson must come from medlab.lesson(quick, seed), got {lesson!r}")
    n_pop = min(300 if lesson.quick else 600, len(data.train))
    return dict(
        n_pop=n_pop,
        width=8,
        epochs=40,  # non-private: no augmentation, no dropout: overfits
        batch_size=32,
        lr=5e-3,
        n_shadows=4 if lesson.quick else 16,
        dp_epochs=15 if lesson.quick else 20,
        dp_batch_size=50,
        dp_lr=0.1,  # SGD with momentum 0.9 (train_dp's default)
        max_grad_norm=1.0,
        epsilons=EPSILONS,
        share=HCM_SHARE,
    )


@dataclass
class Population:
    """The lesson's patients: ``split`` holds ``n_pop`` training images of the HCM scenario
    (``groups``: 0 majority, 1 minority); targets train on a random half (the members), the
    other half are the non-members; shadow models train on other random halves."""

    scenario: Any
    split: Split
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.split)


def population(data: Any, cfg: dict[str, Any], *, seed: int = 0) -> Population:
    """The HCM scenario of ``data`` (:func:`medlab.scenario.hcm`, minority share
    ``cfg["share"]``) and ``cfg["n_pop"]`` of its training images, drawn with ``seed``."""
    from medlab.scenario import hcm

    sc = hcm(data, cfg["share"], seed=seed)
    idx = np.random.default_rng(seed).permutation(len(sc.train))[: cfg["n_pop"]]
    return Population(sc, sc.train.subset(idx), np.asarray(sc.groups["train"])[idx])


def member_mask(n: int, *, seed: int) -> np.ndarray:
    """bool (n,): a random half of the population, True = member of the target's training set."""
    n = check_int("n", n, 2)
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(10_000 + seed).permutation(n)[: n // 2]] = True
    return mask


def train_target(
    pop: Population,
    cfg: dict[str, Any],
    members: np.ndarray,
    *,
    seed: int,
    epsilon: float | None = None,
    noise_multiplier: float | None = None,
    max_grad_norm: float | None = None,
    dp_epochs: int | None = None,
    grad_sample_mode: str = "hooks",
    cache: Any = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """A SmallCNN trained on ``pop.split[members]`` through the model cache: non-private
    (:func:`medlab.train.fit`, no augmentation or dropout, ``cfg["epochs"]``: it overfits) when
    ``epsilon`` and ``noise_multiplier`` are None, else DP-SGD (:func:`train_dp`). Returns
    ``(model, info)``; for DP, ``info`` holds the :class:`DPResult` fields."""
    from medlab.experiments import cached_model
    from medlab.models import SmallCNN
    from medlab.train import fit

    train = pop.split.subset(np.flatnonzero(members))
    private = epsilon is not None or noise_multiplier is not None
    c, k = int(train.images.shape[1]), len(train.label_names)
    settings: dict[str, Any] = {"width": cfg["width"]}
    if private:
        settings.update(
            epsilon=epsilon,
            noise_multiplier=noise_multiplier,
            max_grad_norm=cfg["max_grad_norm"] if max_grad_norm is None else max_grad_norm,
            epochs=cfg["dp_epochs"] if dp_epochs is None else dp_epochs,
            batch_size=cfg["dp_batch_size"],
            lr=cfg["dp_lr"],
            mode=grad_sample_mode,
        )
    else:
        settings.update(epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"])

    def run(model: nn.Module) -> dict[str, Any]:
        if not private:
            hist = fit(
                model,
                train,
                None,
                epochs=settings["epochs"],
                batch_size=settings["batch_size"],
                lr=settings["lr"],
                augment=False,
                seed=seed,
                desc="non-private",
            )
            return {"seconds": hist.seconds, "train_loss": hist.epochs[-1]["train_loss"]}
        res = train_dp(
            model,
            train,
            epochs=settings["epochs"],
            batch_size=min(settings["batch_size"], len(train)),
            lr=settings["lr"],
            max_grad_norm=settings["max_grad_norm"],
            target_epsilon=epsilon,
            noise_multiplier=noise_multiplier,
            seed=seed,
            grad_sample_mode=grad_sample_mode,
        )
        return res.as_dict()

    return cached_model(
        "privacy-dp" if private else "privacy-nondp",
        lambda: SmallCNN(c, k, width=cfg["width"], dropout=0.0),
        run,
        data=pop.scenario,
        train_split=train,
        seed=seed,
        settings=settings,
        cache=cache,
    )


def train_shadows(
    pop: Population, cfg: dict[str, Any], *, seed: int = 0, cache: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """The attacker's ``cfg["n_shadows"]`` shadow models, trained like the non-private target
    on random halves of the population (:func:`shadow_splits`), through
    :func:`medlab.run_grid` and the model cache. Returns ``(phi, inside)``: float (K, N)
    :func:`true_class_logit` of every population image under each shadow, bool (K, N)."""
    from medlab.experiments import run_grid

    inside = shadow_splits(len(pop), cfg["n_shadows"], seed=20_000 + seed)

    def one(k: int, seed: int) -> dict[str, Any]:
        model, _ = train_target(pop, cfg, inside[k], seed=30_000 + 100 * seed + k, cache=cache)
        return {"phi": true_class_logit(model, pop.split)}

    df = run_grid(one, {"k": list(range(cfg["n_shadows"]))}, [seed], desc="shadow models")
    return np.stack(list(df["phi"])), inside


def attacks(
    model: nn.Module, pop: Population, members: np.ndarray, shadows: tuple[np.ndarray, ...]
) -> dict[str, dict[str, Any]]:
    """The loss-threshold attack and offline LiRA on ``model``: members against the other half
    of the population. Returns ``{"loss": attack_metrics(...), "lira": attack_metrics(...)}``."""
    loss = loss_scores(model, pop.split)
    lira = lira_offline(true_class_logit(model, pop.split), *shadows)
    return {
        "loss": attack_metrics(loss[members], loss[~members]),
        "lira": attack_metrics(lira[members], lira[~members]),
    }


def run_point(
    setting: str,
    seed: int,
    *,
    pop: Population,
    cfg: dict[str, Any],
    shadows: tuple[np.ndarray, np.ndarray],
    cache: Any = None,
) -> dict[str, Any]:
    """One target model (``setting`` "nondp" or "eps<E>" for E in ``cfg["epsilons"]``) for one
    seed: utility on the scenario's test patients, the minority's TPR gap, both attacks and, for
    DP, the accountant's numbers. One row for :func:`medlab.run_grid`."""
    from medlab.fairness import SHORT, decision_threshold, hcm_metrics
    from medlab.scenario import disease_scores
    from medlab.train import evaluate

    eps = {setting_name(e): e for e in cfg["epsilons"]}
    if setting != "nondp" and setting not in eps:
        raise ValueError(f"setting must be 'nondp' or one of {sorted(eps)}, got {setting!r}")
    members = member_mask(len(pop), seed=seed)
    model, info = train_target(pop, cfg, members, seed=seed, epsilon=eps.get(setting), cache=cache)
    sc = pop.scenario
    m = evaluate(model, sc.test)
    thr = decision_threshold(model, sc)
    gm = hcm_metrics(sc.test_y, disease_scores(model, sc), sc.groups["test"], threshold=thr)
    att = attacks(model, pop, members, shadows)
    row = {
        "test_auc": m["auc"],
        "test_acc": m["acc"],
        "minority_tpr_gap": gm.row(SHORT)["tpr_gap"],
        "attack_loss_auc": att["loss"]["auc"],
        "attack_loss_tpr_at_fpr1": att["loss"]["tpr_at_fpr"][0.01],
        "attack_lira_auc": att["lira"]["auc"],
        "attack_lira_tpr_at_fpr1": att["lira"]["tpr_at_fpr"][0.01],
        "attack_lira_tpr_at_fpr0_1": att["lira"]["tpr_at_fpr"][0.001],
    }
    for k in ("epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "epsilon_rdp"):
        row[k] = float(info[k]) if k in info else float("nan")
    row["accountant"] = info.get("accountant", "")
    row["message"] = info.get("message", "")
    return row


# --------------------------------------------------------------------------------------------
# figures and the explorer


def roc_figure(curves: dict[str, dict[str, Any]], *, title: str) -> Any:
    """Attack ROC curves on log-log axes (the low-FPR corner is what matters for one patient);
    ``curves[name]`` is an :func:`attack_metrics` result. The diagonal is chance."""
    import plotly.graph_objects as go

    from medlab.plots import COLORS, finish

    fig = go.Figure()
    lo = 1.0 / max(max(c["n_nonmembers"] for c in curves.values()), 1)
    for i, (name, c) in enumerate(curves.items()):
        fpr, tpr = np.maximum(c["fpr"], lo / 2), np.maximum(c["tpr"], lo / 2)
        fig.add_trace(
            go.Scatter(
                x=fpr,
                y=tpr,
                mode="lines",
                name=f"{name} (AUC {c['auc']:.3f}, TPR@1% {c['tpr_at_fpr'][0.01]:.3f})",
                line=dict(color=COLORS[i % len(COLORS)]),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[lo / 2, 1],
            y=[lo / 2, 1],
            mode="lines",
            name="chance",
            line=dict(color="grey", dash="dash"),
        )
    )
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return finish(
        fig, title=title, x="false-positive rate (log scale)", y="true-positive rate (log scale)"
    )


def tradeoff_figure(summary: Any, metrics: dict[str, str], *, title: str, y: str) -> Any:
    """Mean +/- SD (over seeds) of ``metrics`` ({column: label}) per privacy setting, in the
    order of ``summary`` (rows from :func:`medlab.summarize` by ``setting``)."""
    import plotly.graph_objects as go

    from medlab.plots import COLORS, finish

    fig = go.Figure()
    for i, (col, label) in enumerate(metrics.items()):
        fig.add_trace(
            go.Scatter(
                x=list(summary["setting"]),
                y=summary[col],
                error_y=dict(type="data", array=summary[f"{col}_sd"].fillna(0)),
                mode="lines+markers",
                name=label,
                line=dict(color=COLORS[i % len(COLORS)]),
            )
        )
    return finish(fig, title=title, x="privacy setting (target epsilon; nondp = no DP)", y=y)


def explorer(
    pop: Population,
    cfg: dict[str, Any],
    shadows: tuple[np.ndarray, np.ndarray],
    *,
    seed: int = 0,
) -> tuple[Any, Any]:
    """Sliders for DP-SGD's noise multiplier, clipping norm and epochs: each move trains (or
    reads from the cache) one DP model on the seed's members and shows its accountant epsilon,
    test AUC and both attacks' ROC. Returns ``(widget, update)``; ``update(noise, clip, epochs)``
    returns ``(table, figure)`` and runs without a browser."""
    import ipywidgets as widgets
    import pandas as pd
    from IPython.display import display

    from medlab.train import evaluate

    members = member_mask(len(pop), seed=seed)

    def update(noise: float, clip: float, epochs: int) -> tuple[Any, Any]:
        model, info = train_target(
            pop,
            cfg,
            members,
            seed=seed,
            noise_multiplier=float(noise),
            max_grad_norm=float(clip),
            dp_epochs=int(epochs),
        )
        att = attacks(model, pop, members, shadows)
        auc = evaluate(model, pop.scenario.test)["auc"]
        table = pd.DataFrame(
            {
                "noise multiplier": [float(noise)],
                "clipping norm": [float(clip)],
                "epochs": [int(epochs)],
                "epsilon": [info["epsilon"]],
                "delta": [info["delta"]],
                "test AUC": [auc],
                "loss attack AUC": [att["loss"]["auc"]],
                "LiRA AUC": [att["lira"]["auc"]],
            }
        ).round(4)
        fig = roc_figure(
            {"loss threshold": att["loss"], "LiRA-lite": att["lira"]},
            title=f"Attacks on DP-SGD (noise {noise:g}, clip {clip:g}, {int(epochs)} epochs): "
            f"epsilon {info['epsilon']:.2f}, test AUC {auc:.3f}",
        )
        return table, fig

    noise_w = widgets.FloatSlider(value=1.0, min=0.3, max=3.0, step=0.1, description="noise")
    clip_w = widgets.FloatLogSlider(
        value=1.0, base=10, min=-1, max=1, step=0.25, description="clip norm"
    )
    epochs_w = widgets.IntSlider(
        value=cfg["dp_epochs"], min=1, max=2 * cfg["dp_epochs"], description="epochs"
    )
    out = widgets.Output()

    def on_change(_: Any = None) -> None:
        table, fig = update(noise_w.value, clip_w.value, epochs_w.value)
        out.clear_output(wait=True)
        with out:
            display(table, fig)

    for w in (noise_w, clip_w, epochs_w):
        w.observe(on_change, names="value")
    return widgets.VBox([widgets.HBox([noise_w, clip_w, epochs_w]), out]), update
