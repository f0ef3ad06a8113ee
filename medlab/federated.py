"""Federated learning across simulated hospitals: harmonisation, FedAvg, FedProx, secure aggregation.

The lesson's algorithms are written plainly here; the rest (data, training loop, scenarios,
grids) comes from the medlab core.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medlab.data import SPLITS, MedMNISTData, Split
from medlab.models import build_model
from medlab.scenario import Scenario, assign_groups, from_groups
from medlab.train import batches, evaluate, make_optimizer, train_steps
from medlab.utils import check_int, check_scalar, seed_everything

__all__ = [
    "harmonise",
    "ScannerProfile",
    "SCANNERS",
    "dirichlet_groups",
    "make_sites",
    "FedConfig",
    "init_model",
    "prox_loss",
    "client_update",
    "fedavg",
    "accuracy",
    "run_federated",
    "round_lr",
    "site_seed",
    "flatten_state",
    "unflatten_state",
    "mask_update",
    "unmask_sum",
    "secure_fedavg",
    "ckks_contexts",
    "ckks_encrypt",
    "ckks_sum",
    "ckks_decrypt",
    "aggregation_costs",
    "harmonise_sites",
    "site_table",
    "experiment",
]

HARMONISE_METHODS = ("histogram", "zscore")


def _check_uint8_images(name: str, x: Any) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a uint8 tensor (N, C, H, W), got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise TypeError(
            f"{name} must be uint8 (N, C, H, W) as in Split.images, got {x.dtype}; "
            "pass the raw images, not model inputs from to_input"
        )
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, C, H, W) with N >= 1, got {tuple(x.shape)}")
    return x


def harmonise(
    images: torch.Tensor, reference: torch.Tensor, *, method: str = "histogram"
) -> torch.Tensor:
    """Map each image's intensities onto the reference set's, channel by channel.

    ``images`` (N, C, H, W) and ``reference`` (M, C, H', W') are uint8 tensors; returns uint8
    (N, C, H, W). ``method="histogram"`` matches each image's histogram to the reference set's
    pooled histogram (``skimage.exposure.match_histograms``); ``method="zscore"`` gives each
    image the reference set's pooled mean and standard deviation (intensity units 0-255).
    A site runs this on its own images with a reference histogram shared by the federation, so
    no image leaves the site.
    """
    x = _check_uint8_images("images", images)
    ref = _check_uint8_images("reference", reference)
    if x.shape[1] != ref.shape[1]:
        raise ValueError(
            f"images have {x.shape[1]} channels but reference has {ref.shape[1]}: "
            "use a reference set from the same modality"
        )
    if method not in HARMONISE_METHODS:
        raise ValueError(f"method must be one of {HARMONISE_METHODS}, got {method!r}")
    xs = x.numpy()
    rs = ref.numpy()
    out = np.empty(xs.shape, dtype=np.float64)
    if method == "histogram":
        from skimage.exposure import match_histograms

        for c in range(xs.shape[1]):
            # all reference images of channel c as one 2-D image: their pooled histogram
            pooled = rs[:, c].reshape(-1, rs.shape[-1])
            for i in range(xs.shape[0]):
                out[i, c] = match_histograms(xs[i, c], pooled)
    else:
        for c in range(xs.shape[1]):
            r = rs[:, c].astype(np.float64)
            mu, sigma = r.mean(), r.std()
            v = xs[:, c].astype(np.float64)
            m = v.mean(axis=(1, 2), keepdims=True)
            s = v.std(axis=(1, 2), keepdims=True)
            out[:, c] = (v - m) / np.where(s > 0, s, 1.0) * sigma + mu
    return torch.from_numpy(np.clip(np.rint(out), 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------------------------
# sites: groups of a scenario


@dataclass(frozen=True)
class ScannerProfile:
    """A site's acquisition: ``x <- contrast * (x - 128) + 128 + brightness``, then a Gaussian
    blur of ``blur`` pixels (sigma) and Gaussian noise of SD ``noise`` (intensity units 0-255).

    Callable as a scenario shift: ``profile(images uint8 (N, C, H, W), labels, *, seed)`` ->
    uint8 (N, C, H, W); the noise is seeded.
    """

    brightness: float = 0.0
    contrast: float = 1.0
    blur: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        check_scalar("ScannerProfile.brightness", self.brightness, kind=float)
        check_scalar("ScannerProfile.contrast", self.contrast, kind=float, lo=0,
                     lo_inclusive=False)  # fmt: skip
        check_scalar("ScannerProfile.blur", self.blur, kind=float, lo=0)
        check_scalar("ScannerProfile.noise", self.noise, kind=float, lo=0)

    def __call__(self, images: torch.Tensor, labels: Any = None, *, seed: int = 0) -> torch.Tensor:
        x = _check_uint8_images("images", images).float()
        x = self.contrast * (x - 128.0) + 128.0 + self.brightness
        if self.blur > 0:
            from torchvision.transforms.functional import gaussian_blur

            k = 2 * math.ceil(3 * self.blur) + 1
            x = gaussian_blur(x, [k, k], [self.blur, self.blur])
        if self.noise > 0:
            g = torch.Generator().manual_seed(check_int("seed", seed, 0))
            x = x + self.noise * torch.randn(x.shape, generator=g)
        return x.round().clamp(0, 255).to(torch.uint8)


#: The acquisition-shift preset: site 0 is the reference scanner, the others differ.
SCANNERS: dict[str, ScannerProfile] = {
    "reference": ScannerProfile(),
    "dark, low contrast": ScannerProfile(brightness=-40.0, contrast=0.6),
    "bright, blurred": ScannerProfile(brightness=35.0, contrast=0.8, blur=0.8),
    "noisy, high contrast": ScannerProfile(contrast=1.4, noise=12.0),
}

PARTITIONS = ("iid", "dirichlet", "quantity", "scanner")


def dirichlet_groups(
    labels: Any, n_sites: int, alpha: float, *, seed: int = 0, min_size: int = 10
) -> np.ndarray:
    """Label skew: site ids (N,) where each class is spread over the sites by proportions drawn
    from Dirichlet(alpha) (small alpha: each site sees mostly one class). Redrawn (seeded) until
    every site has at least ``min_size`` images."""
    y = np.asarray(labels).reshape(-1)
    n_sites = check_int("n_sites", n_sites, 2)
    alpha = check_scalar(
        "alpha", alpha, kind=float, lo=0, lo_inclusive=False, fix="e.g. 0.1 or 1.0"
    )
    min_size = check_int("min_size", min_size, 0)
    if n_sites * min_size > len(y):
        raise ValueError(
            f"{len(y)} images cannot give {n_sites} sites {min_size} images each: "
            "lower n_sites or min_size"
        )
    rng = np.random.default_rng(check_int("seed", seed, 0))
    for _ in range(1000):
        groups = np.empty(len(y), dtype=np.int64)
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            p = rng.dirichlet(np.full(n_sites, float(alpha)))
            cuts = (np.cumsum(p)[:-1] * len(idx)).round().astype(int)
            for k, part in enumerate(np.split(idx, cuts)):
                groups[part] = k
        if np.bincount(groups, minlength=n_sites).min() >= min_size:
            return groups
    raise ValueError(
        f"no Dirichlet({alpha}) draw gave every one of {n_sites} sites {min_size} images in "
        "1000 tries: raise alpha or lower min_size"
    )


def make_sites(
    data: MedMNISTData,
    partition: str = "iid",
    *,
    n_sites: int = 4,
    alpha: float = 0.5,
    small_share: float = 0.005,
    min_size: int = 12,
    seed: int = 0,
) -> Scenario:
    """K simulated hospitals as the groups of a :class:`~medlab.scenario.Scenario`.

    ``partition`` (training split; val and test are split into equal stratified parts per
    site, so each site also has its own test patients):

    * ``"iid"`` - equal stratified shares;
    * ``"dirichlet"`` - label skew, Dirichlet(``alpha``) class proportions per site;
    * ``"quantity"`` - one large site (site 0) and ``n_sites - 1`` small ones of 4, 2, 1 times
      ``small_share`` of the images (at least ``min_size``; the last site is the smallest);
    * ``"scanner"`` - equal shares, site k imaged by the k-th of :data:`SCANNERS` (every split
      of that site, test included, carries its scanner profile).
    """
    if not isinstance(data, MedMNISTData):
        raise TypeError(f"data must come from medlab.load(...), got {type(data).__name__}")
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
    n_sites = check_int("n_sites", n_sites, 2, len(SCANNERS) if partition == "scanner" else 64)
    seed = check_int("seed", seed, 0)
    equal = [1.0 / n_sites] * n_sites
    if partition == "quantity":  # small sites of s, 2s, 4s, ... images (s = small_share * N)
        if not 0 < small_share * (2 ** (n_sites - 1) - 1) < 1:
            raise ValueError(
                f"small_share={small_share} is too large for {n_sites - 1} small sites of "
                f"1, 2, 4, ... times small_share: lower it"
            )
        n = len(data.train)
        sizes = [max(min_size, round(small_share * 2**k * n)) for k in range(n_sites - 1)]
        shares = [1.0 - sum(sizes) / n] + [m / n for m in reversed(sizes)]
    else:
        shares = equal
    groups = {
        s: assign_groups(data[s].labels.numpy(), shares if s == "train" else equal, seed=[seed, k])
        for k, s in enumerate(SPLITS)
    }
    if partition == "dirichlet":
        groups["train"] = dirichlet_groups(
            data.train.labels.numpy(), n_sites, alpha, seed=seed, min_size=min_size
        )
    names = {k: f"site {k}" for k in range(n_sites)}
    shifts = {}
    if partition == "scanner":
        scanners = list(SCANNERS.items())[:n_sites]
        names = {k: f"site {k} ({name})" for k, (name, _) in enumerate(scanners)}
        shifts = {k: prof for k, (_, prof) in enumerate(scanners) if k > 0}
    info = {"partition": partition, "n_sites": n_sites, "alpha": alpha, "small_share": small_share}
    return from_groups(data, groups, names, shifts=shifts, seed=seed, info=info)


# --------------------------------------------------------------------------------------------
# the algorithms: a client's local steps, FedAvg's weighted average, FedProx's proximal term


@dataclass(frozen=True)
class FedConfig:
    """Settings of a federated run (also of its local-only and centralised baselines).

    rounds: communication rounds; local_steps: optimisation steps per client per round (the
    centralised model takes ``rounds * local_steps`` steps); mu: FedProx's proximal weight
    (0 = FedAvg); width: SmallCNN width."""

    rounds: int = 10
    local_steps: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    mu: float = 0.0
    width: int = 8

    def __post_init__(self) -> None:
        check_int("rounds", self.rounds, 1)
        check_int("local_steps", self.local_steps, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("width", self.width, 1)
        check_scalar("FedConfig.lr", self.lr, kind=float, lo=0, lo_inclusive=False)
        check_scalar("FedConfig.mu", self.mu, kind=float, lo=0, fix="0 = FedAvg")


def init_model(n_classes: int, in_channels: int = 1, *, width: int = 8, seed: int = 0) -> Any:
    """The seeded initial global model (a SmallCNN): every site starts from the same weights."""
    seed_everything(seed)
    return build_model("smallcnn", in_channels, n_classes, width=width)


def prox_loss(model: torch.nn.Module, global_params: list[torch.Tensor], mu: float) -> Any:
    """FedProx's loss: cross-entropy per image plus ``mu / 2 * ||w - w_global||^2`` (the same
    for every image, so the batch mean gains it once). A ``loss_fn`` for ``train_steps``."""
    mu = check_scalar(
        "mu", mu, kind=float, lo=0, fix="FedProx's proximal weight is >= 0 (0 = FedAvg), e.g. 0.01"
    )
    params = [p for p in model.parameters() if p.requires_grad]
    if len(params) != len(global_params):
        raise ValueError("global_params must hold one tensor per trainable model parameter")

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, y, reduction="none")
        prox = sum(((p - g) ** 2).sum() for p, g in zip(params, global_params, strict=True))
        return ce + 0.5 * mu * prox

    return loss_fn


def client_update(
    model: torch.nn.Module,
    split: Split,
    *,
    steps: int,
    seed: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    mu: float = 0.0,
) -> tuple[dict[str, torch.Tensor], int, float]:
    """One client's round: ``steps`` local steps of AdamW on its own ``split`` (FedProx when
    ``mu > 0``), starting from ``model``'s weights (changed in place).

    Returns (state dict, number of local training images, mean training loss). Seeded by
    ``seed``; a fresh optimizer each round, as a stateless client (Flower's) has."""
    if len(split) == 0:
        raise ValueError(f"site split {split.split} of {split.name} is empty: nothing to train")
    torch.manual_seed(check_int("seed", seed, 0))  # dropout: the same masks in any process
    opt, _ = make_optimizer(model, total_steps=steps, lr=lr)
    src = batches(split, batch_size=batch_size, epochs=None, seed=seed)
    loss_fn = None
    if mu > 0:
        loss_fn = prox_loss(model, [p.detach().clone() for p in model.parameters()], mu)
    stats = train_steps(model, src, opt, steps, loss_fn=loss_fn)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return state, len(split), float(stats.loss)


def fedavg(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]) -> dict:
    """FedAvg's aggregation: ``sum_k n_k * w_k / sum_k n_k`` for every tensor of the state dicts
    (``weights`` = the clients' numbers of training images)."""
    if len(states) == 0 or len(states) != len(weights):
        raise ValueError("fedavg needs one weight per state dict and at least one state dict")
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
    if not all(isinstance(s, Mapping) for s in states):
        raise TypeError("fedavg takes state dicts (model.state_dict()), one per client")
    keys = list(states[0])
    for k, s in enumerate(states[1:], 1):
        if list(s) != keys:
            diff = sorted(set(s) ^ set(keys))[:3]
            raise ValueError(
                f"state dict {k} does not have the same keys as state dict 0 (differ: {diff}): "
                "every client must train the same architecture (init_model with the same width)"
            )
        for name in keys:
            a, b = states[0][name], s[name]
            if not isinstance(b, torch.Tensor) or b.shape != a.shape:
                got = tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
                raise ValueError(
                    f"state dict {k}: {name!r} has shape {got} but {tuple(a.shape)} in state "
                    "dict 0: every client must train the same architecture (same width and "
                    "classes)"
                )
    share = w / w.sum()
    return {
        k: sum(float(a) * s[k].double() for a, s in zip(share, states, strict=True)).to(
            states[0][k].dtype
        )
        for k in keys
    }


