"""Citations and summaries on the chat page, as stored with an answer and rendered.

The citations themselves are chosen by candor.serving.documents, the same citer the API uses.
An answer about attachments keeps, in `chat_messages.documents` (JSON):

    citations   numbered in order of first use: the API's citation object (type, cited_text,
                document_title, file_id, pages / characters / block) plus `n` and `location`
    marks       [offset, n]: after which character of the answer each number goes
    placements  what went into the prompt, per document (whole or retrieved, which passages)

A summary keeps `summary`: the file, the mode (whole or map-reduce) and the parts it was made
from, each with its pages or characters.

Rendering: the answer's Markdown gets an unguessable placeholder at each mark, is rendered and
sanitised as every answer is, and only then is each placeholder swapped for a numbered button,
so nothing in model text can make one.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from candor.web.markdown import render_markdown


def location(c: dict[str, Any]) -> str:
    """Where a citation points, in words: "page 2", "pages 2-3", "characters 10-80", "block 1"."""
    kind = c.get("type")
    if kind == "page_location":
        first, last = c["start_page_number"], c["end_page_number"] - 1
        return f"page {first}" if first == last else f"pages {first}-{last}"
    if kind == "content_block_location":
        first, last = c["start_block_index"] + 1, c["end_block_index"]
        return f"block {first}" if first == last else f"blocks {first}-{last}"
    return f"characters {c['start_char_index']}-{c['end_char_index']}"


def _key(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c.get("document_index"), c.get("type"), c.get("cited_text"), location(c))


def record(blocks: list[dict[str, Any]], placements: list[dict[str, Any]]) -> dict[str, Any]:
    """What an answer keeps from its content blocks (candor.serving.documents.PlacedDocuments.content)."""
    citations: list[dict[str, Any]] = []
    marks: list[list[int]] = []
    numbers: dict[tuple[Any, ...], int] = {}
    pos = 0
    for block in blocks:
        text = block.get("text", "")
        pos += len(text)
        end = pos - (len(text) - len(text.rstrip()))  # after the sentence, before its trailing space
        for c in block.get("citations") or []:
            key = _key(c)
            if key not in numbers:
                numbers[key] = len(citations) + 1
                citations.append({**c, "n": numbers[key], "location": location(c)})
            if [end, numbers[key]] not in marks:
                marks.append([end, numbers[key]])
    return {"citations": citations, "marks": marks, "placements": placements}


def loads(raw: str | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {}


def _button(n: int) -> str:
    return (f'<sup class="cite-ref"><button type="button" class="cite" data-cite="{n}" '
            f'aria-label="Source {n}" aria-expanded="false">[{n}]</button></sup>')


def render(text: str, kept: dict[str, Any]) -> str:
    """The answer as sanitised HTML, with a numbered button after each cited sentence."""
    marks = sorted(kept.get("marks") or [], key=lambda m: m[0])
    if not marks:
        return render_markdown(text)
    nonce = secrets.token_hex(8)
    pieces, last = [], 0
    for end, n in marks:
        end = max(last, min(int(end), len(text)))
        pieces += [text[last:end], f"CITE{nonce}N{int(n)}X"]
        last = end
    pieces.append(text[last:])
    html = render_markdown("".join(pieces))
    for n in {int(n) for _, n in marks}:
        html = html.replace(f"CITE{nonce}N{n}X", _button(n))
    return html


def view_fields(kept: dict[str, Any]) -> dict[str, Any]:
    """What the page shows beside an answer: its citations, placements and summary parts."""
    out: dict[str, Any] = {}
    if kept.get("citations"):
        out["citations"] = kept["citations"]
    if kept.get("placements"):
        out["placements"] = [placement_note(p) for p in kept["placements"]]
    if kept.get("summary"):
        out["summary"] = kept["summary"]
    return out


def placement_note(report: dict[str, Any]) -> str:
    """One document's placement in words, e.g. "notes.txt: read whole" or "book.pdf: 7 of 120
    passages retrieved (bm25+embeddings)"."""
    title = report.get("title") or f"document {report.get('index', 0) + 1}"
    if report.get("mode") == "retrieved":
        return (f"{title}: {len(report.get('passages') or [])} of {report.get('passages_total')} passages "
                f"retrieved ({report.get('retrieval')})")
    return f"{title}: read whole"
