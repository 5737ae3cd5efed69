"""Anthropic's legacy Text Completions API (POST /v1/complete), the one Claude 2 launched with.

The prompt is checked the way the original API checked it, split into turns, and rendered again
by the shared chat renderer, so a model with its own chat template still gets its own format.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from candor.api.answer import begin, streamed, whole
from candor.api.critique import critique_for
from candor.api.guard import note_request
from candor.api.sse import frame
from candor.chat.render import ASSISTANT, HUMAN, parse_prompt
from candor.chat.service import ChatParams
from candor.engine.base import TextDelta
from candor.serving.generation import Generation

router = APIRouter()


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    prompt: str
    max_tokens_to_sample: int
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None


@router.post("/v1/complete")
async def complete(body: CompleteRequest, request: Request):
    note_request(request, body.model, (body.metadata or {}).get("user_id"))
    messages, system = parse_prompt(body.prompt)
    params = ChatParams(max_tokens=body.max_tokens_to_sample,
                        temperature=body.temperature,
                        top_p=body.top_p, top_k=body.top_k, stop_sequences=tuple(body.stop_sequences or ()))
    critique = critique_for(request, body.model, None, False)  # the registry's setting only
    gen = await begin(request, body.model, messages, system, params, critique)
    cid = "compl_" + uuid.uuid4().hex[:24]
    if body.stream:
        return streamed(request, gen, _frames(body.model, cid, gen), lambda error: frame("error", error))
    text, finish = await whole(request, gen)
    return JSONResponse({"type": "completion", "id": cid, "completion": text,
                         "stop_reason": _stop_reason(finish.stop_reason), "stop": _stop(finish), "model": body.model})


def _stop_reason(reason: str) -> str:
    # In this API, reaching the end of the turn ("\n\nHuman:") is a stop sequence too.
    return reason if reason in ("max_tokens", "refusal") else "stop_sequence"


def _stop(finish) -> str | None:
    if finish.stop_reason == "stop_sequence":
        return finish.stop_sequence
    return HUMAN if finish.stop_reason == "end_turn" else None


async def _frames(model: str, cid: str, gen: Generation) -> AsyncIterator[bytes]:
    async for event in gen.events():
        if isinstance(event, TextDelta):
            yield frame("completion", {"type": "completion", "id": cid, "completion": event.text,
                                       "stop_reason": None, "model": model})
    finish = gen.finish
    assert finish is not None  # the stream ended, so its Finish arrived
    yield frame("completion", {"type": "completion", "id": cid, "completion": "",
                               "stop_reason": _stop_reason(finish.stop_reason), "stop": _stop(finish),
                               "model": model})


__all__ = ["ASSISTANT", "parse_prompt", "router"]
