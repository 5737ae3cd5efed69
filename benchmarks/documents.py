"""Documents: extraction speed (pypdf vs pdfplumber), ingestion (passages, BM25, MiniLM embeddings),
time to first token for a question over a ~100K-token document after ingestion, and retrieval
recall@k on a needle QA set.

    .venv/bin/python benchmarks/documents.py [--tokens 100000] [--pages 50] [--needles 20]

The documents are generated here (seeded filler prose and needle sentences), so no data set is
needed. pdfplumber is measured only when it is installed (pip install pdfplumber); it is not a
Candor dependency. Goal on the 2-core CPU: TTFT under 5 s for a question after ingestion.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import platform
import random
import time

from candor.chat.render import Message
from candor.chat.service import ChatParams, stream_chat
from candor.documents.blocks import DocumentInput
from candor.documents.extract import extract, from_text
from candor.documents.index import IndexCache, PassageIndex, Stats
from candor.documents.place import place
from candor.engine.base import TextDelta
from candor.engine.hub import EngineHub
from candor.evals.longcontext import CITIES, filler
from candor.registry import load_registry


def make_pdf(pages: int) -> tuple[bytes, list[str]]:
    from fpdf import FPDF

    rng = random.Random(1)
    doc = FPDF()
    doc.set_font("Helvetica", size=11)
    paragraphs = []
    for p in range(pages):
        doc.add_page()
        for k in range(6):
            para = " ".join(filler(4, seed=rng.randrange(10**6))) + f" Clause {p}-{k}."
            paragraphs.append(para)
            doc.multi_cell(0, 5, para)
            doc.ln(2)
    return bytes(doc.output()), paragraphs


def extraction(pages: int) -> None:
    data, paragraphs = make_pdf(pages)

    def norm(s: str) -> str:
        return " ".join(s.split())

    runs = {"pypdf (Candor)": lambda: extract(data, "application/pdf").text}
    try:
        import pdfplumber

        runs["pdfplumber"] = lambda: "\n".join(p.extract_text() or "" for p in pdfplumber.open(io.BytesIO(data)).pages)
    except ImportError:
        print("pdfplumber not installed: only pypdf measured")
    print(f"\n## PDF extraction ({pages} generated pages, {len(paragraphs)} paragraphs)")
    for name, fn in runs.items():
        start = time.perf_counter()
        text = norm(fn())
        took = time.perf_counter() - start
        verbatim = sum(norm(p) in text for p in paragraphs)
        print(f"{name:16s} {pages / took:8.1f} pages/s   paragraphs found verbatim: {verbatim}/{len(paragraphs)}")


def haystack(tokens: int, count) -> str:
    per = count(" ".join(filler(200, seed=1))) / 200  # tokens per filler sentence
    sentences = filler(int(tokens / per * 0.97), seed=7)
    while count(" ".join(sentences)) < tokens:
        sentences += filler(50, seed=len(sentences))
    return " ".join(sentences)


def with_needles(text: str, n: int) -> tuple[str, list[tuple[str, str]]]:
    rng = random.Random(3)
    needles = [(CITIES[i % len(CITIES)] + (f" {i // len(CITIES) + 1}" if i >= len(CITIES) else ""),
                str(rng.randrange(1_000_000, 10_000_000))) for i in range(n)]
    words = text.split(". ")
    for city, number in needles:
        words.insert(rng.randrange(len(words)), f"The special magic number for {city} is {number}")
    return ". ".join(words), needles


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--needles", type=int, default=20)
    args = parser.parse_args()
    print(f"# documents benchmark on {platform.machine()}, {platform.python_version()}")
    extraction(args.pages)

    hub = EngineHub(load_registry())
    model = await hub.get("candor-instant")
    tokenize = model.engine.tokenize  # type: ignore[attr-defined]
    text, needles = with_needles(haystack(args.tokens, lambda t: len(tokenize(t))), args.needles)
    n_tokens = len(tokenize(text))
    print(f"\n## Ingestion of a {n_tokens}-token text document ({len(text)} characters)")
    start = time.perf_counter()
    doc = from_text(text)
    index = PassageIndex(doc)
    split_s = time.perf_counter() - start
    stats = Stats()
    start = time.perf_counter()
    index.vectors(stats)
    embed_s = time.perf_counter() - start
    print(f"passages + BM25 index: {split_s:.2f} s ({n_tokens / split_s:,.0f} tokens/s), {len(index.passages)} passages")
    print(f"MiniLM embeddings:     {embed_s:.1f} s ({len(index.passages) / embed_s:.1f} passages/s, "
          f"{n_tokens / embed_s:,.0f} tokens/s)")

    print(f"\n## Retrieval recall@k over {len(needles)} needles ('What is the special magic number for X?')")
    ks = (1, 3, 5, 10)
    found = {"bm25": dict.fromkeys(ks, 0), "fused": dict.fromkeys(ks, 0)}
    for city, number in needles:
        question = f"What is the special magic number for {city}?"
        target = next(p.index for p in index.passages if number in index.text(p))
        lexical = index.bm25_scores(question).argsort()[::-1].tolist()
        fused = [i for i, _ in index.search(question)]
        for k in ks:
            found["bm25"][k] += target in lexical[:k]
            found["fused"][k] += target in fused[:k]
    for name, hits in found.items():
        print(f"{name:6s} " + "  ".join(f"recall@{k}={hits[k] / len(needles):.2f}" for k in ks))

    print("\n## Time to first token, question over the document after ingestion (candor-instant)")
    cache = IndexCache()
    cache._items[index.key] = index  # the ingested index, as a server holds it after the first question
    import candor.documents.index as index_module

    index_module._default = cache
    for city, number in needles[:3]:
        d = DocumentInput(0, 0, doc, None, None, True)
        start = time.perf_counter()
        messages, placements = await place(model, [Message("user", f"What is the special magic number for {city}?")],
                                           None, [d], 32)
        placed_s = time.perf_counter() - start
        first = None
        answer = []
        async for event in stream_chat(model, messages, None, ChatParams(max_tokens=32, temperature=0)):
            if isinstance(event, TextDelta):
                first = first or time.perf_counter()
                answer.append(event.text)
        ttft = (first or time.perf_counter()) - start
        prompt = await model.engine.count_tokens(messages[0].content)
        print(f"{city:12s} TTFT {ttft:5.2f} s (retrieval+packing {placed_s:.2f} s, prompt {prompt} tokens, "
              f"{len(placements[0].passages)} passages)  answer has the number: {number in ''.join(answer)}")
    await hub.close()


if __name__ == "__main__":
    asyncio.run(main())
