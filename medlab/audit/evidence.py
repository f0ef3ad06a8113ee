"""The evidence an audit shows: a table row per cited record (with its intervals), the data
files of the run, the status of each notebook, and the documentation item of the checklist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medlab import cards
from medlab.audit.citations import RECORDED, UNKNOWN, _pointer
from medlab.audit.collect import _failed_cell, _number
from medlab.audit.framework import Area
from medlab.audit.markup import _c, _data_label, _mark, _metric, _t
from medlab.audit.records import _Builder
from medlab.data import file_md5


def _row(b: _Builder, nb: str, ds: str, key: str, href: str) -> dict[str, Any]:
    """One table row: the cited value and its interval(s)."""
    c = b.cite_record(nb, ds, key)
    intervals = []
    recs = b.records[nb, ds, key]
    if len(recs) >= 2:
        s = b.cite_record(nb, ds, key, op="sd")
        intervals.append(f"± {_mark(s, href)} SD over {len(recs)} seeds")
    elif (sdk := b.sd_key(nb, ds, key)) is not None:
        s = b.cite_record(nb, ds, sdk)
        intervals.append(f"± {_mark(s, href)} SD ({_c(sdk)})")
    if any(r.get("machine") for _, _, r in recs):
        intervals.append("this run's machine: a latency or time depends on the CPU it ran on")
    metric = _metric(key)
    n = _cite_n(b, nb, ds, key) if metric in ("test_acc", "test_auc") else None
    if n is not None and 0 <= c.value <= 1:
        srcs = b.record_sources(nb, ds, key) + [(n.sources[0]["file"], n.sources[0]["pointer"])]
        common = dict(notebook=nb, dataset=ds, key=key, seeds=c.seeds, official=c.official)
        if metric == "test_acc":
            lo, hi = (b.cite(op, srcs, **common) for op in ("wilson_low", "wilson_high"))
            intervals.append(
                f"95 % CI {_mark(lo, href)}–{_mark(hi, href)} (Wilson, n = {_mark(n, href)})"
            )
        else:
            tour = [k for k in b.records if _number(k[0]) == "00" and k[1] == ds]
            nb0 = tour[0][0] if tour else None
            if nb0 and (nb0, ds, "test.majority_share") in b.records:
                srcs = b.record_sources(nb, ds, key)
                srcs += [(n.sources[0]["file"], n.sources[0]["pointer"])]
                srcs += b.record_sources(nb0, ds, "test.majority_share")[:1]
                lo, hi = (b.cite(op, srcs, **common) for op in ("hanley_low", "hanley_high"))
                intervals.append(
                    f"95 % CI {_mark(lo, href)}–{_mark(hi, href)} (Hanley-McNeil, n = {_mark(n, href)})"
                )
            else:
                intervals.append("no sampling interval (class counts need 00_tour's results)")
    return {
        "notebook": nb,
        "dataset": ds,
        "key": key,
        "citation": c,
        "value": _mark(c, href) + (f" {_t(c.unit)}" if c.unit else ""),
        "interval": "; ".join(intervals) or "-",
        "data": _data_label(c),
        "note": recs[0][2].get("note") or "",
    }


def _cite_n(b: _Builder, nb: str, ds: str, key: str) -> Any:
    """The number of test cases behind a record: its own ``n`` where it was measured on part of
    the test split (one site, one group; the smallest over its seeds), else the split's size."""
    recs = [(f, seed, r) for f, seed, r in b.records[nb, ds, key] if isinstance(r.get("n"), int)]
    if not recs:
        return b.cite_split_size(ds)
    f, seed, r = min(recs, key=lambda x: x[2]["n"])
    return b.cite(
        "value",
        [(f, _pointer("records", ds, key, "n"))],
        notebook=nb,
        dataset=ds,
        key=f"{key}: test cases (n)",
        seeds=[seed],
        official=bool(r.get("official")),
    )


