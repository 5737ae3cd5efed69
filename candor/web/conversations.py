"""Conversations as trees of turns, for the chat page.

Each turn points at its parent; a conversation remembers the leaf on screen. Editing a question
or regenerating an answer adds a sibling, and the view lists, for every turn on the current
branch, its siblings, so the page can step between versions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from candor.chat.render import Message
from candor.errors import InvalidRequestError, NotFoundError
from candor.store.models import ChatMessage, Conversation, CritiqueRecord, Rating, User, utcnow
from candor.web import citations


def get_owned(s: Session, user: User, conversation_id: int) -> Conversation:
    conv = s.get(Conversation, conversation_id)
    if conv is None or conv.user_id != user.id:
        raise NotFoundError(f"conversation {conversation_id} not found", field="conversation")
    return conv


def get_message(s: Session, conv: Conversation, message_id: int) -> ChatMessage:
    msg = s.get(ChatMessage, message_id)
    if msg is None or msg.conversation_id != conv.id:
        raise NotFoundError(f"message {message_id} not found in this conversation", field="message")
    return msg


def create(s: Session, user: User, model: str, system: str | None) -> Conversation:
    conv = Conversation(user_id=user.id, title="", model=model, system=(system or "").strip() or None)
    s.add(conv)
    s.flush()
    return conv


def list_for(s: Session, user: User, query: str | None = None) -> list[dict[str, Any]]:
    stmt = select(Conversation).where(Conversation.user_id == user.id)
    if query and query.strip():
        like = f"%{query.strip().lower()}%"
        in_messages = select(ChatMessage.conversation_id).where(func.lower(ChatMessage.content).like(like))
        stmt = stmt.where(or_(func.lower(Conversation.title).like(like), Conversation.id.in_(in_messages)))
    stmt = stmt.order_by(Conversation.updated_at.desc(), Conversation.id.desc())
    return [{"id": c.id, "title": c.title or "New conversation", "model": c.model,
             "updated_at": c.updated_at.isoformat()} for c in s.scalars(stmt)]


def children(s: Session, conv: Conversation, parent_id: int | None) -> list[ChatMessage]:
    stmt = select(ChatMessage).where(ChatMessage.conversation_id == conv.id)
    stmt = stmt.where(ChatMessage.parent_id.is_(None) if parent_id is None else ChatMessage.parent_id == parent_id)
    return list(s.scalars(stmt.order_by(ChatMessage.id)))


def leaf_of(s: Session, conv: Conversation, message: ChatMessage) -> ChatMessage:
    """Follow the newest child down to a leaf."""
    while True:
        kids = children(s, conv, message.id)
        if not kids:
            return message
        message = kids[-1]


def path(s: Session, conv: Conversation, leaf_id: int | None) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    current = s.get(ChatMessage, leaf_id) if leaf_id else None
    while current is not None:
        out.append(current)
        current = s.get(ChatMessage, current.parent_id) if current.parent_id else None
    return list(reversed(out))


def history(s: Session, conv: Conversation, up_to: ChatMessage) -> list[Message]:
    """The turns the model sees for an answer after `up_to` (answers that came back empty are
    left out, and so is the user turn they answered, to keep turns alternating)."""
    turns = [m for m in path(s, conv, up_to.id)]
    messages: list[Message] = []
    for m in turns:
        if m.role == "assistant" and not m.content.strip():
            if messages and messages[-1].role == "user":
                messages.pop()
            continue
        if messages and messages[-1].role == m.role:
            messages[-1] = Message(m.role, m.content)  # keep alternation; the later turn wins
        else:
            messages.append(Message(m.role, m.content))  # type: ignore[arg-type]
    return messages


def add(s: Session, conv: Conversation, parent_id: int | None, role: str, content: str, **fields: Any) -> ChatMessage:
    if parent_id is not None:
        parent = get_message(s, conv, parent_id)
        expected = "assistant" if parent.role == "user" else "user"
        if role != expected:
            raise InvalidRequestError(f"a {parent.role} turn must be followed by a {expected} turn", field="parent_id")
    elif role != "user":
        raise InvalidRequestError("a conversation starts with a user turn", field="parent_id")
    msg = ChatMessage(conversation_id=conv.id, parent_id=parent_id, role=role, content=content, **fields)
    s.add(msg)
    s.flush()
    conv.current_leaf_id = msg.id
    conv.updated_at = utcnow()
    if not conv.title and role == "user":
        conv.title = " ".join(content.split())[:80]
    return msg


def view(s: Session, conv: Conversation, user: User) -> dict[str, Any]:
    turns = path(s, conv, conv.current_leaf_id)
    ratings = {r.message_id: r.value for r in s.scalars(
        select(Rating).where(Rating.user_id == user.id, Rating.message_id.in_([t.id for t in turns])))} if turns else {}
    critiqued = set(s.scalars(select(CritiqueRecord.message_id).where(
        CritiqueRecord.message_id.in_([t.id for t in turns])))) if turns else set()
    out = []
    for m in turns:
        siblings = [x.id for x in children(s, conv, m.parent_id)]
        item: dict[str, Any] = {"id": m.id, "parent_id": m.parent_id, "role": m.role, "content": m.content, "status": m.status,
                "model": m.model, "siblings": siblings, "sibling_index": siblings.index(m.id)}
        if m.role == "assistant":
            kept = citations.loads(m.documents)  # citations and placements, or a summary's parts
            item.update(html=citations.render(m.content, kept), input_tokens=m.input_tokens,
                        output_tokens=m.output_tokens, ttft_ms=m.ttft_ms, tokens_per_s=m.tokens_per_s,
                        cost_usd=str(m.cost_usd), rating=ratings.get(m.id), critiqued=m.id in critiqued,
                        **citations.view_fields(kept))
        out.append(item)
    totals = s.execute(select(func.coalesce(func.sum(ChatMessage.input_tokens), 0),
                              func.coalesce(func.sum(ChatMessage.output_tokens), 0),
                              func.coalesce(func.sum(ChatMessage.cost_usd), 0))
                       .where(ChatMessage.conversation_id == conv.id)).one()
    return {"id": conv.id, "title": conv.title or "New conversation", "model": conv.model, "system": conv.system,
            "messages": out, "totals": {"input_tokens": int(totals[0]), "output_tokens": int(totals[1]),
                                        "cost_usd": str(Decimal(str(totals[2])))}}


def switch(s: Session, conv: Conversation, message_id: int) -> None:
    conv.current_leaf_id = leaf_of(s, conv, get_message(s, conv, message_id)).id
