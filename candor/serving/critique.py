"""Self-critique at inference, the parts the API and the chat page share: the settings for one
request, and the audit record of its draft and critiques in the store (see candor.api.critique)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from candor.cai.critique import CritiqueResult, CritiqueSettings, parse_option, self_critique_rounds
from candor.registry import ModelEntry
from candor.store import Store
from candor.store.models import CritiqueRecord


def critique_settings(entry: ModelEntry, value: Any) -> CritiqueSettings | None:
    """The settings for one request, with a drawn seed so the audit record can replay the draws."""
    settings = parse_option(value) if value is not None else None
    if value is None:
        rounds = self_critique_rounds(entry)
        settings = CritiqueSettings(rounds=rounds) if rounds else None
    if settings is not None and settings.seed is None:
        settings = replace(settings, seed=random.getrandbits(31))
    return settings


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
