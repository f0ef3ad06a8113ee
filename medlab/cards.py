"""Data cards: one machine-readable YAML per supported dataset, kept in the repo's ``datasets/``.

The cards document what ``medmnist.INFO`` does not (modality, source, citation, known gaps, the
MedMNIST v2 benchmark number); the fields that INFO does hold are checked against it by the tests.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["card", "cards", "custom_names", "paper_benchmark", "cards_table"]


@cache
def cards() -> dict[str, dict[str, Any]]:
    """All data cards, keyed by dataset name."""
    out = {}
    for entry in resources.files("medlab.datasets").iterdir():
        if entry.name.endswith(".yaml"):
            c = yaml.safe_load(entry.read_text(encoding="utf-8"))
            out[c["name"]] = c
    return dict(sorted(out.items()))


def card(name: str) -> dict[str, Any]:
    """The card of one dataset (raises KeyError naming the known ones)."""
    all_cards = cards()
    if name not in all_cards:
        raise KeyError(f"no data card for {name!r}; cards exist for {', '.join(all_cards)}")
    return all_cards[name]


def custom_names() -> list[str]:
    """Registered custom (non-official) datasets."""
    return [n for n, c in cards().items() if c["kind"] == "custom"]


def paper_benchmark(name: str) -> dict[str, Any] | None:
    """MedMNIST v2 paper's ResNet-18 (28) test AUC/ACC for ``name`` (or for the dataset a custom
    one is ``like``), with its source; None when there is none."""
    c = card(name)
    if c["kind"] == "custom":
        c = card(c["like"])
    return c.get("benchmark")


def cards_table() -> list[dict[str, Any]]:
    """One flat row per card, for a table in notebook 00."""
    rows = []
    for c in cards().values():
        s = c["split_sizes"]
        rows.append({
            "dataset": c["name"], "kind": c["kind"], "modality": c["modality"], "task": c["task"],
            "classes": len(c["labels"]), "channels": c["n_channels"],
            "train/val/test": f"{s['train']}/{s['val']}/{s['test']}", "licence": c["license"],
            "paper AUC (ResNet-18 28)": (c.get("benchmark") or {}).get("auc"),
        })
    return rows
