"""Per-key rate limits (requests, input tokens, output tokens per minute) and monthly spend.

Counters live in fixed one-minute windows. Admission is one conditional increment ("add 1
request and n input tokens only if the results stay within the limits"), which the database
(or Redis, when CANDOR_REDIS_URL is set) performs atomically, so limits hold across any number of
server processes. Output tokens are unknown until an answer ends: a request is admitted while the
window's output tokens are under the limit, and its output is added when it finishes.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from candor.store import Store
from candor.store.models import RateWindow, UsageRecord

UNLIMITED = 2**31 - 1
WINDOW_S = 60


@dataclass(frozen=True)
class Limits:
    rpm: int | None
    itpm: int | None
    otpm: int | None


@dataclass(frozen=True)
class WindowState:
    window: int
    requests: int
    input_tokens: int
    output_tokens: int

    def reset_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp((self.window + 1) * WINDOW_S, dt.timezone.utc)

    def seconds_to_reset(self, now: float) -> int:
        return max(1, int((self.window + 1) * WINDOW_S - now + 0.999))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    state: WindowState
    exceeded: str | None = None  # "requests", "input tokens" or "output tokens"


def _cap(limit: int | None) -> int:
    return UNLIMITED if limit is None else limit


def _exceeded(state: WindowState, limits: Limits, input_tokens: int) -> str:
    if state.requests + 1 > _cap(limits.rpm):
        return "requests"
    if state.input_tokens + input_tokens > _cap(limits.itpm):
        return "input tokens"
    return "output tokens"


class DbCounters:
    def __init__(self, store: Store):
        self.store = store

    def _ensure_row(self, session, key_id: int, window: int) -> None:
        dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
        session.execute(dialect.insert(RateWindow).values(key_id=key_id, window_start=window, requests=0,
                                                          input_tokens=0, output_tokens=0).on_conflict_do_nothing())

    def _state(self, session, key_id: int, window: int) -> WindowState:
        row = session.get(RateWindow, (key_id, window), populate_existing=True)
        if row is None:
            return WindowState(window, 0, 0, 0)
        return WindowState(window, row.requests, row.input_tokens, row.output_tokens)

    def admit(self, key_id: int, limits: Limits, input_tokens: int, now: float | None = None) -> Decision:
        window = int((now or time.time()) // WINDOW_S)
        with self.store.session() as session:
            self._ensure_row(session, key_id, window)
            result = session.execute(
                update(RateWindow)
                .where(RateWindow.key_id == key_id, RateWindow.window_start == window,
                       RateWindow.requests + 1 <= _cap(limits.rpm),
                       RateWindow.input_tokens + input_tokens <= _cap(limits.itpm),
                       RateWindow.output_tokens < _cap(limits.otpm))
                .values(requests=RateWindow.requests + 1, input_tokens=RateWindow.input_tokens + input_tokens)
                .execution_options(synchronize_session=False))
            state = self._state(session, key_id, window)
        if result.rowcount == 1:
            return Decision(True, state)
        return Decision(False, state, _exceeded(state, limits, input_tokens))

    def add_output(self, key_id: int, window: int, output_tokens: int) -> None:
        if output_tokens <= 0:
            return
        with self.store.session() as session:
            session.execute(update(RateWindow)
                            .where(RateWindow.key_id == key_id, RateWindow.window_start == window)
                            .values(output_tokens=RateWindow.output_tokens + output_tokens)
                            .execution_options(synchronize_session=False))

    def peek(self, key_id: int, now: float | None = None) -> WindowState:
        window = int((now or time.time()) // WINDOW_S)
        with self.store.session() as session:
            return self._state(session, key_id, window)


_ADMIT = """
local k = KEYS[1]
local r = tonumber(redis.call('HGET', k, 'r') or '0')
local i = tonumber(redis.call('HGET', k, 'i') or '0')
local o = tonumber(redis.call('HGET', k, 'o') or '0')
local ok = 0
if r + 1 <= tonumber(ARGV[1]) and i + tonumber(ARGV[4]) <= tonumber(ARGV[2]) and o < tonumber(ARGV[3]) then
  r = redis.call('HINCRBY', k, 'r', 1)
  i = redis.call('HINCRBY', k, 'i', tonumber(ARGV[4]))
  redis.call('EXPIRE', k, 180)
  ok = 1
end
return {ok, r, i, o}
"""


class RedisCounters:
    """The same counters in Redis, for deployments that already run it (one Lua script per admission)."""

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self._admit = self.client.register_script(_ADMIT)

    @staticmethod
    def _key(key_id: int, window: int) -> str:
        return f"candor:rl:{key_id}:{window}"

    def admit(self, key_id: int, limits: Limits, input_tokens: int, now: float | None = None) -> Decision:
        window = int((now or time.time()) // WINDOW_S)
        ok, r, i, o = self._admit(keys=[self._key(key_id, window)],
                                  args=[_cap(limits.rpm), _cap(limits.itpm), _cap(limits.otpm), input_tokens])
        state = WindowState(window, int(r), int(i), int(o))
        return Decision(True, state) if ok == 1 else Decision(False, state, _exceeded(state, limits, input_tokens))

    def add_output(self, key_id: int, window: int, output_tokens: int) -> None:
        if output_tokens > 0:
            name = self._key(key_id, window)
            pipe = self.client.pipeline()
            pipe.hincrby(name, "o", output_tokens)
            pipe.expire(name, 180)
            pipe.execute()

    def peek(self, key_id: int, now: float | None = None) -> WindowState:
        window = int((now or time.time()) // WINDOW_S)
        values = self.client.hgetall(self._key(key_id, window))
        get = lambda f: int(values.get(f.encode(), 0))  # noqa: E731
        return WindowState(window, get("r"), get("i"), get("o"))


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend(store: Store, key_id: int) -> Decimal:
    with store.session() as session:
        total = session.scalar(select(func.coalesce(func.sum(UsageRecord.cost_usd), 0))
                               .where(UsageRecord.key_id == key_id, UsageRecord.created_at >= month_start()))
    return Decimal(str(total))


def rate_headers(limits: Limits, state: WindowState) -> dict[str, str]:
    """Anthropic's rate-limit headers (token "remaining" values rounded to the nearest thousand,
    as the real API does; an unlimited counter reports the largest value)."""
    reset = state.reset_at().isoformat().replace("+00:00", "Z")
    out: dict[str, str] = {}
    rows = (("requests", limits.rpm, state.requests, False),
            ("input-tokens", limits.itpm, state.input_tokens, True),
            ("output-tokens", limits.otpm, state.output_tokens, True))
    for name, limit, used, round_it in rows:
        cap = _cap(limit)
        remaining = max(0, cap - used)
        if round_it and limit is not None and remaining >= 1000:
            remaining = round(remaining, -3)
        out[f"anthropic-ratelimit-{name}-limit"] = str(cap)
        out[f"anthropic-ratelimit-{name}-remaining"] = str(remaining)
        out[f"anthropic-ratelimit-{name}-reset"] = reset
    tok_limit = _cap(limits.itpm) + _cap(limits.otpm) if limits.itpm or limits.otpm else UNLIMITED
    tok_used = state.input_tokens + state.output_tokens
    out["anthropic-ratelimit-tokens-limit"] = str(min(tok_limit, UNLIMITED))
    out["anthropic-ratelimit-tokens-remaining"] = str(max(0, min(tok_limit, UNLIMITED) - tok_used))
    out["anthropic-ratelimit-tokens-reset"] = reset
    return out
