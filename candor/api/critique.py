"""Self-critique at inference, for the APIs and the chat page.

Who gets it: a request's Candor extension field `candor.self_critique` (rounds, or {"rounds",
"seed"}; 0 turns it off), else the registry entry's `self_critique = N`. The answer returned (and
streamed) is the last revision; its draft and critiques are written to the store, keyed by the
request id (API) or the answer's message id (chat page), and can be read back by the same key
(`GET /v1/candor/critiques/{request_id}`) or on the chat page.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from candor.api.guard import caller
from candor.cai.critique import (
    REQUEST_FIELD,
    CritiqueResult,
    CritiqueSettings,
    parse_option,
    self_critique_rounds,
)
from candor.errors import AccessError, InvalidRequestError, NotFoundError
from candor.registry import ModelEntry
from candor.store import Store
from candor.store.models import CritiqueRecord

router = APIRouter()


def critique_settings(entry: ModelEntry, value: Any) -> CritiqueSettings | None:
    """The settings for one request, with a drawn seed so the audit record can replay the draws."""
    settings = parse_option(value) if value is not None else None
    if value is None:
        rounds = self_critique_rounds(entry)
        settings = CritiqueSettings(rounds=rounds) if rounds else None
    if settings is not None and settings.seed is None:
        settings = replace(settings, seed=random.getrandbits(31))
    return settings


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


def record(store: Store, result: CritiqueResult, settings: CritiqueSettings, model: str, *,
           request_id: str | None = None, key_id: int | None = None, message_id: int | None = None) -> None:
    data = result.as_dict()
    with store.session() as session:
        session.add(CritiqueRecord(request_id=request_id, key_id=key_id, message_id=message_id, model=model,
                                   seed=settings.seed, draft=data["draft"], steps=data["steps"], final=data["final"],
                                   input_tokens=result.input_tokens, output_tokens=result.output_tokens))


def as_json(row: CritiqueRecord) -> dict[str, Any]:
    return {"request_id": row.request_id, "message_id": row.message_id, "model": row.model, "seed": row.seed,
            "created_at": row.created_at.isoformat(), "draft": row.draft, "steps": row.steps, "final": row.final,
            "usage": {"input_tokens": row.input_tokens, "output_tokens": row.output_tokens}}


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
