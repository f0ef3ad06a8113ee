"""The audit: a model card and an audit report generated from a run's recorded results.

Nothing in them is typed by hand. :func:`build` reads what the notebooks of one ``medlab
reproduce`` run recorded (:func:`medlab.results.load`) and :func:`write` renders::

    <run_dir>/audit/model_card.md     model_card.html     (Hugging Face model-card format)
    <run_dir>/audit/audit_report.md   audit_report.html
    <run_dir>/audit/citations.json    every cited number: value, text shown, source files

Every number either document shows carries a citation mark such as ``0.959<sup>[C7](...)</sup>``
that links to the report's citation table, which names the notebook, dataset, seed(s), record key
and the JSON pointer into the results file it came from, and links the executed notebook, its
HTML copy and its figures (paths relative to the audit folder). :func:`verify` re-reads the
results files and checks every mark. A number on an unofficial data file is marked as such, and
the report lists the curriculum notebooks the run did not run (their areas: "not assessed").

Integrity: :class:`medlab.Recorder` records the SHA-256 of every results file it saves in the
run's ``results/MANIFEST.sha256``. :func:`build` refuses a results file whose bytes no longer match
(edited after it was recorded) or a listed file that is gone, and marks the numbers of a results
file the manifest does not list (written by hand, or by an older medlab) as *origin unknown*;
:func:`verify` checks the same again, and flags any number in the Markdown documents that carries
no citation (see :func:`uncited_numbers` for the rule). Every text that comes from the data
(dataset and notebook names, record keys, provenance strings) is escaped, so that it cannot become
HTML in the pages.

Intervals: the spread over the run's seeds (sample SD, ddof=1) when a run holds several seeds, or
a recorded ``<key>_sd``; for test accuracy the 95 % Wilson score interval and for test AUC the 95 %
Hanley-McNeil interval, both from the size of the test split (recorded provenance), assuming the
whole test split was evaluated.
"""

from __future__ import annotations

import fnmatch
import hashlib
import html
import json
import math
import os
import re
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from medlab import results
from medlab.stats import hanley_mcneil_interval, wilson_interval

__all__ = [
    "Audit",
    "AuditError",
    "Citation",
    "build",
    "write",
    "audit",
    "verify",
    "uncited_numbers",
    "STRUCTURAL",
    "resolve_run",
    "fmt",
    "wilson_interval",
    "hanley_mcneil_interval",
    "CURRICULUM",
    "AREAS",
    "CHECKLIST",
    "FILES",
    "CITATION_RE",
    "CITATION_HTML_RE",
]

#: The curriculum whose results an audit expects (number -> notebook stem, topic).
CURRICULUM = {
    "00": ("00_tour", "the data"),
    "01": ("01_baseline", "baseline performance"),
    "02": ("02_data_scarcity", "data scarcity and transfer"),
    "03": ("03_bias", "bias detection and mitigation"),
    "04": ("04_glass_box", "explanations"),
    "05": ("05_federated", "federated learning and secure aggregation"),
    "06": ("06_privacy", "differential privacy and membership inference"),
    "07": ("07_synthetic", "synthetic data"),
    "08": ("08_robustness", "adversarial and corruption robustness"),
    "09": ("09_deploy", "cost, calibration and human oversight"),
}
#: The files :func:`write` produces, relative to the run folder.
FILES = {
    "model_card.md": "audit/model_card.md",
    "model_card.html": "audit/model_card.html",
    "audit_report.md": "audit/audit_report.md",
    "audit_report.html": "audit/audit_report.html",
    "citations.json": "audit/citations.json",
}
#: A cited number in the Markdown: ``<number><sup>[C<k>](<file>#c<k>)</sup>``.
CITATION_RE = re.compile(
    r"(?P<num>-?\d+(?:\.\d+)?(?:e[+-]\d+)?)<sup>\[(?P<id>C\d+)\]\((?P<href>[^)\s]*)\)</sup>"
)
#: The same mark in the HTML files.
CITATION_HTML_RE = re.compile(
    r'(?P<num>-?\d+(?:\.\d+)?(?:e[+-]\d+)?)<sup><a href="(?P<href>[^"]*)">(?P<id>C\d+)</a></sup>'
)

Pattern = tuple[str, str]  # (notebook number, record-key glob)


@dataclass(frozen=True)
class Area:
    """An area of the report, or an item of the checklist (``question``: what it asks for),
    and the record keys (by notebook number) that give its evidence."""

    id: str
    title: str
    question: str
    patterns: tuple[Pattern, ...]


AREAS: tuple[Area, ...] = (
    Area(
        "performance",
        "Performance with intervals",
        "How well do the curriculum's models classify the test split, and how precise is that?",
        (
            ("01", "smallcnn.test_auc"),
            ("01", "smallcnn.test_acc"),
            ("01", "majority.test_acc"),
            ("01", "resnet18.test_auc"),
            ("02", "scratch.test_auc.kall"),
            ("02", "transfer*.test_auc.kall"),
            ("05", "central.test_acc"),
            ("05", "fedavg.test_acc.*"),
            ("05", "fedprox.test_acc.*"),
            ("06", "nondp.test_auc"),
            ("06", "nondp.test_acc"),
            ("08", "standard.test_acc"),
            ("09", "default.test_acc"),
        ),
    ),
    Area(
        "subgroups",
        "Subgroup performance and gaps",
        "Does the model serve every group equally well, and what did mitigation change?",
        (
            ("03", "share5.baseline.tpr_gap"),
            ("03", "share5.baseline.*"),
            ("03", "share50.baseline.*"),
            ("03", "share5.*.tpr_gap"),
            ("03", "share5.*.eod"),
            ("03", "share5.*.acc"),
            ("04", "hcm.*.tpr_gap"),
            ("05", "*.smallest_site"),
            ("06", "*.minority_tpr_gap"),
            ("09", "defer.minority_rate"),
            ("09", "defer.majority_rate"),
        ),
    ),
    Area(
        "privacy",
        "Privacy: epsilon and attack AUC",
        "How much does a model leak about its training patients, and what bought protection?",
        (
            ("06", "nondp.attack_lira_auc"),
            ("06", "eps*.epsilon"),
            ("06", "eps*.delta"),
            ("06", "nondp.attack_*"),
            ("06", "eps*.attack_*"),
            ("06", "eps*.test_auc"),
            ("06", "eps*.test_acc"),
            ("05", "secagg.*"),
            ("07", "*.dcr_ratio"),
            ("07", "detector.real_vs_synthetic_auc"),
        ),
    ),
    Area(
        "explanations",
        "Transparency: explanations, checked",
        "Do the explanations reflect the model (faithfulness, randomisation check)?",
        (
            ("04", "faithfulness.ig.deletion_auc"),
            ("04", "faithfulness.*"),
            ("04", "randomisation.*"),
            ("04", "hcm.*.evidence_ratio"),
            ("04", "pca.*"),
            ("04", "biased.test_auc"),
        ),
    ),
    Area(
        "synthetic",
        "Synthetic data: fidelity and utility",
        "Are synthetic images faithful, diverse and useful for training?",
        (
            ("07", "*.frechet"),
            ("07", "*.precision"),
            ("07", "*.recall"),
            ("07", "*.density"),
            ("07", "*.coverage"),
            ("07", "*.tstr_auc"),
            ("07", "real.trtr_auc"),
        ),
    ),
    Area(
        "robustness",
        "Robustness: adversarial and corruption",
        "How does accuracy hold up under attack and under image corruption?",
        (
            ("08", "standard.robust_acc.eps8"),
            ("08", "standard.robust_acc.*"),
            ("08", "advtrained.*"),
            ("08", "corruption.*"),
            ("08", "detector.*"),
            ("08", "art.*"),
        ),
    ),
    Area(
        "calibration",
        "Calibration and deferral",
        "Are the model's probabilities honest, and what happens when it defers to a clinician?",
        (
            ("09", "calibration.ece_after"),
            ("09", "calibration.*"),
            ("09", "defer.*"),
            ("09", "conformal.*"),
        ),
    ),
    Area(
        "cost",
        "Cost",
        "What does the model cost to store and run, and what do pruning and int8 change?",
        (
            ("09", "default.params"),
            ("09", "default.size_mb"),
            ("09", "default.latency_ms"),
            ("09", "pruned.*"),
            ("09", "int8.*"),
            ("05", "secagg.ckks_bytes_per_round"),
        ),
    ),
)


