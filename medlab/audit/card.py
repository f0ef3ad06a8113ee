"""The model card: Hugging Face format (YAML metadata with a ``model-index``, then Markdown),
rendered from ``templates/card.md.j2``; its citation marks link to the audit report next to it."""

from __future__ import annotations

from importlib import resources
from typing import Any

from medlab.audit.assemble import Audit
from medlab.audit.citations import UNKNOWN, Citation
from medlab.audit.framework import INTENDED_USE, OUT_OF_SCOPE
from medlab.audit.markup import _c, _links, _mark, _metric, _t

__all__ = ["card_markdown", "CARD_TEMPLATE"]

#: The template of the model card (Jinja2, rendered by ``huggingface_hub.ModelCard``).
CARD_TEMPLATE = (
    resources.files("medlab.audit").joinpath("templates/card.md.j2").read_text(encoding="utf-8")
)
_REPORT = "audit_report.md"
_NAME = "medlab curriculum SmallCNN"


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


def _area(a: Audit, i: str) -> dict[str, Any]:
    return next(x for x in a.areas if x["id"] == i)


def _rows(a: Audit, i: str, limit: int = 8) -> str:
    """The first ``limit`` rows of an area as a list, linking to the report for the rest."""
    x = _area(a, i)
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
        lines + ([f"- ... {more} more in the [audit report]({_REPORT}#{i})"] if more > 0 else [])
    )


def _training_data(a: Audit) -> str:
    training = []
    for d in a.datasets:
        size = " / ".join(_mark(c, _REPORT) if c else "?" for c in d["sizes"].values())
        training.append(
            f"- **{_t(d['dataset'])}** ("
            f"{'official' if d['official'] else '**unofficial** copy'}; "
            f"md5 {_c(d['md5'])}, {_t(d['md5_now'])}): train / val / test {size} images; "
            f"{_t(d['card'].get('modality', ''))}, {_t(d['card'].get('license', ''))}"
        )
    return "\n".join(training) or "No dataset recorded."


def _data_sentence(a: Audit) -> str:
    """Whether the numbers come from official data files, and which are of origin unknown."""
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
    return unoff


def _summary(a: Audit) -> str:
    not_run = (
        f"Not run in this run (not assessed): {', '.join(a.not_run)}."
        if a.not_run
        else "Every curriculum notebook ran."
    )
    return (
        f"A small convolutional network (GroupNorm) trained by the medlab "
        f"curriculum, documented from the results of run {_c(a.run_dir.name)} ({a.mode} mode). "
        f"{not_run} {_data_sentence(a)} Every number links to the [audit report]({_REPORT}), "
        "which names the notebook and results file it came from."
    )


def _sections(a: Audit) -> dict[str, str]:
    """The text of each section of :data:`CARD_TEMPLATE`."""
    gaps = sorted({g for d in a.datasets for g in d["card"].get("known_gaps", [])})
    return dict(
        model_name=_NAME,
        model_summary=_summary(a),
        developers="medlab curriculum (generated by `medlab.audit`)",
        model_type="image classifier (binary or multi-class), 28x28 MedMNIST images",
        license="MIT (code); data under the datasets' licences",
        run=_c(a.run_dir),
        direct_use=INTENDED_USE,
        out_of_scope_use=OUT_OF_SCOPE,
        bias_risks_limitations=_rows(a, "subgroups")
        + "\n\nKnown gaps of the data:\n\n"
        + "\n".join(f"- {_t(g)}" for g in gaps),
        training_data=_training_data(a),
        testing_data="The test split of each dataset above; metrics: ROC AUC and accuracy "
        "(`medlab.metrics`), per-group gaps, epsilon, attack AUC, ECE, deferral, size, latency.",
        results=_rows(a, "performance"),
        trust="\n\n".join(
            f"**{_area(a, i)['title']}**\n\n{_rows(a, i, 6)}"
            for i in ("privacy", "robustness", "calibration", "explanations")
        ),
        cost=_rows(a, "cost"),
        more_information=f"Audit report: [{_REPORT}]({_REPORT}); citations: "
        "[citations.json](citations.json).",
    )


def card_markdown(a: Audit) -> str:
    """The model card (Hugging Face format: YAML metadata with model-index, then Markdown);
    its citation marks link to the audit report next to it."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        model_name=_NAME,
        license="mit",
        library_name="pytorch",
        tags=["medical-imaging", "medmnist", "education", "trustworthy-ai", "audit"],
        datasets=[f"medmnist/{d['dataset']}" for d in a.datasets],
        metrics=["roc_auc", "accuracy"],
        eval_results=_eval_results(a) or None,
    )
    card = ModelCard.from_template(data, template_str=CARD_TEMPLATE, **_sections(a))
    return str(card)
