"""medlab.federated: harmonisation, FedAvg/FedProx, secure aggregation, checked on real images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlab.federated import harmonise


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the value distributions of two uint8 arrays."""
    ca = np.cumsum(np.bincount(a.ravel(), minlength=256)) / a.size
    cb = np.cumsum(np.bincount(b.ravel(), minlength=256)) / b.size
    return float(np.abs(ca - cb).max())


def test_harmonise_histogram_matches_reference_and_keeps_order(breast):
    x, ref = breast.train.images[:40], breast.train.images[100:300]
    scanner = (x.float() * 0.5 + 90).round().to(torch.uint8)  # a low-contrast, bright scanner
    out = harmonise(scanner, ref)
    assert out.dtype == torch.uint8 and out.shape == scanner.shape
    r = ref.numpy()
    before = np.mean([_ks(s, r) for s in scanner.numpy()])
    after = np.mean([_ks(s, r) for s in out.numpy()])
    assert after < 0.5 * before, (before, after)
    # a monotone map of each image: pixel order is kept (ties may merge, never swap)
    for s, o in zip(scanner.numpy().reshape(40, -1), out.numpy().reshape(40, -1), strict=True):
        idx = np.argsort(s, kind="stable")
        assert (np.diff(o[idx].astype(int)) >= 0).all()