CHECKLIST: tuple[Area, ...] = (
    Area(
        "privacy",
        "Privacy safeguards",
        "a formal privacy guarantee (epsilon), an attack that measures leakage with and without "
        "it, secure aggregation, memorisation of synthetic data",
        (
            ("06", "eps*.epsilon"),
            ("06", "nondp.attack_lira_auc"),
            ("06", "eps*.attack_lira_auc"),
            ("05", "secagg.*_error"),
            ("07", "*.dcr_ratio"),
        ),
    ),
    Area(
        "bias",
        "Bias detection and mitigation",
        "per-group gaps measured, and measured again after a mitigation",
        (
            ("03", "share5.baseline.tpr_gap"),
            ("03", "share5.*.tpr_gap"),
            ("04", "hcm.*.tpr_gap"),
            ("06", "*.minority_tpr_gap"),
            ("09", "defer.minority_rate"),
        ),
    ),
    Area(
        "transparency",
        "Transparency and explainability",
        "explanations whose faithfulness and dependence on the model were tested",
        (("04", "faithfulness.*.deletion_auc"), ("04", "randomisation.*.spearman")),
    ),
    Area(
        "oversight",
        "Human oversight",
        "cases deferred to a clinician and the error on the rest; prediction sets with a "
        "coverage guarantee",
        (
            ("09", "defer.coverage"),
            ("09", "defer.error_kept"),
            ("09", "defer.error_all"),
            ("09", "conformal.coverage"),
            ("09", "conformal.target"),
        ),
    ),
    Area(
        "reliability",
        "Reliability and validation",
        "held-out performance, robustness to attack and corruption, calibration",
        (
            ("01", "smallcnn.test_auc"),
            ("08", "standard.robust_acc.*"),
            ("08", "corruption.mean_acc.*"),
            ("09", "calibration.ece_*"),
        ),
    ),
    Area(
        "documentation",
        "Documentation and audit",
        "data provenance (file md5, official or not) for every number, and this report: every "
        "number linked to the notebook and run that produced it",
        (),
    ),
)

INTENDED_USE = (
    "Teaching and reproducibility only: the models are small networks trained in minutes on "
    "28x28 MedMNIST images (public research benchmarks) to make the challenges of trustworthy "
    "medical-imaging AI visible with real data and a number."
)
OUT_OF_SCOPE = (
    "Any clinical use: diagnosis, triage, screening or decision support for real patients. The "
    "sensitive groups in the bias lessons are simulated (MedMNIST files carry no sex, age or site), "
    "the images are low resolution, and the test splits are small."
)


class AuditError(ValueError):
    """A run folder that cannot be audited (missing, a file, or holding no results)."""


# --------------------------------------------------------------------------------------------
# numbers and intervals