def site_seed(seed: int, round: int, site: int) -> int:
    """The seed of one site's local steps in one round (the same in any process)."""
    return int(np.random.SeedSequence([seed, round, site]).generate_state(1)[0])


def accuracy(model: torch.nn.Module, split: Split) -> float:
    """Test accuracy of ``model`` on ``split`` (MedMNIST ACC)."""
    return float(evaluate(model, split)["acc"])


def run_federated(
    sites: Scenario,
    method: str = "fedavg",
    *,
    config: FedConfig | None = None,
    seed: int = 0,
    eval_every: int = 1,
) -> dict[str, Any]:
    """Train on the sites of ``sites`` with ``method`` and evaluate on its test split.

    ``method``: ``"fedavg"``, ``"fedprox"`` (``config.mu``, default 0.01 if 0), ``"local"``
    (each site alone, the same rounds of steps without averaging) or ``"central"`` (all
    training images pooled, ``n_sites * local_steps`` steps per round: as many images seen in
    all as the federation). Every method follows the per-round learning rate of
    :func:`round_lr`. Returns a dict with ``acc`` (the
    test accuracy of the global model; for ``"local"`` the mean over the sites' models),
    ``site_acc`` (list: each site's test patients), ``curve`` (list of (round, acc)) and
    ``model`` (the global model; for ``"local"`` the list of site models).
    """
    cfg = config or FedConfig()
    if method not in ("fedavg", "fedprox", "local", "central"):
        raise ValueError(f"method must be fedavg, fedprox, local or central, got {method!r}")
    if not isinstance(sites, Scenario):
        raise TypeError(f"sites must be a Scenario (make_sites), got {type(sites).__name__}")
    seed = check_int("seed", seed, 0)
    eval_every = check_int("eval_every", eval_every, 1)
    tr = sites.train
    n_classes, in_ch = tr.n_classes, tr.images.shape[1]
    K = sites.n_groups
    test = sites.test
    site_tests = [sites.group("test", k) for k in range(K)]
    site_trains = [sites.group("train", k) for k in range(K)]
    mu = cfg.mu if method == "fedprox" and cfg.mu > 0 else (0.01 if method == "fedprox" else 0.0)
    if method == "central":  # one site holding every image, the same images seen in total
        site_trains, steps = [tr], cfg.local_steps * K
    else:
        steps = cfg.local_steps
    if method == "local":
        models = [
            _train_rounds(sc_train, cfg, steps, seed, mu, n_classes, in_ch, None, k)
            for k, sc_train in enumerate(site_trains)
        ]
        site_acc = [accuracy(m, s) for m, s in zip(models, site_tests, strict=True)]
        acc = float(np.mean([accuracy(m, test) for m in models]))
        return {"acc": acc, "site_acc": site_acc, "curve": [(cfg.rounds, acc)], "model": models}
    curve: list[tuple[int, float]] = []
    model = _train_rounds(
        site_trains, cfg, steps, seed, mu, n_classes, in_ch, (test, curve, eval_every)
    )
    return {
        "acc": curve[-1][1],
        "site_acc": [accuracy(model, s) for s in site_tests],
        "curve": curve,
        "model": model,
    }


