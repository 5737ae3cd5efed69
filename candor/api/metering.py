"""When an API request ends: its rate-limit headers and its one usage record (and the audit record
of a self-critiqued answer), written from the request's `RequestContext` by the edge middleware."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from candor.api.context import RequestContext
from candor.serving.critique import record

METERED = {"/v1/messages", "/v1/complete", "/v1/chat/completions"}


def response_headers(app: Any, ctx: RequestContext) -> dict[str, str]:
    """Rate-limit headers for the response being started."""
    if ctx.admission is not None and ctx.admission.headers:
        return ctx.admission.headers
    if ctx.key is None or ctx.key.key_id is None:
        return {}
    headers: dict[str, str] = app.state.access.headers_for(ctx.key, ctx.model_entry)
    return headers


async def meter(app: Any, path: str, method: str, ctx: RequestContext, status: int) -> None:
    """One usage record per request to a generation endpoint, whatever its outcome."""
    if method != "POST" or path not in METERED:
        return
    gen = ctx.generation
    finish = gen.finish if gen is not None else None
    if gen is not None and gen.critique is not None:
        await asyncio.to_thread(record, app.state.store, gen.critique, gen.critique_settings, gen.model.entry.name,
                                request_id=ctx.request_id, key_id=getattr(ctx.key, "key_id", None))
    entry = ctx.model_entry
    model_name = ctx.model_name or (entry.name if entry else "")
    if entry is None and model_name and model_name in app.state.hub.registry:
        entry = app.state.hub.registry.get(model_name)
    output_tokens = finish.usage.output_tokens if finish else 0
    charged_input = ctx.input_tokens if gen is not None else 0
    await asyncio.to_thread(
        app.state.access.finish, ctx.key, ctx.admission, entry, model_name=model_name,
        endpoint=path, input_tokens=charged_input, output_tokens=output_tokens,
        ttft_s=gen.ttft if gen is not None else None, latency_s=time.perf_counter() - ctx.started,
        status=status, end_user=ctx.end_user)
