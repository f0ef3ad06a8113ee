"""Synthetic data (notebook 07): two class-conditional generators and a scorecard for them.

The lesson: a generator trained on real medical images can be measured, not admired. Two
families, both written here in plain PyTorch and trained through the curriculum's open loop
(:func:`medlab.train.batches` + :func:`medlab.train.make_optimizer` +
:func:`medlab.train.train_steps`, with the generator's own per-image loss as ``loss_fn``) and
checkpointed through the model cache (:func:`medlab.experiments.cached_model`):

* :class:`ConditionalVAE` - encoder q(z|x, y), decoder p(x|z, y), loss = negative ELBO;
* :class:`DDPM` - a denoising diffusion model: a noise schedule (:func:`noise_schedule`), a
  compact U-Net (:class:`TinyUNet`) that predicts the noise, the ancestral sampling loop with
  classifier-free guidance (:meth:`DDPM.sample`).

The scorecard, each metric defined once here (the notebook writes out the formulas):

* fidelity - :func:`frechet_distance` and :func:`prdc_scores` (precision, recall, density,
  coverage; ``prdc`` 0.2) in the feature space of a classifier trained on the real data
  (:class:`FeatureExtractor`; Inception weights cannot be downloaded here, and a domain
  feature space fits better);
* diversity - :func:`class_diversity` (Shannon index and Gini coefficient of the predicted class
  distribution, from :mod:`medlab.fairness`) and :func:`within_class_variety`;
* privacy - :func:`dcr` (distance to the closest training record) and
  :func:`attack_scores` (a loss-based membership-inference score against the generator);
* utility - :func:`train_classifier` for train-on-synthetic / train-on-real (TSTR / TRTR);
* misuse - :func:`detector_auc`, a real-versus-synthetic detector.

For the bias lesson, :func:`hold_out_group` and :func:`add_to_group` add synthetic or real
images to one group of a :class:`~medlab.scenario.Scenario`.

>>> vae, info = train_generator("vae", data.train, data=data, seed=0, steps=600)  # doctest: +SKIP
>>> fake = generate(vae, requested_labels(data.train, 500), seed=0)             # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medlab.data import Split
from medlab.diversity import gini_coefficient, shannon_index
from medlab.experiments import cached_model
from medlab.models import SmallCNN
from medlab.scenario import Scenario
from medlab.train import _batched, as_model_input, batches, fit, make_optimizer, train_steps
from medlab.utils import check_int, check_scalar, progress

__all__ = [
    "GENERATORS",
    "ConditionalVAE",
    "TinyUNet",
    "noise_schedule",
    "DDPM",
    "make_generator",
    "fit_generator",
    "train_generator",
    "generate",
    "requested_labels",
    "synthetic_split",
    "FeatureExtractor",
    "frechet_distance",
    "prdc_scores",
    "class_diversity",
    "within_class_variety",
    "dcr",
    "attack_scores",
    "train_classifier",
    "detector_auc",
    "hold_out_group",
    "add_to_group",
    "pairs_figure",
    "group_conditions",
]

#: The generator families :func:`make_generator` builds.
GENERATORS = ("vae", "ddpm")


def _labels(y: Any, n_classes: int) -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8) or y.ndim != 1:
        raise TypeError(f"labels must be integer class ids of shape (N,), got {y.dtype} {y.shape}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {y.min()}..{y.max()}")
    return y.long()


# --------------------------------------------------------------------------------------------
# generator 1: the conditional VAE


class ConditionalVAE(nn.Module):
    """A class-conditional variational autoencoder for small images (28 px).

    Encoder: image (N, C, 28, 28) plus one-hot class planes -> two stride-2 convolutions ->
    ``mu, logvar`` (N, latent). Decoder: ``[z, one-hot y]`` -> linear -> two transposed
    convolutions -> pixel logits (N, C, 28, 28) (Bernoulli likelihood on [0, 1] grey levels).
    """

    def __init__(
        self, in_channels: int = 1, n_classes: int = 2, *, latent: int = 16, width: int = 32
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.n_classes = check_int("n_classes", n_classes, 1)
        self.latent = check_int("latent", latent, 1)
        w = check_int("width", width, 4)
        self.enc = nn.Sequential(
            nn.Conv2d(in_channels + n_classes, w, 4, 2, 1),  # 28 -> 14
            nn.SiLU(),
            nn.Conv2d(w, 2 * w, 4, 2, 1),  # 14 -> 7
            nn.SiLU(),
            nn.Flatten(),
        )
        self.to_stats = nn.Linear(2 * w * 49, 2 * latent)
        self.from_z = nn.Sequential(nn.Linear(latent + n_classes, 2 * w * 49), nn.SiLU())
        self.dec = nn.Sequential(
            nn.Unflatten(1, (2 * w, 7, 7)),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1),  # 7 -> 14
            nn.SiLU(),
            nn.ConvTranspose2d(w, in_channels, 4, 2, 1),  # 14 -> 28 (logits)
        )

    def _onehot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(_labels(y, self.n_classes), self.n_classes).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x, y): ``mu, logvar`` (N, latent); x on [-1, 1]."""
        planes = self._onehot(y)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        mu, logvar = self.to_stats(self.enc(torch.cat([x, planes], 1))).chunk(2, 1)
        return mu, logvar.clamp(-10.0, 10.0)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """p(x | z, y): pixel logits (N, C, 28, 28); sigmoid gives grey levels on [0, 1]."""
        return self.dec(self.from_z(torch.cat([z, self._onehot(y)], 1)))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mu, logvar = self.encode(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # the reparameterisation trick
        return self.decode(z, y), mu, logvar

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Negative ELBO per image (N,), in nats: Bernoulli reconstruction + KL(q || N(0, I))."""
        logits, mu, logvar = self(x, y)
        target = (x + 1.0) / 2.0
        rec = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return rec.sum(1) + kl

    @torch.no_grad()
    def sample(self, y: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images for classes ``y`` (N,): z ~ N(0, I), decoded to the mean image, on [-1, 1]."""
        y = _labels(y, self.n_classes)
        z = torch.randn(len(y), self.latent, generator=generator)
        return torch.sigmoid(self.decode(z, y)) * 2.0 - 1.0


# --------------------------------------------------------------------------------------------
# generator 2: a denoising diffusion model (DDPM)


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer steps t (N,) -> (N, dim), as in the Transformer."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], 1)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb: int) -> None:
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(min(8, c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb, c_out)
        self.n2, self.c2 = nn.GroupNorm(min(8, c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x))) + self.emb(e)[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class TinyUNet(nn.Module):
    """A compact U-Net for 28 px images: three resolutions (28, 14, 7 px; widths w, 2w, 2w),
    one residual block per level and side, skip connections, GroupNorm (groups divide every
    width). Conditioned on the diffusion step t (sinusoidal embedding) and the class y
    (``y == n_classes`` is the "no class" token of classifier-free guidance).

    forward(x_t (N, C, 28, 28), t (N,), y (N,)) -> predicted noise (N, C, 28, 28).
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 2, *, width: int = 16) -> None:
        super().__init__()
        w = check_int("width", width, 8)
        if w % 8:
            raise ValueError(f"width must be a multiple of 8 (GroupNorm groups), got {w}")
        self.n_classes = check_int("n_classes", n_classes, 1)
        self.emb_dim = e = 4 * w
        self.t_mlp = nn.Sequential(nn.Linear(w, e), nn.SiLU(), nn.Linear(e, e))
        self.y_emb = nn.Embedding(n_classes + 1, e)
        self.inp = nn.Conv2d(in_channels, w, 3, padding=1)
        self.down1, self.pool1 = _ResBlock(w, w, e), nn.Conv2d(w, w, 3, 2, 1)  # 28 -> 14
        self.down2, self.pool2 = _ResBlock(w, 2 * w, e), nn.Conv2d(2 * w, 2 * w, 3, 2, 1)  # -> 7
        self.mid = _ResBlock(2 * w, 2 * w, e)
        self.up2 = _ResBlock(4 * w, 2 * w, e)  # 7 -> 14, concatenated with the 14 px skip
        self.up1 = _ResBlock(3 * w, w, e)  # 14 -> 28, concatenated with the 28 px skip
        self.out = nn.Sequential(
            nn.GroupNorm(min(8, w), w), nn.SiLU(), nn.Conv2d(w, in_channels, 3, padding=1)
        )
        self.width = w

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        e = self.t_mlp(_timestep_embedding(t, self.width)) + self.y_emb(y)
        h1 = self.down1(self.inp(x), e)  # 28 px
        h2 = self.down2(self.pool1(h1), e)  # 14 px
        h = self.mid(self.pool2(h2), e)  # 7 px
        h = self.up2(torch.cat([F.interpolate(h, size=h2.shape[2:]), h2], 1), e)
        h = self.up1(torch.cat([F.interpolate(h, size=h1.shape[2:]), h1], 1), e)
        return self.out(h)


def noise_schedule(steps: int = 100, *, kind: str = "cosine") -> dict[str, torch.Tensor]:
    """The forward (noising) process of a DDPM, each tensor of shape (steps,).

    ``beta_t``: the variance added at step t; ``alpha_t = 1 - beta_t``; ``alpha_bar_t`` =
    prod_{s<=t} alpha_s, so that ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``.
    ``kind="cosine"`` (Nichol & Dhariwal 2021: alpha_bar follows cos^2, betas capped at 0.999)
    or ``"linear"`` (Ho et al. 2020: betas from 1e-4 to 0.02, rescaled to ``steps``).
    """
    steps = check_int("steps", steps, 2)
    if kind == "cosine":
        s = 0.008
        f = (
            torch.cos(
                (torch.arange(steps + 1, dtype=torch.float64) / steps + s) / (1 + s) * math.pi / 2
            )
            ** 2
        )
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    elif kind == "linear":
        scale = 1000 / steps
        betas = torch.linspace(1e-4 * scale, 0.02 * scale, steps, dtype=torch.float64)
    else:
        raise ValueError(f"kind must be 'cosine' or 'linear', got {kind!r}")
    alphas = 1.0 - betas
    return {
        "beta": betas.float(),
        "alpha": alphas.float(),
        "alpha_bar": torch.cumprod(alphas, 0).float(),
    }


class DDPM(nn.Module):
    """A class-conditional denoising diffusion probabilistic model (Ho et al. 2020).

    Training (:meth:`loss`): draw t uniformly and noise eps ~ N(0, I), make
    ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` and regress the U-Net's output on eps
    (mean squared error per image). The class is replaced by the "no class" token with
    probability ``p_uncond``, so one network learns both the conditional and the unconditional
    model (classifier-free guidance, Ho & Salimans 2022).
    Sampling (:meth:`sample`): the reverse loop from pure noise, see its docstring.
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        *,
        steps: int = 100,
        width: int = 16,
        schedule: str = "cosine",
        p_uncond: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_classes = check_int("n_classes", n_classes, 1)
        self.in_channels = check_int("in_channels", in_channels, 1)
        self.p_uncond = check_scalar("p_uncond", p_uncond, kind=float, lo=0, hi=1,
                                     hi_inclusive=False)  # fmt: skip
        self.net = TinyUNet(in_channels, n_classes, width=width)
        self.steps = check_int("steps", steps, 2)
        for k, v in noise_schedule(steps, kind=schedule).items():
            self.register_buffer(k, v, persistent=False)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The forward process in one jump: x_t given x_0 (N, C, H, W), steps t (N,), eps."""
        ab = self.alpha_bar[t].view(-1, 1, 1, 1)
        return ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps

    def loss(
        self, x0: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Noise-prediction error per image (N,): mean over pixels of (eps - eps_hat)^2."""
        y = _labels(y, self.n_classes)
        n = len(x0)
        t = torch.randint(0, self.steps, (n,), generator=generator)
        eps = torch.randn(x0.shape, generator=generator)
        drop = torch.rand(n, generator=generator) < self.p_uncond if self.training else None
        if drop is not None:
            y = torch.where(drop, torch.full_like(y, self.n_classes), y)
        return (self.net(self.q_sample(x0, t, eps), t, y) - eps).pow(2).flatten(1).mean(1)

    def eps(self, x: torch.Tensor, t: int, y: torch.Tensor, guidance: float) -> torch.Tensor:
        """Guided noise estimate ``(1 + w) eps(x, t, y) - w eps(x, t, no class)``."""
        tt = torch.full((len(x),), t, dtype=torch.long)
        if guidance == 0:
            return self.net(x, tt, y)
        both = self.net(
            torch.cat([x, x]),
            torch.cat([tt, tt]),
            torch.cat([y, torch.full_like(y, self.n_classes)]),
        )
        cond, uncond = both.chunk(2)
        return (1.0 + guidance) * cond - guidance * uncond

    @torch.no_grad()
    def sample(
        self,
        y: torch.Tensor,
        *,
        guidance: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Ancestral sampling for classes ``y`` (N,), images on [-1, 1].

        x_T ~ N(0, I); for t = T-1 .. 0: estimate the noise, form the clipped clean-image
        estimate ``x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``, then draw x_{t-1} from
        the Gaussian posterior q(x_{t-1} | x_t, x0) (mean ``c0 x0 + ct x_t``, variance
        ``beta_t (1 - abar_{t-1}) / (1 - abar_t)``); no noise is added at the last step.
        """
        y = _labels(y, self.n_classes)
        guidance = check_scalar("guidance", guidance, kind=float, lo=0,
                                fix="1 = conditional, > 1 = stronger class guidance")  # fmt: skip
        x = torch.randn(len(y), self.in_channels, 28, 28, generator=generator)
        for t in range(self.steps - 1, -1, -1):
            ab = self.alpha_bar[t]
            ab_prev = self.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
            eps = self.eps(x, t, y, guidance)
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1.0, 1.0)
            c0 = ab_prev.sqrt() * self.beta[t] / (1 - ab)
            ct = self.alpha[t].sqrt() * (1 - ab_prev) / (1 - ab)
            x = c0 * x0 + ct * x
            if t > 0:
                var = self.beta[t] * (1 - ab_prev) / (1 - ab)
                x = x + var.sqrt() * torch.randn(x.shape, generator=generator)
        return x.clamp(-1.0, 1.0)


# --------------------------------------------------------------------------------------------
# training and sampling, through the curriculum's open loop and the model cache


def make_generator(kind: str, in_channels: int, n_classes: int, **kwargs: Any) -> nn.Module:
    """A generator of family ``kind`` (one of :data:`GENERATORS`), untrained."""
    if kind == "vae":
        return ConditionalVAE(in_channels, n_classes, **kwargs)
    if kind == "ddpm":
        return DDPM(in_channels, n_classes, **kwargs)
    raise ValueError(f"kind must be one of {GENERATORS}, got {kind!r}")


class _Objective(nn.Module):
    """Hands ``train_steps`` the batch unchanged; the generator's loss is the ``loss_fn``."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fit_generator(
    model: nn.Module,
    train: Split,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    desc: str = "generator",
) -> dict[str, Any]:
    """Train a generator in place for ``steps`` optimisation steps on ``train`` (its labels are
    the conditions): :func:`~medlab.train.make_optimizer`, :func:`~medlab.train.batches` (no
    augmentation), :func:`~medlab.train.train_steps` with ``loss_fn = model.loss``, in ten
    chunks. Returns ``{"loss": [mean loss per chunk], "steps", "seconds", ...}`` (JSON-able).
    """
    if not isinstance(train, Split):
        raise TypeError(f"train must be a medlab Split, got {type(train).__name__}")
    if len(train) == 0:
        raise ValueError("the training split is empty: nothing to learn from")
    steps = check_int("steps", steps, 1)
    batch_size = check_int("batch_size", batch_size, 1)
    opt, sched = make_optimizer(model, total_steps=steps, lr=lr, weight_decay=0.0, warmup=0.05)
    src = batches(train, batch_size=batch_size, epochs=None, seed=seed)
    chunk = max(1, math.ceil(steps / 10))
    losses, done, t0 = [], 0, time.perf_counter()
    for _ in progress(range(math.ceil(steps / chunk)), desc=desc):
        k = min(chunk, steps - done)
        st = train_steps(_Objective(model), src, opt, k, scheduler=sched,
                         loss_fn=lambda x, y: model.loss(x, y))  # fmt: skip
        if not math.isfinite(st.loss):
            raise FloatingPointError(f"generator training diverged (loss {st.loss}); lower lr")
        losses.append(st.loss)
        done += k
    model.eval()
    return {"loss": losses, "steps": steps, "batch_size": batch_size, "lr": lr,
            "seconds": time.perf_counter() - t0}  # fmt: skip


def train_generator(
    kind: str,
    train: Split,
    *,
    data: Any,
    seed: int = 0,
    steps: int = 1000,
    batch_size: int = 64,
    lr: float = 2e-3,
    n_classes: int | None = None,
    cache: Any = None,
    **arch: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """A trained generator of family ``kind`` from the model cache, or trained now
    (:func:`fit_generator`) and cached. ``train.labels`` are the conditions (``n_classes`` of
    them, default ``train.n_classes``); ``arch`` goes to the model (e.g. ``width``, ``steps``
    of the DDPM schedule as ``T``). Returns (model in eval mode, info)."""
    if kind not in GENERATORS:
        raise ValueError(f"kind must be one of {GENERATORS}, got {kind!r}")
    n_classes = train.n_classes if n_classes is None else check_int("n_classes", n_classes, 1)
    arch = dict(arch)
    if "T" in arch:
        arch["steps"] = check_int("T", arch.pop("T"), 2)
    c = int(train.images.shape[1])
    settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "n_classes": n_classes, **arch}

    def run(model: nn.Module) -> dict[str, Any]:
        return fit_generator(model, train, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
                             desc=f"{kind} seed {seed}")  # fmt: skip

    return cached_model(
        f"gen-{kind}",
        lambda: make_generator(kind, c, n_classes, **arch),
        run,
        data=data,
        train_split=train,
        seed=seed,
        settings=settings,
        cache=cache,
    )


def generate(
    model: nn.Module, labels: Any, *, seed: int = 0, batch_size: int = 256, **sample_kwargs: Any
) -> torch.Tensor:
    """Samples for the requested classes ``labels`` (N,), as uint8 images (N, C, H, W) in
    0..255 (the real data's format). Seeded: the same seed gives the same images."""
    if not hasattr(model, "sample") or not hasattr(model, "n_classes"):
        raise TypeError(
            f"model must be a generator from make_generator (a ConditionalVAE or DDPM), got "
            f"{type(model).__name__}"
        )
    if np.size(labels) == 0:
        raise ValueError(
            "labels is empty: ask for at least one image, e.g. labels=requested_labels(split, n)"
        )
    y = _labels(labels, model.n_classes)
    gen = torch.Generator().manual_seed(check_int("seed", seed, 0))
    batch_size = check_int("batch_size", batch_size, 1)
    was = model.training
    model.eval()
    try:
        out = [model.sample(y[i : i + batch_size], generator=gen, **sample_kwargs)
               for i in range(0, len(y), batch_size)]  # fmt: skip
    finally:
        model.train(was)
    x = torch.cat(out) if out else torch.zeros(0, getattr(model, "in_channels", 1), 28, 28)
    return ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def requested_labels(split: Split, n: int, *, n_classes: int | None = None) -> torch.Tensor:
    """``n`` class labels (N,) in the class proportions of ``split`` (largest remainders), in
    class order: what a conditional generator is asked to produce."""
    n = check_int("n", n, 1)
    k = split.n_classes if n_classes is None else n_classes
    counts = torch.bincount(split.labels, minlength=k).double()
    share = counts / counts.sum() * n
    take = share.floor().long()
    rest = n - int(take.sum())
    take[torch.argsort(share - take, descending=True)[:rest]] += 1
    return torch.repeat_interleave(torch.arange(k), take)


def synthetic_split(
    images: torch.Tensor, labels: Any, *, like: Split, name: str = "synthetic"
) -> Split:
    """Wrap generated uint8 images (N, C, H, W) and their labels as a :class:`Split` with the
    task and class names of ``like``, so every medlab tool takes them like real data."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        raise TypeError("images must be a uint8 tensor (N, C, H, W); use generate(...)")
    if not isinstance(like, Split):
        raise TypeError(f"like must be a medlab Split (e.g. data.train), got {type(like).__name__}")
    if images.shape[1:] != like.images.shape[1:]:
        raise ValueError(
            f"the images are {tuple(images.shape[1:])} (C, H, W) but {like.name}'s are "
            f"{tuple(like.images.shape[1:])}: generate with a generator built for "
            f"{like.images.shape[1]} channel(s) at {like.images.shape[-1]} px"
        )
    y = _labels(labels, like.n_classes)
    if len(y) != len(images):
        raise ValueError(f"{len(images)} images but {len(y)} labels: pass one label per image")
    return Split(like.name, name, images, y, like.task, dict(like.label_names))


# --------------------------------------------------------------------------------------------
# fidelity


class FeatureExtractor(nn.Module):
    """A trained classifier's penultimate features as a feature map for fidelity metrics.

    forward(uint8 images (N, C, H, W)) -> float features (N, num_features); ``num_features``
    is an int, as torchmetrics' ``FrechetInceptionDistance(feature=...)`` requires."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        if not hasattr(classifier, "embed"):
            raise TypeError(f"{type(classifier).__name__} has no .embed(x) (medlab's models do)")
        self.classifier = classifier.eval()
        with torch.no_grad():
            probe = classifier.embed(torch.zeros(1, _in_channels(classifier), 28, 28))
        self.num_features = int(probe.shape[1])

    #: images per forward pass (medlab.train's batching): memory stays that of one batch
    batch_size = 256

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if len(images) == 0:
            return self.classifier.embed(as_model_input(images))
        return _batched(self.classifier.embed, self.classifier, images, self.batch_size)


def _in_channels(model: nn.Module) -> int:
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return int(conv.in_channels)


def _features(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) < 2:
        raise ValueError(f"{name} must be features of shape (N >= 2, D), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def frechet_distance(real: Any, fake: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D):
    ``|mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2))`` (covariances with N - 1, as FID).
    0 = same mean and covariance. The matrix square root's trace is the sum of the square
    roots of the eigenvalues of ``S_r^(1/2) S_f S_r^(1/2)`` (symmetric, so stable)."""
    r, f = _features(real, "real"), _features(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature dimensions differ: {r.shape[1]} vs {f.shape[1]}")
    mu_r, mu_f = r.mean(0), f.mean(0)
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    w, v = np.linalg.eigh(s_r)
    root_r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_r @ s_f @ root_r)
    tr_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_r - mu_f) ** 2).sum() + np.trace(s_r) + np.trace(s_f) - 2 * tr_sqrt)


def prdc_scores(
    real: Any, fake: Any, *, nearest_k: int = 5, max_n: int = 3000, seed: int = 0
) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020; ``prdc`` 0.2) of feature
    sets (N, D), (M, D), each subsampled to at most ``max_n`` rows (prdc builds full N x N
    distance matrices: 3000 rows take ~70 MB each). prdc's prints are silenced."""
    from prdc import compute_prdc

    r, f = _features(real, "real"), _features(fake, "fake")
    nearest_k = check_int("nearest_k", nearest_k, 1)
    max_n = check_int("max_n", max_n, nearest_k + 2)
    if min(len(r), len(f)) <= nearest_k:
        raise ValueError(f"need more than nearest_k={nearest_k} rows in each set")
    rng = np.random.default_rng(seed)
    r = r[rng.choice(len(r), max_n, replace=False)] if len(r) > max_n else r
    f = f[rng.choice(len(f), max_n, replace=False)] if len(f) > max_n else f
    with contextlib.redirect_stdout(io.StringIO()):
        out = compute_prdc(real_features=r, fake_features=f, nearest_k=nearest_k)
    return {k: float(v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------
# diversity


def class_diversity(predicted: Any, n_classes: int) -> dict[str, float]:
    """Diversity of a predicted class (or group) distribution, from labels (N,) in
    0..n_classes-1: ``shannon`` H = -sum p_k ln p_k (nats), ``evenness`` H / ln K and
    ``gini``, the Gini coefficient of the class counts (0 = all classes equally often,
    1 - 1/K = one class only); see :mod:`medlab.fairness` for the definitions."""
    k = check_int("n_classes", n_classes, 2)
    y = _labels(torch.as_tensor(np.asarray(predicted)), k)
    if len(y) == 0:
        raise ValueError("no predictions: the distribution of an empty set is undefined")
    counts = np.bincount(y.numpy(), minlength=k)
    return {
        "shannon": shannon_index(counts),
        "evenness": shannon_index(counts, normalized=True),
        "gini": gini_coefficient(counts),
    }


def within_class_variety(features: Any, labels: Any) -> float:
    """Mean distance between two different samples of the same class, averaged over classes
    (features (N, D), labels (N,)): 0 when every sample of a class is the same image
    (mode collapse). Compare with the same number on real images."""
    x = torch.as_tensor(_features(features, "features"))
    y = np.asarray(labels).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} feature rows but {len(y)} labels")
    per_class = []
    for k in np.unique(y):
        xk = x[torch.from_numpy(y == k)]
        if len(xk) >= 2:
            d = torch.cdist(xk, xk)
            per_class.append(float(d.sum() / (len(xk) * (len(xk) - 1))))
    if not per_class:
        raise ValueError("every class has fewer than two samples: variety is undefined")
    return float(np.mean(per_class))


# --------------------------------------------------------------------------------------------
# privacy


def dcr(
    queries: torch.Tensor, reference: torch.Tensor, *, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the closest record: for each query image (N, C, H, W), the Euclidean
    distance in pixel space (grey levels scaled to [0, 1]) to its nearest image in
    ``reference`` (M, C, H, W), and that image's index. Returns (distances (N,), index (N,))."""
    for name, t in (("queries", queries), ("reference", reference)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8 or t.ndim != 4 or len(t) == 0:
            raise TypeError(f"{name} must be a non-empty uint8 tensor (N, C, H, W)")
    if queries.shape[1:] != reference.shape[1:]:
        raise ValueError(
            f"image shapes differ: {tuple(queries.shape[1:])} vs {tuple(reference.shape[1:])}"
        )
    ref = reference.flatten(1).float() / 255.0
    dist, idx = [], []
    for i in range(0, len(queries), check_int("batch_size", batch_size, 1)):
        d = torch.cdist(queries[i : i + batch_size].flatten(1).float() / 255.0, ref)
        m = d.min(1)
        dist.append(m.values)
        idx.append(m.indices)
    return torch.cat(dist).numpy(), torch.cat(idx).numpy()


@torch.no_grad()
def attack_scores(model: nn.Module, split: Split, *, seed: int = 0, draws: int = 4) -> np.ndarray:
    """Membership score per image (N,) for a loss attack on a generator: minus the
    generator's own training loss on that image (negative ELBO for the VAE, noise-prediction
    error for the DDPM), averaged over ``draws`` seeded draws of its randomness. Training
    images (members) tend to score higher."""
    if not isinstance(split, Split):
        raise TypeError(f"split must be a medlab Split, got {type(split).__name__}")
    draws = check_int("draws", draws, 1)
    was = model.training
    model.eval()
    try:
        torch.manual_seed(check_int("seed", seed, 0))
        total = torch.zeros(len(split))
        for _ in range(draws):
            parts = [model.loss(as_model_input(split.images[i : i + 512]), split.labels[i : i + 512])
                     for i in range(0, len(split), 512)]  # fmt: skip
            total += torch.cat(parts)
    finally:
        model.train(was)
    return (-total / draws).numpy()


# --------------------------------------------------------------------------------------------
# utility and misuse: classifiers on real or synthetic images


def train_classifier(
    train: Split,
    *,
    data: Any,
    seed: int = 0,
    width: int = 16,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 3e-3,
    augment: bool = True,
    kind: str = "smallcnn-synthetic",
    cache: Any = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """A :class:`~medlab.models.SmallCNN` trained with :func:`medlab.train.fit` on ``train``
    (real or synthetic) without validation-based selection (the last epoch is kept, so no real
    image leaks into a train-on-synthetic model), through the model cache. Returns
    (model in eval mode, history dict)."""
    if not isinstance(train, Split):
        raise TypeError(f"train must be a medlab Split, got {type(train).__name__}")
    c = int(train.images.shape[1])
    cfg = dict(epochs=epochs, batch_size=batch_size, lr=lr, augment=augment)

    def run(model: nn.Module) -> dict[str, Any]:
        hist = fit(model, train, None, seed=seed, select_best=False, desc=kind, **cfg)
        return hist.as_dict()

    return cached_model(
        kind,
        lambda: SmallCNN(c, train.n_classes, width=width),
        run,
        data=data,
        train_split=train,
        seed=seed,
        settings={**cfg, "width": width},
        cache=cache,
    )


def detector_auc(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    data: Any,
    seed: int = 0,
    **classifier_kwargs: Any,
) -> float:
    """AUC of a real-versus-synthetic detector: a SmallCNN (:func:`train_classifier`) trained
    on one half of ``real`` (label 0) and ``fake`` (label 1) uint8 images (N, C, H, W), tested
    on the other half (equal numbers of each, seeded split). 0.5 = indistinguishable."""
    from sklearn.metrics import roc_auc_score

    from medlab.train import predict

    n = min(len(real), len(fake))
    if n < 8:
        raise ValueError(
            f"need at least 8 real and 8 synthetic images, got {len(real)} and {len(fake)}"
        )
    g = torch.Generator().manual_seed(check_int("seed", seed, 0))
    real = real[torch.randperm(len(real), generator=g)[:n]]
    fake = fake[torch.randperm(len(fake), generator=g)[:n]]
    h = n // 2
    names = {0: "real", 1: "synthetic"}

    def split(a: torch.Tensor, b: torch.Tensor, name: str) -> Split:
        y = torch.cat([torch.zeros(len(a)), torch.ones(len(b))]).long()
        return Split("real-vs-synthetic", name, torch.cat([a, b]), y, "binary-class", names)

    tr, te = split(real[:h], fake[:h], "train"), split(real[h:], fake[h:], "test")
    classifier_kwargs.setdefault("kind", "smallcnn-detector")
    model, _ = train_classifier(tr, data=data, seed=seed, **classifier_kwargs)
    return float(roc_auc_score(te.labels.numpy(), predict(model, te)[:, 1]))


# --------------------------------------------------------------------------------------------
# the bias lesson: add images to one group of a scenario


def _replace_train(sc: Scenario, train: Split, groups: np.ndarray, **info: Any) -> Scenario:
    return dataclasses.replace(
        sc,
        splits={**sc.splits, "train": train},
        groups={**sc.groups, "train": np.asarray(groups, dtype=np.int64)},
        info={**sc.info, **info},
    )


def hold_out_group(
    scenario: Scenario, *, group: int = 1, share: float = 0.05, seed: int = 0
) -> tuple[Scenario, Split]:
    """Keep ``group`` at ``share`` of the training (and validation) split and set its other
    training images aside: returns (the reduced scenario, the reserve Split of held-out
    ``group`` images): real images that could have been collected, to compare with synthetic
    ones. ``share`` must be below the group's share in ``scenario``."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must come from medlab.scenario, got {type(scenario).__name__}")
    gid = scenario._gid(group)
    rng = np.random.default_rng([check_int("seed", seed, 0), gid])
    out, reserve = scenario, None
    for s in ("train", "val"):
        g = out.groups[s]
        members, others = np.flatnonzero(g == gid), np.flatnonzero(g != gid)
        keep = round(share / (1.0 - share) * len(others)) if 0.0 < share < 1.0 else -1
        if not 0 < keep < len(members):
            raise ValueError(
                f"share={share!r} must leave between 1 and {len(members) - 1} images of group "
                f"{gid} in {s}; build the scenario with a larger share of that group first"
            )
        kept = np.sort(rng.choice(members, keep, replace=False))
        idx = np.sort(np.concatenate([others, kept]))
        if s == "train":
            reserve = out.train.subset(np.setdiff1d(members, kept))
            out = _replace_train(out, out.train.subset(idx), g[idx], share=float(share))
        else:
            out = dataclasses.replace(out, splits={**out.splits, "val": out.val.subset(idx)},
                                      groups={**out.groups, "val": g[idx]})  # fmt: skip
    return out, reserve


def add_to_group(
    scenario: Scenario, images: torch.Tensor, labels: Any, *, group: int = 1, source: str = "real"
) -> Scenario:
    """The scenario with ``images`` (uint8 (N, C, H, W)) of classes ``labels`` (N,) added to
    the training split as members of ``group`` (validation and test unchanged). ``source``
    ("real" / "synthetic" / ...) is noted in ``scenario.info["added"]``."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must come from medlab.scenario, got {type(scenario).__name__}")
    gid = scenario._gid(group)
    extra = synthetic_split(images, labels, like=scenario.train, name="train")
    tr = scenario.train
    train = Split(tr.name, "train", torch.cat([tr.images, extra.images]),
                  torch.cat([tr.labels, extra.labels]), tr.task, dict(tr.label_names))  # fmt: skip
    groups = np.concatenate([scenario.groups["train"], np.full(len(extra), gid)])
    added = {**scenario.info.get("added", {}), source: len(extra)}
    return _replace_train(scenario, train, groups, added=added)


def pairs_figure(
    top: torch.Tensor, bottom: torch.Tensor, *, title: str, rows: tuple[str, str]
) -> Any:
    """Two rows of uint8 images (N, C, H, W) one above the other, column j pairing ``top[j]``
    with ``bottom[j]`` (e.g. synthetic samples and their nearest training images)."""
    import plotly.graph_objects as go

    from medlab import plots

    if top.shape != bottom.shape or top.dtype != torch.uint8 or top.ndim != 4:
        raise ValueError("top and bottom must be uint8 tensors (N, C, H, W) of the same shape")
    n, c, h, w = top.shape
    grid = torch.cat([torch.cat(list(top), -1), torch.cat(list(bottom), -1)], -2)  # (C, 2H, NW)
    img = grid.permute(1, 2, 0).numpy()
    img = np.repeat(img, 3, axis=2) if c == 1 else img
    fig = go.Figure(go.Image(z=img))
    fig.update_yaxes(tickvals=[h / 2, 3 * h / 2], ticktext=list(rows), showgrid=False)
    fig.update_xaxes(tickvals=[w * (j + 0.5) for j in range(n)],
                     ticktext=[str(j + 1) for j in range(n)], showgrid=False)  # fmt: skip
    return plots.finish(fig, title=title, x=f"pair ({w} x {h} px each)", y="image", height=300)


def group_conditions(split: Split, groups: Any) -> Split:
    """The split relabelled with one condition per (group, class): ``group * K + class``
    (K classes), so a conditional generator can be asked for a class *of a group*."""
    g = np.asarray(groups).reshape(-1)
    if len(g) != len(split) or (len(g) and g.min() < 0):
        raise ValueError(f"groups must be (N,) non-negative ids for the {len(split)} images")
    k, n_groups = split.n_classes, int(g.max()) + 1 if len(g) else 1
    y = torch.from_numpy(g.astype(np.int64)) * k + split.labels
    names = {
        gi * k + c: f"group {gi}, {split.label_names[c]}"
        for gi in range(n_groups)
        for c in range(k)
    }
    return Split(split.name, split.split, split.images, y, split.task, names)
