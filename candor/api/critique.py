"""Self-critique at inference, for the APIs and the chat page.

Who gets it: a request's Candor extension field `candor.self_critique` (rounds, or {"rounds",
"seed"}; 0 turns it off), else the registry entry's `self_critique = N`. The answer returned (and
streamed) is the last revision; its draft and critiques are written to the store, keyed by the
request id (API) or the answer's message id (chat page), and can be read back by the same key
(`GET /v1/candor/critiques/{request_id}`) or on the chat page.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from candor.api.guard import caller
from candor.cai.critique import REQUEST_FIELD, CritiqueResult, CritiqueSettings
from candor.errors import AccessError, InvalidRequestError, NotFoundError
from candor.serving.critique import as_json, critique_settings
from candor.store import Store
from candor.store.models import CritiqueRecord

router = APIRouter()


def critique_for(request: Request, model_name: str, ext: dict[str, Any] | None, formatted: bool) -> CritiqueSettings | None:
    """Self-critique settings for an API request. A formatted (grammar-constrained) answer is
    never self-critiqued: critiques are free text. Asking for both is an error."""
    value = (ext or {}).get("self_critique")
    if formatted:
        if value:
            raise InvalidRequestError("self-critique cannot be combined with formatted output",
                                      field=REQUEST_FIELD)
        return None
    return critique_settings(request.app.state.hub.registry.get(model_name), value)


def summary(result: CritiqueResult, settings: CritiqueSettings, request_id: str | None) -> dict[str, Any]:
    """What a response says about its self-critique (the texts themselves are in the store)."""
    return {"rounds": len(result.steps), "seed": settings.seed, "principles": [s.principle for s in result.steps],
            "request_id": request_id}


@router.get("/v1/candor/critiques/{request_id}")
async def get_critique(request_id: str, request: Request) -> dict[str, Any]:
    """The draft and critiques of a self-critiqued answer, for the key that asked (or an admin).
    A key is needed even on a `--no-auth` server; records of keyless requests are for admins."""
    ctx = caller(request)
    store: Store = request.app.state.store

    def load():
        with store.session() as session:
            row = session.scalar(select(CritiqueRecord).where(CritiqueRecord.request_id == request_id))
            if row is None:
                return None, None
            return row.key_id, as_json(row)

    key_id, data = await asyncio.to_thread(load)
    if data is None:
        raise NotFoundError(f"no self-critique record for request {request_id!r}", field="request_id")
    if not ctx.is_admin and key_id != ctx.key_id:
        raise AccessError(403, "permission_error", "this record belongs to another API key")
    return data
