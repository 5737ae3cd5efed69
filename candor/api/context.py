"""What the server knows about one request, in one typed object instead of loose attributes on
`request.state`: set by the edge middleware, filled in as the request goes (key, model,
admission, generation) and read once it ends to write the usage record and the headers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from candor.accounts.access import Admission
from candor.accounts.keys import KeyContext
from candor.registry import ModelEntry

SCOPE_KEY = "candor"  # where the context lives in the ASGI scope's state


@dataclass
class RequestContext:
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    key: KeyContext | None = None  # who is calling (None until the key check ran)
    model_name: str = ""  # the model asked for, known even when the request fails early
    end_user: str | None = None  # metadata.user_id / user, kept only as a keyed hash
    model_entry: ModelEntry | None = None  # the registry entry, once resolved and allowed
    admission: Admission | None = None  # what rate/spend admission decided
    input_tokens: int = 0  # the input tokens charged
    generation: Any = None  # candor.serving.generation.Generation, once started
    generation_seconds: float | None = None


def context_of(request: Request) -> RequestContext:
    """The request's context (the edge middleware makes one for every HTTP request)."""
    ctx = request.scope.setdefault("state", {}).get(SCOPE_KEY)
    if ctx is None:  # a request that bypassed the middleware (in-process use of a route)
        from candor.api.errors import new_request_id

        ctx = request.scope["state"][SCOPE_KEY] = RequestContext(new_request_id())
    return ctx
