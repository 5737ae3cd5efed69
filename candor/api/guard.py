"""Access for API requests: the key check (a dependency), admission once the prompt's size is
known, and, when the request has ended, the usage record and rate-limit headers (called by the
edge middleware). Everything it learns goes into the request's `RequestContext`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Request

from candor.accounts.access import ANONYMOUS, AccessControl, Admission
from candor.accounts.keys import KeyContext
from candor.api.auth import presented_key
from candor.api.context import RequestContext, context_of
from candor.errors import AccessError
from candor.registry import ModelEntry
from candor.serving.critique import record

METERED = {"/v1/messages", "/v1/complete", "/v1/chat/completions"}


async def require_key(request: Request) -> None:
    """Every API route: who is calling. On a `--no-auth` server a missing or unusable key makes
    the caller anonymous (SDKs insist on sending some key), which `caller` keeps out of the
    admin and critique endpoints; a valid key is still recognised."""
    access: AccessControl = request.app.state.access
    ctx = context_of(request)
    secret = presented_key(request)
    if not request.app.state.no_auth:
        ctx.key = await asyncio.to_thread(access.authenticate, secret)
        return
    ctx.key = ANONYMOUS
    if secret:
        try:
            ctx.key = await asyncio.to_thread(access.authenticate, secret)
        except AccessError:
            pass


def caller(request: Request, *, admin: bool = False) -> KeyContext:
    """The key behind a request to an endpoint that needs one even on a `--no-auth` server."""
    key = context_of(request).key
    if key is None or key.is_anonymous:
        raise AccessError(401, "authentication_error",
                          "this endpoint needs an API key" + (" of an administrator" if admin else "")
                          + "; --no-auth opens only the model endpoints")
    if admin and not key.is_admin:
        raise AccessError(403, "permission_error", "this endpoint needs an administrator's API key")
    return key


def note_request(request: Request, model: str, end_user: str | None = None) -> None:
    """What the usage record needs even if the request fails before generating."""
    ctx = context_of(request)
    ctx.model_name, ctx.end_user = model, end_user


class RequestGate:
    """The access checks for one API request (candor.serving.generation.Gate)."""

    def __init__(self, request: Request):
        self.request = request
        self.ctx = context_of(request)

    @property
    def caller(self) -> KeyContext | None:
        return self.ctx.key

    def allow_model(self, entry: ModelEntry) -> None:
        self.ctx.model_entry = entry
        if self.ctx.key is not None:
            AccessControl.check_model(self.ctx.key, entry)

    async def admit(self, entry: ModelEntry, input_tokens: int) -> None:
        self.ctx.input_tokens = input_tokens
        if self.ctx.key is None:
            self.ctx.admission = Admission()
            return
        access: AccessControl = self.request.app.state.access
        self.ctx.admission = await asyncio.to_thread(access.admit, self.ctx.key, entry, input_tokens)

    def charge_input(self, input_tokens: int) -> None:
        self.ctx.input_tokens = input_tokens


def admit_for(request: Request) -> RequestGate:
    return RequestGate(request)


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
