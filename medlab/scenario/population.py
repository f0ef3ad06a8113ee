"""A :class:`Scenario`: a dataset whose images belong to K named groups, per split, and the
disease scores of a model on one of its splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from medlab.data import Split
from medlab.scenario.shift import PresentationShift
from medlab.train import predict
from medlab.utils import check_int

__all__ = ["Scenario", "disease_scores"]


@dataclass
class Scenario:
    """A dataset whose images belong to K named groups, per split.

    Attributes:
        name: the dataset's name; splits: ``{"train"|"val"|"test": Split}`` with each group's
            shift already applied; groups: ``{split: int array (N_split,)}`` of group ids;
        group_names: ``{id: name}`` in display order; positive: the disease class (binary
            tasks) or None; seed: what the assignment and shifts were seeded with; info: the
            settings (preset, shares, shift) for the record; provenance: the source dataset's.
    """

    name: str
    splits: dict[str, Split]
    groups: dict[str, np.ndarray]
    group_names: dict[int, str]
    positive: int | None = None
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)
    pattern: torch.Tensor | None = field(default=None, repr=False)

    def __getitem__(self, split: str) -> Split:
        if split not in self.splits:
            raise KeyError(f"unknown split {split!r}; choose one of {list(self.splits)}")
        return self.splits[split]

    @property
    def train(self) -> Split:
        return self.splits["train"]

    @property
    def val(self) -> Split:
        return self.splits["val"]

    @property
    def test(self) -> Split:
        return self.splits["test"]

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def minority_share(self) -> float:
        """HCM preset: the minority's share of the training set."""
        return float(self.info["share"])

    @property
    def shift(self) -> PresentationShift:
        """HCM preset: the minority's presentation shift."""
        return PresentationShift(**self.info["shift"])

    def y(self, split: str = "test") -> np.ndarray:
        """0/1 disease indicator (N,) of a split (1 = the ``positive`` class)."""
        if self.positive is None:
            raise ValueError(f"scenario {self.name!r} has no disease class (positive=None)")
        return (self[split].labels.numpy() == self.positive).astype(np.int64)

    @property
    def test_y(self) -> np.ndarray:
        return self.y("test")

    def group(self, split: str, group: int | str) -> Split:
        """The images of one group in one split (e.g. one hospital's training data)."""
        gid = self._gid(group)
        return self[split].subset(np.flatnonzero(self.groups[split] == gid))

    def _gid(self, group: int | str) -> int:
        if isinstance(group, str):
            ids = [k for k, v in self.group_names.items() if v == group]
            if not ids:
                raise KeyError(
                    f"no group named {group!r}; groups: {list(self.group_names.values())}"
                )
            return ids[0]
        gid = check_int("group", group)
        if gid not in self.group_names:
            raise KeyError(f"no group {gid}; groups: {self.group_names}")
        return gid

    def shares(self, split: str = "train") -> dict[str, float]:
        """Each group's share of a split."""
        g = self.groups[split]
        return {n: float(np.mean(g == k)) if len(g) else 0.0 for k, n in self.group_names.items()}

    def counts(self) -> Any:
        """Images per split, group and class, as a pandas DataFrame."""
        import pandas as pd

        rows = []
        for s, split in self.splits.items():
            labels = split.labels.numpy()
            for k, gname in self.group_names.items():
                m = self.groups[s] == k
                row: dict[str, Any] = {"split": s, "group": gname, "images": int(m.sum())}
                if self.positive is not None:
                    row["diseased"] = int((labels[m] == self.positive).sum())
                    row["healthy"] = int(m.sum() - row["diseased"])
                elif not split.multilabel:
                    for c, cname in split.label_names.items():
                        row[cname] = int((labels[m] == c).sum())
                row["share of split"] = float(m.mean()) if len(m) else 0.0
                rows.append(row)
        return pd.DataFrame(rows)


def disease_scores(
    model: torch.nn.Module,
    scenario: Scenario | Split,
    split: str = "test",
    *,
    positive: int | None = None,
) -> np.ndarray:
    """Predicted probability of disease, float64 (N,), for a scenario split (or a Split)."""
    if isinstance(scenario, Scenario):
        positive = scenario.positive if positive is None else positive
        scenario = scenario[split]
    return predict(model, scenario)[:, 1 if positive is None else positive].astype(np.float64)
