"""Data cards agree with medmnist.INFO and cover every supported dataset."""

from __future__ import annotations

import pytest
from medmnist import INFO

from medlab import cards
from medlab.data import OFFICIAL_2D, SPLITS

REQUIRED = {
    "name",
    "kind",
    "title",
    "modality",
    "source",
    "task",
    "labels",
    "n_channels",
    "split_sizes",
    "license",
    "citation",
    "known_gaps",
}


def test_every_2d_dataset_has_a_card():
    assert set(OFFICIAL_2D) <= set(cards.cards())


@pytest.mark.parametrize("name", OFFICIAL_2D)
def test_card_agrees_with_medmnist_info(name):
    c, info = cards.card(name), INFO[name]
    assert REQUIRED <= set(c), f"{name}: missing {REQUIRED - set(c)}"
    assert c["kind"] == "official"
    assert c["task"] == info["task"]
    assert {int(k): v for k, v in c["labels"].items()} == {
        int(k): v for k, v in info["label"].items()
    }
    assert c["n_channels"] == info["n_channels"]
    assert c["split_sizes"] == {s: info["n_samples"][s] for s in SPLITS}
    assert c["license"] == info["license"]
    assert c["md5_28"] == info["MD5"]
    assert any("MedMNIST v2" in cite for cite in c["citation"])
    assert any("metadata" in g for g in c["known_gaps"]), "cards must state the missing metadata"
    b = c["benchmark"]
    assert 0.5 < b["auc"] <= 1 and 0 < b["acc"] <= 1


def test_custom_cards_point_to_an_official_like():
    for name in cards.custom_names():
        c = cards.card(name)
        assert c["like"] in OFFICIAL_2D and c["file"].endswith(".npz")
        like = INFO[c["like"]]
        assert c["task"] == like["task"] and c["n_channels"] == like["n_channels"]
        assert c["split_sizes"] != {s: like["n_samples"][s] for s in SPLITS}
        assert cards.paper_benchmark(name) == cards.card(c["like"])["benchmark"]


def test_unknown_card():
    with pytest.raises(KeyError, match="cards exist for"):
        cards.card("nope")


@pytest.mark.parametrize(
    "name", ["<img src=x onerror=alert(1)>", "My Subset", "../x", "a`b", "_x", "x" * 65, 3]
)
def test_a_card_name_must_be_a_safe_dataset_name(name):
    c = dict(cards.card("pneumoniamnist_balanced_subset"), name=name)
    with pytest.raises(ValueError, match="lowercase letters, digits"):
        cards.check_card(c, "bad.yaml")


def test_every_card_name_is_a_safe_dataset_name():
    assert all(cards.NAME_RE.fullmatch(n) for n in cards.cards())
    assert cards.check_card(dict(cards.card("breastmnist"), name="my-scan.v2_a"), "ok.yaml")
