"""Rate limits (requests, input tokens, output tokens per minute) and monthly spend, per API key
and, for the chat page's answers, per user.

Each limit is a token bucket holding up to one minute's allowance and refilled continuously, as
Anthropic describes its own limits, so there is no window edge at which twice the limit gets
through. Admission is one conditional update ("refill, then take 1 request and n input tokens,
only if all three buckets allow it"), which the database (or Redis, when CANDOR_REDIS_URL is set)
performs atomically, so limits hold across any number of server processes. Output tokens are
unknown until an answer ends: a request is admitted while the output bucket is not empty, and
its output is taken when it finishes (the bucket may go into debt).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult

from candor.store import Store
from candor.store.models import RateBucket, UsageRecord, UserRateBucket

UNLIMITED = 2**31 - 1
FULL = 1e15  # a new bucket starts full: refilling clamps this to the limit


@dataclass(frozen=True)
class Limits:
    rpm: int | None
    itpm: int | None
    otpm: int | None

    def caps(self) -> tuple[float, float, float]:
        r, i, o = (float(UNLIMITED if v is None else v) for v in (self.rpm, self.itpm, self.otpm))
        return r, i, o


@dataclass(frozen=True)
class BucketState:
    """Levels after admission (or as they stand, for a peek), at time `at`."""

    requests: float
    input_tokens: float
    output_tokens: float
    at: float

    def remaining(self) -> tuple[int, int, int]:
        r, i, o = (max(0, math.floor(v)) for v in (self.requests, self.input_tokens, self.output_tokens))
        return r, i, o


@dataclass(frozen=True)
class Decision:
    allowed: bool
    state: BucketState
    exceeded: str | None = None  # "requests", "input tokens" or "output tokens"
    retry_after: int = 0


def refilled(level: float, cap: float, elapsed: float) -> float:
    return min(cap, level + max(0.0, elapsed) * cap / 60.0)


def _verdict(state: BucketState, limits: Limits, input_tokens: int) -> Decision:
    """Why a request was refused, and how long until it would fit."""
    caps = limits.caps()
    needs = (("requests", state.requests, 1.0, caps[0]), ("input tokens", state.input_tokens, input_tokens, caps[1]),
             ("output tokens", state.output_tokens, 1e-9, caps[2]))
    for name, level, need, cap in needs:
        if level < need:
            if need > cap:
                return Decision(False, state, name, 60)
            return Decision(False, state, name, max(1, math.ceil((need - level) * 60.0 / cap)))
    return Decision(False, state, "requests", 1)  # raced with another process: retry soon


def _sql_refill(table, column, cap: float, now: float):
    level = column + (literal(now) - table.updated_at) * (cap / 60.0)
    return case((level > cap, cap), else_=level)


class DbCounters:
    """Buckets in the database: `rate_buckets` (one per API key) or `user_rate_buckets` (one per
    user, for the chat page), chosen by `table`."""

    def __init__(self, store: Store, table: type[RateBucket | UserRateBucket] = RateBucket):
        self.store = store
        self.table = table
        self.owner = table.user_id if table is UserRateBucket else table.key_id  # type: ignore[union-attr]

    def _ensure_row(self, session, key_id: int, now: float) -> None:
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(self.table).values(
            {self.owner.name: key_id, "requests": FULL, "input_tokens": FULL, "output_tokens": FULL,
             "updated_at": now}).on_conflict_do_nothing())

    def _state(self, session, key_id: int, limits: Limits, now: float) -> BucketState:
        row = session.get(self.table, key_id, populate_existing=True)
        caps = limits.caps()
        if row is None:
            return BucketState(*caps, now)
        elapsed = now - row.updated_at
        return BucketState(refilled(row.requests, caps[0], elapsed), refilled(row.input_tokens, caps[1], elapsed),
                           refilled(row.output_tokens, caps[2], elapsed), now)

    def admit(self, key_id: int, limits: Limits, input_tokens: int, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        r_cap, i_cap, o_cap = limits.caps()
        t = self.table
        r, i, o = (_sql_refill(t, t.requests, r_cap, now), _sql_refill(t, t.input_tokens, i_cap, now),
                   _sql_refill(t, t.output_tokens, o_cap, now))
        with self.store.session() as session:
            self._ensure_row(session, key_id, now)
            result: CursorResult = session.execute(  # type: ignore[assignment]  # an UPDATE's result
                update(t)
                .where(self.owner == key_id, r >= 1, i >= input_tokens, o > 0)
                .values(requests=r - 1, input_tokens=i - input_tokens, output_tokens=o,
                        updated_at=case((t.updated_at > now, t.updated_at), else_=now))
                .execution_options(synchronize_session=False))
            state = self._state(session, key_id, limits, now)
        if result.rowcount == 1:
            return Decision(True, state)
        return _verdict(state, limits, input_tokens)

    def add_output(self, key_id: int, output_tokens: int) -> None:
        if output_tokens <= 0:
            return
        with self.store.session() as session:
            session.execute(update(self.table).where(self.owner == key_id)
                            .values(output_tokens=self.table.output_tokens - output_tokens)
                            .execution_options(synchronize_session=False))

    def peek(self, key_id: int, limits: Limits, now: float | None = None) -> BucketState:
        with self.store.session() as session:
            return self._state(session, key_id, limits, time.time() if now is None else now)


_ADMIT = """
local k = KEYS[1]
local now = tonumber(ARGV[1])
local caps = {tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])}
local need = tonumber(ARGV[5])
local v = redis.call('HMGET', k, 'r', 'i', 'o', 't')
local t = tonumber(v[4]) or now
local lv = {}
for n = 1, 3 do
  local level = tonumber(v[n]) or caps[n]
  level = level + math.max(0, now - t) * caps[n] / 60
  if level > caps[n] then level = caps[n] end
  lv[n] = level