def fmt(x: float) -> str:
    """The text a cited number is shown as: whole numbers as integers, others to 4 significant
    digits (``0.959``, ``-0.03733``, ``1e-06``)."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e9:
        return str(int(x))
    return f"{x:.4g}"


def _hanley_wider(auc: float, n: int, share: float) -> tuple[float, float]:
    """Hanley-McNeil interval for a binary test split of ``n`` cases whose majority class has
    ``share``: the wider of the two ways to assign the majority to the positive class."""
    n_maj = round(share * n)
    a = hanley_mcneil_interval(auc, n_maj, n - n_maj)
    b = hanley_mcneil_interval(auc, n - n_maj, n_maj)
    return a if a[1] - a[0] >= b[1] - b[0] else b


# operations a citation applies to the numbers it reads (test and verify recompute them)
def _apply(op: str, xs: list[float]) -> float:
    if op == "value":
        (x,) = xs
        return x
    if op == "mean":
        return statistics.fmean(xs)
    if op == "sd":
        return statistics.stdev(xs)
    if op in ("wilson_low", "wilson_high"):
        lo, hi = wilson_interval(statistics.fmean(xs[:-1]), int(xs[-1]))
        return lo if op == "wilson_low" else hi
    if op in ("hanley_low", "hanley_high"):
        lo, hi = _hanley_wider(statistics.fmean(xs[:-2]), int(xs[-2]), xs[-1])
        return lo if op == "hanley_low" else hi
    raise ValueError(f"unknown citation operation {op!r}")


OPS = {
    "value": "the recorded value",
    "mean": "mean over the run's seeds",
    "sd": "sample SD over the run's seeds (ddof=1)",
    "wilson_low": "95 % Wilson interval, lower end (value, test-split size)",
    "wilson_high": "95 % Wilson interval, upper end (value, test-split size)",
    "hanley_low": "95 % Hanley-McNeil interval, lower end (AUC, test images, majority share)",
    "hanley_high": "95 % Hanley-McNeil interval, upper end (AUC, test images, majority share)",
}


@dataclass
class Citation:
    """One number the documents show, and how to recompute it from the results files.

    ``sources``: ``{"file": path relative to the run folder, "pointer": JSON pointer}``, read in
    order and combined by ``op`` (see ``OPS``); ``shown`` is the text in the documents."""

    id: str
    op: str
    value: float
    shown: str
    notebook: str
    dataset: str
    key: str
    sources: list[dict[str, str]]
    seeds: list[Any] = field(default_factory=list)
    official: bool | None = None
    unit: str = ""
    #: "recorded" (every source is in the run's manifest) or "origin unknown"
    origin: str = "recorded"

    @property
    def anchor(self) -> str:
        return self.id.lower()


def _pointer_get(doc: Any, pointer: str) -> Any:
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _pointer(*parts: str) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


# --------------------------------------------------------------------------------------------
# reading a run


def resolve_run(run_dir: str | os.PathLike[str] | None = None) -> Path:
    """The run folder to audit: ``run_dir`` (a run folder, or an output folder: its latest run),
    default the latest run of ``$MEDLAB_OUTPUT_DIR`` or ``./outputs``. An output folder's latest
    run is where its ``latest`` link points (or its ``latest.txt``, which must name a folder in
    its ``runs/``), else its newest complete run. Raises :class:`AuditError` naming the fix when
    there is none, it holds no results, or it is marked incomplete (``run.json``: interrupted,
    killed, aborted, still running), naming the last complete run; the run this process is part
    of (``$MEDLAB_RUN_DIR``: notebook 10 inside ``medlab reproduce``) may be audited while it
    runs."""
    from medlab import reproduce as R

    if run_dir is not None and not isinstance(run_dir, str | os.PathLike):
        raise TypeError(f"run_dir must be a folder path or None, got {type(run_dir).__name__}")
    base = results.output_dir(run_dir)

    def latest_of(out: Path) -> Path:
        runs = (out / "runs").resolve()
        link, txt = out / "latest", out / "latest.txt"
        if link.is_symlink():
            target, where = link.resolve(), f"{link} points at {os.readlink(link)}"
        elif link.exists():
            raise AuditError(
                f"{link} is a real {'folder' if link.is_dir() else 'file'}, not the link "
                "`medlab reproduce` keeps to the newest complete run; move it away (e.g. "
                f"`mv {link} {link}.old`) or pass the run folder to audit "
                f"({out}/runs/<time>-<mode>)"
            )
        elif txt.is_file():
            try:
                text = txt.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise AuditError(
                    f"{txt} cannot be read ({exc}); delete it, or pass the run folder"
                ) from None
            target = (Path(text) if Path(text).is_absolute() else out / text).resolve()
            where = f"{txt} names {text!r}"
        else:
            target = R.last_complete_run(out)
            if target is None:
                some = sorted(p.name for p in (out / "runs").glob("*") if p.is_dir())
                what = (
                    f"no complete run (only incomplete ones: {', '.join(some)})"
                    if some
                    else "no runs yet"
                )
                raise AuditError(f"{out} holds {what}: run `medlab reproduce --quick` first")
            return target
        if target.parent != runs or not target.is_dir():
            raise AuditError(
                f"{where}, which is not a run folder in {runs}; it must name one of "
                f"runs/<time>-<mode>. Fix or delete it, or pass the run folder to audit"
            )
        return target

    if run_dir is None and not base.exists():
        raise AuditError(
            f"no run folder in {base}/runs: run `medlab reproduce --quick` first, or "
            "pass the run folder: `medlab audit outputs/runs/<time>-<mode>`"
        )
    if not base.exists():
        raise AuditError(
            f"run folder {base} does not exist: run `medlab reproduce --quick` to make one, "
            "then pass its folder (outputs/runs/<time>-<mode>) or an output folder (its latest "
            "run is audited)"
        )
    if not base.is_dir():
        raise AuditError(f"{base} is a file, not a run folder; pass outputs/runs/<time>-<mode>")
    if (
        run_dir is None
        or (base / "runs").is_dir()
        or any((base / n).exists() or (base / n).is_symlink() for n in ("latest", "latest.txt"))
    ):
        base = latest_of(base)
    # a seed<k>/ folder of a run with several seeds is marked in the run folder above it
    marked = base
    if base.name.startswith("seed") and not (base / R.RUN_FILE).exists():
        marked = base.parent if (base.parent / R.RUN_FILE).exists() else base
    no_results = AuditError(
        f"run folder {base} holds no results (no results/*.json or seed*/results/*.json): "
        "no notebook recorded a number in it. Run `medlab reproduce --quick` (or pass the "
        "run folder of a finished run)"
    )
    if not (marked / R.RUN_FILE).exists() and not _results_files(base):
        raise no_results  # not a run folder medlab made: say what is missing, not "incomplete"
    current = os.environ.get("MEDLAB_RUN_DIR")
    if not R.is_complete(marked) and not (current and Path(current).resolve() == marked.resolve()):
        last = R.last_complete_run(marked.parent.parent) if marked.parent.name == "runs" else None
        raise AuditError(
            f"run {marked} is incomplete ({R.describe_state(marked)}; see its {R.RUN_FILE}), "
            "so its numbers are partial. "
            + (
                f"The last complete run is {last}: `medlab audit {last}`"
                if last is not None
                else "There is no complete run next to it: run `medlab reproduce --quick`"
            )
        )
    if not _results_files(base):
        raise no_results
    return base.resolve()


def _results_files(run: Path) -> list[Path]:
    return sorted(run.glob("results/*.json")) + sorted(run.glob("seed*/results/*.json"))


RECORDED, UNKNOWN = "recorded", "origin unknown"


def _check_integrity(run: Path) -> dict[str, tuple[str, str]]:
    """``{results file relative to run: (origin, sha256)}`` for every results file of ``run``.

    Raises :class:`AuditError` naming the fix when a file listed in a manifest
    (``results/MANIFEST.sha256``) is missing or its bytes differ from the recorded digest, or
    when a manifest is malformed. A file no manifest lists gets :data:`UNKNOWN`."""
    out: dict[str, tuple[str, str]] = {}
    folders = {f.parent for f in _results_files(run)}
    folders |= {m.parent for m in run.glob(f"results/{results.MANIFEST}")}
    folders |= {m.parent for m in run.glob(f"seed*/results/{results.MANIFEST}")}
    for folder in sorted(folders):
        where = folder.relative_to(run).as_posix()
        try:
            recorded = results.read_digests(folder)
        except ValueError as exc:
            raise AuditError(str(exc)) from None
        for name in sorted(recorded):
            if not (folder / name).is_file():
                raise AuditError(
                    f"{where}/{name} is listed in the run's manifest ({where}/"
                    f"{results.MANIFEST}) but is missing: it was deleted or moved after it was "
                    f"recorded. Re-run the notebook (`medlab reproduce {Path(name).stem}`), or "
                    "audit another run"
                )
        for f in sorted(folder.glob("*.json")):
            rel = f.relative_to(run).as_posix()
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            if f.name in recorded and recorded[f.name] != digest:
                raise AuditError(
                    f"{rel} was changed after it was recorded: its SHA-256 {digest} differs "
                    f"from the run's manifest ({where}/{results.MANIFEST}: "
                    f"{recorded[f.name]}); re-run the notebook (`medlab reproduce {f.stem}`) "
                    "to record its numbers again"
                )
            out[rel] = (RECORDED if f.name in recorded else UNKNOWN, digest)
    return out


def _read_docs(run: Path) -> dict[str, dict[str, Any]]:
    """The run's results files, parsed and checked; :class:`AuditError` naming the fix."""
    docs = {}
    for f in _results_files(run):
        rel = f.relative_to(run).as_posix()
        try:
            docs[rel] = results.read_doc(f)
        except ValueError as exc:
            raise AuditError(str(exc).replace(str(f), rel)) from None
    return docs


def _number(name: str) -> str:
    return name.split("_")[0]


def _failed_cell(executed: Path) -> str | None:
    """The first cell with an error output in an executed notebook, as text; None if none."""
    try:
        nb = json.loads(executed.read_text())
    except (OSError, json.JSONDecodeError):
        return "unreadable executed notebook"
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []) or []:
            if out.get("output_type") == "error":
                return f"cell {i}: {out.get('ename', 'error')}: {out.get('evalue', '')}"[:300]
    return None


