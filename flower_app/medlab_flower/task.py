"""What server and clients share: the run settings, the sites and the model."""

from __future__ import annotations

from typing import Any

from medlab import federated as fed
from medlab.data import load


def settings(run_config: Any) -> tuple[fed.FedConfig, int]:
    """The FedConfig and seed of a run, from Flower's run config."""
    cfg = fed.FedConfig(
        rounds=int(run_config["num-server-rounds"]),
        local_steps=int(run_config["local-steps"]),
        batch_size=int(run_config["batch-size"]),
        lr=float(run_config["lr"]),
        width=int(run_config["width"]),
    )
    return cfg, int(run_config["seed"])


def sites(run_config: Any, num_partitions: int) -> Any:
    """The IID sites of notebook 05 for this run's dataset and seed (every process builds the
    same ones: ``make_sites`` is seeded)."""
    data_dir = str(run_config["data-dir"]) or None
    data = load(str(run_config["dataset"]), data_dir=data_dir)
    return fed.make_sites(data, "iid", n_sites=num_partitions, seed=int(run_config["seed"]))
