"""Citations chosen on the server, because the embedded 135M model does not cite reliably itself.

How a citation is chosen: the answer is cut into sentences (the same way whether it arrives whole
or streamed). For each answer sentence with at least two content words, every sentence of the
document text the model was shown (the whole document, or the retrieved passages) is scored by
lexical support: the share of the answer sentence's content words it contains. The eight best are
re-scored with MiniLM embeddings, support = (lexical + cosine) / 2, and the best one is cited when
its lexical share is at least MIN_LEXICAL and its support at least MIN_SUPPORT (without embeddings:
lexical share at least MIN_SUPPORT alone). A document sentence never supports an answer sentence
with a number it does not contain itself (as digits or as words up to ninety-nine), so "30 goats"
is not cited to "forty-two goats", nor one naming someone (a capitalised word after the first) it
does not name. Uncited sentences stay plain text. A citation therefore
says "this passage of the document supports this sentence of the answer" by measured overlap; it
does not prove the model read it there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from candor.documents.blocks import DocumentInput
from candor.documents.pack import Placement
from candor.documents.passages import _BREAK, Span

MIN_LEXICAL = 0.34
MIN_SUPPORT = 0.55
SHORTLIST = 8
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset("""a an and are as at be but by for if in into is it no not of on or such that the their then
there these they this to was will with what when where which who whom why how does do did has have had i you he
she we its from than so can could would should may might also very just our your his her them been being about
""".split())  # noqa: SIM905


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = {w: 10 * (i + 2) for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                                                "ninety"])}
# a lone "one" is more often a pronoun ("the one who…") than a number, so it is not read as 1
_NUMBER_WORDS = re.compile(r"\b(" + "|".join(_TENS) + r")(?:[- ](" + "|".join(_UNITS[1:10]) + r"))?\b|\b("
                           + "|".join(u for u in _UNITS if u != "one") + r")\b", re.IGNORECASE)


def numbers(text: str) -> frozenset[str]:
    """The numbers a text states, as digits: "1,250" -> "1250", "forty-two" -> "42"."""
    found = {m.group().replace(",", "") for m in _NUMBER.finditer(text)}
    for m in _NUMBER_WORDS.finditer(text):
        tens, unit, small = m.group(1), m.group(2), m.group(3)
        if small:
            found.add(str(_UNITS.index(small.lower())))
        else:
            found.add(str(_TENS[tens.lower()] + (_UNITS.index(unit.lower()) if unit else 0)))
    return frozenset(found)


def names(text: str) -> set[str]:
    """Capitalised words after a sentence's first word (names, places), lower-cased."""
    words = [m.group() for m in _WORD.finditer(text)]
    return {w.lower() for w in words[1:] if w[:1].isupper() and w.lower() not in _STOP and len(w) > 1}


def content_words(text: str) -> set[str]:
    return {w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in _STOP and len(w) > 1}


@dataclass(frozen=True)
class Candidate:
    input: DocumentInput
    span: Span
    unit: int | None
    words: frozenset[str]
    numbers: frozenset[str]


@dataclass
class Segment:
    text: str
    citations: list[dict] = field(default_factory=list)


def segments_of(text: str) -> list[str]:
    """The answer cut after each sentence break; the pieces join back to `text` exactly."""
    out, pos = [], 0
    for match in _BREAK.finditer(text):
        if match.end() > pos:
            out.append(text[pos:match.end()])
            pos = match.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def wire_citation(c: Candidate) -> dict:
    """The citation object of the Anthropic API for a supporting sentence."""
    d, doc = c.input, c.input.doc
    unit = c.unit if c.unit is not None else 0  # set for pages and blocks, the only kinds that use it
    base = {"document_index": d.index, "document_title": d.title, "file_id": d.file_id}
    if d.citation_type == "page_location":
        return {"type": "page_location", "cited_text": doc.text[c.span.start:c.span.end], **base,
                "start_page_number": unit, "end_page_number": unit + 1}
    if d.citation_type == "content_block_location":
        block = doc.units[unit]
        return {"type": "content_block_location", "cited_text": doc.text[block.start:block.end], **base,
                "start_block_index": unit, "end_block_index": unit + 1}
    return {"type": "char_location", "cited_text": doc.text[c.span.start:c.span.end], **base,
            "start_char_index": c.span.start, "end_char_index": c.span.end}


