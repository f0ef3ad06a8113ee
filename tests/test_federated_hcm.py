"""Notebook 05's HCM thread: label-skewed sites over notebook 03's population
(`federated.skewed_sites`), trained by the lesson's runner and scored per group, on real images."""

from __future__ import annotations

import numpy as np
import pytest

from medlab import fairness, federated, scenario


@pytest.fixture(scope="module")
def population(breast):
    return scenario.hcm(breast, 0.05, seed=3)


def test_skewed_sites_split_the_population_itself(population):
    sites = federated.skewed_sites(population, n_sites=4, alpha=0.1, seed=3)
    for s in ("train", "val", "test"):
        assert sites[s] is population[s]  # the same (shifted) images, the same order
        g = sites.groups[s]
        assert g.shape == (len(population[s]),) and set(np.unique(g)) == {0, 1, 2, 3}
    assert np.bincount(sites.groups["train"]).min() >= 12  # min_size
    assert sites.positive == population.positive
    assert sites.info["population"]["share"] == pytest.approx(0.05)
    # val and test: equal stratified parts (each class spread within one image per site)
    for s in ("val", "test"):
        y = population[s].labels.numpy()
        for c in np.unique(y):
            counts = np.bincount(sites.groups[s][y == c], minlength=4)
            assert counts.max() - counts.min() <= 1, (s, c, counts)


def test_skewed_sites_are_label_skewed_and_seeded(population):
    y = population.train.labels.numpy()

    def majority_share(sites):  # mean over sites of the share of the site's commonest class
        g = sites.groups["train"]
        return np.mean([np.bincount(y[g == k]).max() / (g == k).sum() for k in range(4)])

    strong = federated.skewed_sites(population, n_sites=4, alpha=0.1, seed=3)
    mild = federated.skewed_sites(population, n_sites=4, alpha=100.0, seed=3)
    overall = np.bincount(y).max() / len(y)
    assert majority_share(strong) > 0.9 > overall + 0.1
    assert abs(majority_share(mild) - overall) < 0.05
    again = federated.skewed_sites(population, n_sites=4, alpha=0.1, seed=3)
    other = federated.skewed_sites(population, n_sites=4, alpha=0.1, seed=4)
    assert np.array_equal(strong.groups["train"], again.groups["train"])
    assert not np.array_equal(strong.groups["train"], other.groups["train"])


def test_skewed_sites_bad_inputs(population, breast):
    with pytest.raises(TypeError, match="Scenario"):
        federated.skewed_sites(breast)
    with pytest.raises(ValueError, match="n_sites"):
        federated.skewed_sites(population, n_sites=1)
    with pytest.raises(ValueError, match="alpha"):
        federated.skewed_sites(population, alpha=0.0)


def test_hcm_thread_runs_fedavg_and_scores_both_groups(population):
    sites = federated.skewed_sites(population, n_sites=3, alpha=0.1, seed=3)
    cfg = federated.FedConfig(rounds=2, local_steps=2, width=4)
    out = federated.run_federated(sites, "fedavg", config=cfg, seed=3, eval_every=2)
    m = out["model"]
    row = fairness.hcm_metrics(
        population.test_y,
        scenario.disease_scores(m, population),
        population.groups["test"],
        threshold=fairness.decision_threshold(m, population),
    ).row(fairness.SHORT)
    assert 0 <= row["tpr_maj"] <= 1 and 0 <= row["tpr_min"] <= 1
    assert row["tpr_gap"] == pytest.approx(row["tpr_maj"] - row["tpr_min"])
    assert len(out["site_acc"]) == 3 and 0 <= out["acc"] <= 1
