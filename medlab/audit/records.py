"""The records of one run, and the citations made from them while an audit is built.

:class:`_Builder` reads the run's results files (checked against the run's manifest), indexes
every record by (notebook, dataset, key), matches the areas' key patterns, and hands out one
:class:`~medlab.audit.citations.Citation` per distinct number (the same sources and operation
give the same citation).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from medlab import results
from medlab.audit.citations import (
    RECORDED,
    UNKNOWN,
    Citation,
    _apply,
    _pointer,
    _pointer_get,
    fmt,
)
from medlab.audit.collect import AuditError, _number, _read_docs
from medlab.audit.framework import Pattern
from medlab.audit.integrity import _check_integrity


class _Builder:
    def __init__(self, run: Path) -> None:
        self.run = run
        self.docs = _read_docs(run)
        self.files = _check_integrity(run)
        try:
            self.table = results.load(run)
        except (OSError, ValueError) as exc:
            raise AuditError(str(exc)) from None
        self.citations: dict[str, Citation] = {}
        self._by_sig: dict[tuple[Any, ...], Citation] = {}
        # (notebook, dataset, key) -> [(file, seed, record)]
        self.records: dict[tuple[str, str, str], list[tuple[str, Any, dict[str, Any]]]] = {}
        for rel, doc in self.docs.items():
            nb = doc.get("notebook") or Path(rel).stem
            seed = (doc.get("provenance") or {}).get("seed")
            for ds, recs in (doc.get("records") or {}).items():
                for key, r in recs.items():
                    self.records.setdefault((nb, ds, key), []).append((rel, seed, r))

    # citations ------------------------------------------------------------------------------
    def cite(
        self,
        op: str,
        sources: list[tuple[str, str]],
        *,
        notebook: str,
        dataset: str,
        key: str,
        seeds: list[Any],
        official: bool | None,
        unit: str = "",
    ) -> Citation:
        sig = (op, tuple(sources))
        if sig in self._by_sig:
            return self._by_sig[sig]
        xs = [float(_pointer_get(self.docs[f], p)) for f, p in sources]
        value = _apply(op, xs)
        origin = RECORDED if all(self.files[f][0] == RECORDED for f, _ in sources) else UNKNOWN
        c = Citation(
            f"C{len(self.citations) + 1}",
            op,
            value,
            fmt(value),
            notebook,
            dataset,
            key,
            [{"file": f, "pointer": p} for f, p in sources],
            seeds,
            official,
            unit,
            origin,
        )
        self.citations[c.id] = c
        self._by_sig[sig] = c
        return c

    def record_sources(self, nb: str, ds: str, key: str) -> list[tuple[str, str]]:
        return [(f, _pointer("records", ds, key, "value")) for f, _, _ in self.records[nb, ds, key]]

    def cite_record(self, nb: str, ds: str, key: str, op: str | None = None) -> Citation:
        recs = self.records[nb, ds, key]
        op = op or ("value" if len(recs) == 1 else "mean")
        return self.cite(
            op,
            self.record_sources(nb, ds, key),
            notebook=nb,
            dataset=ds,
            key=key,
            seeds=[s for _, s, _ in recs],
            official=bool(recs[0][2].get("official")),
            unit=recs[0][2].get("unit") or "",
        )

    def cite_split_size(self, ds: str, split: str = "test") -> Citation | None:
        for f, doc in self.docs.items():
            sizes = (((doc.get("provenance") or {}).get("datasets") or {}).get(ds) or {}).get(
                "split_sizes"
            ) or {}
            if isinstance(sizes.get(split), int):
                return self.cite(
                    "value",
                    [(f, _pointer("provenance", "datasets", ds, "split_sizes", split))],
                    notebook=doc.get("notebook", ""),
                    dataset=ds,
                    key=f"provenance: {split} split size",
                    seeds=[(doc.get("provenance") or {}).get("seed")],
                    official=bool(doc["provenance"]["datasets"][ds].get("official")),
                )
        return None

    # matching ---------------------------------------------------------------------------------
    def match(self, patterns: tuple[Pattern, ...]) -> list[tuple[str, str, str]]:
        """(notebook, dataset, key) of the records matching the patterns, in pattern order,
        without the ``_sd`` companions of other records."""
        out: list[tuple[str, str, str]] = []
        have = set(self.records)
        for number, glob in patterns:
            hits = sorted(
                (nb, ds, key)
                for nb, ds, key in have
                if _number(nb) == number and fnmatch.fnmatchcase(key, glob)
            )
            for h in hits:
                if h not in out and not self.is_sd_companion(*h):
                    out.append(h)
        return out

    def sd_key(self, nb: str, ds: str, key: str) -> str | None:
        """The recorded spread of ``key`` (``<metric>_sd`` in any segment, or ``<key>_sd``)."""
        segs = key.split(".")
        candidates = [key + "_sd"] + [
            ".".join(segs[:i] + [segs[i] + "_sd"] + segs[i + 1 :]) for i in range(1, len(segs))
        ]
        return next((k for k in candidates if (nb, ds, k) in self.records), None)

    def is_sd_companion(self, nb: str, ds: str, key: str) -> bool:
        segs = key.split(".")
        for i, s in enumerate(segs):
            if s.endswith("_sd"):
                base = ".".join(segs[:i] + [s[:-3]] + segs[i + 1 :])
                if (nb, ds, base) in self.records:
                    return True
        return False
