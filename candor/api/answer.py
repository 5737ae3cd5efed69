"""The one path every generation endpoint takes once it has translated its wire format: start the
answer through the serving layer (admitted under the caller's key), keep it on the request's
context for metrics and the usage record, then collect it whole or stream it in the endpoint's
own frames. A stream that breaks after it started ends with an error frame whose payload is the
same body the error handler builds (with the request id), and metrics see every generation end
exactly once, however it ended."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from candor.api.context import context_of
from candor.api.errors import body_of
from candor.api.guard import admit_for
from candor.api.sse import SSE_HEADERS
from candor.chat.render import Message
from candor.chat.service import ChatParams
from candor.engine.base import Finish
from candor.errors import CandorError
from candor.serving.generation import Generation, start_generation


async def begin(request: Request, model: str, messages: Iterable[Message | Mapping[str, str]], system: str | None,
                params: ChatParams, critique: Any = None) -> Generation:
    """Admit and start the answer; errors before its first token still get their HTTP status."""
    gen = await start_generation(request.app.state.hub, model, messages, system, params, admit_for(request), critique)
    context_of(request).generation = gen  # the usage record reads it when the request ends
    return gen


async def whole(request: Request, gen: Generation) -> tuple[str, Finish]:
    try:
        return await gen.collect()
    finally:
        request.app.state.metrics.finished(request, gen)


def streamed(request: Request, gen: Generation, frames: AsyncIterator[bytes],
             error_frame: Callable[[dict[str, object]], bytes]) -> StreamingResponse:
    """The endpoint's frames as a server-sent event stream."""

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in frames:
                yield chunk
        except CandorError as exc:
            yield error_frame(body_of(request, exc))
        finally:
            request.app.state.metrics.finished(request, gen)

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)
