"""Notebook 07's settings: how its generators and classifiers are trained."""

from __future__ import annotations

from typing import Any

from medlab.data import MedMNISTData
from medlab.experiments import Settings

__all__ = ["lesson_config"]


def lesson_config(
    data: MedMNISTData, lesson: Any, *, n_synthetic: int | None = None, guidance: Any = None
) -> Settings:
    """Notebook 07's settings for ``lesson.quick``: ``n_fake`` images generated per generator
    and seed (``n_synthetic``, default 128 quick / 400 full), ``n_held`` real training images
    held out of generator training (``n_fake``, at most a quarter of the training split: the
    scorecard's n), ``mia_draws`` (the membership attack's loss draws per image), the DDPM's classifier-free
    ``guidance`` weight (default 4 quick / 2 full), the training of each generator (``vae``,
    ``ddpm``: optimisation steps, batch, learning rate, size; ``T`` diffusion steps), the ruler and
    TRTR classifiers (``clf``) and the small TSTR / detector classifiers (``clf_small``, epochs
    scaled to ``n_fake``)."""
    quick = bool(lesson.quick)
    n_fake = n_synthetic or (128 if quick else 400)
    vae = dict(
        steps=250 if quick else 2000, batch_size=64, lr=2e-3, width=16 if quick else 32, latent=16
    )
    ddpm = dict(
        steps=200 if quick else 1000,
        batch_size=32 if quick else 64,
        lr=5e-3 if quick else 2e-3,
        width=8 if quick else 16,
        T=25 if quick else 100,
    )
    clf = dict(
        width=8 if quick else 16, epochs=lesson.epochs(len(data.train), minimum=5 if quick else 8)
    )
    return lesson.settings(
        n_fake=n_fake,
        n_held=min(n_fake, round(0.25 * len(data.train))),
        mia_draws=16 if quick else 64,
        guidance=(4.0 if quick else 2.0) if guidance is None else float(guidance),
        vae=vae,
        ddpm=ddpm,
        clf=clf,
        clf_small=dict(width=8, epochs=max(5, (2000 if quick else 12000) // n_fake)),
    )
