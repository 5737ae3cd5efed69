"""Sentences and passages as spans of a document's text, never copies, so every citation's
`cited_text` is `text[start:end]`: a verbatim span of what was sent or extracted.

Passages group whole sentences up to a target size and never cross a page or block boundary, so
each passage belongs to exactly one page (PDF) or block (custom content). Where a passage ends
depends on the sentences themselves, not only on a running length: past half the target, a
passage also ends before an "anchor" sentence (a quarter of sentences, chosen by a hash of their
text). So an edit to one place of a document (an inserted sentence) changes only the passages
around it; the rest split identically and their cached vectors are reused.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from candor.documents.extract import Document

TARGET_CHARS = 700  # about 150 words: under MiniLM's 256 word-piece limit, small enough to pack many
MAX_SENTENCE = 400  # longer runs without punctuation (tables, CSV) are cut at a newline or space
_BREAK = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    index: int
    start: int
    end: int
    unit: int | None  # page number (PDF) or block index (content); None for plain text
    sentences: tuple[Span, ...]


def _trimmed(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if end > start else None


def _cut_long(text: str, span: Span) -> list[Span]:
    out, start = [], span.start
    while span.end - start > MAX_SENTENCE:
        limit = start + MAX_SENTENCE
        cut = text.rfind("\n", start + MAX_SENTENCE // 2, limit)
        if cut < 0:
            cut = text.rfind(" ", start + MAX_SENTENCE // 2, limit)
        cut = limit if cut < 0 else cut + 1
        piece = _trimmed(text, start, cut)
        if piece:
            out.append(piece)
        start = cut
    last = _trimmed(text, start, span.end)
    return out + ([last] if last else [])


def sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of text[start:end], whitespace trimmed, long runs cut."""
    end = len(text) if end is None else end
    out: list[Span] = []
    pos = start
    for match in _BREAK.finditer(text, start, end):
        piece = _trimmed(text, pos, match.start())
        if piece:
            out.extend(_cut_long(text, piece))
        pos = match.end()
    piece = _trimmed(text, pos, end)
    if piece:
        out.extend(_cut_long(text, piece))
    return out


def split(doc: Document, target: int = TARGET_CHARS) -> list[Passage]:
    regions: list[tuple[int | None, int, int]] = [(u.number, u.start, u.end) for u in doc.units]
    regions = regions or [(None, 0, len(doc.text))]
    passages: list[Passage] = []
    for unit, start, end in regions:
        group: list[Span] = []
        for sentence in sentences(doc.text, start, end):
            size = sentence.end - group[0].start if group else 0
            anchor = zlib.crc32(doc.text[sentence.start:sentence.end].encode("utf-8", "replace")) % 4 == 0
            if group and (size > target or (anchor and sentence.start - group[0].start >= target // 2)):
                passages.append(Passage(len(passages), group[0].start, group[-1].end, unit, tuple(group)))
                group = []
            group.append(sentence)
        if group:
            passages.append(Passage(len(passages), group[0].start, group[-1].end, unit, tuple(group)))
    return passages
