"""Moderation decisions in the store (table `moderation_events`), for admins to review.

The judged text is stored only when CANDOR_MODERATION_KEEP_TEXT=1 (a deployment that keeps
conversation text may keep this too), and `purge_text` clears it after the same number of days
the conversation retention uses.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from candor.config import env_flag
from candor.errors import InvalidRequestError
from candor.moderation.service import Judged
from candor.store import Store
from candor.store.models import ModerationEvent


def keep_text() -> bool:
    return env_flag("CANDOR_MODERATION_KEEP_TEXT")


class StoreRecorder:
    """Writes each decision as a row (a thread: the store's drivers are synchronous)."""

    def __init__(self, store: Store):
        self.store = store
        self.keep_text = keep_text()

    async def __call__(self, event: Judged) -> None:
        import asyncio

        await asyncio.to_thread(self.write, event)

    def write(self, event: Judged) -> None:
        d = event.decision
        with self.store.session() as session:
            session.add(ModerationEvent(request_id=event.request_id, key_id=event.key_id, user_id=event.user_id,
                                        model=event.model, stage=d.stage, action=d.action, category=d.category,
                                        score=d.score, threshold=d.threshold,
                                        text=event.text[:20_000] if self.keep_text else None))


def list_events(store: Store, *, limit: int = 50, stage: str | None = None, unreviewed: bool = False,
                before_id: int | None = None) -> list[dict[str, Any]]:
    """Newest first."""
    if not 1 <= limit <= 1000:
        raise InvalidRequestError(f"must be 1..1000, got {limit}", field="limit")
    if stage not in (None, "input", "output"):
        raise InvalidRequestError(f"must be input or output, got {stage!r}", field="stage")
    query = select(ModerationEvent).order_by(ModerationEvent.id.desc()).limit(limit)
    if stage:
        query = query.where(ModerationEvent.stage == stage)
    if unreviewed:
        query = query.where(ModerationEvent.reviewed.is_(False))
    if before_id is not None:
        query = query.where(ModerationEvent.id < before_id)
    with store.session() as session:
        return [_row(e) for e in session.scalars(query)]


def mark_reviewed(store: Store, event_id: int) -> bool:
    with store.session() as session:
        result = session.execute(update(ModerationEvent).where(ModerationEvent.id == event_id).values(reviewed=True))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def purge_text(store: Store, days: int) -> int:
    """Clear the judged text of decisions older than `days` (the conversation retention)."""
    if days < 0:
        raise InvalidRequestError(f"must be >= 0, got {days}", field="days")
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with store.session() as session:
        result = session.execute(update(ModerationEvent).where(ModerationEvent.created_at < cutoff)
                                 .values(text=None))
        return result.rowcount or 0  # type: ignore[attr-defined]


def redact_stored(store: Store) -> int:
    """Redact personal data (candor.moderation.pii) from every stored conversation turn and kept
    moderation text; the number of rows changed."""
    from candor.moderation.pii import redact
    from candor.store.models import ChatMessage

    changed = 0
    with store.session() as session:
        for message in session.scalars(select(ChatMessage)):
            clean = redact(message.content)
            if clean != message.content:
                message.content, changed = clean, changed + 1
        for event in session.scalars(select(ModerationEvent).where(ModerationEvent.text.is_not(None))):
            clean = redact(event.text or "")
            if clean != event.text:
                event.text, changed = clean, changed + 1
    return changed


def _row(e: ModerationEvent) -> dict[str, Any]:
    return {"id": e.id, "created_at": e.created_at.isoformat(), "request_id": e.request_id, "key_id": e.key_id,
            "user_id": e.user_id, "model": e.model, "stage": e.stage, "action": e.action, "category": e.category,
            "score": round(e.score, 4), "threshold": round(e.threshold, 4), "text": e.text, "reviewed": e.reviewed}
