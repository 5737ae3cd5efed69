"""Users of a limited-access deployment: pending until an admin approves them.

Passwords (for the chat page) are hashed with Argon2id. Usage records name a user only by a
random pseudonym, so deleting the user leaves counts and costs but nothing that identifies them.
"""

from __future__ import annotations

import functools
import secrets
from decimal import Decimal
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from candor.errors import InvalidRequestError, NotFoundError
from candor.store.models import ApiKey, Conversation, UsageRecord, User, WebSession, files, utcnow

ROLES = ("admin", "member", "pending")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InvalidRequestError("must be at least 8 characters", field="password")
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    return _verify(user.password_hash, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def check_password(session: Session, username: str, password: str) -> User | None:
    """The user if this is their password, else None. One Argon2 verification either way (a
    dummy hash stands in for unknown names and users without a password), so the time a
    sign-in takes does not tell which names exist."""
    user = session.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None and user.password_hash else None
    ok = _verify(stored or _dummy_hash(), password)
    return user if ok and stored else None


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFoundError(f"user: no user named {username!r}", field="user")
    return user


def create_user(session: Session, username: str, *, role: str = "pending", password: str | None = None,
                email: str | None = None) -> User:
    username = (username or "").strip()
    if not username or len(username) > 120:
        raise InvalidRequestError("must be 1 to 120 characters", field="username")
    if role not in ROLES:
        raise InvalidRequestError(f"must be one of {', '.join(ROLES)}, got {role!r}", field="role")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidRequestError(f"a user named {username!r} already exists", field="username")
    user = User(username=username, role=role, email=email, status="active",
                password_hash=hash_password(password) if password else None,
                pseudonym="u_" + secrets.token_hex(8), approved_at=None if role == "pending" else utcnow())
    session.add(user)
    session.flush()
    return user


def approve_user(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user.role == "pending":
        user.role = "member"
        user.approved_at = utcnow()
    user.status = "active"
    return user


def disable_user(session: Session, username: str) -> User:
    """Disable the account: its keys are refused and its chat-page sessions end."""
    user = get_user(session, username)
    user.status = "disabled"
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return user


def delete_user(session: Session, username: str) -> None:
    """Erase the user, their keys and conversations; usage keeps only anonymous counts."""
    user = get_user(session, username)
    session.delete(user)


def set_limits(session: Session, username: str, *, rpm: int | None = None, itpm: int | None = None,
               otpm: int | None = None, monthly_limit_usd: float | Decimal | None = None,
               clear: bool = False) -> User:
    """A user's chat-page rate limits and monthly spend limit (page and keys together). Values
    not given stay as they are; `clear` first resets all four to "the model tier's defaults"
    (rates) and "no limit" (spend)."""
    user = get_user(session, username)
    if clear:
        user.rpm = user.itpm = user.otpm = user.monthly_limit_usd = None
    for field, value in (("rpm", rpm), ("itpm", itpm), ("otpm", otpm)):
        if value is not None:
            if value < 1:
                raise InvalidRequestError(f"must be >= 1, got {value}", field=field)
            setattr(user, field, value)
    if monthly_limit_usd is not None:
        if Decimal(str(monthly_limit_usd)) < 0:
            raise InvalidRequestError(f"must be >= 0, got {monthly_limit_usd}", field="monthly_limit_usd")
        user.monthly_limit_usd = Decimal(str(monthly_limit_usd))
    return user


def limits_record(user: User) -> dict[str, Any]:
    return {"rpm": user.rpm, "itpm": user.itpm, "otpm": user.otpm,
            "monthly_limit_usd": None if user.monthly_limit_usd is None else float(user.monthly_limit_usd)}


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def ensure_admin(session: Session, username: str = "admin", password: str | None = None) -> tuple[User, str] | None:
    """Create the first admin if there is none; returns (user, password) when one was made."""
    if session.scalar(select(User.id).where(User.role == "admin")) is not None:
        return None
    password = password or secrets.token_urlsafe(12)
    return create_user(session, username, role="admin", password=password), password


def export_user(session: Session, username: str) -> dict[str, Any]:
    """Everything stored about a user, as JSON-ready data."""
    user = get_user(session, username)
    keys = list(session.scalars(select(ApiKey).where(ApiKey.user_id == user.id)))
    key_ids = [k.id for k in keys]
    usage = list(session.scalars(select(UsageRecord).where(UsageRecord.key_id.in_(key_ids)))) if key_ids else []
    conversations = list(session.scalars(select(Conversation).where(Conversation.user_id == user.id)))
    attached: dict[int, list[dict[str, Any]]] = {}
    if conversations:  # the chat page's attachments: what they are, not their bytes
        for row in session.execute(select(files.c.conversation_id, files.c.filename, files.c.mime_type,
                                          files.c.size_bytes, files.c.created_at)
                                   .where(files.c.conversation_id.in_([c.id for c in conversations]))):
            attached.setdefault(row.conversation_id, []).append(
                {"filename": row.filename, "mime_type": row.mime_type, "size_bytes": row.size_bytes,
                 "created_at": row.created_at.isoformat()})
    iso = lambda t: t.isoformat() if t else None
    return {
        "user": {"username": user.username, "email": user.email, "role": user.role, "status": user.status,
                 "created_at": iso(user.created_at), "approved_at": iso(user.approved_at)},
        "keys": [{"prefix": k.prefix, "name": k.name, "created_at": iso(k.created_at),
                  "revoked_at": iso(k.revoked_at)} for k in keys],
        "usage": [{"time": iso(u.created_at), "model": u.model, "endpoint": u.endpoint, "input_tokens": u.input_tokens,
                   "output_tokens": u.output_tokens, "cost_usd": str(u.cost_usd), "status": u.status} for u in usage],
        "conversations": [{"title": c.title, "model": c.model, "created_at": iso(c.created_at),
                           "messages": [{"role": m.role, "content": m.content} for m in c.messages],
                           "attachments": attached.get(c.id, [])}
                          for c in conversations],
    }