def round_lr(cfg: FedConfig, r: int) -> float:
    """The learning rate of round ``r`` (1-based): cosine decay from ``lr`` to ``lr / 10``."""
    r = check_scalar("r", r, lo=1, hi=cfg.rounds, fix="rounds are numbered 1..cfg.rounds")
    t = (r - 1) / max(1, cfg.rounds - 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t)))


def _train_rounds(site_trains, cfg, steps, seed, mu, n_classes, in_ch, evaluation, site=None):
    """Rounds of local steps on each split of ``site_trains`` then FedAvg (a single split:
    plain training with the same schedule; ``site``: train that one site alone)."""
    model = init_model(n_classes, in_ch, width=cfg.width, seed=seed)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    own = [site_trains] if site is not None else site_trains
    for r in range(1, cfg.rounds + 1):
        updates, sizes = [], []
        for k, split in enumerate(own):
            model.load_state_dict(state)
            s, n, _ = client_update(
                model,
                split,
                steps=steps,
                seed=site_seed(seed, r, k if site is None else site),
                batch_size=cfg.batch_size,
                lr=round_lr(cfg, r),
                mu=mu,
            )
            updates.append(s)
            sizes.append(n)
        state = fedavg(updates, sizes)
        if evaluation is not None:
            test, curve, every = evaluation
            if r % every == 0 or r == cfg.rounds:
                model.load_state_dict(state)
                curve.append((r, accuracy(model, test)))
    model.load_state_dict(state)
    return model


