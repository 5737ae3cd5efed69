"""Documents on the Messages and Chat Completions APIs: the request's `document` blocks (or
OpenAI `file` parts) read for its caller, and citations streamed as content-block frames.
Reading, placing and citing are candor.serving.documents, which the chat page uses too.

Streaming with citations sends text a sentence at a time: a sentence's citation can be chosen
only once it is complete. Each cited sentence is its own content block (text_delta, then one
citations_delta per citation); uncited sentences run on in a plain text block.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from candor.api.context import context_of
from candor.api.sse import frame
from candor.documents.blocks import DocumentInput
from candor.documents.cite import Citer, Segment
from candor.engine.base import TextDelta
from candor.errors import InvalidRequestError
from candor.serving.documents import read_documents_of
from candor.serving.files import owner_of


def has_documents(messages: list[Any]) -> bool:
    return any(isinstance(m.content, list) and any(isinstance(b, dict) and b.get("type") == "document"
                                                   for b in m.content) for m in messages)


async def request_documents(request: Request, messages: list[Any]) -> list[DocumentInput]:
    """The request's documents, read off the event loop (PDF extraction is CPU work)."""
    if not has_documents(messages):
        return []
    return await _read(request, [(m.role, m.content) for m in messages])


async def _read(request: Request, messages: list[tuple[str, Any]]) -> list[DocumentInput]:
    """Document blocks read for the caller: its own uploads only (another owner's file is 404)."""
    return await read_documents_of(messages, getattr(request.app.state, "files", None),
                                   owner_of(context_of(request).key)[0])


def _openai_source(part: dict[str, Any], where: str) -> dict[str, Any]:
    """An OpenAI `file` part as an Anthropic document source (data URL or bare base64, or a file id)."""
    file = part.get("file")
    if not isinstance(file, dict):
        raise InvalidRequestError("Field required: an object with file_data or file_id", field=f"{where}.file")
    if file.get("file_id"):
        return {"type": "file", "file_id": file["file_id"]}
    data = file.get("file_data")
    if not isinstance(data, str) or not data:
        raise InvalidRequestError("Field required: file_data (base64 or a data: URL) or file_id", field=f"{where}.file")
    media_type = None
    if data.startswith("data:"):
        head, _, data = data.partition(",")
        if not head.endswith(";base64"):
            raise InvalidRequestError("a data: URL must be base64-encoded", field=f"{where}.file.file_data")
        media_type = head[5:-7] or None
    if media_type in (None, "application/octet-stream"):
        from candor.documents.extract import EXTENSION_KINDS, KIND_MEDIA

        name = str(file.get("filename") or "")
        suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
        media_type = KIND_MEDIA.get(EXTENSION_KINDS.get(suffix, "pdf"))
    return {"type": "base64", "media_type": media_type, "data": data}


async def openai_documents(request: Request, messages: list[Any]) -> list[DocumentInput]:
    """OpenAI Chat Completions `file` parts (PDF or text) read as documents, without citations
    (the OpenAI shape has no place for them)."""
    converted, found = [], False
    for i, m in enumerate(messages):
        content = m.content
        if isinstance(content, list):
            blocks = []
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "file":
                    found = True
                    part = {"type": "document", "source": _openai_source(part, f"messages.{i}.content.{j}"),
                            "title": (part.get("file") or {}).get("filename")}
                blocks.append(part)
            content = blocks
        converted.append(("user" if m.role == "user" else m.role, content))
    if not found:
        return []
    return await _read(request, converted)


def _feed(citer: Citer, text: str) -> list[Segment]:
    return list(citer.feed(text))


async def cited_frames(events: AsyncIterator[Any], citer: Citer) -> AsyncIterator[bytes]:
    """Content-block frames for a streamed answer whose sentences carry citations."""
    index, plain_open = -1, False

    def frames_for(seg: Segment) -> list[bytes]:
        nonlocal index, plain_open
        out = []
        text_delta = {"type": "text_delta", "text": seg.text}
        if seg.citations:
            if plain_open:
                out.append(frame("content_block_stop", {"index": index}))
                plain_open = False
            index += 1
            out.append(frame("content_block_start",
                             {"index": index, "content_block": {"type": "text", "text": "", "citations": []}}))
            out.append(frame("content_block_delta", {"index": index, "delta": text_delta}))
            out += [frame("content_block_delta", {"index": index, "delta": {"type": "citations_delta", "citation": c}})
                    for c in seg.citations]
            out.append(frame("content_block_stop", {"index": index}))
        else:
            if not plain_open:
                index += 1
                plain_open = True
                out.append(frame("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
            out.append(frame("content_block_delta", {"index": index, "delta": text_delta}))
        return out

    async for event in events:
        if isinstance(event, TextDelta):
            for seg in await asyncio.to_thread(_feed, citer, event.text):
                for f in frames_for(seg):
                    yield f
    for seg in await asyncio.to_thread(lambda: list(citer.flush())):
        for f in frames_for(seg):
            yield f
    if plain_open:
        yield frame("content_block_stop", {"index": index})