end
local ok = 0
if lv[1] >= 1 and lv[2] >= need and lv[3] > 0 then
  lv[1] = lv[1] - 1
  lv[2] = lv[2] - need
  ok = 1
end
if now > t then t = now end
redis.call('HSET', k, 'r', lv[1], 'i', lv[2], 'o', lv[3], 't', t)
redis.call('EXPIRE', k, 3600)
return {ok, tostring(lv[1]), tostring(lv[2]), tostring(lv[3])}
"""


class RedisCounters:
    """The same buckets in Redis, for deployments that already run it (one Lua script per admission)."""

    def __init__(self, url: str, namespace: str = "rl"):
        import redis

        self.client = redis.Redis.from_url(url)
        self._admit = self.client.register_script(_ADMIT)
        self.namespace = namespace  # "rl" for API keys, "rl-user" for users' chat-page answers

    def _key(self, key_id: int) -> str:
        return f"candor:{self.namespace}:{key_id}"

    def admit(self, key_id: int, limits: Limits, input_tokens: int, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        ok, r, i, o = self._admit(keys=[self._key(key_id)], args=[now, *limits.caps(), input_tokens])
        state = BucketState(float(r), float(i), float(o), now)
        return Decision(True, state) if ok == 1 else _verdict(state, limits, input_tokens)

    def add_output(self, key_id: int, output_tokens: int) -> None:
        if output_tokens > 0:
            self.client.hincrbyfloat(self._key(key_id), "o", -output_tokens)

    def peek(self, key_id: int, limits: Limits, now: float | None = None) -> BucketState:
        now = time.time() if now is None else now
        r, i, o, t = self.client.hmget(self._key(key_id), "r", "i", "o", "t")
        caps = limits.caps()
        if r is None or i is None or o is None or t is None:
            return BucketState(*caps, now)
        elapsed = now - float(t)
        return BucketState(refilled(float(r), caps[0], elapsed), refilled(float(i), caps[1], elapsed),
                           refilled(float(o), caps[2], elapsed), now)


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend(store: Store, key_id: int | None = None, *, pseudonym: str | None = None) -> Decimal:
    """This month's spend of one key, or (by `pseudonym`) of one user: page answers and keys."""
    where = UsageRecord.key_id == key_id if pseudonym is None else UsageRecord.user_pseudonym == pseudonym
    with store.session() as session:
        total = session.scalar(select(func.coalesce(func.sum(UsageRecord.cost_usd), 0))
                               .where(where, UsageRecord.created_at >= month_start()))
    return Decimal(str(total))


def rate_headers(limits: Limits, state: BucketState) -> dict[str, str]:
    """Anthropic's rate-limit headers: limit, remaining, and when the bucket is full again
    (token "remaining" values rounded to the nearest thousand, as the real API does)."""
    out: dict[str, str] = {}
    caps = limits.caps()
    levels = (state.requests, state.input_tokens, state.output_tokens)
    for name, cap, level, given in zip(("requests", "input-tokens", "output-tokens"), caps, levels,
                                       (limits.rpm, limits.itpm, limits.otpm)):
        remaining = max(0, math.floor(level))
        if name != "requests" and given is not None and remaining >= 1000:
            remaining = round(remaining, -3)
        full_in = max(0.0, (cap - level) * 60.0 / cap)
        out[f"anthropic-ratelimit-{name}-limit"] = str(int(cap))
        out[f"anthropic-ratelimit-{name}-remaining"] = str(remaining)
        out[f"anthropic-ratelimit-{name}-reset"] = _rfc3339(state.at + full_in)
    tok_cap = min(UNLIMITED, int(caps[1] + caps[2]))
    tok_left = max(0, min(tok_cap, math.floor(state.input_tokens + state.output_tokens)))
    out["anthropic-ratelimit-tokens-limit"] = str(tok_cap)
    out["anthropic-ratelimit-tokens-remaining"] = str(tok_left)
    out["anthropic-ratelimit-tokens-reset"] = out["anthropic-ratelimit-input-tokens-reset"]
    return out


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(math.ceil(ts), dt.UTC).isoformat().replace("+00:00", "Z")