# --------------------------------------------------------------------------------------------
# secure aggregation (a): pairwise additive masking, by hand

#: Fixed-point scale of masked aggregation: values are sent as round(x * 2**FIXED_BITS) in the
#: integers modulo 2**64 (numpy uint64 arithmetic wraps modulo 2**64 by itself).
FIXED_BITS = 24


def flatten_state(state: Mapping[str, torch.Tensor]) -> np.ndarray:
    """A state dict as one float64 vector (D,), in key order."""
    return np.concatenate([v.detach().double().reshape(-1).numpy() for v in state.values()])


def unflatten_state(vector: np.ndarray, like: Mapping[str, torch.Tensor]) -> dict:
    """The inverse of :func:`flatten_state`, shaped and typed like ``like``."""
    out, i = {}, 0
    for k, v in like.items():
        n = v.numel()
        out[k] = torch.from_numpy(np.asarray(vector[i : i + n])).reshape(v.shape).to(v.dtype)
        i += n
    if i != len(vector):
        raise ValueError(f"the vector has {len(vector)} values but the state dict needs {i}")
    return out


def _client_id(client: Any, n_clients: int) -> int:
    return check_scalar(
        "client id", client, lo=0, hi=n_clients - 1,
        fix=f"clients are numbered 0..n_clients-1 = 0..{n_clients - 1}",
    )  # fmt: skip


