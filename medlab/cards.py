"""Data cards: one machine-readable YAML per supported dataset, kept in the repo's ``datasets/``.

The cards document what ``medmnist.INFO`` does not (modality, source, citation, known gaps, the
MedMNIST v2 benchmark number); the fields that INFO does hold are checked against it by the tests.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = [
    "card",
    "cards",
    "check_card",
    "custom_names",
    "paper_benchmark",
    "cards_table",
    "NAME_RE",
]


_SPLITS = ("train", "val", "test")
#: A dataset name medlab accepts (it becomes part of file names, record keys and HTML pages).
NAME_RE = re.compile(r"(?=[a-z0-9_.\-]*[a-z])[a-z0-9][a-z0-9_.\-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_card(c: Any, source: str) -> dict[str, Any]:
    """Check the fields medlab relies on; raise ValueError naming the card file and the fix."""

    def bad(problem: str) -> ValueError:
        return ValueError(f"data card {source}: {problem}. Fix the card (see datasets/*.yaml).")

    if not isinstance(c, dict):
        raise bad(f"holds a {type(c).__name__}, not a mapping of fields")
    for key in ("name", "kind", "task", "labels", "n_channels", "split_sizes"):
        if key not in c:
            raise bad(f"field {key!r} is missing")
    if not isinstance(c["name"], str) or not NAME_RE.fullmatch(c["name"]):
        raise bad(
            f"name is {c['name']!r}; use lowercase letters, digits, '_', '.' and '-' (at most "
            "64 characters, starting with a letter or digit, at least one letter), e.g. "
            "'pneumoniamnist_subset'"
        )
    if c["kind"] not in ("official", "custom"):
        raise bad(f"kind is {c['kind']!r}; use 'official' or 'custom'")
    sizes = c["split_sizes"]
    if (
        not isinstance(sizes, dict)
        or sorted(sizes) != sorted(_SPLITS)
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in sizes.values())
    ):
        raise bad(f"split_sizes is {sizes!r}; give {{train: N, val: N, test: N}} (integers)")
    if c["kind"] == "custom":
        for key in ("file", "like"):
            if not isinstance(c.get(key), str) or not c[key]:
                raise bad(f"a custom card needs {key!r} (a str)")
        if "/" in c["file"] or "\\" in c["file"] or not c["file"].endswith(".npz"):
            raise bad(f"file is {c['file']!r}; give a bare .npz file name, no folder")
        sha = c.get("sha256")
        if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha.lower())):
            raise bad(f"sha256 is {sha!r}; give the 64 hex digits of sha256sum FILE")
    return c


@cache
def cards() -> dict[str, dict[str, Any]]:
    """All data cards, keyed by dataset name (each checked by :func:`check_card`)."""
    out = {}
    for entry in resources.files("medlab.datasets").iterdir():
        if entry.name.endswith(".yaml"):
            c = check_card(yaml.safe_load(entry.read_text(encoding="utf-8")), entry.name)
            out[c["name"]] = c
    return dict(sorted(out.items()))


def card(name: str) -> dict[str, Any]:
    """The card of one dataset (raises KeyError naming the known ones)."""
    if not isinstance(name, str):
        raise TypeError(
            f"card() takes one dataset name (a str), got {type(name).__name__} {name!r}; e.g. "
            "card('breastmnist'), or [card(n) for n in names] for several."
        )
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
        rows.append(
            {
                "dataset": c["name"],
                "kind": c["kind"],
                "modality": c["modality"],
                "task": c["task"],
                "classes": len(c["labels"]),
                "channels": c["n_channels"],
                "train/val/test": f"{s['train']}/{s['val']}/{s['test']}",
                "licence": c["license"],
                "paper AUC (ResNet-18 28)": (c.get("benchmark") or {}).get("auc"),
            }
        )
    return rows
