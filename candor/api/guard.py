"""Access for API requests: the key check (a dependency) and the admission gate once the prompt's
size is known. What it learns goes into the request's `RequestContext` (candor.api.metering
writes the usage record and rate-limit headers from it)."""

from __future__ import annotations

import asyncio

from fastapi import Request

from candor.accounts.access import ANONYMOUS, AccessControl, Admission
from candor.accounts.keys import KeyContext
from candor.api.auth import presented_key
from candor.api.context import context_of
from candor.errors import AccessError
from candor.registry import ModelEntry


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