def _pair_mask(seed: int, i: int, j: int, d: int) -> np.ndarray:
    """The mask clients i < j both derive from their shared secret (here a seeded stream; in
    a deployment, a Diffie-Hellman key agreement gives i and j the seed without the server)."""
    return np.random.default_rng([seed, i, j]).integers(0, 2**64, d, dtype=np.uint64)


def mask_update(vector: np.ndarray, client: int, n_clients: int, *, seed: int) -> np.ndarray:
    """What client ``client`` sends: its fixed-point vector plus ``mask_ij`` for every j >
    client, minus ``mask_ji`` for every j < client (mod 2**64). Alone it looks uniform."""
    n_clients = check_scalar("n_clients", n_clients, lo=2, fix="secure aggregation needs 2+")
    client = _client_id(client, n_clients)
    vector = np.asarray(vector, dtype=np.float64)
    if vector.ndim != 1 or not np.isfinite(vector).all():
        raise ValueError("vector must be a finite 1-D float vector (flatten_state(state))")
    d = len(vector)
    q = np.rint(np.asarray(vector, dtype=np.float64) * 2**FIXED_BITS).astype(np.int64)
    y = q.view(np.uint64).copy()
    for j in range(n_clients):
        if j > client:
            y += _pair_mask(seed, client, j, d)
        elif j < client:
            y -= _pair_mask(seed, j, client, d)
    return y


