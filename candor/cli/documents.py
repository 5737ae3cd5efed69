"""`candor ask FILE… QUESTION` and `candor summarize FILE`: documents from the command line.

ask: the files are read (PDF, DOCX, HTML, Markdown, CSV, text), put into the model's window
whole or as retrieved passages, and the answer is printed with the sources it cites.
summarize: map-reduce over chunks for documents longer than the window, with progress bars.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import sys
from pathlib import Path

import click
from tqdm import tqdm

from candor.chat.render import Message
from candor.chat.service import ChatParams, check_max_tokens, stream_chat
from candor.cli.common import handle_errors, make_hub
from candor.documents.blocks import DocumentInput
from candor.documents.cite import citer_for, content_blocks
from candor.documents.errors import DocumentError
from candor.documents.extract import Document, extract
from candor.documents.place import place
from candor.documents.summarize import CHUNK_TOKENS
from candor.documents.summarize import summarize as summarize_document
from candor.engine.base import TextDelta


def read_file(path: str) -> Document:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read {path}: {exc.strerror or exc}", field="file") from None
    try:
        return extract(data, mimetypes.guess_type(p.name)[0], p.name, where=p.name)
    except DocumentError as exc:
        raise DocumentError(exc.message, field=None) from None


def where_cited(c: dict, names: list[str]) -> str:
    name = names[c["document_index"]]
    if c["type"] == "page_location":
        return f"{name}, page {c['start_page_number']}"
    if c["type"] == "content_block_location":
        return f"{name}, block {c['start_block_index']}"
    return f"{name}, characters {c['start_char_index']}-{c['end_char_index']}"


@click.command()
@click.argument("args", nargs=-1, required=True, metavar="FILE... QUESTION")
@click.option("--model", "model_name", default=None, help="Registry name (default: the first entry).")
@click.option("--max-tokens", type=int, default=256, show_default=True, help="Most tokens to generate.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 is greedy.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer, citations and placement as JSON.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def ask(args, model_name, max_tokens, temperature, as_json, models_file):
    """Answer QUESTION about the FILEs, citing the passages that support the answer."""
    if len(args) < 2:
        raise DocumentError("give at least one FILE and then the QUESTION", field="args")
    *paths, question = args
    docs = [read_file(p) for p in tqdm(paths, desc="reading", unit="file", disable=len(paths) < 2, file=sys.stderr)]
    names = [Path(p).name for p in paths]
    inputs = [DocumentInput(i, 0, d, names[i], None, True) for i, d in enumerate(docs)]
    hub = make_hub(models_file)
    name = model_name or hub.registry.default_name()
    params = ChatParams(max_tokens=max_tokens, temperature=temperature)
    params.validate(hub.registry.get(name))

    async def run() -> dict:
        model = await hub.get(name)
        try:
            check_max_tokens(model.entry, max_tokens)
            click.echo(f"indexing {sum(len(d.text) for d in docs)} characters…", err=True)
            messages, placements = await place(model, [Message("user", question)], None, inputs, max_tokens)
            parts = []
            async for event in stream_chat(model, messages, None, params):
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    if not as_json:
                        sys.stdout.write(event.text)
                        sys.stdout.flush()
        finally:
            await hub.close()
        text = "".join(parts)
        citer = citer_for(placements)
        segments = await asyncio.to_thread(citer.segments, text) if citer else []
        return {"model": name, "text": text, "content": content_blocks(segments),
                "documents": [pl.report() for pl in placements]}

    result = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    click.echo()
    for pl in result["documents"]:
        how = "whole" if pl["mode"] == "whole" else \
            f"{len(pl['passages'])} of {pl['passages_total']} passages retrieved"
        click.echo(f"({pl['title']}: {how})", err=True)
    cited = [c for block in result["content"] for c in block.get("citations", [])]
    if cited:
        click.echo("\nSources:")
        for n, c in enumerate(cited, start=1):
            click.echo(f"[{n}] {where_cited(c, names)}: \"{c['cited_text']}\"")


@click.command()
@click.argument("path", metavar="FILE")
@click.option("--model", "model_name", default=None, help="Registry name (default: the first entry).")
@click.option("--max-tokens", type=int, default=300, show_default=True, help="Most tokens of the final summary.")
@click.option("--chunk-tokens", type=int, default=CHUNK_TOKENS, show_default=True,
              help="Most prompt tokens per model call; longer documents are summarised part by part.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and the part summaries as JSON.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def summarize(path, model_name, max_tokens, chunk_tokens, as_json, models_file):
    """Summarise FILE; documents longer than the window are summarised part by part, then together."""
    doc = read_file(path)
    hub = make_hub(models_file)
    name = model_name or hub.registry.default_name()
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc="summarising parts" if stage == "map" else "combining",
                                     unit="part", file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    async def run():
        model = await hub.get(name)
        try:
            check_max_tokens(model.entry, max_tokens)
            return await summarize_document(model, doc, max_tokens, chunk_tokens, progress=progress)
        finally:
            await hub.close()

    result = asyncio.run(run())
    if as_json:
        click.echo(json.dumps({"model": name, "mode": result.mode, "summary": result.text, "parts": [
            {"label": c.label(), "start_char_index": c.start, "end_char_index": c.end,
             "pages": list(c.pages) if c.pages else None, "summary": c.summary} for c in result.chunks]},
            ensure_ascii=False))
        return
    click.echo(result.text)
    if result.chunks:
        click.echo("\nParts:")
        for c in result.chunks:
            click.echo(f"[{c.label()}] {c.summary}")