@dataclass
class Audit:
    """Everything the documents show, computed from one run's results (see :func:`build`)."""

    run_dir: Path
    table: Any  # results.load(run_dir)
    docs: dict[str, dict[str, Any]]  # results file (relative to run_dir) -> its JSON
    citations: dict[str, Citation]
    notebooks: list[dict[str, Any]]  # one per curriculum notebook / notebook found in the run
    datasets: list[dict[str, Any]]
    areas: list[dict[str, Any]]
    other: list[dict[str, Any]]  # recorded numbers no area shows
    checklist: list[dict[str, Any]]
    mode: str
    #: results file (relative to run_dir) -> (origin: "recorded" / "origin unknown", sha256)
    files: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def unknown_origin(self) -> list[str]:
        """Results files the run's manifest does not list (their numbers: origin unknown)."""
        return [f for f, (origin, _) in self.files.items() if origin != RECORDED]

    @property
    def not_run(self) -> list[str]:
        """Curriculum notebooks with no results and no executed copy in the run."""
        return [n["notebook"] for n in self.notebooks if n["status"] == "not run"]

    @property
    def failed(self) -> list[str]:
        return [n["notebook"] for n in self.notebooks if n["status"].startswith("FAILED")]

    @property
    def unofficial(self) -> list[str]:
        return [d["dataset"] for d in self.datasets if not d["official"]]

    def summary(self) -> Any:
        """The report's summary table (pandas DataFrame): one row per area."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "area": a["title"],
                    "status": a["status"],
                    "notebooks": ", ".join(a["notebooks_run"]) or "-",
                    "not run": ", ".join(a["notebooks_missing"]) or "-",
                    "headline": _plain(a["headline"]),
                    "data": a["data"],
                }
                for a in self.areas
            ]
        )


def _plain(text: str) -> str:
    """Markdown with citation marks -> plain text (numbers kept, marks dropped)."""
    text = CITATION_RE.sub(lambda m: m["num"], text)
    return re.sub(r"`([^`]*)`", r"\1", text)


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


def _t(x: Any) -> str:
    """Text that comes from the data, made inert in Markdown and in the HTML rendered from it
    (``& < >`` as entities, backticks and brackets escaped, no line breaks)."""
    text = html.escape(" ".join(str(x).split()), quote=False)
    return re.sub(r"([\\`\[\]])", r"\\\1", text)


def _c(x: Any) -> str:
    """Text that comes from the data as an inline code span that nothing inside can close (the
    renderer escapes a code span's content)."""
    text = " ".join(str(x).split())
    ticks = max((len(m) for m in re.findall(r"`+", text)), default=0)
    pad = " " if ticks or not text else ""
    return f"{'`' * (ticks + 1)}{pad}{text}{pad}{'`' * (ticks + 1)}"


def _href(path: str) -> str:
    """A relative link target, percent-encoded so that it cannot end the link."""
    return quote(path.replace(os.sep, "/"), safe="/.-_~")


def _data_label(c: Citation) -> str:
    """The data column of a cited number: official, **unofficial** or **origin unknown**."""
    if c.origin != RECORDED:
        return f"**{UNKNOWN}**"
    return "official" if c.official else "**unofficial**"


def _mark(c: Citation, href: str) -> str:
    return f"{c.shown}<sup>[{c.id}]({href}#{c.anchor})</sup>"


def _metric(key: str) -> str:
    segs = key.split(".")
    return segs[1] if len(segs) > 1 else key


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
    n = b.cite_split_size(ds) if metric in ("test_acc", "test_auc") else None
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
            if (
                nb0
                and (nb0, ds, "test.images") in b.records
                and ((nb0, ds, "test.majority_share") in b.records)
            ):
                srcs = b.record_sources(nb, ds, key)
                srcs += b.record_sources(nb0, ds, "test.images")[:1]
                srcs += b.record_sources(nb0, ds, "test.majority_share")[:1]
                lo, hi = (b.cite(op, srcs, **common) for op in ("hanley_low", "hanley_high"))
                intervals.append(f"95 % CI {_mark(lo, href)}–{_mark(hi, href)} (Hanley-McNeil)")
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


def _datasets(b: _Builder) -> list[dict[str, Any]]:
    from medlab import cards
    from medlab.data import file_md5

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


def build(run_dir: str | os.PathLike[str] | None = None) -> Audit:
    """Read one run's recorded results and compute everything the documents will show.

    ``run_dir``: a run folder of ``medlab reproduce`` (``outputs/runs/<time>-<mode>``), an
    output folder (its latest run) or a folder with ``results/*.json``; default the latest run.
    """
    run = resolve_run(run_dir)
    b = _Builder(run)
    report = "audit_report.md"
    present = {_number(nb) for nb, _, _ in b.records}
    # notebooks: curriculum and found
    found = sorted(
        {nb for nb, _, _ in b.records}
        | {p.stem for p in run.glob("executed/*.ipynb")}
        | {p.stem for p in run.glob("seed*/executed/*.ipynb")}
    )
    notebooks = []
    for number, (stem, topic) in CURRICULUM.items():
        names = [n for n in found if _number(n) == number] or [stem]
        for name in names:
            notebooks.append(_notebook_status(b, run, name, topic))
    for name in found:
        if _number(name) not in CURRICULUM:
            notebooks.append(
                _notebook_status(b, run, name, "the audit" if name[:2] == "10" else "")
            )
    datasets = _datasets(b)
    areas = []
    for area in AREAS:
        rows = [_row(b, *h, report) for h in b.match(area.patterns)]
        wanted = sorted({n for n, _ in area.patterns})
        ran = sorted({_number(r["notebook"]) for r in rows})
        missing = [CURRICULUM.get(n, (n,))[0] for n in wanted if n not in present and n != "10"]
        status = "not assessed" if not rows else ("partly assessed" if missing else "assessed")
        head = rows[0] if rows else None
        areas.append(
            {
                "id": area.id,
                "title": area.title,
                "question": area.question,
                "rows": rows,
                "status": status,
                "notebooks_run": sorted({r["notebook"] for r in rows}),
                "notebooks_missing": missing,
                "headline": (
                    f"{_c(head['key'])} = {head['value']}"
                    + (f" ({head['interval']})" if head["interval"] != "-" else "")
                )
                if head
                else "not assessed",
                "data": ", ".join(sorted({r["data"].strip("*") for r in rows})) or "-",
                "ran": ran,
            }
        )
    shown = {(r["notebook"], r["dataset"], r["key"]) for x in areas for r in x["rows"]}
    other = [
        _row(b, *h, report)
        for h in sorted(b.records)
        if h not in shown and not b.is_sd_companion(*h)
    ]
    checklist = []
    for item in CHECKLIST:
        if item.id == "documentation":
            checklist.append(_documentation_item(item, datasets, b))
            continue
        hits = b.match(item.patterns)
        wanted = sorted({n for n, _ in item.patterns})
        missing = [CURRICULUM[n][0] for n in wanted if n not in present]
        evidence = [
            f"{_c(k)} = {_mark(c, report)} ({_t(nb)}, {_t(ds)}"
            + (f", **{UNKNOWN}**" if c.origin != RECORDED else "")
            + ")"
            for nb, ds, k in hits
            if (c := b.cite_record(nb, ds, k))
        ]
        status = "not assessed" if not hits else ("partly assessed" if missing else "evidence")
        checklist.append(
            {
                "id": item.id,
                "title": item.title,
                "asks": item.question,
                "status": status,
                "evidence": evidence,
                "missing": missing,
            }
        )
    modes = {(doc.get("provenance") or {}).get("quick") for doc in b.docs.values()}
    mode = (
        {True: "quick", False: "full"}.get(modes.pop(), "unknown")
        if len(modes) == 1
        else ("mixed (quick and full)")
    )
    return Audit(
        run,
        b.table,
        b.docs,
        b.citations,
        notebooks,
        datasets,
        areas,
        other,
        checklist,
        mode,
        b.files,
    )


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


# --------------------------------------------------------------------------------------------
# rendering


def _links(run: Path, folder: Path, paths: list[str], label: str) -> str:
    return " · ".join(
        f"[{label}{'' if len(paths) == 1 else f'-{i + 1}'}]"
        f"({_href(os.path.relpath(run / p, folder))})"
        for i, p in enumerate(paths)
    )


def _table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in rows]
    return "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(r) + " |" for r in esc]
    )