class Citer:
    """Picks citations for answer text, whole (`segments`) or streamed (`feed` then `flush`)."""

    def __init__(self, placements: list[Placement], encoder=None):
        self.encoder = encoder
        self.candidates = [Candidate(pl.input, s, p.unit, frozenset(content_words(pl.input.doc.text[s.start:s.end])),
                                     numbers(pl.input.doc.text[s.start:s.end]))
                           for pl in placements if pl.input.citations for p in pl.passages for s in p.sentences]
        self._vectors: dict[int, np.ndarray] = {}
        self._buffer = ""

    def support(self, sentence: str) -> Candidate | None:
        words = content_words(sentence)
        if len(words) < 2 or not self.candidates:
            return None
        stated, named = numbers(sentence), names(sentence)
        lexical = [(len(words & c.words) / len(words), k) for k, c in enumerate(self.candidates)
                   if stated <= c.numbers and named <= c.words]
        lexical.sort(key=lambda t: -t[0])
        shortlist = [(share, k) for share, k in lexical[:SHORTLIST] if share >= MIN_LEXICAL]
        if not shortlist:
            return None
        if self.encoder is None:
            share, k = shortlist[0]
            return self.candidates[k] if share >= MIN_SUPPORT else None
        missing = [k for _, k in shortlist if k not in self._vectors]
        texts = [sentence] + [self._text(k) for k in missing]
        vectors = self.encoder.encode(texts)
        for k, v in zip(missing, vectors[1:]):
            self._vectors[k] = v
        scored = [((share + float(vectors[0] @ self._vectors[k])) / 2, k) for share, k in shortlist]
        best, k = max(scored, key=lambda t: t[0])
        return self.candidates[k] if best >= MIN_SUPPORT else None

    def _text(self, k: int) -> str:
        c = self.candidates[k]
        return c.input.doc.text[c.span.start:c.span.end]

    def cite(self, piece: str) -> Segment:
        found = self.support(piece)
        return Segment(piece, [wire_citation(found)] if found else [])

    def segments(self, text: str) -> list[Segment]:
        return [self.cite(piece) for piece in segments_of(text)]

    def feed(self, delta: str) -> Iterator[Segment]:
        """Segments completed by `delta`: a sentence is complete once text follows its break."""
        self._buffer += delta
        pieces = segments_of(self._buffer)
        if len(pieces) > 1 and self._buffer[len("".join(pieces[:-1])):].strip():
            done, self._buffer = pieces[:-1], pieces[-1]
            for piece in done:
                yield self.cite(piece)

    def flush(self) -> Iterator[Segment]:
        if self._buffer:
            piece, self._buffer = self._buffer, ""
            yield self.cite(piece)


def citer_for(placements: list[Placement]) -> Citer | None:
    """A citer with the shared MiniLM encoder when any document asked for citations."""
    if not any(pl.input.citations for pl in placements):
        return None
    from candor.documents.index import dense_encoder

    return Citer(placements, dense_encoder())


def content_blocks(segments: list[Segment]) -> list[dict]:
    """Text blocks of a response: each cited sentence its own block, uncited stretches merged."""
    blocks: list[dict] = []
    for seg in segments:
        if not seg.citations and blocks and "citations" not in blocks[-1]:
            blocks[-1]["text"] += seg.text
        elif seg.citations:
            blocks.append({"type": "text", "text": seg.text, "citations": seg.citations})
        else:
            blocks.append({"type": "text", "text": seg.text})
    return blocks
