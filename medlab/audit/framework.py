"""What an audit looks for: the curriculum's notebooks, the report's areas and the checklist of
the framework, each with the record keys (by notebook number) that give its evidence, and the
HCM thread (:data:`HCM_THREAD`, :func:`hcm_thread`): the minority's gap in every lesson 03-09."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

__all__ = [
    "CURRICULUM",
    "HCM_THREAD",
    "hcm_thread",
    "FILES",
    "Area",
    "AREAS",
    "CHECKLIST",
    "INTENDED_USE",
    "OUT_OF_SCOPE",
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
#: The files :func:`medlab.audit.write` produces, relative to the run folder.
FILES = {
    "model_card.md": "audit/model_card.md",
    "model_card.html": "audit/model_card.html",
    "audit_report.md": "audit/audit_report.md",
    "audit_report.html": "audit/audit_report.html",
    "citations.json": "audit/citations.json",
}

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
            ("05", "hcm.*.tpr_gap"),
            ("05", "*.smallest_site"),
            ("06", "hcm.*.tpr_gap"),
            ("07", "hcm.*.tpr_gap"),
            ("08", "hcm.*.tpr_gap"),
            ("09", "hcm.*.tpr_gap"),
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
            ("08", "standard.strong_robust_acc.eps8"),
            ("08", "standard.weak_pgd_acc.*"),
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
            ("05", "hcm.*.tpr_gap"),
            ("06", "hcm.*.tpr_gap"),
            ("07", "hcm.*.tpr_gap"),
            ("08", "hcm.*.tpr_gap"),
            ("09", "hcm.*.tpr_gap"),
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
            ("08", "standard.strong_robust_acc.*"),
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


#: The HCM thread (issue 28): in every lesson from 03 to 09, the minority's gap (TPR of the
#: simulated majority minus TPR of the simulated minority, at the lesson's operating threshold, on
#: the test split of notebook 03's HCM scenario, 5 % minority in train/val, 50/50 in test), one
#: entry per setting: (notebook number, setting, record key).
HCM_THREAD: tuple[tuple[str, str, str], ...] = (
    ("03", "baseline", "share5.baseline.tpr_gap"),
    ("03", "reweighted training", "share5.reweight.tpr_gap"),
    ("03", "resampled training", "share5.resample.tpr_gap"),
    ("03", "group thresholds", "share5.group_thresholds.tpr_gap"),
    ("04", "biased model", "hcm.biased.tpr_gap"),
    ("04", "mitigated model", "hcm.mitigated.tpr_gap"),
    ("05", "centralised", "hcm.centralised.tpr_gap"),
    ("05", "FedAvg, label-skewed sites", "hcm.fedavg.tpr_gap"),
    ("06", "no DP", "hcm.nondp.tpr_gap"),
    ("06", "DP-SGD, epsilon 8", "hcm.eps8.tpr_gap"),
    ("06", "DP-SGD, epsilon 3", "hcm.eps3.tpr_gap"),
    ("06", "DP-SGD, epsilon 1", "hcm.eps1.tpr_gap"),
    ("07", "baseline", "hcm.baseline.tpr_gap"),
    ("07", "reweighted", "hcm.reweight.tpr_gap"),
    ("07", "real minority images added", "hcm.add_real.tpr_gap"),
    ("07", "synthetic minority images added", "hcm.add_synthetic.tpr_gap"),
    ("08", "clean images", "hcm.clean.tpr_gap"),
    ("08", "FGSM attack", "hcm.fgsm.tpr_gap"),
    ("08", "natural corruption", "hcm.corrupted.tpr_gap"),
    ("09", "model alone", "hcm.model.tpr_gap"),
    ("09", "model + clinician (deferral)", "hcm.deferral.tpr_gap"),
)
HCM_COLUMNS = ["lesson", "setting", "key", "dataset", "gap", "sd", "n_seeds", "status"]


def _thread_row(here: pd.DataFrame, number: str, setting: str, key: str) -> dict:
    """One setting of the thread from the records ``here`` (one dataset's)."""
    nb = here[here.number == number]
    vals, sds = nb.value[nb.key == key], nb.value[nb.key == key + "_sd"]
    if len(vals) > 1:  # a run with several seeds: their spread
        sd = float(vals.std(ddof=1))
    else:  # one seed: the spread the notebook recorded over its own seeds, if any
        sd = float(sds.mean()) if len(sds) else math.nan
    return {
        "lesson": CURRICULUM[number][0],
        "setting": setting,
        "key": key,
        "gap": float(vals.mean()) if len(vals) else math.nan,
        "sd": sd if len(vals) else math.nan,
        "n_seeds": len(vals),
        "status": "recorded" if len(vals) else ("not recorded" if len(nb) else "not run"),
    }


def hcm_thread(recorded: pd.DataFrame, *, datasets: Sequence[str] | None = None) -> pd.DataFrame:
    """The minority's gap in every lesson of the HCM thread (:data:`HCM_THREAD`), read from a
    run's recorded numbers (``recorded``: :func:`medlab.results.load`'s table).

    One row per dataset and setting: ``lesson`` (notebook stem), ``setting``, ``key``,
    ``dataset``, ``gap`` (mean over the run's seeds; NaN when absent), ``sd`` (sample SD over the
    run's seeds, ddof=1; with one seed the ``<key>_sd`` the notebook recorded over its own seeds;
    else NaN), ``n_seeds`` (the run's seeds that recorded it) and ``status``: ``recorded``, ``not
    run`` (the notebook has no numbers on that dataset in the run) or ``not recorded`` (it ran
    without this key: a notebook from before the thread). ``datasets``: default every dataset
    the run's notebooks 03-09 recorded numbers on, else every dataset of the run."""
    missing = {"notebook", "dataset", "key", "value"} - set(recorded.columns)
    if missing:
        raise ValueError(
            f"recorded lacks the columns {sorted(missing)}: pass medlab.results.load(run)'s table"
        )
    df = recorded.assign(number=recorded.notebook.astype(str).str.split("_").str[0])
    if datasets is None:
        thread = df[df.number.isin({n for n, _, _ in HCM_THREAD})]
        datasets = sorted((thread if len(thread) else df).dataset.astype(str).unique())
    rows = [
        {**_thread_row(df[df.dataset == ds], *entry), "dataset": ds}
        for ds in datasets
        for entry in HCM_THREAD
    ]
    return pd.DataFrame(rows, columns=HCM_COLUMNS)
