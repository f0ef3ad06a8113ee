"""The bias lesson: hold real images of one group of a scenario back, and add real or synthetic
images to that group."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from medlab.data import Split
from medlab.scenario import Scenario
from medlab.synthetic.conditions import synthetic_split
from medlab.utils import check_int

__all__ = ["hold_out_group", "add_to_group"]


def _replace_train(sc: Scenario, train: Split, groups: np.ndarray, **info: Any) -> Scenario:
    return dataclasses.replace(
        sc,
        splits={**sc.splits, "train": train},
        groups={**sc.groups, "train": np.asarray(groups, dtype=np.int64)},
        info={**sc.info, **info},
    )


def hold_out_group(
    scenario: Scenario, *, group: int = 1, share: float = 0.05, seed: int = 0
) -> tuple[Scenario, Split]:
    """Keep ``group`` at ``share`` of the training (and validation) split and set its other
    training images aside: returns (the reduced scenario, the reserve Split of held-out
    ``group`` images): real images that could have been collected, to compare with synthetic
    ones. ``share`` must be below the group's share in ``scenario``."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must come from medlab.scenario, got {type(scenario).__name__}")
    gid = scenario._gid(group)
    rng = np.random.default_rng([check_int("seed", seed, 0), gid])
    out, reserve = scenario, None
    for s in ("train", "val"):
        g = out.groups[s]
        members, others = np.flatnonzero(g == gid), np.flatnonzero(g != gid)
        keep = round(share / (1.0 - share) * len(others)) if 0.0 < share < 1.0 else -1
        if not 0 < keep < len(members):
            raise ValueError(
                f"share={share!r} must leave between 1 and {len(members) - 1} images of group "
                f"{gid} in {s}; build the scenario with a larger share of that group first"
            )
        kept = np.sort(rng.choice(members, keep, replace=False))
        idx = np.sort(np.concatenate([others, kept]))
        if s == "train":
            reserve = out.train.subset(np.setdiff1d(members, kept))
            out = _replace_train(out, out.train.subset(idx), g[idx], share=float(share))
        else:
            out = dataclasses.replace(out, splits={**out.splits, "val": out.val.subset(idx)},
                                      groups={**out.groups, "val": g[idx]})  # fmt: skip
    return out, reserve


def add_to_group(
    scenario: Scenario, images: torch.Tensor, labels: Any, *, group: int = 1, source: str = "real"
) -> Scenario:
    """The scenario with ``images`` (uint8 (N, C, H, W)) of classes ``labels`` (N,) added to
    the training split as members of ``group`` (validation and test unchanged). ``source``
    ("real" / "synthetic" / ...) is noted in ``scenario.info["added"]``."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must come from medlab.scenario, got {type(scenario).__name__}")
    gid = scenario._gid(group)
    extra = synthetic_split(images, labels, like=scenario.train, name="train")
    tr = scenario.train
    train = Split(tr.name, "train", torch.cat([tr.images, extra.images]),
                  torch.cat([tr.labels, extra.labels]), tr.task, dict(tr.label_names))  # fmt: skip
    groups = np.concatenate([scenario.groups["train"], np.full(len(extra), gid)])
    added = {**scenario.info.get("added", {}), source: len(extra)}
    return _replace_train(scenario, train, groups, added=added)
