"""Synthetic data (notebook 07): two class-conditional generators and a scorecard for them.

The lesson: a generator trained on real medical images can be measured, not admired. Two
families, both written here in plain PyTorch and trained through the curriculum's open loop
(:func:`medlab.train.batches` + :func:`medlab.train.make_optimizer` +
:func:`medlab.train.train_steps`, with the generator's own per-image loss as ``loss_fn``) and
checkpointed through the model cache (:func:`medlab.experiments.cached_model`):

* :class:`ConditionalVAE` - encoder q(z|x, y), decoder p(x|z, y), loss = negative ELBO;
* :class:`DDPM` - a denoising diffusion model: a noise schedule (:func:`noise_schedule`), a
  compact U-Net (:class:`TinyUNet`) that predicts the noise, the ancestral sampling loop with
  classifier-free guidance (:func:`reverse_diffusion`, :func:`guided_eps`: written in notebook
  07, copied into :mod:`medlab.synthetic.ddpm`).

The scorecard, each metric defined once here (the notebook writes out the formulas):

* real images - :func:`hold_out_real` keeps part of the training split out of generator
  training (:class:`HeldOut`): the same source for the membership attack, DCR and the
  real-vs-real floor;
* fidelity - :func:`frechet_distance` and :func:`prdc_scores` (precision, recall, density,
  coverage; ``prdc`` 0.2), both at one equal sample size with FD's bootstrap spread in
  :func:`fidelity_scores`, in the feature space of a classifier trained on the real data
  (:class:`FeatureExtractor`; Inception weights cannot be downloaded here, and a domain
  feature space fits better);
* diversity - :func:`class_diversity` (Shannon index and Gini coefficient of the predicted class
  distribution, from :mod:`medlab.fairness`) and :func:`within_class_variety`;
* privacy - :func:`dcr` (distance to the closest training record) and
  :func:`attack_scores` (a loss-based membership-inference score against the generator);
* utility - :func:`train_classifier` for train-on-synthetic / train-on-real (TSTR / TRTR);
* misuse - :func:`detector_auc`, a real-versus-synthetic detector.

For the bias lesson, :func:`hold_out_group` and :func:`add_to_group` add synthetic or real
images to one group of a :class:`~medlab.scenario.Scenario`. :func:`lesson_config`: notebook
07's settings.

Modules: ``conditions`` (requested classes, samples as a Split), ``holdout``, ``vae``, ``ddpm``,
``generators`` (training and sampling), ``features`` (the ruler), ``scorecard`` (fidelity and
diversity), ``privacy``, ``utility`` (TSTR, detector), ``groups`` (the bias lesson),
``figures``, ``lesson``.

>>> vae, info = train_generator("vae", data.train, data=data, seed=0, steps=600)  # doctest: +SKIP
>>> fake = generate(vae, requested_labels(data.train, 500), seed=0)             # doctest: +SKIP
"""

from medlab.synthetic.conditions import group_conditions, requested_labels, synthetic_split
from medlab.synthetic.ddpm import DDPM, TinyUNet, guided_eps, noise_schedule, reverse_diffusion
from medlab.synthetic.features import FeatureExtractor
from medlab.synthetic.figures import pairs_figure
from medlab.synthetic.generators import (
    GENERATORS,
    fit_generator,
    generate,
    make_generator,
    train_generator,
)
from medlab.synthetic.groups import add_to_group, hold_out_group
from medlab.synthetic.holdout import HeldOut, hold_out_real
from medlab.synthetic.lesson import lesson_config
from medlab.synthetic.privacy import attack_scores, dcr
from medlab.synthetic.scorecard import (
    class_diversity,
    fidelity_scores,
    frechet_distance,
    prdc_scores,
    within_class_variety,
)
from medlab.synthetic.utility import detector_auc, train_classifier
from medlab.synthetic.vae import ConditionalVAE

__all__ = [
    "GENERATORS",
    "ConditionalVAE",
    "TinyUNet",
    "noise_schedule",
    "DDPM",
    "guided_eps",
    "reverse_diffusion",
    "make_generator",
    "fit_generator",
    "train_generator",
    "generate",
    "requested_labels",
    "synthetic_split",
    "FeatureExtractor",
    "frechet_distance",
    "prdc_scores",
    "fidelity_scores",
    "HeldOut",
    "hold_out_real",
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
    "lesson_config",
]
