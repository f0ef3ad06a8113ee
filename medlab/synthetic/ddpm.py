"""Generator 2: a class-conditional denoising diffusion model (DDPM): the noise schedule, a
compact U-Net that predicts the noise, and the model with its training loss. The sampling loop
(reverse diffusion with classifier-free guidance) is written in notebook 07 and copied below."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from medlab.synthetic.conditions import _labels
from medlab.utils import check_int, check_scalar

__all__ = ["TinyUNet", "noise_schedule", "DDPM", "guided_eps", "reverse_diffusion"]


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer steps t (N,) -> (N, dim), as in the Transformer."""
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=t.device)
    freqs = torch.exp(-math.log(10_000.0) * steps / half)
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
        """Noise-prediction error per image (N,): mean over pixels of (eps - eps_hat)^2. The
        draws come from ``generator`` (or torch's global CPU stream) and move to x0's device,
        so a seed gives the same draws on any device."""
        y = _labels(y, self.n_classes).to(x0.device)
        n, dev = len(x0), x0.device
        t = torch.randint(0, self.steps, (n,), generator=generator).to(dev)
        eps = torch.randn(x0.shape, generator=generator).to(dev)
        drop = (
            (torch.rand(n, generator=generator) < self.p_uncond).to(dev) if self.training else None
        )
        if drop is not None:
            y = torch.where(drop, torch.full_like(y, self.n_classes), y)
        return (self.net(self.q_sample(x0, t, eps), t, y) - eps).pow(2).flatten(1).mean(1)

    def eps(self, x: torch.Tensor, t: int, y: torch.Tensor, guidance: float) -> torch.Tensor:
        """Guided noise estimate ``(1 + w) eps(x, t, y) - w eps(x, t, no class)``
        (:func:`guided_eps`)."""
        return guided_eps(self, x, t, y, guidance)

    @torch.no_grad()
    def sample(
        self,
        y: torch.Tensor,
        *,
        guidance: float = 1.0,
        generator: torch.Generator | None = None,
        sampler: Callable[..., torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Ancestral sampling for classes ``y`` (N,), images on [-1, 1].

        x_T ~ N(0, I); for t = T-1 .. 0: estimate the noise, form the clipped clean-image
        estimate ``x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``, then draw x_{t-1} from
        the Gaussian posterior q(x_{t-1} | x_t, x0) (mean ``c0 x0 + ct x_t``, variance
        ``beta_t (1 - abar_{t-1}) / (1 - abar_t)``); no noise is added at the last step.
        ``sampler(model, y, guidance, generator)`` runs that loop: :func:`reverse_diffusion`
        unless given (notebook 07 passes its own, the same code).
        """
        y = _labels(y, self.n_classes)
        guidance = check_scalar("guidance", guidance, kind=float, lo=0,
                                fix="1 = conditional, > 1 = stronger class guidance")  # fmt: skip
        return (sampler or reverse_diffusion)(self, y, guidance, generator)


# fmt: off
# %% exported from notebooks/07_synthetic.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
def guided_eps(
    model: torch.nn.Module, x: torch.Tensor, t: int, y: torch.Tensor, w: float
) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans 2022), the noise estimate at step t:
    (1 + w) eps(x_t, t, y) - w eps(x_t, t, no class), both passes in one batch."""
    tt = torch.full((len(x),), t, dtype=torch.long)
    if w == 0:  # the plain conditional model
        return model.net(x, tt, y)
    none = torch.full_like(y, model.n_classes)  # the "no class" token
    both = model.net(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, none]))
    cond, uncond = both.chunk(2)
    return (1.0 + w) * cond - w * uncond
# %% end of export


# %% exported from notebooks/07_synthetic.ipynb: edit the notebook, then run
# %% `python -m medlab.harness.export`
@torch.no_grad()
def reverse_diffusion(
    model: torch.nn.Module, y: torch.Tensor, w: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Ancestral sampling (Ho et al. 2020) for classes y (N,): from pure noise x_T, T steps
    back to images on [-1, 1]; w: the guidance weight."""
    x = torch.randn(len(y), model.in_channels, 28, 28, generator=generator)  # x_T ~ N(0, I)
    for t in range(model.steps - 1, -1, -1):
        ab, beta, alpha = model.alpha_bar[t], model.beta[t], model.alpha[t]
        ab_prev = model.alpha_bar[t - 1] if t > 0 else torch.tensor(1.0)
        eps = guided_eps(model, x, t, y, w)  # 1. guided noise estimate
        x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1.0, 1.0)  # 2. clean image
        c0 = ab_prev.sqrt() * beta / (1 - ab)  # 3. posterior mean c0 x0 + ct x_t
        ct = alpha.sqrt() * (1 - ab_prev) / (1 - ab)
        x = c0 * x0 + ct * x
        if t > 0:  # 4. posterior noise (none at the last step)
            var = beta * (1 - ab_prev) / (1 - ab)
            x = x + var.sqrt() * torch.randn(x.shape, generator=generator)
    return x.clamp(-1.0, 1.0)
# %% end of export
# fmt: on
