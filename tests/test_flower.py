"""Flower's deployment engine on loopback: one SuperLink, two SuperNodes on 127.0.0.1, two
rounds of notebook 05's FedAvg on the shared real data (the balanced pneumonia subset, where two
rounds of 20 local steps lift the model to about 0.84, well above the 0.5 majority share, so
equal accuracies mean equal models, not two models answering one class), against the in-process
run.

Tolerance: both runs use the same seeds, the same initial model, the same client function
(``federated.client_update``, which seeds its own batches and dropout) and the same sites, so
they differ only in how FedAvg's weighted sum is rounded (Flower multiplies float32 arrays by
the weight shares; ``federated.fedavg`` sums in float64). That is ~1e-7 relative per round; we
allow 1e-3 on the parameters and 2 test images' worth of accuracy (a prediction within rounding
of the decision boundary may flip).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from medlab import federated as fed

pytest.importorskip("flwr")


def test_flower_loopback_matches_in_process(data_dir, pneumonia):
    import psutil

    from medlab.harness.flower_run import federate

    name = pneumonia.name  # the shared subset, else the official PneumoniaMNIST
    before = {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
    out = federate(
        dataset=name, data_dir=data_dir, n_sites=2, rounds=2, local_steps=20, seed=0, timeout=240
    )
    left = {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)} - before
    assert not left, f"Flower processes left running: {left}"
    sites = fed.make_sites(pneumonia, "iid", n_sites=2, seed=0)
    ours = fed.run_federated(
        sites, "fedavg", config=fed.FedConfig(rounds=2, local_steps=20), seed=0
    )
    assert [r for r, _ in out["curve"]] == [1, 2]
    assert ours["acc"] > 0.6, f"in-process FedAvg learned too little to compare: {ours['acc']}"
    assert abs(out["acc"] - ours["acc"]) <= 2 / len(sites.test) + 1e-9, (out["acc"], ours["acc"])
    state = ours["model"].state_dict()
    for k, first in out["state"].items():
        ref = state[k].reshape(-1)[: len(first)].double().numpy()
        assert np.abs(np.asarray(first) - ref).max() < 1e-3, k
    print(f"Flower {out['acc']:.4f} vs in-process {ours['acc']:.4f}; wall {out['wall_s']:.1f} s")


def test_federate_bad_inputs(tmp_path):
    from medlab.harness.flower_run import federate

    with pytest.raises(ValueError, match="n_sites"):
        federate(n_sites=1)
    with pytest.raises(FileNotFoundError, match="flower_app"):
        federate(app_dir=tmp_path)