def unmask_sum(
    masked: Mapping[int, np.ndarray],
    n_clients: int,
    *,
    seed: int,
    recover: bool = True,
) -> np.ndarray:
    """The server's side: the sum of the clients' vectors from their masked vectors only.

    ``masked`` maps client ids to what they sent; clients missing from it dropped out after
    the masks were agreed. Their pair masks do not cancel; with ``recover=True`` the surviving
    clients reveal the seeds they shared with the dropped ones (as in Bonawitz et al. 2017)
    and the server removes those masks. With ``recover=False`` the result is garbage: the
    lesson's demonstration of why secure aggregation needs the recovery step.
    """
    if not masked:
        raise ValueError("no client sent an update: nothing to aggregate")
    n_clients = check_scalar("n_clients", n_clients, lo=2, fix="secure aggregation needs 2+")
    masked = {_client_id(i, n_clients): np.asarray(y) for i, y in masked.items()}
    d = len(next(iter(masked.values())))
    if any(y.dtype != np.uint64 or y.shape != (d,) for y in masked.values()):
        raise ValueError("every masked update must be a uint64 vector of one length (mask_update)")
    total = np.zeros(d, dtype=np.uint64)
    for y in masked.values():
        total += y
    dropped = [j for j in range(n_clients) if j not in masked]
    if recover:
        for j in dropped:
            for i in masked:  # survivor i's mask with j: +m if i < j, -m if i > j
                m = _pair_mask(seed, min(i, j), max(i, j), d)
                total = total - m if i < j else total + m
    return total.view(np.int64).astype(np.float64) / 2**FIXED_BITS


def secure_fedavg(
    states: Sequence[Mapping[str, torch.Tensor]],
    weights: Sequence[float],
    *,
    seed: int = 0,
    dropped: Sequence[int] = (),
    recover: bool = True,
) -> dict:
    """FedAvg through pairwise masking: each client sends ``mask(n_k * w_k)``; the server
    unmasks the sum and divides by the (public) total of the surviving clients' ``n_k``."""
    n = len(states)
    if n < 2 or n != len(weights):
        raise ValueError("secure aggregation needs at least 2 clients and one weight per client")
    dropped = [_client_id(j, n) for j in dropped]
    twice = sorted({j for j in dropped if dropped.count(j) > 1})
    if twice:
        raise ValueError(f"dropped names client(s) {twice} more than once: name each dropout once")
    if len(set(dropped)) >= n:
        raise ValueError(f"dropped must name some (not all) of the clients 0..{n - 1}")
    w = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0) or np.delete(w, dropped).sum() <= 0:
        raise ValueError(
            f"weights must be finite and non-negative, with a positive sum over the clients "
            f"that did not drop out (their numbers of training images), got {list(weights)}"
        )
    masked = {
        k: mask_update(float(weights[k]) * flatten_state(states[k]), k, n, seed=seed)
        for k in range(n)
        if k not in dropped
    }
    total_w = sum(float(weights[k]) for k in masked)
    return unflatten_state(unmask_sum(masked, n, seed=seed, recover=recover) / total_w, states[0])


