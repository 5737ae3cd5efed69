"""API keys: shown once, stored as a SHA-256 hash with a short visible prefix.

Keys are 32 random bytes, so a fast hash is enough (no password stretching is needed) and lets
every request look its key up by hash in one indexed query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from candor.errors import InvalidRequestError, NotFoundError
from candor.store.models import ApiKey, User, utcnow

KEY_PREFIX = "sk-candor-"


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secrets_match(given: str, expected: str) -> bool:
    """Constant-time comparison of any two strings. `hmac.compare_digest` refuses str with
    non-ASCII characters (TypeError), and headers can carry them, so compare UTF-8 bytes."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class KeyContext:
    """Who is calling, resolved once per request."""

    key_id: int | None
    prefix: str
    username: str
    pseudonym: str
    role: str
    models: tuple[str, ...] | None
    rpm: int | None = None
    itpm: int | None = None
    otpm: int | None = None
    monthly_limit_usd: Decimal | None = None
    # The user behind the key, and their monthly limit over everything they spend (page and keys).
    # A chat-page caller has key_id None and user_id set; its rpm/itpm/otpm are the user's.
    user_id: int | None = None
    user_monthly_limit_usd: Decimal | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_anonymous(self) -> bool:
        """A request without a valid key on a `--no-auth` server."""
        return self.role == "anonymous"


def _positive(value: int | None, field: str) -> int | None:
    if value is not None and value < 1:
        raise InvalidRequestError(f"must be >= 1, got {value}", field=field)
    return value


def create_key(session: Session, user: User, *, name: str = "", models: list[str] | None = None,
               expires_at: dt.datetime | None = None, rpm: int | None = None, itpm: int | None = None,
               otpm: int | None = None, monthly_limit_usd: float | Decimal | None = None) -> tuple[ApiKey, str]:
    if monthly_limit_usd is not None and Decimal(str(monthly_limit_usd)) < 0:
        raise InvalidRequestError(f"must be >= 0, got {monthly_limit_usd}", field="monthly_limit_usd")
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=dt.UTC)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequestError("must be in the future", field="expires")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(user_id=user.id, name=name, prefix=secret[:18], key_hash=hash_key(secret),
                 models=list(models) if models else None, expires_at=expires_at,
                 rpm=_positive(rpm, "rpm"), itpm=_positive(itpm, "itpm"), otpm=_positive(otpm, "otpm"),
                 monthly_limit_usd=None if monthly_limit_usd is None else Decimal(str(monthly_limit_usd)))
    session.add(key)
    session.flush()
    return key, secret


def find_key(session: Session, ident: str) -> ApiKey:
    """A key by numeric id or visible prefix."""
    query = select(ApiKey).where(ApiKey.id == int(ident)) if ident.isdigit() else \
        select(ApiKey).where(ApiKey.prefix == ident)
    keys = list(session.scalars(query))
    if not keys:
        raise NotFoundError(f"key: no key {ident!r}", field="key")
    if len(keys) > 1:
        raise InvalidRequestError(f"prefix {ident!r} matches {len(keys)} keys; use the id", field="key")
    return keys[0]


def revoke_key(session: Session, ident: str) -> ApiKey:
    key = find_key(session, ident)
    key.revoked_at = key.revoked_at or utcnow()
    return key


def list_keys(session: Session, username: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).join(User).order_by(ApiKey.id)
    if username:
        query = query.where(User.username == username)
    return list(session.scalars(query))


def key_record(key: ApiKey) -> dict:
    iso = lambda t: t.isoformat() if t else None
    return {"id": key.id, "prefix": key.prefix, "name": key.name, "user": key.user.username,
            "models": key.models, "expires_at": iso(key.expires_at), "rpm": key.rpm, "itpm": key.itpm,
            "otpm": key.otpm, "monthly_limit_usd": None if key.monthly_limit_usd is None else float(key.monthly_limit_usd),
            "created_at": iso(key.created_at), "revoked_at": iso(key.revoked_at),
            "last_used_at": iso(key.last_used_at)}


class KeyRejected(Exception):
    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def authenticate(session: Session, secret: str) -> KeyContext:
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if key is None:
        raise KeyRejected(401, "authentication_error", "invalid x-api-key")
    if key.revoked_at is not None:
        raise KeyRejected(401, "authentication_error", f"API key {key.prefix}… has been revoked")
    expires = key.expires_at
    if expires is not None and (expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)) <= utcnow():
        raise KeyRejected(401, "authentication_error", f"API key {key.prefix}… expired on {expires:%Y-%m-%d}")
    user = key.user
    if user.status != "active":
        raise KeyRejected(403, "permission_error", f"the account {user.username!r} is disabled")
    if user.role == "pending":
        raise KeyRejected(403, "permission_error",
                          f"the account {user.username!r} is waiting for an administrator's approval")
    return KeyContext(key_id=key.id, prefix=key.prefix, username=user.username, pseudonym=user.pseudonym,
                      role=user.role, models=tuple(key.models) if key.models else None, rpm=key.rpm,
                      itpm=key.itpm, otpm=key.otpm, monthly_limit_usd=key.monthly_limit_usd, user_id=user.id,
                      user_monthly_limit_usd=user.monthly_limit_usd)


def page_caller(user: User) -> KeyContext:
    """The chat page's caller: metered under the prefix "web", limited by the user's own limits."""
    return KeyContext(key_id=None, prefix="web", username=user.username, pseudonym=user.pseudonym, role=user.role,
                      models=None, rpm=user.rpm, itpm=user.itpm, otpm=user.otpm, user_id=user.id,
                      user_monthly_limit_usd=user.monthly_limit_usd)
