"""Simulated populations: a dataset whose images belong to K named groups, some shifted.

Hospitals in a federation, a majority and a minority of patients, members and non-members of a
training set, real and synthetic images: all are *groups* of one population. A
:class:`Scenario` holds, for each split (train/val/test), the images (with each group's shift
applied), the labels and one group id per image, plus the group names.

* :func:`assign_groups` - stratified by class, K groups at given shares (seeded).
* :func:`make_scenario` - groups at given shares in train/val and in test, each group's images
  passed through its shift (any callable ``(images uint8, labels, *, seed) -> images``).
* :func:`from_groups` - a scenario from group ids you computed yourself (e.g. a Dirichlet label
  skew over hospital sites).
* :func:`hcm` - the preset of the bias lesson: the hypertrophic-cardiomyopathy sex-imbalance
  scenario. The minority (group B; women in the HCM story) presents its disease differently
  (:class:`PresentationShift`: smaller anatomy, subtler disease signal); the test set is
  balanced by group. The per-dataset default shift strength lives here.

MedMNIST has no sex, site or age metadata: every group here is *simulated*, openly and with
seeds, and results on it are about the mechanism, not about the people in the dataset.

>>> sc = hcm(data, share=0.05, seed=0)                 # doctest: +SKIP
>>> sc.counts()                                        # images per split, group and class

One idea per module: :mod:`~medlab.scenario.shift` (the simulated presentation shift),
:mod:`~medlab.scenario.population` (:class:`Scenario`), :mod:`~medlab.scenario.groups` (making
groups) and :mod:`~medlab.scenario.preset` (the HCM preset).
"""

from __future__ import annotations

from medlab.scenario.groups import assign_groups, from_groups, make_scenario
from medlab.scenario.population import Scenario, disease_scores
from medlab.scenario.preset import DEFAULT_STRENGTH, GROUP_NAMES, default_strength, hcm
from medlab.scenario.shift import (
    PresentationShift,
    apply_shift,
    disease_class,
    disease_pattern,
    subtler_disease,
)
from medlab.scenario.shift import ShiftFn as ShiftFn

__all__ = [
    "GROUP_NAMES",
    "DEFAULT_STRENGTH",
    "PresentationShift",
    "disease_pattern",
    "apply_shift",
    "subtler_disease",
    "disease_class",
    "disease_scores",
    "Scenario",
    "assign_groups",
    "make_scenario",
    "from_groups",
    "hcm",
    "default_strength",
]
