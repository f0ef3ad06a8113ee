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

Modules: :mod:`~medlab.audit.collect` (which run, its results files),
:mod:`~medlab.audit.integrity` (the run's manifest), :mod:`~medlab.audit.citations` (cited
numbers), :mod:`~medlab.audit.framework` (areas and checklist), :mod:`~medlab.audit.assemble`
(:func:`build`), :mod:`~medlab.audit.report` and :mod:`~medlab.audit.card` (the documents, from
``templates/*.md.j2``), :mod:`~medlab.audit.render` (HTML), :mod:`~medlab.audit.output`
(:func:`write`), :mod:`~medlab.audit.uncited` and :mod:`~medlab.audit.verification`
(:func:`verify`).
"""

from medlab.audit.assemble import Audit, build
from medlab.audit.card import CARD_TEMPLATE, card_markdown
from medlab.audit.citations import (
    CITATION_HTML_RE,
    CITATION_RE,
    OPS,
    RECORDED,
    UNKNOWN,
    Citation,
    fmt,
)
from medlab.audit.collect import AuditError, resolve_run
from medlab.audit.framework import (
    AREAS,
    CHECKLIST,
    CURRICULUM,
    FILES,
    HCM_THREAD,
    INTENDED_USE,
    OUT_OF_SCOPE,
    Area,
    hcm_thread,
)
from medlab.audit.output import audit, write
from medlab.audit.render import to_html
from medlab.audit.report import report_markdown
from medlab.audit.uncited import STRUCTURAL, uncited_numbers
from medlab.audit.verification import verify
from medlab.stats import Z95, hanley_mcneil_interval, wilson_interval

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
    "Z95",
    "CURRICULUM",
    "HCM_THREAD",
    "hcm_thread",
    "AREAS",
    "CHECKLIST",
    "FILES",
    "CITATION_RE",
    "CITATION_HTML_RE",
    "Area",
    "OPS",
    "RECORDED",
    "UNKNOWN",
    "INTENDED_USE",
    "OUT_OF_SCOPE",
    "CARD_TEMPLATE",
    "report_markdown",
    "card_markdown",
    "to_html",
]