def _rows_table(rows: list[dict[str, Any]]) -> str:
    cols = ["notebook", "dataset", "key", "value", "interval", "data"]
    return _table(
        cols,
        [
            [
                _c(r[c]) if c == "key" else _t(r[c]) if c in ("notebook", "dataset") else r[c]
                for c in cols
            ]
            for r in rows
        ],
    )


def report_markdown(a: Audit, folder: Path) -> str:
    """The audit report as Markdown (links relative to ``folder``)."""
    run = a.run_dir
    out = [
        f"# Audit report: run {_c(run.name)}",
        "",
        "Generated by `medlab.audit` from the results the notebooks recorded in this run; "
        "nothing is typed by hand. Each number links (C*k*) to the table of citations at the "
        "end, which names its notebook, dataset, seed(s), record key and results file.",
        "",
        "## Read this first",
        "",
        f"- **Run folder:** {_c(run)} ({a.mode} mode).",
    ]
    cites = list(a.citations.values())
    unknown = [c for c in cites if c.origin != RECORDED]
    if a.unknown_origin:
        out.append(
            f"- **Origin unknown:** {len(unknown)} of the {len(cites)} cited numbers come from "
            f"results files that the run's manifest ({_c('results/' + results.MANIFEST)}) does "
            f"not list: {', '.join(map(_t, a.unknown_origin))}. They were not recorded by "
            "`medlab.Recorder` in this run (written by hand, or by an older medlab), so nothing "
            f"vouches for them; they are marked **{UNKNOWN}**. Re-run their notebooks to record "
            "them."
        )
    else:
        out.append(
            "- **Integrity:** every results file matches the SHA-256 that `medlab.Recorder` "
            f"recorded in the run's manifest ({_c('results/' + results.MANIFEST)}) when it saved "
            "it."
        )
    if a.not_run:
        out.append(
            f"- **Not run in this run:** {', '.join(a.not_run)}. The areas they cover are "
            "marked *not assessed*; no number in this report comes from them."
        )
    else:
        out.append("- **Not run in this run:** none; every curriculum notebook ran.")
    if a.failed:
        out.append(
            f"- **Failed:** {', '.join(map(_t, a.failed))}: their numbers may be incomplete."
        )
    unoff = [d for d in a.datasets if not d["official"]]
    n_unoff = sum(c.official is not True for c in cites)
    if unoff or n_unoff:
        out.append(
            f"- **Unofficial data:** {n_unoff} of the {len(cites)} cited numbers come "
            "from unofficial data files (marked **unofficial** below); unofficial files used "
            f"in this run: {', '.join(_t(d['dataset']) for d in unoff) or 'none recorded'}. "
            "Those numbers are results on those copies, not on the official MedMNIST files, "
            "and are not comparable with the MedMNIST v2 benchmark."
        )
    elif unknown:
        out.append(
            "- **Unofficial data:** none recorded; the numbers of origin unknown say they are "
            "on official files, which nothing vouches for."
        )
    else:
        out.append("- **Unofficial data:** none; every number comes from an official file.")
    out += [
        "",
        "## Summary",
        "",
        _table(
            ["area", "status", "notebooks", "not run", "headline", "data"],
            [
                [
                    f"[{x['title']}](#{x['id']})",
                    x["status"],
                    ", ".join(map(_t, x["notebooks_run"])) or "-",
                    ", ".join(x["notebooks_missing"]) or "-",
                    x["headline"],
                    x["data"],
                ]
                for x in a.areas
            ],
        ),
        "",
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        f"**Out of scope:** {OUT_OF_SCOPE}",
        "",
        "## Data cards and provenance",
        "",
    ]
    for d in a.datasets:
        card = d["card"]
        sizes = " / ".join(_mark(c, "") if c else "?" for c in d["sizes"].values())
        out += [
            f"### {_t(d['dataset'])}",
            "",
            f"- **Origin:** {'official MedMNIST file' if d['official'] else '**unofficial** file'}"
            f" (kind: {_t(d['kind'])}); file {_c(d['file'])}",
            f"- **md5 recorded:** {_c(d['md5'])}; file on disk now: {_t(d['md5_now'])}",
            f"- **Official md5:** {_c(d['official_md5'] or card.get('md5_28') or 'none')}",
            f"- **train / val / test images:** {sizes}",
            f"- **Modality / source:** {_t(card.get('modality', '?'))} / "
            f"{_t(card.get('source', '?'))}; licence {_t(card.get('license', '?'))}",
            f"- **Used by:** {', '.join(map(_t, d['notebooks']))}",
        ]
        out += [f"- **Known gap:** {_t(g)}" for g in card.get("known_gaps", [])]
        out.append("")
    for x in a.areas:
        out += [f'<a id="{x["id"]}"></a>', "", f"## {x['title']}", "", f"*{x['question']}*", ""]
        if not x["rows"]:
            out += [f"**Not assessed:** {', '.join(x['notebooks_missing'])} not run.", ""]
            continue
        if x["notebooks_missing"]:
            out += [f"Not run (not assessed here): {', '.join(x['notebooks_missing'])}.", ""]
        out += [
            _rows_table(x["rows"]),
            "",
        ]
    if a.other:
        out += [
            "## Other recorded numbers",
            "",
            "Everything else the run recorded, so that the report holds every number of the run.",
            "",
            _rows_table(a.other),
            "",
        ]
    out += ["## Checklist: the framework against the evidence", ""]
    for c in a.checklist:
        out += [f"### {c['title']}: {c['status']}", "", f"*Asks for:* {c['asks']}.", ""]
        out += [f"- {e}" for e in c["evidence"]]
        if not c["evidence"]:
            out.append(f"- **not assessed**: {', '.join(c['missing'])} not run")
        elif c["missing"]:
            out.append(f"- not assessed here: {', '.join(c['missing'])} not run")
        out.append("")
    out += ["## Traceability: notebooks, results and figures of this run", ""]
    rows = []
    for n in a.notebooks:
        links = " · ".join(
            s
            for s in (
                _links(run, folder, n["results"], "results"),
                _links(run, folder, n["executed"], "notebook"),
                _links(run, folder, n["html"], "html"),
            )
            if s
        )
        figs = " · ".join(
            f"[{_c(Path(f).stem)}]({_href(os.path.relpath(run / f, folder))})" for f in n["figures"]
        )
        seeds = ", ".join(map(_t, n["seeds"])) or "-"
        status = n["status"]
        if status.startswith("FAILED ("):  # the error text, as code: its numbers are no results
            status = f"FAILED {_c(status[len('FAILED ') :])}"
        rows.append([_t(n["notebook"]), n["topic"], status, seeds, links or "-", figs or "-"])
    out += [_table(["notebook", "topic", "status", "seeds", "files", "figures"], rows), ""]
    out += [
        "## Citations",
        "",
        "Each cited number, recomputed from these sources by "
        "`medlab.audit.verify` (JSON pointers into the results files).",
        "",
    ]
    rows = []
    for c in a.citations.values():
        src = "; ".join(
            f"[{_t(s['file'])}]({_href(os.path.relpath(run / s['file'], folder))})"
            f" {_c(s['pointer'])}"
            for s in c.sources
        )
        rows.append(
            [
                f'<a id="{c.anchor}"></a>{c.id}',
                _mark(c, ""),
                _t(c.notebook),
                _t(c.dataset),
                _c(c.key),
                OPS[c.op],
                ", ".join(map(_t, c.seeds)),
                _data_label(c),
                src,
            ]
        )
    out += [
        _table(
            ["id", "value", "notebook", "dataset", "key", "how", "seeds", "data", "source"], rows
        ),
        "",
    ]
    return "\n".join(out)


CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

{{ model_summary }}

## Model Details

### Model Description

- **Developed by:** {{ developers }}
- **Model type:** {{ model_type }}
- **License:** {{ license }}
- **Run:** {{ run }}

## Uses

### Direct Use

{{ direct_use }}

### Out-of-Scope Use

{{ out_of_scope_use }}

## Bias, Risks, and Limitations

{{ bias_risks_limitations }}

## Training Details

### Training Data

{{ training_data }}

## Evaluation

### Testing Data, Factors & Metrics

{{ testing_data }}

### Results

{{ results }}

## Privacy, Robustness, Calibration and Oversight

{{ trust }}

## Technical Specifications (cost)

{{ cost }}

## More Information

{{ more_information }}
"""


def _eval_results(a: Audit) -> list[Any]:
    from huggingface_hub import EvalResult

    out = []
    for area in a.areas:
        if area["id"] not in ("performance", "robustness"):
            continue
        for r in area["rows"]:
            metric = _metric(r["key"])
            kind = "roc_auc" if "auc" in metric else ("accuracy" if "acc" in metric else None)
            if kind is None or "majority" in r["key"]:
                continue
            c: Citation = r["citation"]
            unoff = "" if c.official else " (unofficial copy)"
            out.append(
                EvalResult(
                    task_type="image-classification",
                    dataset_type=f"medmnist/{r['dataset']}",
                    dataset_name=f"{r['dataset']}{unoff}",
                    dataset_split="test",
                    metric_type=kind,
                    metric_value=c.value,
                    metric_name=f"{r['key']} [{c.id}]",
                    source_name=f"{r['notebook']} ({a.run_dir.name})",
                    source_url=_links(a.run_dir, a.run_dir / "audit", [c.sources[0]["file"]], "")
                    .split("(", 1)[1]
                    .rstrip(")"),
                )
            )
    return out


def card_markdown(a: Audit) -> str:
    """The model card (Hugging Face format: YAML metadata with model-index, then Markdown);
    its citation marks link to the audit report next to it."""
    report = "audit_report.md"
    from huggingface_hub import ModelCard, ModelCardData

    def area(i: str) -> dict[str, Any]:
        return next(x for x in a.areas if x["id"] == i)

    def rows(i: str, limit: int = 8) -> str:
        x = area(i)
        if not x["rows"]:
            return f"- {x['title']}: not assessed ({', '.join(x['notebooks_missing'])} not run)."
        lines = [
            f"- {_c(r['key'])} ({_t(r['notebook'])}, {_t(r['dataset'])}, "
            f"{r['data'].strip('*')}): "
            f"{r['value']}" + (f"; {r['interval']}" if r["interval"] != "-" else "")
            for r in x["rows"][:limit]
        ]
        more = len(x["rows"]) - limit
        return "\n".join(
            lines + ([f"- ... {more} more in the [audit report]({report}#{i})"] if more > 0 else [])
        )

    names = [d["dataset"] for d in a.datasets]
    data = ModelCardData(
        model_name="medlab curriculum SmallCNN",
        license="mit",
        library_name="pytorch",
        tags=["medical-imaging", "medmnist", "education", "trustworthy-ai", "audit"],
        datasets=[f"medmnist/{n}" for n in names],
        metrics=["roc_auc", "accuracy"],
        eval_results=_eval_results(a) or None,
    )
    training = []
    for d in a.datasets:
        size = " / ".join(_mark(c, report) if c else "?" for c in d["sizes"].values())
        training.append(
            f"- **{_t(d['dataset'])}** ("
            f"{'official' if d['official'] else '**unofficial** copy'}; "
            f"md5 {_c(d['md5'])}, {_t(d['md5_now'])}): train / val / test {size} images; "
            f"{_t(d['card'].get('modality', ''))}, {_t(d['card'].get('license', ''))}"
        )
    gaps = sorted({g for d in a.datasets for g in d["card"].get("known_gaps", [])})
    not_run = (
        f"Not run in this run (not assessed): {', '.join(a.not_run)}."
        if a.not_run
        else "Every curriculum notebook ran."
    )
    cites = list(a.citations.values())
    if a.unofficial or any(c.official is not True for c in cites):
        unoff = (
            f"Numbers on {', '.join(map(_t, a.unofficial)) or 'some datasets'} come from "
            "**unofficial** data files."
        )
    elif a.unknown_origin:
        unoff = "No number is recorded as coming from an unofficial data file."
    else:
        unoff = "All numbers come from official data files."
    if a.unknown_origin:
        unoff += (
            f" Some numbers are of **{UNKNOWN}**: their results files "
            f"({', '.join(map(_t, a.unknown_origin))}) are not in the run's manifest."
        )
    card = ModelCard.from_template(
        data,
        template_str=CARD_TEMPLATE,
        model_name="medlab curriculum SmallCNN",
        model_summary=f"A small convolutional network (GroupNorm) trained by the medlab "
        f"curriculum, documented from the results of run {_c(a.run_dir.name)} ({a.mode} mode). "
        f"{not_run} {unoff} Every number links to the [audit report]({report}), which names "
        "the notebook and results file it came from.",
        developers="medlab curriculum (generated by `medlab.audit`)",
        model_type="image classifier (binary or multi-class), 28x28 MedMNIST images",
        license="MIT (code); data under the datasets' licences",
        run=_c(a.run_dir),
        direct_use=INTENDED_USE,
        out_of_scope_use=OUT_OF_SCOPE,
        bias_risks_limitations=rows("subgroups")
        + "\n\nKnown gaps of the data:\n\n"
        + "\n".join(f"- {_t(g)}" for g in gaps),
        training_data="\n".join(training) or "No dataset recorded.",
        testing_data="The test split of each dataset above; metrics: ROC AUC and accuracy "
        "(`medlab.metrics`), per-group gaps, epsilon, attack AUC, ECE, deferral, size, latency.",
        results=rows("performance"),
        trust="\n\n".join(
            f"**{area(i)['title']}**\n\n{rows(i, 6)}"
            for i in ("privacy", "robustness", "calibration", "explanations")
        ),
        cost=rows("cost"),
        more_information=f"Audit report: [{report}]({report}); citations: "
        "[citations.json](citations.json).",
    )
    return str(card)


_CSS = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;
line-height:1.45}table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}th{background:#f3f3f3}
code{background:#f6f6f6;padding:0 .2rem}sup a{text-decoration:none;font-size:.7rem}
pre{background:#f6f6f6;padding:.5rem;overflow:auto}"""


def to_html(markdown: str, title: str) -> str:
    """A standalone HTML page from the Markdown (YAML front matter shown as a code block)."""
    import mistune

    meta = ""
    if markdown.startswith("---\n"):
        end = markdown.index("\n---", 4)
        meta = f"<pre>{html.escape(markdown[4:end])}</pre>"
        markdown = markdown[end + 4 :]
    body = mistune.create_markdown(escape=False, plugins=["table"])(markdown)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{_CSS}</style></head><body>\n{body}\n"
        + (f"<h2>Metadata (model-index)</h2>{meta}" if meta else "")
        + "\n</body></html>\n"
    )


