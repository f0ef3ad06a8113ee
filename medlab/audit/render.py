"""The HTML pages of the documents: each Markdown document rendered by mistune into a
standalone page (inline CSS; the model card's YAML front matter shown as a code block)."""

from __future__ import annotations

import html

import mistune

__all__ = ["to_html"]

_CSS = """body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;
line-height:1.45}table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}th{background:#f3f3f3}
code{background:#f6f6f6;padding:0 .2rem}sup a{text-decoration:none;font-size:.7rem}
pre{background:#f6f6f6;padding:.5rem;overflow:auto}"""


def to_html(markdown: str, title: str) -> str:
    """A standalone HTML page from the Markdown (YAML front matter shown as a code block)."""
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
