"""Admin HTTP endpoints: the same actions as `candor users|keys|usage`, for administrators' keys."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from candor.accounts import keys as key_ops
from candor.accounts import users as user_ops
from candor.accounts.usage import parse_since, report
from candor.api.guard import caller
from candor.errors import InvalidRequestError

router = APIRouter(prefix="/v1/admin")


def _admin_store(request: Request):
    caller(request, admin=True)  # also on a --no-auth server
    return request.app.state.store


async def _in_session(request: Request, fn, *args, **kwargs) -> Any:
    store = _admin_store(request)

    def work():
        with store.session() as session:
            return fn(session, *args, **kwargs)

    return await asyncio.to_thread(work)


def _user(u) -> dict:
    return {"username": u.username, "role": u.role, "status": u.status, "created_at": u.created_at.isoformat()}


class NewUser(BaseModel):
    username: str
    role: str = "member"
    password: str | None = None
    email: str | None = None


class NewKey(BaseModel):
    user: str
    name: str = ""
    models: list[str] | None = None
    expires_at: dt.datetime | None = None
    rpm: int | None = None
    itpm: int | None = None
    otpm: int | None = None
    monthly_limit_usd: float | None = None


@router.get("/users")
async def list_users(request: Request) -> dict:
    return {"data": await _in_session(request, lambda s: [_user(u) for u in user_ops.list_users(s)])}


@router.post("/users")
async def create_user(body: NewUser, request: Request) -> dict:
    return await _in_session(request, lambda s: _user(user_ops.create_user(
        s, body.username, role=body.role, password=body.password, email=body.email)))


@router.post("/users/{username}/{action}")
async def user_action(username: str, action: str, request: Request) -> dict:
    actions = {"approve": user_ops.approve_user, "disable": user_ops.disable_user}
    if action not in actions:
        raise InvalidRequestError(f"unknown action {action!r}; use approve or disable", field="action")
    return await _in_session(request, lambda s: _user(actions[action](s, username)))


@router.get("/users/{username}/export")
async def export_user(username: str, request: Request) -> dict:
    return await _in_session(request, user_ops.export_user, username)


@router.delete("/users/{username}")
async def delete_user(username: str, request: Request) -> dict:
    await _in_session(request, user_ops.delete_user, username)
    return {"deleted": username}


@router.get("/keys")
async def list_keys(request: Request, user: str | None = None) -> dict:
    return {"data": await _in_session(request, lambda s: [key_ops.key_record(k) for k in key_ops.list_keys(s, user)])}


@router.post("/keys")
async def create_key(body: NewKey, request: Request) -> dict:
    def make(s):
        key, secret = key_ops.create_key(s, user_ops.get_user(s, body.user), name=body.name, models=body.models,
                                         expires_at=body.expires_at, rpm=body.rpm, itpm=body.itpm, otpm=body.otpm,
                                         monthly_limit_usd=body.monthly_limit_usd)
        return {**key_ops.key_record(key), "key": secret}

    return await _in_session(request, make)


@router.get("/keys/{ident}")
async def show_key(ident: str, request: Request) -> dict:
    return await _in_session(request, lambda s: key_ops.key_record(key_ops.find_key(s, ident)))


@router.post("/keys/{ident}/revoke")
async def revoke_key(ident: str, request: Request) -> dict:
    return await _in_session(request, lambda s: key_ops.key_record(key_ops.revoke_key(s, ident)))


@router.get("/usage")
async def usage(request: Request, since: str | None = None, by: str = "day") -> dict:
    store = _admin_store(request)
    rows = await asyncio.to_thread(report, store, parse_since(since), by)
    return {"data": [{**r, "cost_usd": str(r["cost_usd"])} for r in rows]}
