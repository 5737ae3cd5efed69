"""OpenAI Chat Completions: POST /v1/chat/completions (plain and streaming, response_format)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from candor.api.answer import begin, streamed, whole
from candor.api.critique import critique_for
from candor.api.documents import openai_documents
from candor.api.formatting import FormatSpec, format_spec_from_openai
from candor.api.guard import admit_for, note_request
from candor.api.sse import data_only
from candor.chat.render import Message
from candor.chat.service import ChatParams, check_max_tokens
from candor.engine.base import Finish, TextDelta
from candor.errors import InvalidRequestError
from candor.serving.documents import place_documents
from candor.serving.generation import Generation

router = APIRouter()
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter"}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    user: str | None = None
    candor: dict[str, Any] | None = None


def _text(content: str | list[dict[str, Any]] | None, where: str, documents: bool = False) -> str:
    """The text of a message; with `documents`, its file parts (read separately) are skipped."""
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for i, part in enumerate(content):
        if documents and part.get("type") == "file":
            continue
        if part.get("type") != "text":
            raise InvalidRequestError(f"content parts of type {part.get('type')!r} are not supported; "
                                      f"Candor models read text only", field=f"{where}.{i}.type")
        parts.append(part.get("text") or "")
    return "".join(parts)


def to_conversation(body: ChatRequest, documents: bool = False) -> tuple[list[Message], str | None]:
    if body.tools:
        raise InvalidRequestError("tool calls are not supported by Candor models", field="tools")
    if body.n not in (None, 1):
        raise InvalidRequestError(f"only n=1 is supported, got {body.n}", field="n")
    system_parts: list[str] = []
    messages: list[Message] = []
    for i, m in enumerate(body.messages):
        text = _text(m.content, f"messages.{i}.content", documents)
        if m.role in ("system", "developer"):
            if messages:
                raise InvalidRequestError("system messages must come before the conversation", field=f"messages.{i}")
            system_parts.append(text)
        elif m.role in ("user", "assistant"):
            messages.append(Message(m.role, text))  # type: ignore[arg-type]
        else:
            raise InvalidRequestError(f"role {m.role!r} is not supported", field=f"messages.{i}.role")
    return messages, "\n\n".join(system_parts) or None


def requested_max_tokens(body: ChatRequest) -> int | None:
    """max_completion_tokens, else the older max_tokens; 0 or less is refused, as OpenAI does."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = getattr(body, name)
        if value is not None and value < 1:
            raise InvalidRequestError(f"must be >= 1, got {value}", field=name)
    return body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request):
    note_request(request, body.model, body.user)
    docs = await openai_documents(request, body.messages)
    messages, system = to_conversation(body, bool(docs))
    spec = format_spec_from_openai(body.response_format, body.candor)
    critique = critique_for(request, body.model, body.candor, spec is not None)
    state = request.app.state
    entry = state.hub.registry.get(body.model)
    max_tokens = requested_max_tokens(body) or entry.max_output_tokens
    stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    params = ChatParams(max_tokens=max_tokens, temperature=body.temperature,
                        top_p=body.top_p, seed=body.seed, stop_sequences=tuple(stops),
                        grammar=spec.grammar if spec else None, frequency_penalty=body.frequency_penalty or 0.0,
                        presence_penalty=body.presence_penalty or 0.0)
    placed = None
    if docs:
        admit_for(request).allow_model(entry)
        model = await state.hub.get(body.model)
        check_max_tokens(model.entry, max_tokens)
        messages, placed = await place_documents(model, messages, system, docs, max_tokens, spec is not None)
    gen = await begin(request, body.model, messages, system, params, critique)
    cid, created = completion_id(), int(time.time())
    if body.stream:
        include_usage = bool((body.stream_options or {}).get("include_usage"))
        return streamed(request, gen, _frames(body.model, cid, created, gen, spec, include_usage), data_only)
    text, finish = await whole(request, gen)
    if spec:
        spec.check(text, finish)
    out = {
        "id": cid, "object": "chat.completion", "created": created, "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                     "finish_reason": FINISH[finish.stop_reason], "logprobs": None}],
        "usage": _usage(gen.input_tokens, finish),
    }
    if placed is not None:
        out["candor"] = placed.report()  # whole or retrieved, and which passages
    return JSONResponse(out)


def _usage(input_tokens: int, finish: Finish) -> dict[str, int]:
    out = finish.usage.output_tokens
    return {"prompt_tokens": input_tokens, "completion_tokens": out, "total_tokens": input_tokens + out}


async def _frames(model: str, cid: str, created: int, gen: Generation, spec: FormatSpec | None,
                  include_usage: bool) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return data_only({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                          "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]})

    yield chunk({"role": "assistant", "content": ""})
    async for event in gen.events():
        if isinstance(event, TextDelta):
            yield chunk({"content": event.text})
    finish = gen.finish
    assert finish is not None
    if spec:
        spec.check("".join(gen.text_parts), finish)
    yield chunk({}, FINISH[finish.stop_reason])
    if include_usage:
        yield data_only({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [], "usage": _usage(gen.input_tokens, finish)})
    yield data_only("[DONE]")
