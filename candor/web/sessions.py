"""Browser sessions: a random token in a Secure, HttpOnly, SameSite=Lax cookie; the store keeps
only its hash and a per-session CSRF token that every state-changing request must echo in the
`x-csrf-token` header (a cross-site form cannot read it)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from fastapi import Request, Response
from sqlalchemy import delete

from candor.accounts.keys import secrets_match
from candor.config import env
from candor.errors import AccessError
from candor.store import Store
from candor.store.models import User, WebSession, utcnow

COOKIE = "candor_session"
LIFETIME = dt.timedelta(days=14)
LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(store: Store, user: User, request: Request, response: Response) -> str:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    with store.session() as s:
        s.add(WebSession(token_hash=_hash(token), user_id=user.id, csrf_token=csrf, expires_at=utcnow() + LIFETIME))
    # Browsers keep Secure cookies on https and on loopback http; a LAN deployment should sit
    # behind TLS (set CANDOR_INSECURE_COOKIES=1 only to try it without).
    secure = request.url.scheme == "https" or request.url.hostname in LOOPBACK or \
        not env("CANDOR_INSECURE_COOKIES")
    response.set_cookie(COOKIE, token, max_age=int(LIFETIME.total_seconds()), httponly=True, secure=secure,
                        samesite="lax", path="/")
    return csrf


def end_session(store: Store, request: Request, response: Response) -> None:
    token = request.cookies.get(COOKIE)
    if token:
        with store.session() as s:
            s.execute(delete(WebSession).where(WebSession.token_hash == _hash(token)))
    response.delete_cookie(COOKIE, path="/")


def current(store: Store, request: Request) -> tuple[User, WebSession] | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    with store.session() as s:
        row = s.get(WebSession, _hash(token))
        if row is None:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
        if expires <= utcnow():
            s.delete(row)
            return None
        user = s.get(User, row.user_id)
        s.expunge_all()
        return (user, row) if user is not None else None


def require_user(store: Store, request: Request, *, admin: bool = False) -> tuple[User, WebSession]:
    found = current(store, request)
    if found is None:
        raise AccessError(401, "authentication_error", "sign in first")
    user, row = found
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get("x-csrf-token", "")
        if not secrets_match(sent, row.csrf_token):
            raise AccessError(403, "permission_error", "missing or wrong x-csrf-token header")
    if user.status != "active":
        raise AccessError(403, "permission_error", "this account is disabled")
    if user.role == "pending":
        raise AccessError(403, "permission_error", "this account is waiting for an administrator's approval")
    if admin and user.role != "admin":
        raise AccessError(403, "permission_error", "administrators only")
    return user, row
