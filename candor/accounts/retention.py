"""Retention: conversation text (and self-critique drafts) older than the configured number of
days is deleted."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.engine import CursorResult

from candor.errors import InvalidRequestError
from candor.store import Store
from candor.store.models import Conversation, CritiqueRecord


def purge_conversations(store: Store, days: int) -> int:
    if days < 0:
        raise InvalidRequestError(f"must be >= 0, got {days}", field="days")
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with store.session() as session:
        result: CursorResult = session.execute(delete(Conversation).where(Conversation.updated_at < cutoff))  # type: ignore[assignment]
        session.execute(delete(CritiqueRecord).where(CritiqueRecord.created_at < cutoff))
        return result.rowcount or 0
