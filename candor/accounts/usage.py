"""Usage metering: one record per API request, and reports grouped by day, key, user or model."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import secrets
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select

from candor.errors import InvalidRequestError
from candor.store import Store
from candor.store.models import Setting, UsageRecord
from candor.text_table import format_table

GROUPS = ("day", "key", "user", "model")
# How reports name requests refused before any key was accepted (no key, or a bad one). Bootstrap
# keys are metered as "bootstrap", anonymous requests on a --no-auth server as "no-auth".
UNAUTHENTICATED = "(unauthenticated)"


@dataclass
class UsageEvent:
    key_id: int | None
    key_prefix: str
    user_pseudonym: str
    model: str
    endpoint: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    ttft_ms: float | None
    latency_ms: float
    status: int
    end_user: str | None = None


def record(store: Store, event: UsageEvent, secret: bytes) -> None:
    with store.session() as session:
        session.add(UsageRecord(
            key_id=event.key_id, key_prefix=event.key_prefix, user_pseudonym=event.user_pseudonym,
            end_user_hash=end_user_hash(event.end_user, secret) if event.end_user else None,
            model=event.model, endpoint=event.endpoint, input_tokens=event.input_tokens,
            output_tokens=event.output_tokens, cost_usd=event.cost_usd,
            ttft_ms=None if event.ttft_ms is None else round(event.ttft_ms, 3), latency_ms=round(event.latency_ms, 3),
            status=event.status))


def hashing_secret(store: Store) -> bytes:
    """The server's secret for keyed hashes of end-user ids, made once and kept in the store."""
    with store.session() as session:
        row = session.get(Setting, "end_user_hash_secret")
        if row is None:
            row = Setting(name="end_user_hash_secret", value=secrets.token_hex(32))
            session.add(row)
        return bytes.fromhex(row.value)


def end_user_hash(value: str, secret: bytes) -> str:
    """metadata.user_id is stored only as HMAC-SHA256 under the server's secret."""
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()


def parse_since(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    text = text.strip()
    if text[-1:] in "dh" and text[:-1].isdigit():
        delta = dt.timedelta(days=int(text[:-1])) if text.endswith("d") else dt.timedelta(hours=int(text[:-1]))
        return dt.datetime.now(dt.UTC) - delta
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequestError(f"use an ISO date (2026-11-01) or a span like 7d or 12h, got {text!r}",
                                  field="since") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def report(store: Store, since: dt.datetime | None = None, by: str = "day") -> list[dict]:
    if by not in GROUPS:
        raise InvalidRequestError(f"must be one of {', '.join(GROUPS)}, got {by!r}", field="by")
    with store.session() as session:
        rows = session.execute(select(UsageRecord).where(UsageRecord.created_at >= since) if since
                               else select(UsageRecord)).scalars().all()
    groups: dict[str, dict] = {}
    for r in rows:
        created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=dt.UTC)
        name = {"day": created.date().isoformat(), "key": r.key_prefix or UNAUTHENTICATED,
                "user": r.user_pseudonym or UNAUTHENTICATED, "model": r.model}[by]
        g = groups.setdefault(name, {by: name, "requests": 0, "errors": 0, "input_tokens": 0,
                                     "output_tokens": 0, "cost_usd": Decimal(0)})
        g["requests"] += 1
        g["errors"] += r.status >= 400
        g["input_tokens"] += r.input_tokens
        g["output_tokens"] += r.output_tokens
        g["cost_usd"] += Decimal(str(r.cost_usd))
    return [groups[k] for k in sorted(groups)]


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{**r, "cost_usd": str(r["cost_usd"])} for r in rows], indent=2)
    if not rows:
        return "(no usage)" if fmt == "table" else ""
    headers = list(rows[0])
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=headers)
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    total = {headers[0]: "total", **{h: sum(r[h] for r in rows) for h in headers[1:]}}
    cells = [[str(r[h]) if h != "cost_usd" else f"{r[h]:.6f}" for h in headers] for r in rows + [total]]
    return format_table(headers, cells)


def count_records(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count(UsageRecord.id))) or 0
