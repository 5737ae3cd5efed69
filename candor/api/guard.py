"""Request-scoped access control: the key check (a dependency), admission once the prompt's
size is known, and the usage record when the request has ended (called by the edge middleware)."""

from __future__ import annotations

import asyncio
import time

from fastapi import Request

from candor.accounts.access import ANONYMOUS, AccessControl, Admission
from candor.accounts.keys import KeyContext
from candor.api.auth import presented_key
from candor.errors import AccessError
from candor.registry import ModelEntry
from candor.serving.critique import record

METERED = {"/v1/messages", "/v1/complete", "/v1/chat/completions"}


async def require_key(request: Request) -> None:
    """Every API route: who is calling. On a `--no-auth` server a missing or unusable key makes
    the caller anonymous (SDKs insist on sending some key), which `caller` keeps out of the
    admin and critique endpoints; a valid key is still recognised."""
    access: AccessControl = request.app.state.access
    secret = presented_key(request)
    if not request.app.state.no_auth:
        request.state.key = await asyncio.to_thread(access.authenticate, secret)
        return
    request.state.key = ANONYMOUS
    if secret:
        try:
            request.state.key = await asyncio.to_thread(access.authenticate, secret)
        except AccessError:
            pass


def caller(request: Request, *, admin: bool = False) -> KeyContext:
    """The key behind a request to an endpoint that needs one even on a `--no-auth` server."""
    ctx = getattr(request.state, "key", None)
    if ctx is None or ctx.is_anonymous:
        raise AccessError(401, "authentication_error",
                          "this endpoint needs an API key" + (" of an administrator" if admin else "")
                          + "; --no-auth opens only the model endpoints")
    if admin and not ctx.is_admin:
        raise AccessError(403, "permission_error", "this endpoint needs an administrator's API key")
    return ctx


def note_request(request: Request, model: str, end_user: str | None = None) -> None:
    """What the usage record needs even if the request fails before generating."""
    request.state.model_name = model
    request.state.end_user = end_user


class RequestGate:
    """The access checks for one request (see candor.serving.generation.Gate)."""

    def __init__(self, request: Request):
        self.request = request
        self.ctx = getattr(request.state, "key", None)

    def allow_model(self, entry: ModelEntry) -> None:
        self.request.state.model_entry = entry
        if self.ctx is not None:
            AccessControl.check_model(self.ctx, entry)

    async def admit(self, entry: ModelEntry, input_tokens: int) -> None:
        state = self.request.state
        state.input_tokens = input_tokens
        if self.ctx is None:
            state.admission = Admission()
            return
        access: AccessControl = self.request.app.state.access
        state.admission = await asyncio.to_thread(access.admit, self.ctx, entry, input_tokens)


    def charge_input(self, input_tokens: int) -> None:
        self.request.state.input_tokens = input_tokens


def admit_for(request: Request) -> RequestGate:
    return RequestGate(request)


def response_headers(app, state: dict) -> dict[str, str]:
    """Rate-limit headers for the response being started."""
    admission = state.get("admission")
    if admission is not None and admission.headers:
        return admission.headers
    ctx = state.get("key")
    if ctx is None or ctx.key_id is None:
        return {}
    return app.state.access.headers_for(ctx, state.get("model_entry"))


async def meter(app, path: str, method: str, state: dict, status: int, started: float) -> None:
    """One usage record per request to a generation endpoint, whatever its outcome."""
    if method != "POST" or path not in METERED:
        return
    gen = state.get("generation")
    finish = getattr(gen, "finish", None)
    if gen is not None and gen.critique is not None:
        ctx = state.get("key")
        await asyncio.to_thread(record, app.state.store, gen.critique, gen.critique_settings, gen.model.entry.name,
                                request_id=state.get("request_id"), key_id=getattr(ctx, "key_id", None))
    entry = state.get("model_entry")
    model_name = state.get("model_name") or (entry.name if entry else "")
    if entry is None and model_name and model_name in app.state.hub.registry:
        entry = app.state.hub.registry.get(model_name)
    output_tokens = finish.usage.output_tokens if finish else 0
    charged_input = state.get("input_tokens", 0) if gen is not None else 0
    await asyncio.to_thread(
        app.state.access.finish, state.get("key"), state.get("admission"), entry, model_name=model_name,
        endpoint=path, input_tokens=charged_input, output_tokens=output_tokens,
        ttft_s=gen.ttft if gen is not None else None, latency_s=time.perf_counter() - started,
        status=status, end_user=state.get("end_user"))
