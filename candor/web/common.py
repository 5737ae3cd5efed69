"""What every chat-page router uses: the signed-in user, a transaction off the event loop, SSE frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from candor.store import Store
from candor.store.models import User
from candor.web import sessions

T = TypeVar("T")


def store_of(request: Request) -> Store:
    return request.app.state.store


async def user_of(request: Request, admin: bool = False) -> User:
    """The signed-in user (401 without a session, 403 without the CSRF token on a change)."""
    user, _ = await asyncio.to_thread(sessions.require_user, store_of(request), request, admin=admin)
    return user


def with_session(store: Store, fn: Callable[..., T]) -> T:
    """`fn(session)` in one transaction, synchronously."""
    with store.session() as s:
        return fn(s)


async def in_session(request: Request, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(session, *args)` in one transaction, in a thread."""
    store = store_of(request)

    def work() -> Any:
        with store.session() as s:
            return fn(s, *args)

    return await asyncio.to_thread(work)


def sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