# --------------------------------------------------------------------------------------------
# secure aggregation (b): CKKS homomorphic encryption (TenSEAL)


#: CKKS ring dimension: 4096 slots per ciphertext, about 128-bit security with 160-bit moduli.
CKKS_DEGREE = 8192


def ckks_contexts(*, scale_bits: int = 40) -> tuple[Any, bytes]:
    """The key holder's CKKS context (with the secret key) and the public context as bytes,
    what the aggregator and the clients receive: no secret key, no Galois keys (sums need
    none, and they would make the context tens of MB)."""
    import tenseal as ts

    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=CKKS_DEGREE,
        coeff_mod_bit_sizes=[60, scale_bits, 60],
    )
    ctx.global_scale = 2**scale_bits
    public = ctx.copy()
    public.make_context_public()
    return ctx, public.serialize(save_secret_key=False, save_galois_keys=False)


def ckks_encrypt(public: bytes, vector: np.ndarray) -> list[bytes]:
    """A client encrypts a vector (D,) under the public context: a list of serialized CKKS
    ciphertexts of at most ``CKKS_DEGREE / 2`` values (slots) each."""
    import tenseal as ts

    ctx = ts.context_from(public)
    n = CKKS_DEGREE // 2
    v = np.asarray(vector, dtype=np.float64)
    return [ts.ckks_vector(ctx, v[i : i + n].tolist()).serialize() for i in range(0, len(v), n)]


def ckks_sum(public: bytes, encrypted: Sequence[Sequence[bytes]]) -> list[bytes]:
    """The aggregator adds the clients' ciphertexts chunk by chunk, holding only the public
    context (it cannot decrypt: TenSEAL refuses without the secret key)."""
    import tenseal as ts

    ctx = ts.context_from(public)
    if not encrypted:
        raise ValueError("no encrypted updates to add")
    out = []
    for chunks in zip(*encrypted, strict=True):
        acc = ts.ckks_vector_from(ctx, chunks[0])
        for c in chunks[1:]:
            acc += ts.ckks_vector_from(ctx, c)
        out.append(acc.serialize())
    return out


def ckks_decrypt(secret_ctx: Any, ciphertexts: Sequence[bytes], d: int) -> np.ndarray:
    """The key holder decrypts the summed ciphertexts into a float64 vector (d,)."""
    import tenseal as ts

    vals: list[float] = []
    for c in ciphertexts:
        vals.extend(ts.ckks_vector_from(secret_ctx, c).decrypt())
    return np.asarray(vals[:d], dtype=np.float64)


