"""`POST /v1/moderations` in OpenAI's shape, and the admins' list of flagged requests and answers.

The request's `input` is a string, a list of strings, or a list of OpenAI content parts of type
`text`; anything else is a 400 naming the element. Each result carries OpenAI's category names
(filled from Candor's categories, see OPENAI_NAMES) and Candor's own, so existing moderation
clients read the categories they know and Candor's clients see all of them.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from candor.api.guard import caller
from candor.errors import InvalidRequestError
from candor.moderation.categories import CATEGORIES

router = APIRouter()

MAX_INPUTS = 64
MAX_CHARS = 100_000  # over all inputs of one request
MODEL_NAME = "candor-moderation-minilm-1"
# OpenAI's names -> the Candor categories whose scores they take (the highest).
OPENAI_NAMES: dict[str, tuple[str, ...]] = {
    "harassment": ("hate",), "harassment/threatening": ("hate",), "hate": ("hate",), "hate/threatening": ("hate",),
    "illicit": ("crime", "cybercrime", "weapons"), "illicit/violent": ("weapons",),
    "self-harm": ("self-harm",), "self-harm/intent": ("self-harm",), "self-harm/instructions": ("self-harm",),
    "sexual": ("sexual/minors",), "sexual/minors": ("sexual/minors",),
    "violence": ("violence", "weapons"), "violence/graphic": ("violence",),
}


class ModerationRequest(BaseModel):
    input: Any = None
    model: str | None = None


def texts_of(value: Any) -> list[str]:
    """The texts to classify, or a 400 naming the offending element."""
    if value is None:
        raise InvalidRequestError("Field required: a string or a list of strings", field="input")
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise InvalidRequestError("must not be an empty list", field="input")
    if len(items) > MAX_INPUTS:
        raise InvalidRequestError(f"at most {MAX_INPUTS} inputs per request, got {len(items)}", field="input")
    texts = []
    for i, item in enumerate(items):
        where = f"input.{i}" if isinstance(value, list) else "input"
        if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
            item = item["text"]
        elif isinstance(item, dict) and item.get("type") == "image_url":
            raise InvalidRequestError("images are not supported: Candor moderates text only", field=where)
        if not isinstance(item, str):
            raise InvalidRequestError(f"must be text (a string or a text part), got {type(item).__name__}",
                                      field=where)
        if not item.strip():
            raise InvalidRequestError("must not be empty", field=where)
        texts.append(item)
    total = sum(len(t) for t in texts)
    if total > MAX_CHARS:
        raise InvalidRequestError(f"at most {MAX_CHARS} characters over all inputs, got {total}", field="input")
    return texts


def _classifier(request: Request):
    """The server's moderator's classifier, or the shipped one (the endpoint works with moderation off)."""
    moderator = getattr(request.app.state, "moderator", None)
    if moderator is not None:
        return moderator.classifier, moderator.policy
    from candor.moderation.classifier import classifier
    from candor.moderation.policy import Modes, load_policy

    clf = classifier()
    return clf, load_policy(clf.heads, modes=Modes())


def result_of(score: Any, policy: Any, text: str) -> dict[str, Any]:
    decision = policy.decide_input(score, "flag")
    ours = {c: round(score.categories[c], 6) for c in CATEGORIES}
    flagged_cats = {c: decision.flagged and c == score.top for c in CATEGORIES}
    # OpenAI's names win where they coincide with Candor's (OpenAI's "violence" covers weapons too)
    scores = {**ours, **{name: max(ours[c] for c in cs) for name, cs in OPENAI_NAMES.items()}}
    categories = {**flagged_cats, **{name: any(flagged_cats[c] for c in cs) for name, cs in OPENAI_NAMES.items()}}
    return {"flagged": decision.flagged, "categories": categories, "category_scores": scores,
            "category_applied_input_types": {name: ["text"] for name in scores},
            "candor": {"harmful": round(score.harmful, 6), "threshold": round(decision.threshold, 4),
                       "top_category": score.top, "pii": pii_counts(text)}}


def pii_counts(text: str) -> dict[str, int]:
    """How many e-mail addresses, phone numbers... the text holds (candor.moderation.pii)."""
    from candor.moderation.pii import find

    counts: dict[str, int] = {}
    for f in find(text):
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return counts


@router.post("/v1/moderations")
async def moderations(body: ModerationRequest, request: Request) -> dict[str, Any]:
    texts = texts_of(body.input)
    clf, policy = _classifier(request)
    scores = await asyncio.to_thread(clf.request_scores, texts, policy.read_parts)  # as the input check reads
    return {"id": "modr-" + uuid.uuid4().hex[:24], "model": MODEL_NAME,
            "results": [result_of(s, policy, t) for s, t in zip(scores, texts)]}


@router.get("/v1/admin/moderation/events")
async def moderation_events(request: Request, limit: int = 50, stage: str | None = None, unreviewed: bool = False,
                            before_id: int | None = None) -> dict[str, Any]:
    """Flagged requests and answers, newest first (administrators' keys only)."""
    from candor.moderation.records import list_events

    caller(request, admin=True)
    rows = await asyncio.to_thread(list_events, request.app.state.store, limit=limit, stage=stage,
                                   unreviewed=unreviewed, before_id=before_id)
    return {"data": rows, "has_more": len(rows) == limit}


@router.post("/v1/admin/moderation/events/{event_id}/reviewed")
async def moderation_reviewed(event_id: int, request: Request) -> dict[str, Any]:
    from candor.errors import NotFoundError
    from candor.moderation.records import mark_reviewed

    caller(request, admin=True)
    if not await asyncio.to_thread(mark_reviewed, request.app.state.store, event_id):
        raise NotFoundError(f"no moderation event {event_id}", field="event_id")
    return {"id": event_id, "reviewed": True}
