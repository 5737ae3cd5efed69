"""Retention: conversation text (with the files attached to the conversations, and self-critique
drafts) older than the configured number of days is deleted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.engine import CursorResult

from candor.errors import InvalidRequestError
from candor.store import Store
from candor.store.models import Conversation, CritiqueRecord, files


@dataclass(frozen=True)
class Purged:
    conversations: int
    attachments: int  # chat-page files attached to those conversations


def purge_old(store: Store, days: int) -> Purged:
    """Delete conversations not updated for `days` days, their attachments and old critiques, in
    one transaction. Attachments would go with their conversation anyway (a foreign key with ON
    DELETE CASCADE); deleting them first counts them and does not depend on the database's cascade."""
    if days < 0:
        raise InvalidRequestError(f"must be >= 0, got {days}", field="days")
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    old = select(Conversation.id).where(Conversation.updated_at < cutoff)
    with store.session() as session:
        attached: CursorResult = session.execute(  # type: ignore[assignment]
            delete(files).where(files.c.conversation_id.in_(old)))
        result: CursorResult = session.execute(  # type: ignore[assignment]
            delete(Conversation).where(Conversation.updated_at < cutoff))
        session.execute(delete(CritiqueRecord).where(CritiqueRecord.created_at < cutoff))
        return Purged(result.rowcount or 0, attached.rowcount or 0)


def purge_conversations(store: Store, days: int) -> int:
    """The number of conversations `purge_old` deleted."""
    return purge_old(store, days).conversations
