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


@pytest.mark.parametrize("tls", [False, True], ids=["insecure", "tls-and-node-auth"])
def test_flower_loopback_matches_in_process(data_dir, pneumonia, tls):
    import psutil

    from medlab.harness.flower_run import federate

    name = pneumonia.name  # the shared subset, else the official PneumoniaMNIST
    before = {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
    out = federate(
        dataset=name,
        data_dir=data_dir,
        n_sites=2,
        rounds=2,
        local_steps=20,
        seed=0,
        timeout=240,
        tls=tls,  # TLS and registered keys change the transport, not one number
        node_auth=tls,
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


def test_the_superlink_speaks_tls_signed_by_the_runs_own_authority(tmp_path):
    """With tls=True the SuperLink's port completes a TLS handshake only for a client that
    trusts this run's throwaway authority (as the SuperNodes and flwr run are told to), for
    the name 127.0.0.1; a client with the system's authorities refuses the certificate; the
    private key is readable by its owner only."""
    import socket
    import ssl
    import stat
    import time

    from medlab.harness.flower_run import APP_DIR, _Processes

    fl = _Processes(tmp_path, APP_DIR, tls=True)
    try:
        port = fl.start_superlink(time.monotonic() + 60)
        trusting = ssl.create_default_context(cafile=str(fl.certs["ca"]))
        trusting.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default: key usages,
        trusting.set_alpn_protocols(["h2"])  # key identifiers
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            trusting.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            subject = dict(x[0] for x in conn.getpeercert()["subject"])
            assert subject["commonName"] == "127.0.0.1" and conn.version() in ("TLSv1.2", "TLSv1.3")
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
    finally:
        fl.close(False)
    assert stat.S_IMODE(fl.certs["key"].stat().st_mode) == 0o600


def test_an_unregistered_supernode_is_refused(tmp_path):
    """With node authentication on, a SuperNode whose key was never registered cannot join:
    it stops with Flower's exit code 305 ('Failed to activate SuperNode') and the SuperLink
    says no SuperNode has that key."""
    import time

    from medlab.harness.flower_run import APP_DIR, _exe, _free_port, _Processes

    fl = _Processes(tmp_path, APP_DIR, tls=True, node_auth=True)
    try:
        port = fl.start_superlink(time.monotonic() + 60)
        stranger = fl.register_node("stranger", register=False)
        node = fl.start(
            [_exe("flower-supernode"), "--root-certificates", str(fl.certs["ca"])]
            + ["--superlink", f"127.0.0.1:{port}", "--auth-supernode-private-key", str(stranger)]
            + ["--host", "127.0.0.1", "--port", str(_free_port()), "--max-retries", "0"],
            "stranger",
        )
        node.wait(timeout=120)  # only a net: it is refused at its first request
        logs = fl.tails()
    finally:
        fl.close(False)
    assert node.returncode != 0 and "Exit Code: 305" in logs, logs  # its message; status 1
    assert "No SuperNode found with the given public key" in logs


def test_federate_tls_and_node_auth_are_checked():
    from medlab.harness.flower_run import federate

    with pytest.raises(TypeError, match="tls must be True or False"):
        federate(tls="yes")
    with pytest.raises(TypeError, match="node_auth must be True or False"):
        federate(tls=True, node_auth=1)
    with pytest.raises(ValueError, match="needs tls=True"):
        federate(node_auth=True)