def aggregation_costs(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float], *, seed: int = 0
) -> tuple[Any, dict[str, float]]:
    """One round of the same client updates aggregated three ways: plain FedAvg, pairwise
    masking and CKKS. Returns a DataFrame (method, bytes per client, client time, server time,
    decryption time in ms, max abs error vs plain FedAvg) and the errors by method."""
    import time

    import pandas as pd

    n = len(states)
    vecs = [float(w) * flatten_state(s) for s, w in zip(states, weights, strict=True)]
    total_w = float(np.sum(weights))
    t = time.perf_counter()
    plain = flatten_state(fedavg(states, weights))
    t_plain = time.perf_counter() - t
    rows = [("plain FedAvg (float32)", vecs[0].size * 4, 0.0, t_plain, 0.0, 0.0)]
    t = time.perf_counter()
    masked = {k: mask_update(v, k, n, seed=seed) for k, v in enumerate(vecs)}
    t_client = (time.perf_counter() - t) / n
    t = time.perf_counter()
    avg = unmask_sum(masked, n, seed=seed) / total_w
    t_server = time.perf_counter() - t
    err_mask = float(np.abs(avg - plain).max())
    rows.append(("pairwise masking", masked[0].nbytes, t_client, t_server, 0.0, err_mask))
    secret, public = ckks_contexts()
    t = time.perf_counter()
    enc = [ckks_encrypt(public, v) for v in vecs]
    t_client = (time.perf_counter() - t) / n
    t = time.perf_counter()
    summed = ckks_sum(public, enc)
    t_server = time.perf_counter() - t
    t = time.perf_counter()
    avg = ckks_decrypt(secret, summed, len(plain)) / total_w
    t_dec = time.perf_counter() - t
    err_ckks = float(np.abs(avg - plain).max())
    rows.append(("CKKS (TenSEAL)", sum(map(len, enc[0])), t_client, t_server, t_dec, err_ckks))
    df = pd.DataFrame(
        rows,
        columns=[
            "method",
            "bytes per client",
            "client ms",
            "server ms",
            "decrypt ms",
            "max abs error",
        ],
    )
    for c in ("client ms", "server ms", "decrypt ms"):
        df[c] = df[c] * 1000.0
    return df, {"mask": err_mask, "ckks": err_ckks, "public_context_bytes": float(len(public))}


# --------------------------------------------------------------------------------------------
# what the notebook shows: harmonised sites, the comparison grid, the site table


def harmonise_sites(sites: Scenario, *, reference: int = 0, method: str = "histogram") -> Scenario:
    """Every site's images (all splits) harmonised to site ``reference``'s training images
    (:func:`harmonise`): the federation shares one reference histogram, no images."""
    ref = sites.group("train", reference).images
    splits, gids = {}, sites.groups
    for s, split in sites.splits.items():
        images = split.images.clone()
        for k in sites.group_names:
            m = torch.from_numpy(gids[s] == k)
            if k != reference and bool(m.any()):
                images[m] = harmonise(split.images[m], ref, method=method)
        splits[s] = Split(split.name, s, images, split.labels, split.task, split.label_names)
    info = {**sites.info, "harmonised": method, "reference_site": reference}
    return replace(sites, splits=splits, info=info)


def site_table(sites: Scenario) -> Any:
    """Training images per site and class (a DataFrame: site, class, images, share of site)."""
    import pandas as pd

    tr = sites.train
    y, g = tr.labels.numpy(), sites.groups["train"]
    rows = [
        {"site": name, "class": tr.label_names[c], "images": int(((g == k) & (y == c)).sum())}
        for k, name in sites.group_names.items()
        for c in tr.label_names
    ]
    df = pd.DataFrame(rows)
    df["share of site"] = df["images"] / df.groupby("site")["images"].transform("sum")
    return df


def experiment(
    data: MedMNISTData,
    *,
    partition: str,
    method: str,
    seed: int,
    config: FedConfig,
    n_sites: int = 4,
    alpha: float = 0.5,
    harmonised: bool = False,
    eval_every: int = 1,
) -> dict[str, Any]:
    """One cell of the lesson's grid (for :func:`medlab.experiments.run_grid`): the sites of
    ``partition`` for ``seed``, trained with ``method``. Returns test accuracy ``acc``, the
    mean accuracy over the evaluated rounds ``auc_rounds`` (convergence), the smallest site's
    accuracy on its own test patients ``smallest_site_acc``, ``site_acc`` (list), ``curve``
    (list: the global test accuracy after every ``eval_every``-th round and the last) and
    ``rounds`` (list: those rounds, 1-based)."""
    sites = make_sites(data, partition, n_sites=n_sites, alpha=alpha, seed=seed)
    if harmonised:
        sites = harmonise_sites(sites)
    out = run_federated(sites, method, config=config, seed=seed, eval_every=eval_every)
    sizes = np.bincount(sites.groups["train"], minlength=sites.n_groups)
    accs = [a for _, a in out["curve"]]
    return {
        "acc": out["acc"],
        "auc_rounds": float(np.mean(accs)),
        "smallest_site_acc": out["site_acc"][int(np.argmin(sizes))],
        "site_acc": out["site_acc"],
        "curve": accs,
        "rounds": [r for r, _ in out["curve"]],
    }
