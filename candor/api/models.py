"""GET /v1/models and /v1/models/{id}, in the Anthropic list shape with cursor pagination."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from candor.errors import InvalidRequestError, NotFoundError
from candor.registry import ModelEntry

router = APIRouter()
CREATED_AT = "2026-11-01T00:00:00Z"  # registry entries carry no date; a fixed, documented one


def model_object(entry: ModelEntry) -> dict:
    return {"type": "model", "id": entry.name, "display_name": entry.description or entry.name,
            "created_at": CREATED_AT, "max_input_tokens": entry.context_window,
            "max_tokens": entry.max_output_tokens}


@router.get("/v1/models")
async def list_models(request: Request, limit: int = Query(20), after_id: str | None = None,
                      before_id: str | None = None) -> dict:
    if not 1 <= limit <= 1000:
        raise InvalidRequestError(f"must be between 1 and 1000, got {limit}", field="limit")
    names = request.app.state.hub.registry.names
    for cursor in (after_id, before_id):
        if cursor is not None and cursor not in names:
            raise InvalidRequestError(f"unknown model id {cursor!r}", field="after_id" if cursor == after_id else "before_id")
    if after_id is not None:
        start = names.index(after_id) + 1
        page = names[start:start + limit]
        has_more = start + limit < len(names)
    elif before_id is not None:
        end = names.index(before_id)
        page = names[max(0, end - limit):end]
        has_more = end - limit > 0
    else:
        page, has_more = names[:limit], limit < len(names)
    registry = request.app.state.hub.registry
    return {"data": [model_object(registry.get(n)) for n in page], "has_more": has_more,
            "first_id": page[0] if page else None, "last_id": page[-1] if page else None}


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, request: Request) -> dict:
    registry = request.app.state.hub.registry
    if model_id not in registry:
        raise NotFoundError(f"model: {model_id}", field="model")
    return model_object(registry.get(model_id))