def _datasets(b: _Builder) -> list[dict[str, Any]]:
    """The data files the run's results name, with their md5 re-checked and their card."""
    seen: dict[str, dict[str, Any]] = {}
    for rel, doc in b.docs.items():
        for ds, p in ((doc.get("provenance") or {}).get("datasets") or {}).items():
            d = seen.setdefault(
                ds,
                {
                    "dataset": ds,
                    "official": bool(p.get("official")),
                    "kind": p.get("kind"),
                    "file": p.get("file"),
                    "md5": p.get("md5"),
                    "official_md5": p.get("official_md5"),
                    "notebooks": [],
                    "md5s": set(),
                },
            )
            d["notebooks"].append(doc.get("notebook", Path(rel).stem))
            d["md5s"].add(p.get("md5"))
            d["official"] = d["official"] and bool(p.get("official"))
    out = []
    for ds, d in sorted(seen.items()):
        f = Path(d["file"]) if d["file"] else None
        if f is None or not f.is_file():
            d["md5_now"] = "file not found on this machine: not re-checked"
        else:
            now = file_md5(f)
            d["md5_now"] = "matches" if now == d["md5"] else f"DIFFERS (now {now})"
        if len(d["md5s"]) > 1:
            d["md5_now"] += f"; notebooks recorded different md5s: {sorted(d['md5s'], key=str)}"
        try:
            card = cards.card(ds)
        except KeyError:
            card = {}
        d["card"] = card
        d["sizes"] = {s: b.cite_split_size(ds, s) for s in ("train", "val", "test")}
        d["notebooks"] = sorted(set(d["notebooks"]))
        del d["md5s"]
        out.append(d)
    return out


def _notebook_status(b: _Builder, run: Path, name: str, topic: str) -> dict[str, Any]:
    files = sorted(f for f, d in b.docs.items() if d.get("notebook", Path(f).stem) == name)
    executed = sorted(run.glob(f"executed/{name}.ipynb")) + sorted(
        run.glob(f"seed*/executed/{name}.ipynb")
    )
    htmls = sorted(run.glob(f"html/{name}.html")) + sorted(run.glob(f"seed*/html/{name}.html"))
    errors = [e for e in (_failed_cell(x) for x in executed) if e]
    n_rec = sum(len(r) for f in files for r in (b.docs[f].get("records") or {}).values())
    if errors:
        status = f"FAILED ({errors[0]})"
    elif files:
        status = "ran"
    elif executed:
        status = "ran, recorded nothing"
    else:
        status = "not run"
    figures = []
    for f in files:
        for fig in b.docs[f].get("figures") or []:
            p = Path(fig)
            if not p.is_absolute():
                p = run / p
            try:
                figures.append(p.resolve().relative_to(run).as_posix())
            except ValueError:
                figures.append(str(fig))  # outside this run: shown as recorded
    seeds = sorted({(b.docs[f].get("provenance") or {}).get("seed") for f in files}, key=str)
    return {
        "notebook": name,
        "topic": topic,
        "status": status,
        "records": n_rec,
        "seeds": seeds,
        "results": files,
        "executed": [x.relative_to(run).as_posix() for x in executed],
        "html": [x.relative_to(run).as_posix() for x in htmls],
        "figures": sorted(set(figures)),
    }


def _documentation_item(item: Area, datasets: list[dict[str, Any]], b: _Builder) -> dict:
    evidence = []
    for d in datasets:
        size = d["sizes"].get("test")
        evidence.append(
            f"{_t(d['dataset'])}: {'official' if d['official'] else '**unofficial**'} file, md5 "
            f"{_c(d['md5'])} ({_t(d['md5_now'])})"
            + (f", test split {_mark(size, 'audit_report.md')} images" if size else "")
        )
    unknown = sorted(f for f, (origin, _) in b.files.items() if origin != RECORDED)
    evidence.append(
        f"every number in this report and the model card is linked to its results file, "
        f"notebook and run ({len(b.citations)} citations, re-checked by `medlab.audit.verify`)"
        + (
            f"; **{UNKNOWN}**: {', '.join(map(_t, unknown))} (not in the run's manifest)"
            if unknown
            else "; every results file matches the SHA-256 recorded when it was saved"
        )
    )
    return {
        "id": item.id,
        "title": item.title,
        "asks": item.question,
        "status": "evidence" if datasets else "not assessed",
        "evidence": evidence,
        "missing": [],
    }
