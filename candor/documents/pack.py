"""Putting documents into the prompt: whole when everything fits the model's window, otherwise
the passages that best match the question, each with a citation handle, within a token budget.

`pack` never claims more than it did: each `Placement` says whether its document went in whole
or which passages were retrieved, and the API reports exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html import escape

from candor.documents.blocks import DocumentInput
from candor.documents.errors import DocumentError
from candor.documents.index import IndexCache, PassageIndex, default_cache
from candor.documents.passages import Passage

# Retrieved passages fill at most max(RETRIEVED_TOKENS, window / 8) tokens. On the embedded 135M
# model's 8K window that is 1,200 tokens (about seven passages): it answers better from a few focused
# passages than from a full window of loosely related text, and a CPU prefill of 1,200 tokens keeps
# the time to first token to a few seconds (benchmarks/documents.py: recall@5 of the needle passage
# was 1.0). A model with a 100K window gets 12,500 tokens of passages when a document exceeds it.
RETRIEVED_TOKENS = 1200
MIN_ROOM = 32  # fewer free tokens than this for passages: refuse rather than answer from nothing
Measure = Callable[[dict[int, str]], Awaitable[int]]  # documents text per message -> prompt tokens
Count = Callable[[str], Awaitable[int]]


@dataclass
class Placement:
    input: DocumentInput
    mode: str  # "whole" | "retrieved"
    index: PassageIndex
    passages: list[Passage]  # what the prompt holds, in document order
    cached: bool = False  # the index was already built before this request
    ranks: dict[int, float] = field(default_factory=dict)  # passage -> fused retrieval score

    def report(self) -> dict:
        d = self.input
        out: dict = {"index": d.index, "title": d.title, "kind": d.doc.kind, "mode": self.mode,
                     "characters": len(d.doc.text), "passages_total": len(self.index.passages)}
        if d.doc.empty_pages:
            out["pages_without_text"] = list(d.doc.empty_pages)
        if self.mode == "retrieved":
            out["retrieval"] = "bm25+embeddings" if self.index.dense else "bm25"
            out["index_cached"] = self.cached
            out["passages"] = [_passage_report(d, p, self.ranks.get(p.index)) for p in self.passages]
        return out


def _passage_report(d: DocumentInput, p: Passage, score: float | None) -> dict:
    out: dict = {"passage": p.index, "start_char_index": p.start, "end_char_index": p.end}
    if d.doc.kind == "pdf":
        out["page_number"] = p.unit
    elif d.doc.kind == "content":
        out["block_index"] = p.unit
    if score is not None:
        out["score"] = round(score, 5)
    return out


def _head(d: DocumentInput, extra: str = "") -> list[str]:
    lines = [f'<document index="{d.index + 1}"{extra}>']
    if d.title:
        lines.append(f"<source>{escape(d.title)}</source>")
    if d.context:
        lines.append(f"<context>{escape(d.context)}</context>")
    return lines


def render_whole(d: DocumentInput) -> str:
    return "\n".join(_head(d) + ["<document_content>", d.doc.text, "</document_content>", "</document>"])


def render_passage(d: DocumentInput, p: Passage, text: str) -> str:
    where = f' page="{p.unit}"' if d.doc.kind == "pdf" else ""
    return f'<passage id="{d.index + 1}.{p.index + 1}"{where}>\n{text}\n</passage>'


def render_retrieved(pl: Placement) -> str:
    d, total = pl.input, len(pl.index.passages)
    head = _head(d, f' passages="{len(pl.passages)} of {total}, retrieved for the question"')
    body = [render_passage(d, p, pl.index.text(p)) for p in pl.passages]
    return "\n".join(head + body + ["</document>"])


def prefixes(placements: list[Placement]) -> dict[int, str]:
    out: dict[int, list[str]] = {}
    for pl in placements:
        text = render_whole(pl.input) if pl.mode == "whole" else render_retrieved(pl)
        out.setdefault(pl.input.message, []).append(text)
    return {m: "\n\n".join(texts) for m, texts in out.items()}


async def pack(inputs: list[DocumentInput], question: str, window: int, measure: Measure, count: Count,
               cache: IndexCache | None = None, limit: int | None = None) -> list[Placement]:
    """Placements for `inputs` so that the whole prompt takes at most `window` tokens (the context
    window less max_tokens); retrieved passages take at most `limit` tokens (see RETRIEVED_TOKENS)."""
    cache = cache or default_cache()
    indexes = [await asyncio.to_thread(cache.get, d.doc) for d in inputs]
    whole = [Placement(d, "whole", ix, list(ix.passages), hit) for d, (ix, hit) in zip(inputs, indexes)]
    if await measure(prefixes(whole)) <= window:
        return whole
    placements = [Placement(d, "retrieved", ix, [], hit) for d, (ix, hit) in zip(inputs, indexes)]
    room = window - await measure(prefixes(placements))
    if room < MIN_ROOM:
        raise DocumentError(f"the conversation leaves {max(room, 0)} tokens of the context window for document "
                            f"passages; shorten it or lower max_tokens", field="messages")
    budget = min(room, limit if limit is not None else max(RETRIEVED_TOKENS, window // 8))
    ranked: list[tuple[float, int, int]] = []  # (-score, document, passage)
    for k, pl in enumerate(placements):
        for i, score in await asyncio.to_thread(pl.index.search, question, cache.stats):
            pl.ranks[i] = score
            ranked.append((-score, k, i))
    ranked.sort()
    chosen: list[tuple[int, int]] = []
    used = 0
    for _, k, i in ranked[:400]:
        if budget - used < 16:
            break
        pl = placements[k]
        cost = await count(render_passage(pl.input, pl.index.passages[i], pl.index.texts[i])) + 1
        if used + cost <= budget:
            chosen.append((k, i))
            used += cost
    while True:
        for pl in placements:
            pl.passages = []
        for k, i in chosen:
            placements[k].passages.append(placements[k].index.passages[i])
        for pl in placements:
            pl.passages.sort(key=lambda p: p.index)
        if not chosen or await measure(prefixes(placements)) <= window:
            return placements
        chosen.pop()  # the estimate was short (tokens merge across joins): drop the weakest passage