def _html_pages(report_md: str, card_md: str) -> dict[str, str]:
    """The HTML pages rendered from the two Markdown documents (links to .md become .html)."""
    return {
        "audit_report.html": to_html(report_md.replace(".md#", ".html#"), "Audit report"),
        "model_card.html": to_html(
            card_md.replace("audit_report.md", "audit_report.html"), "Model card"
        ),
    }


def write(a: Audit, folder: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Write the model card, the audit report (Markdown and HTML) and ``citations.json`` to
    ``folder`` (default ``<run_dir>/audit``); returns the paths by file name. A folder that
    cannot be written raises :class:`AuditError` naming the fix, and leaves nothing behind."""
    folder = Path(folder) if folder is not None else a.run_dir / "audit"
    report_md = report_markdown(a, folder)
    card_md = card_markdown(a)
    pages = _html_pages(report_md, card_md)
    texts = {
        "audit_report.md": report_md,
        "audit_report.html": pages["audit_report.html"],
        "model_card.md": card_md,
        "model_card.html": pages["model_card.html"],
        "citations.json": json.dumps(
            {
                "run_dir": str(a.run_dir),
                "not_run": a.not_run,
                "failed": a.failed,
                "unofficial_datasets": a.unofficial,
                "unknown_origin": a.unknown_origin,
                "files": {f: {"origin": o, "sha256": d} for f, (o, d) in a.files.items()},
                "citations": [asdict(c) for c in a.citations.values()],
            },
            indent=2,
            default=str,
        ),
    }
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    paths, tmp = {}, None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            path = folder / name
            tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            paths[name] = path
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        for p in made if not paths else []:
            try:
                p.rmdir()
            except OSError:
                pass
        raise AuditError(
            f"cannot write the audit into {folder} ({exc.strerror or exc}): a read-only or full "
            f"run folder? Write it to another folder: `medlab audit {a.run_dir} --to DIR` "
            "(in Python: medlab.audit.audit(run_dir, folder=DIR))"
        ) from None
    return paths


#: Numbers the generator writes without a citation, because they are not results: counts of the
#: document's own citations, seeds and rows, and the confidence level of the intervals.
STRUCTURAL = (
    re.compile(r"\b\d+ of the \d+ cited numbers\b"),
    re.compile(r"\(\d+ citations, "),
    re.compile(r"\bSD over \d+ seeds\b"),
    re.compile(r"^- \.\.\. \d+ more in the \["),
    re.compile(r"\b95 % (?=CI |Wilson |Hanley-McNeil )"),
    re.compile(r"\b(?:CC BY(?:-[A-Z]{2})*|CC0|Apache|GPL|LGPL|MPL)[ -]\d+(?:\.\d+)?\b"),
)
_CODE = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_LINK_TARGET = re.compile(r"\]\([^)\s]*\)")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?\b")
_TOKEN = re.compile(r"[\w.+\-]*\d[\w.+\-]*")
#: A decimal inside a token ("0.99AUC", "v0.99", "AUC=0.9"): a number, not a name.
_DECIMAL = re.compile(r"\d[.,]\d")
_BARE_NUMBER = re.compile(r"[-+]?(?:\d+(?:[.,]\d+)*|\.\d+)(?:e[-+]?\d+)?%?", re.IGNORECASE)
#: Table columns that hold identifiers or the generator's fixed text, and the form their cells
#: must have to be exempt.
_ID_COLUMNS = {
    "how": re.compile("|".join(re.escape(v) for v in OPS.values())),
    "seeds": re.compile(r"-|(?:-?\d+|None)(?:, (?:-?\d+|None))*"),
    "id": re.compile(r'(?:<a id="c\d+"></a>)?C\d+'),
}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def uncited_numbers(
    markdown: str, *, name: str = "document", units: Iterable[str] = ()
) -> list[str]:
    """Problems, one per line of ``markdown`` that shows a number with no citation mark.

    The rule: every number needs a citation mark (``<number><sup>[C<k>](...)</sup>``), except

    * a digit that is part of a name: a token that holds a letter or ``_`` besides digits
      (``C7``, ``01_baseline``, ``ResNet-18``, ``28x28``, ``int8``, ``v2``), but not a number in
      e-notation (``1e-06`` needs a citation) nor a token with a decimal in it (``0.99AUC``,
      ``v0.99``: write versions in inline code);
    * text in inline code that is not a bare number (record keys, md5s, paths, commands), link
      targets and HTML tags;
    * ISO dates and times;
    * the cells of a table's ``seeds`` column that are a list of seeds, of its ``id`` column
      that are a citation id (``C7``) and of its ``how`` column that are a description of
      :data:`OPS` ("sample SD over the run's seeds (ddof=1)");
    * the generator's counts and constants (:data:`STRUCTURAL`: "N of the M cited numbers",
      "(N citations, ", "SD over N seeds", "... N more in the [", "95 % CI") and licence
      versions ("CC BY 4.0");
    * the unit of a cited number right after its mark (``0.88<sup>...</sup> accuracy (0-1)``),
      when it is one of ``units`` (:func:`verify` passes the units of the citations);
    * a line that quotes a known gap of a data card word for word (cited to that card);
    * the YAML front matter (its ``model-index`` values are checked by :func:`verify` against
      the citations their names give).

    Headings, notebook numbers on their own and n counts get no exemption: write them as names
    or give them a citation."""
    from medlab import cards

    gaps = {_t(g) for c in cards.cards().values() for g in c.get("known_gaps", [])}
    unit_re = "|".join(sorted((re.escape(_t(u)) for u in set(units) if u), key=len, reverse=True))
    mark = re.compile(
        CITATION_RE.pattern + (f"(?: (?:{unit_re})(?![\\w.+\\-]))?" if unit_re else "")
    )
    lines = markdown.split("\n")
    first = 0
    if lines and lines[0] == "---":
        first = next((i for i in range(1, len(lines)) if lines[i] == "---"), 0) + 1
    problems, header = [], None
    for i in range(first, len(lines)):
        line = lines[i]
        if not line.lstrip().startswith("|"):
            header = None
        elif header is None:
            follows = lines[i + 1].replace(" ", "") if i + 1 < len(lines) else ""
            if follows.startswith("|-") and set(follows) <= set("|-:"):
                header = [c.lower() for c in _cells(line)]
        elif set(line.replace(" ", "")) <= set("|-:"):
            continue
        else:
            cells = _cells(line)
            line = " | ".join(
                ""
                if j < len(header)
                and header[j] in _ID_COLUMNS
                and _ID_COLUMNS[header[j]].fullmatch(c)
                else c
                for j, c in enumerate(cells)
            )
        body = re.sub(r"^\s*[-*]\s+(?:\*\*Known gap:\*\*\s+)?", "", line).strip()
        if body in gaps:
            continue
        text = mark.sub(" ", line)
        text = _CODE.sub(lambda m: m[2] if _BARE_NUMBER.fullmatch(m[2].strip()) else " ", text)
        text = _LINK_TARGET.sub("] ", text)
        text = _TAG.sub(" ", text)
        text = _DATE.sub(" ", text)
        for pattern in STRUCTURAL:
            text = pattern.sub(" ", text)
        bare = []
        for m in _TOKEN.finditer(text):
            token = m[0].strip(".+-") if not m[0].startswith("-") else m[0].rstrip(".+-")
            if (
                _BARE_NUMBER.fullmatch(token)
                or not re.search(r"[A-Za-z_]", token)
                or _DECIMAL.search(token)
            ):
                bare.append(token)
        if bare:
            at = max(lines[i].find(bare[0]), 0)
            snippet = lines[i][max(at - 50, 0) : at + 50].strip()
            problems.append(
                f"{name}, line {i + 1}: {', '.join(bare)} carries no citation mark "
                f"(...{snippet}...); every number must link to the results it came from: "
                "regenerate the document with `medlab audit`"
            )
    return problems


def _front_matter_problems(card_md: str, cites: dict[str, dict[str, Any]]) -> list[str]:
    """The model card's ``model-index`` values against the citations their names give."""
    import yaml

    if not card_md.startswith("---\n") or "\n---" not in card_md[4:]:
        return ["model_card.md: no YAML front matter (model-index); run `medlab audit` again"]
    try:
        meta = yaml.safe_load(card_md[4 : card_md.index("\n---", 4)]) or {}
    except yaml.YAMLError as exc:
        return [f"model_card.md: the front matter is not YAML ({exc}); run `medlab audit` again"]
    problems = []
    for model in meta.get("model-index") or []:
        for res in model.get("results") or []:
            for metric in res.get("metrics") or []:
                m = re.search(r"\[(C\d+)\]", str(metric.get("name", "")))
                c = cites.get(m[1]) if m else None
                if c is None:
                    problems.append(
                        f"model_card.md: model-index metric {metric.get('name')!r} names no "
                        "known citation [C<k>]; run `medlab audit` again"
                    )
                elif not isinstance(metric.get("value"), int | float) or not math.isclose(
                    metric["value"], c["value"], rel_tol=1e-9, abs_tol=1e-12
                ):
                    problems.append(
                        f"model_card.md: model-index value {metric.get('value')!r} of "
                        f"{m[1]} differs from the citation ({c['value']})"
                    )
    # every other metadata value holds no number of its own (the cited ones are checked above)
    texts: list[str] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, str(k)))
        elif isinstance(node, list):
            for v in node:
                walk(v, path)
        elif path[-2:] in (("metrics", "name"), ("metrics", "value")) and "model-index" in path:
            return  # checked against their citations above
        elif isinstance(node, bool) or node is None:
            return
        elif isinstance(node, int | float):
            problems.append(
                f"model_card.md: metadata {'.'.join(path)} holds the number {node!r} with no "
                "citation; run `medlab audit` again"
            )
        else:
            texts.append(str(node))

    walk(meta, ())
    problems += [
        p.replace("model_card.md front matter: line", "model_card.md front matter: value")
        for p in uncited_numbers("\n".join(texts), name="model_card.md front matter")
    ]
    return problems


