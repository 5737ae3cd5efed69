"""Anthropic Messages API: POST /v1/messages (plain and streaming) and /v1/messages/count_tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from candor.api.answer import begin, streamed, whole
from candor.api.context import context_of
from candor.api.critique import critique_for, summary
from candor.api.documents import cited_frames, request_documents
from candor.api.formatting import FormatSpec, format_spec_from_anthropic
from candor.api.guard import admit_for, note_request
from candor.api.sse import frame
from candor.chat.render import Message
from candor.chat.service import ChatParams, check_max_tokens, render_for
from candor.documents.place import whole_messages
from candor.engine.base import Finish, TextDelta
from candor.errors import InvalidRequestError
from candor.serving.documents import PlacedDocuments, place_documents
from candor.serving.generation import Generation

router = APIRouter()
UNSUPPORTED_BLOCKS = {"image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
                      "search_result", "server_tool_use", "web_search_tool_result"}


class MessageParam(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]]


class CountTokensRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[MessageParam]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    thinking: dict[str, Any] | None = None
    candor: dict[str, Any] | None = None  # Candor extension: {"format": ..., "schema": ...}
    output_config: dict[str, Any] | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None
    tool_choice: dict[str, Any] | None = None


def _block_text(block: dict[str, Any], where: str) -> str:
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError("text blocks need a string 'text'", field=f"{where}.text")
        return text
    if kind in UNSUPPORTED_BLOCKS:
        raise InvalidRequestError(f"content blocks of type {kind!r} are not supported by Candor models, "
                                  f"which read text only", field=f"{where}.type")
    raise InvalidRequestError(f"unknown content block type {kind!r}", field=f"{where}.type")


def content_text(content: str | list[dict[str, Any]], where: str, documents: bool = False) -> str:
    """The text of a message; with `documents`, its document blocks (read separately) are skipped."""
    if isinstance(content, str):
        return content
    texts = [_block_text(block, f"{where}.{i}") for i, block in enumerate(content)
             if not (documents and isinstance(block, dict) and block.get("type") == "document")]
    if any(t == "" for t in texts):
        raise InvalidRequestError("text content blocks must be non-empty", field="messages")
    return "".join(texts)


def system_text(system: str | list[dict[str, Any]] | None) -> str | None:
    if system is None:
        return None
    text = content_text(system, "system")
    if text and not text.strip():
        raise InvalidRequestError("text content blocks must contain non-whitespace text", field="system")
    return text or None


def conversation(body: CountTokensRequest, documents: bool = False) -> tuple[list[Message], str | None]:
    if body.tools:
        raise InvalidRequestError("tool use is not supported by Candor models", field="tools")
    if body.thinking and body.thinking.get("type") not in (None, "disabled"):
        raise InvalidRequestError("extended thinking is not supported by Candor models", field="thinking")
    messages = []
    for i, m in enumerate(body.messages):
        if m.role not in ("user", "assistant"):
            raise InvalidRequestError(f"role must be 'user' or 'assistant', got {m.role!r}", field=f"messages.{i}.role")
        messages.append(Message(m.role, content_text(m.content, f"messages.{i}.content", documents)))  # type: ignore[arg-type]
    return messages, system_text(body.system)


def message_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


@router.post("/v1/messages/count_tokens")
async def count_tokens(body: CountTokensRequest, request: Request) -> dict[str, int]:
    docs = await request_documents(request, body.messages)
    messages, system = conversation(body, bool(docs))
    model = await request.app.state.hub.get(body.model)
    if docs:  # counted whole: what the documents cost if they were sent in full
        messages = whole_messages(messages, docs)
    rendered = render_for(model, messages, system)
    return {"input_tokens": await model.engine.count_tokens(rendered.text)}


@router.post("/v1/messages")
async def create_message(body: MessagesRequest, request: Request):
    note_request(request, body.model, (body.metadata or {}).get("user_id"))
    docs = await request_documents(request, body.messages)
    messages, system = conversation(body, bool(docs))
    spec = format_spec_from_anthropic(body.output_config, body.candor)
    critique = critique_for(request, body.model, body.candor, spec is not None)
    params = ChatParams(
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p, top_k=body.top_k,
        stop_sequences=tuple(body.stop_sequences or ()),
        grammar=spec.grammar if spec else None,
    )
    state = request.app.state
    placed = None
    if docs:
        admit_for(request).allow_model(state.hub.registry.get(body.model))
        model = await state.hub.get(body.model)
        check_max_tokens(model.entry, body.max_tokens)
        messages, placed = await place_documents(model, messages, system, docs, body.max_tokens, spec is not None)
    gen = await begin(request, body.model, messages, system, params, critique)
    if body.stream:
        return streamed(request, gen, _frames(body, gen, spec, placed), lambda error: frame("error", error))
    text, finish = await whole(request, gen)
    parsed = spec.check(text, finish) if spec else None
    extension = {"parsed": parsed} if parsed is not None else {}
    if gen.critique is not None:
        extension["self_critique"] = summary(gen.critique, gen.critique_settings, context_of(request).request_id)
    content = None
    if placed is not None:
        extension.update(placed.report())
        content = await placed.content(text)
    return JSONResponse(_message_body(body.model, text, finish, gen.input_tokens, extension, content))


def _usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"input_tokens": input_tokens, "output_tokens": output_tokens}


def _message_body(model: str, text: str, finish: Finish, input_tokens: int, extension: dict[str, Any],
                  content: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": message_id(), "type": "message", "role": "assistant",
        "content": content if content is not None else [{"type": "text", "text": text}] if text else [],
        "model": model, "stop_reason": finish.stop_reason, "stop_sequence": finish.stop_sequence,
        "usage": _usage(input_tokens, finish.usage.output_tokens),
    }
    if extension:
        body["candor"] = extension  # Candor's own fields: parsed value, self-critique summary, documents
    return body


async def _frames(body: MessagesRequest, gen: Generation, spec: FormatSpec | None,
                  placed: PlacedDocuments | None = None) -> AsyncIterator[bytes]:
    start: dict[str, Any] = {"id": message_id(), "type": "message", "role": "assistant", "content": [],
                             "model": body.model, "stop_reason": None, "stop_sequence": None,
                             "usage": _usage(gen.input_tokens, 1)}
    if placed is not None:
        start["candor"] = placed.report()  # known before the answer: what went into the prompt
    yield frame("message_start", {"message": start})
    if placed is not None and placed.citer is not None:
        yield frame("ping", {})
        async for chunk in cited_frames(gen.events(), placed.citer):
            yield chunk
    else:
        yield frame("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        yield frame("ping", {})
        async for event in gen.events():
            if isinstance(event, TextDelta):
                yield frame("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": event.text}})
        yield frame("content_block_stop", {"index": 0})
    finish = gen.finish
    assert finish is not None
    if spec:
        spec.check("".join(gen.text_parts), finish)
    yield frame("message_delta", {
        "delta": {"stop_reason": finish.stop_reason, "stop_sequence": finish.stop_sequence},
        "usage": {"input_tokens": gen.input_tokens, "output_tokens": finish.usage.output_tokens}})
    yield frame("message_stop", {})
