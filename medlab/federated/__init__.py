"""Federated learning across simulated hospitals: harmonisation, FedAvg, FedProx, secure aggregation.

One idea per module: :mod:`~medlab.federated.sites` (hospitals as the groups of a scenario),
:mod:`~medlab.federated.harmonise`, :mod:`~medlab.federated.algorithms` (a client's steps,
FedAvg's average and round, FedProx's proximal term: the taught ones written in notebook 05),
:mod:`~medlab.federated.runner` (the lesson's runs), :mod:`~medlab.federated.secagg` (pairwise
masking, written in notebook 05) and :mod:`~medlab.federated.ckks` (homomorphic encryption and
the cost of each way to aggregate). The rest (data, training loop, scenarios, grids) comes from
the medlab core.
"""

from __future__ import annotations

from medlab.federated.algorithms import (
    FedConfig,
    accuracy,
    check_states,
    client_update,
    fedavg,
    fedavg_round,
    init_model,
    prox_loss,
    round_lr,
    site_round,
    site_seed,
)
from medlab.federated.ckks import (
    CKKS_DEGREE,
    aggregation_costs,
    ckks_contexts,
    ckks_decrypt,
    ckks_encrypt,
    ckks_sum,
)
from medlab.federated.harmonise import HARMONISE_METHODS, harmonise, harmonise_sites
from medlab.federated.runner import experiment, run_federated
from medlab.federated.secagg import (
    FIXED_BITS,
    check_masked,
    check_survivors,
    check_update,
    flatten_state,
    mask_update,
    min_survivors_default,
    secure_fedavg,
    unflatten_state,
    unmask_sum,
)
from medlab.federated.sites import (
    PARTITIONS,
    SCANNERS,
    ScannerProfile,
    dirichlet_groups,
    make_sites,
    site_table,
    skewed_sites,
)

__all__ = [
    "harmonise",
    "ScannerProfile",
    "SCANNERS",
    "dirichlet_groups",
    "make_sites",
    "skewed_sites",
    "FedConfig",
    "init_model",
    "prox_loss",
    "client_update",
    "fedavg",
    "site_round",
    "fedavg_round",
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
    "check_states",
    "check_update",
    "check_masked",
    "check_survivors",
    "min_survivors_default",
    "FIXED_BITS",
    "CKKS_DEGREE",
    "HARMONISE_METHODS",
    "PARTITIONS",
]