def verify(folder: str | os.PathLike[str]) -> list[str]:
    """Check an audit folder against the results files it was built from; returns problems
    (empty: every number in every document is cited, and equals its recomputed value).

    * The run's results files still match the SHA-256 digests the Recorder recorded (the run's
      manifest) and the audit recorded; none is of origin unknown, none was added or removed.
    * Each citation's value is recomputed from its sources (the run's results files).
    * Each citation mark in the Markdown and HTML files names a known citation and shows its text.
    * No number in the Markdown documents lacks a citation (:func:`uncited_numbers`); the
      model card's metadata values equal their citations; each HTML page is the rendering of
      its Markdown document.
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / "citations.json").read_text(encoding="utf-8"))
        run = Path(meta["run_dir"])
        cites = {c["id"]: c for c in meta["citations"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditError(
            f"{folder} holds no readable citations.json ({exc}): it is not an audit folder "
            "written by medlab.audit; run `medlab audit` to write it"
        ) from None
    problems = []
    try:
        now_files = _check_integrity(run)
    except AuditError as exc:
        problems.append(str(exc))
        now_files = None
    files = meta.get("files")
    if not isinstance(files, dict):
        problems.append(
            "citations.json records no digests of the results files (an older medlab wrote "
            "it): run `medlab audit` again"
        )
    elif now_files is not None:
        # A file no citation reads and of no assessed notebook (e.g. the audit notebook's own
        # results, recorded after it audited its run) cannot change what the audit says; its
        # integrity is still checked against the run's manifest above.
        cited = {s.get("file") for c in cites.values() for s in c.get("sources") or []}
        assessed = {stem for stem, _ in CURRICULUM.values()}
        for f in sorted(set(files) | set(now_files)):
            if f not in cited and Path(f).stem not in assessed:
                if f in now_files and now_files[f][0] != RECORDED:
                    added = " was added after the audit was written;" if f not in files else ":"
                    problems.append(
                        f"{f}{added} {UNKNOWN} (the run's manifest does not list it); re-run "
                        "its notebook to record it"
                    )
                continue
            if f not in now_files:
                problems.append(
                    f"{f} is gone since the audit was written; run `medlab audit` again"
                )
            elif f not in files:
                problems.append(
                    f"{f} was added after the audit was written; run `medlab audit` again"
                )
            elif now_files[f][1] != files[f].get("sha256"):
                problems.append(
                    f"{f} changed since the audit was written (SHA-256 {now_files[f][1]}); run "
                    "`medlab audit` again"
                )
            elif now_files[f][0] != RECORDED:
                problems.append(
                    f"{f}: {UNKNOWN} (the run's manifest does not list it), so its numbers are "
                    "not verified; re-run its notebook to record them"
                )
    for c in cites.values():
        outside = [
            s.get("file")
            for s in c.get("sources") or []
            if now_files and s.get("file") not in now_files
        ]
        if outside:
            problems.append(
                f"{c['id']}: cites {outside[0]!r}, which is not a results file of the run"
            )
            continue
        try:
            xs = [
                float(_pointer_get(json.loads((run / s["file"]).read_text()), s["pointer"]))
                for s in c["sources"]
            ]
            now = _apply(c["op"], xs)
        except (OSError, KeyError, IndexError, ValueError, TypeError) as exc:
            problems.append(f"{c['id']}: cannot recompute from its sources ({exc})")
            continue
        if fmt(now) != c["shown"] or not math.isclose(now, c["value"], rel_tol=1e-9, abs_tol=1e-12):
            problems.append(f"{c['id']}: shows {c['shown']}, results give {fmt(now)}")
    texts = {}
    for name in ("audit_report.md", "model_card.md", "audit_report.html", "model_card.html"):
        try:
            texts[name] = text = (folder / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{name}: cannot be read ({exc}); run `medlab audit` again")
            continue
        pattern = CITATION_HTML_RE if name.endswith(".html") else CITATION_RE
        for m in pattern.finditer(text):
            c = cites.get(m["id"])
            if c is None:
                problems.append(f"{name}: cites unknown {m['id']}")
            elif m["num"] != c["shown"]:
                problems.append(f"{name}: {m['id']} shown as {m['num']}, citation is {c['shown']}")
        if name.endswith(".md"):
            units = {c.get("unit") or "" for c in cites.values()}
            problems += uncited_numbers(text, name=name, units=units)
    if "model_card.md" in texts:
        problems += _front_matter_problems(texts["model_card.md"], cites)
    if "audit_report.md" in texts and "model_card.md" in texts:
        pages = _html_pages(texts["audit_report.md"], texts["model_card.md"])
        for name, page in pages.items():
            if name in texts and texts[name] != page:
                problems.append(
                    f"{name} is not the rendering of its Markdown document (edited by hand?); "
                    "run `medlab audit` again"
                )
    return problems


def audit(
    run_dir: str | os.PathLike[str] | None = None, *, folder: str | os.PathLike[str] | None = None
) -> tuple[Audit, dict[str, Path]]:
    """:func:`build` then :func:`write`; returns the audit and the written paths."""
    a = build(run_dir)
    return a, write(a, folder)
