"""Summaries of documents of any length: map over chunks that fit the window, then reduce.

A document that fits goes to the model whole. A longer one is cut into chunks of whole passages
(so each chunk keeps its pages or character range), each chunk is summarised (map), and the
chunk summaries, labelled with where they come from, are summarised together (reduce), again in
groups when they do not fit at once. The chunk summaries are returned with their spans, so every
part of the final summary can be traced to the pages it came from.

Each model call goes through `ask` (prompt, max_tokens) -> text: by default straight to the
model (the CLI); the chat page passes one that admits, moderates and meters every call like a
page answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from candor.chat.render import Message
from candor.chat.service import ChatParams, stream_chat
from candor.documents.extract import Document
from candor.documents.passages import Passage, split
from candor.engine.base import TextDelta
from candor.engine.hub import LoadedModel

MAP_PROMPT = "Summarise this part of a document in two or three sentences. Keep names, numbers and dates.\n\n{text}"
REDUCE_PROMPT = ("Below are summaries of consecutive parts of one document. Write a structured summary of the "
                 "whole document: one overview sentence, then the key points as a bulleted list.\n\n{text}")
# Prompt tokens per model call. The embedded 135M model summarises a short text far better than a
# full 8K window (and a CPU prefill of 2K tokens takes seconds); a GPU model with a long window can
# be given more (candor summarize --chunk-tokens), up to its window.
CHUNK_TOKENS = 2000
Progress = Callable[[str, int, int], None]  # (stage, done, total)
Ask = Callable[[str, int], Awaitable[str]]  # (prompt, max_tokens) -> the answer's text


@dataclass(frozen=True)
class ChunkSummary:
    start: int  # character span of the document the chunk covers
    end: int
    pages: tuple[int, int] | None  # first and last page (PDF)
    summary: str

    def label(self) -> str:
        if self.pages:
            a, b = self.pages
            return f"pages {a}-{b}" if a != b else f"page {a}"
        return f"characters {self.start}-{self.end}"


@dataclass(frozen=True)
class Summary:
    text: str
    mode: str  # "whole" | "map-reduce"
    chunks: tuple[ChunkSummary, ...]


async def _answer(model: LoadedModel, prompt: str, max_tokens: int) -> str:
    params = ChatParams(max_tokens=max_tokens, temperature=0)
    parts = [e.text async for e in stream_chat(model, [Message("user", prompt)], None, params)
             if isinstance(e, TextDelta)]
    return "".join(parts).strip()


async def _chunks(model: LoadedModel, doc: Document, budget: int) -> list[list[Passage]]:
    chunks: list[list[Passage]] = [[]]
    used = 0
    for p in split(doc):
        cost = await model.engine.count_tokens(doc.text[p.start:p.end]) + 2
        if chunks[-1] and used + cost > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(p)
        used += cost
    return chunks


async def summarize(model: LoadedModel, doc: Document, max_tokens: int = 300, chunk_tokens: int = CHUNK_TOKENS,
                    progress: Progress | None = None, ask: Ask | None = None) -> Summary:
    """`chunk_tokens` bounds every call's prompt (and the model's window less max_tokens bounds it too)."""

    async def direct(prompt: str, limit: int) -> str:
        return await _answer(model, prompt, limit)

    ask = ask or direct
    window = min(model.entry.context_window - max_tokens - 64, chunk_tokens)  # 64: chat format
    count = model.engine.count_tokens
    if await count(REDUCE_PROMPT.format(text=doc.text)) <= window:
        text = await ask(REDUCE_PROMPT.replace("summaries of consecutive parts of one document",
                                                "a document").format(text=doc.text), max_tokens)
        return Summary(text, "whole", ())
    chunks = await _chunks(model, doc, window - 64)  # 64: the map prompt's own words
    summaries: list[ChunkSummary] = []
    for i, chunk in enumerate(chunks):
        if progress:
            progress("map", i, len(chunks))
        text = doc.text[chunk[0].start:chunk[-1].end]
        first, last = chunk[0].unit, chunk[-1].unit
        pages = (first, last) if first is not None and last is not None else None
        summaries.append(ChunkSummary(chunk[0].start, chunk[-1].end, pages,
                                      await ask(MAP_PROMPT.format(text=text), max_tokens // 2)))
    if progress:
        progress("map", len(chunks), len(chunks))
    layer = [f"[{s.label()}] {s.summary}" for s in summaries]
    rounds = 0
    while True:
        joined = "\n\n".join(layer)
        if await count(REDUCE_PROMPT.format(text=joined)) <= window or len(layer) == 1:
            if progress:
                progress("reduce", 0, 1)
            final = await ask(REDUCE_PROMPT.format(text=joined), max_tokens)
            if progress:
                progress("reduce", 1, 1)
            return Summary(final, "map-reduce", tuple(summaries))
        rounds += 1
        # reduce in groups that fit, then summarise the group summaries
        groups: list[list[str]] = []
        group: list[str] = []
        used = 0
        for item in layer:
            cost = await count(item) + 2
            if group and used + cost > window:
                groups.append(group)
                group, used = [], 0
            group.append(item)
            used += cost
        groups.append(group)
        layer = [f"[part {rounds}.{k + 1}] " + await ask(REDUCE_PROMPT.format(text="\n\n".join(g)), max_tokens // 2)
                 for k, g in enumerate(groups)]