@pytest.mark.parametrize("which", ["breast", "pneumonia"])
def test_harmonise_is_skimages_match_histograms_image_by_image(which, request):
    """medlab matches all images at once; skimage, the library, one image at a time: the same
    numbers, on real images, dark and bright ones (grey levels the reference lacks)."""
    from skimage.exposure import match_histograms

    data = request.getfixturevalue(which)
    x, ref = data.train.images[:60], data.train.images[200:260]
    x = torch.cat([x, (x.float() * 0.4 + 150).round().to(torch.uint8), x // 8])
    pooled = ref[:, 0].numpy().reshape(-1, ref.shape[-1])
    expect = np.stack([match_histograms(i, pooled) for i in x[:, 0].numpy()])
    expect = np.clip(np.rint(expect), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(harmonise(x, ref)[:, 0].numpy(), expect)


def test_harmonise_matches_skimage_channel_by_channel_and_refuses_bad_arrays(breast):
    """Three channels (a colour image made of three grey ones) are matched one by one, each
    image's channel to the pooled reference's (skimage's ``channel_axis`` would do the same, but
    truncates its float result to uint8 where harmonise rounds); match_pooled names the fix for
    what it cannot take."""
    from skimage.exposure import match_histograms

    from medlab.federated.harmonise import match_pooled

    g = breast.train.images
    x = torch.cat([g[:20], g[20:40] // 2, 255 - g[40:60]], dim=1)  # (20, 3, 28, 28)
    ref = torch.cat([g[100:140], g[140:180], g[180:220]], dim=1)
    expect = np.empty(x.shape)
    for c in range(3):
        pooled = ref[:, c].numpy().reshape(-1, 28)
        expect[:, c] = [match_histograms(i, pooled) for i in x[:, c].numpy()]
    expect = np.clip(np.rint(expect), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(harmonise(x, ref).numpy(), expect)
    assert match_pooled(np.zeros((0, 28, 28), np.uint8), g[:3, 0].numpy()).shape == (0, 28, 28)
    with pytest.raises(TypeError, match="uint8"):
        match_pooled(g[:3, 0].numpy().astype(np.int64), g[:3, 0].numpy())
    with pytest.raises(ValueError, match="no pixels"):
        match_pooled(g[:3, 0].numpy(), np.zeros((0, 28, 28), np.uint8))


def test_harmonise_zscore_gives_reference_moments(pneumonia):
    x, ref = pneumonia.train.images[:30], pneumonia.train.images[30:230]
    dark = (x.float() * 0.6).round().to(torch.uint8)
    out = harmonise(dark, ref, method="zscore").float()
    mu, sigma = ref.float().mean(), ref.float().std(unbiased=False)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), mu.expand(30), atol=3.0)
    assert torch.allclose(out.std(dim=(1, 2, 3), unbiased=False), sigma.expand(30), atol=4.0)


def test_harmonise_bad_inputs(breast):
    x = breast.train.images[:4]
    with pytest.raises(TypeError, match="uint8"):
        harmonise(x.float(), x)
    with pytest.raises(ValueError, match="channels"):
        harmonise(x, x.repeat(1, 3, 1, 1))
    with pytest.raises(ValueError, match="method"):
        harmonise(x, x, method="clahe")
    with pytest.raises(ValueError, match="N, C, H, W"):
        harmonise(x[0], x)


# ---------------------------------------------------------------------------------------------
# sites, FedAvg (cross-checked with Flower), FedProx, secure aggregation

from medlab import federated as fed  # noqa: E402
from medlab.federated import FedConfig, make_sites  # noqa: E402


def _client_states(data, n: int = 3, steps: int = 2):
    sites = make_sites(data, "iid", n_sites=n, seed=0)
    model = fed.init_model(2, width=4, seed=0)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    states, sizes = [], []
    for k in range(n):
        model.load_state_dict(init)
        s, m, _ = fed.client_update(model, sites.group("train", k), steps=steps, seed=k)
        states.append(s)
        sizes.append(m)
    return states, sizes


def test_sites_partitions(breast):
    iid = make_sites(breast, "iid", n_sites=4, seed=0)
    assert iid.n_groups == 4 and np.bincount(iid.groups["train"]).min() >= 130
    skew = make_sites(breast, "dirichlet", n_sites=4, alpha=0.1, seed=0)
    y = skew.train.labels.numpy()
    mix = [y[skew.groups["train"] == k].mean() for k in range(4)]
    assert max(mix) - min(mix) > 0.3  # label skew: the sites' class mixes differ a lot
    qty = make_sites(breast, "quantity", n_sites=4, seed=0)
    sizes = np.bincount(qty.groups["train"])
    assert sizes[0] > 0.8 * len(y) and sizes[1:].min() >= 10
    scan = make_sites(breast, "scanner", n_sites=3, seed=0)
    a, b = scan.group("test", 0).images.float(), scan.group("test", 1).images.float()
    assert b.mean() < a.mean() - 20  # site 1's scanner is darker
    with pytest.raises(ValueError, match="partition"):
        make_sites(breast, "label")
    with pytest.raises(ValueError, match="alpha"):
        make_sites(breast, "dirichlet", alpha=0)


def test_fedavg_equals_flower_aggregation(breast):
    """One FedAvg round of real client updates equals Flower 1.41's FedAvg aggregation."""
    flwr = pytest.importorskip("flwr")
    from flwr.app import ArrayRecord, MetricRecord, RecordDict
    from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

    states, sizes = _client_states(breast)
    ours = fed.fedavg(states, sizes)
    replies = [
        RecordDict({"arrays": ArrayRecord(s), "metrics": MetricRecord({"num-examples": n})})
        for s, n in zip(states, sizes, strict=True)
    ]
    theirs = aggregate_arrayrecords(replies, "num-examples").to_torch_state_dict()
    assert flwr.__version__.startswith("1.41")
    assert list(theirs) == list(ours)
    for k in ours:
        assert torch.allclose(ours[k], theirs[k].to(ours[k].dtype), atol=1e-6), k
    # and the average is not trivially one of the clients
    assert not torch.allclose(ours["head.weight"], states[0]["head.weight"])


def test_fedprox_term_pulls_towards_global(pneumonia):
    sites = make_sites(pneumonia, "dirichlet", n_sites=3, alpha=0.1, seed=0)
    split = sites.group("train", 0)
    drift = {}
    for mu in (0.0, 1.0):
        model = fed.init_model(2, width=4, seed=0)
        g = fed.flatten_state(model.state_dict())
        s, _, _ = fed.client_update(model, split, steps=15, seed=0, mu=mu)
        drift[mu] = np.linalg.norm(fed.flatten_state(s) - g)
    assert drift[1.0] < 0.9 * drift[0.0], drift


def test_pairwise_masking_recovers_the_average_and_dropout(breast):
    states, sizes = _client_states(breast, n=4)
    plain = fed.flatten_state(fed.fedavg(states, sizes))
    vec = fed.flatten_state(states[0])
    sent = fed.mask_update(sizes[0] * vec, 0, 4, seed=7)
    q = np.rint(sizes[0] * vec * 2**fed.FIXED_BITS).astype(np.int64).view(np.uint64)
    assert np.mean(sent == q) < 0.01  # the server never sees the update itself
    masked = fed.flatten_state(fed.secure_fedavg(states, sizes, seed=7))
    assert np.abs(masked - plain).max() < 1e-5
    survivors = fed.flatten_state(fed.fedavg(states[:1] + states[2:], sizes[:1] + sizes[2:]))
    rec = fed.flatten_state(fed.secure_fedavg(states, sizes, seed=7, dropped=[1]))
    assert np.abs(rec - survivors).max() < 1e-5
    broken = fed.flatten_state(fed.secure_fedavg(states, sizes, seed=7, dropped=[1], recover=False))
    assert np.abs(broken - survivors).max() > 1e3  # the dropped client's masks do not cancel
    with pytest.raises(ValueError, match="dropped"):
        fed.secure_fedavg(states, sizes, dropped=[0, 1, 2, 3])


def test_the_server_unmasks_no_sum_of_fewer_than_a_majority(breast):
    """Bonawitz et al.'s threshold: with n - 1 clients "dropped", the toy without it handed one
    client's update to the server exactly. Now 2 of 4 survivors (no majority) is refused, by
    secure_fedavg and by the server's unmask_sum alike, and 3 of 4 still aggregate."""
    states, sizes = _client_states(breast, n=4)
    assert [fed.min_survivors_default(n) for n in (2, 3, 4, 5, 10)] == [2, 2, 3, 3, 6]
    with pytest.raises(ValueError, match="only 1 of 4 clients survived"):
        fed.secure_fedavg(states, sizes, seed=7, dropped=[1, 2, 3])
    with pytest.raises(ValueError, match="only 2 of 4 clients survived"):
        fed.secure_fedavg(states, sizes, seed=7, dropped=[2, 3])
    sent = {k: fed.mask_update(fed.flatten_state(states[k]), k, 4, seed=7) for k in (0, 1)}
    with pytest.raises(ValueError, match="below the threshold of 3"):
        fed.unmask_sum(sent, 4, seed=7)
    three = fed.flatten_state(fed.secure_fedavg(states, sizes, seed=7, dropped=[3]))
    assert np.abs(three - fed.flatten_state(fed.fedavg(states[:3], sizes[:3]))).max() < 1e-5


def test_ckks_sum_matches_plain_sum_and_aggregator_cannot_decrypt(breast):
    pytest.importorskip("tenseal")
    import tenseal as ts

    states, sizes = _client_states(breast, n=3, steps=1)
    secret, public = fed.ckks_contexts()
    pub = ts.context_from(public)
    assert pub.is_public() and not pub.has_galois_keys()
    vecs = [n * fed.flatten_state(s) for s, n in zip(states, sizes, strict=True)]
    summed = fed.ckks_sum(public, [fed.ckks_encrypt(public, v) for v in vecs])
    got = fed.ckks_decrypt(secret, summed, len(vecs[0]))
    assert np.abs(got - np.sum(vecs, axis=0)).max() < 1e-3
    with pytest.raises(ValueError):
        ts.ckks_vector_from(pub, summed[0]).decrypt()
    table, errors = fed.aggregation_costs(states, sizes)
    assert list(table["method"]).__len__() == 3 and errors["mask"] < 1e-5 and errors["ckks"] < 1e-5
    assert table["bytes per client"].iloc[2] > 10 * table["bytes per client"].iloc[0]


def test_run_federated_learns_and_bad_inputs(pneumonia):
    sites = make_sites(pneumonia, "iid", n_sites=2, seed=0)
    cfg = FedConfig(rounds=3, local_steps=5, width=4)
    out = fed.run_federated(sites, "fedavg", config=cfg, seed=0)
    assert len(out["curve"]) == 3 and out["acc"] > 0.6 and len(out["site_acc"]) == 2
    # evaluated every 2nd round and after the last; the same training, so the same final model
    row = fed.experiment(
        pneumonia, partition="iid", method="fedavg", seed=0, config=cfg, n_sites=2, eval_every=2
    )
    assert row["rounds"] == [2, 3] and row["acc"] == out["acc"] and len(row["curve"]) == 2
    with pytest.raises(ValueError, match="eval_every"):
        fed.run_federated(sites, "fedavg", config=cfg, eval_every=0)
    with pytest.raises(ValueError, match="method"):
        fed.run_federated(sites, "fedsgd", config=cfg)
    with pytest.raises(ValueError, match="rounds"):
        FedConfig(rounds=0)
    with pytest.raises(ValueError, match="same keys"):
        fed.fedavg([{"a": torch.ones(1)}, {"b": torch.ones(1)}], [1, 1])


def test_round_fn_is_the_round_that_runs(breast):
    """run_federated runs the round it is given (notebook 05 passes its own fedavg_round): a
    wrapper that counts calls gives the same model as the default, one call per round and
    site (local training: one single-site round per site and round)."""
    sites = make_sites(breast, "iid", n_sites=2, seed=0)
    cfg = FedConfig(rounds=2, local_steps=2, width=4)
    calls = []

    def counted(model, state, splits, **kw):
        calls.append((kw["r"], kw["sites"]))
        return fed.fedavg_round(model, state, splits, **kw)

    base = fed.run_federated(sites, "fedavg", config=cfg, seed=0)
    ours = fed.run_federated(sites, "fedavg", config=cfg, seed=0, round_fn=counted)
    assert calls == [(1, None), (2, None)]
    a, b = (fed.flatten_state(o["model"].state_dict()) for o in (base, ours))
    assert np.array_equal(a, b)
    calls.clear()
    fed.run_federated(sites, "local", config=cfg, seed=0, round_fn=counted)
    assert calls == [(1, [0]), (2, [0]), (1, [1]), (2, [1])]
