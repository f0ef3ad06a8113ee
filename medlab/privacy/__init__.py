"""Privacy: membership-inference attacks and the DP-SGD defence (notebook 06).

One idea per module:

* :mod:`~medlab.privacy.membership` - the attacks: :func:`attack_metrics` (ROC, AUC, TPR at a
  low FPR), the loss threshold (Yeom et al. 2018) and offline LiRA (Carlini et al. 2022), whose
  scores are written in notebook 06, and ART's black-box attack as the cross-check;
* :mod:`~medlab.privacy.accounting` - delta, the DP parameter checks, epsilon from Opacus's
  accountant (PRV, RDP fallback);
* :mod:`~medlab.privacy.dpsgd` - :func:`train_dp`, DP-SGD with Opacus through medlab's open
  loop, whose step (:func:`dp_sgd_step`) is written in notebook 06;
* :mod:`~medlab.privacy.shadows` - the target and the attacker's shadow models;
* :mod:`~medlab.privacy.lesson` - the lesson's settings, population and one grid row;
* :mod:`~medlab.privacy.probe` - DP that learns: a DP linear probe on a frozen encoder
  pretrained on a public dataset;
* :mod:`~medlab.privacy.figures` and :mod:`~medlab.privacy.explorer` - figures and sliders.

Higher score = more likely a member, everywhere in this package.
"""

from __future__ import annotations

from medlab.privacy import dpsgd as _dpsgd
from medlab.privacy.accounting import _QUIET as _QUIET  # the benchmark silences the same
from medlab.privacy.accounting import (
    ACCOUNTANTS,
    DELTA,
    attack_auc_bound,
    check_dp_params,
    check_private,
    default_delta,
    epsilon_for,
    noise_for,
)
from medlab.privacy.accounting import _quiet as _quiet
from medlab.privacy.dpsgd import *  # noqa: F403 (exactly dpsgd.__all__, listed below)
from medlab.privacy.dpsgd import _GhostLoss as _GhostLoss  # the benchmark's ghost clipping
from medlab.privacy.explorer import explorer
from medlab.privacy.figures import roc_figure, tradeoff_figure, utility_figure
from medlab.privacy.lesson import (
    EPSILONS,
    HCM_SHARE,
    Population,
    attacks,
    hcm_gap,
    lesson_config,
    member_mask,
    population,
    run_point,
    setting_name,
    who_pays,
)
from medlab.privacy.membership import (
    FPR_LEVELS,
    MIN_FALSE_POSITIVES,
    art_blackbox,
    attack_metrics,
    chance_tpr,
    describe_tpr,
    lira_offline,
    lira_scores,
    loss_scores,
    loss_threshold_scores,
    per_example_loss,
    resolvable_fprs,
    true_class_logit,
)
from medlab.privacy.probe import (
    PUBLIC_FOR,
    PublicEncoder,
    probe_point,
    public_encoder,
    train_probe,
)
from medlab.privacy.shadows import shadow_splits, train_shadows, train_target

__all__ = [
    "FPR_LEVELS",
    "MIN_FALSE_POSITIVES",
    "attack_metrics",
    "resolvable_fprs",
    "chance_tpr",
    "describe_tpr",
    "loss_scores",
    "loss_threshold_scores",
    "per_example_loss",
    "true_class_logit",
    "lira_offline",
    "lira_scores",
    "shadow_splits",
    "DELTA",
    "default_delta",
    "check_dp_params",
    "check_private",
    "epsilon_for",
    "noise_for",
    "attack_auc_bound",
    "ACCOUNTANTS",
    *_dpsgd.__all__,
    "art_blackbox",
    "EPSILONS",
    "HCM_SHARE",
    "setting_name",
    "lesson_config",
    "Population",
    "population",
    "member_mask",
    "train_target",
    "train_shadows",
    "attacks",
    "run_point",
    "hcm_gap",
    "who_pays",
    "roc_figure",
    "tradeoff_figure",
    "utility_figure",
    "explorer",
    "PUBLIC_FOR",
    "public_encoder",
    "PublicEncoder",
    "train_probe",
    "probe_point",
]
