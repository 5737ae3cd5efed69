"""Access control for the API: who is calling, may they use this model now, and what it cost.

The API calls `authenticate` once per request, `admit` once the prompt's size is known (model
allow-list, monthly spend, rate limits), and `finish` when the request ends (usage record,
output-token counter). Keys from CANDOR_API_KEYS / --api-key keep working as a bootstrap: they
act as an administrator without limits and are metered under the prefix "bootstrap".

The chat page's answers are admitted the same way for the signed-in user (`keys.page_caller`):
the user's own rate limits (else the model tier's defaults) in a bucket of the user's own, so a
user's page answers and each of their keys are limited separately; a user's monthly spend limit
covers everything they spend, page answers and all their keys together, on top of each key's
own monthly limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from candor.accounts.keys import KeyContext, KeyRejected, authenticate, secrets_match
from candor.accounts.limits import BucketState, DbCounters, Limits, RedisCounters, month_spend, rate_headers
from candor.accounts.usage import UsageEvent, hashing_secret, record
from candor.config import env
from candor.errors import AccessError as ApiError
from candor.registry import ModelEntry
from candor.store import Store
from candor.store.models import UserRateBucket

BOOTSTRAP = "bootstrap"
# Who calls a `--no-auth` server without a valid key: the model endpoints only, never admin ones.
ANONYMOUS = KeyContext(key_id=None, prefix="no-auth", username="no-auth", pseudonym="no-auth", role="anonymous",
                       models=None)


@dataclass
class Admission:
    """What `admit` decided for one request, kept for `finish` and the response headers."""

    limits: Limits | None = None
    state: BucketState | None = None
    headers: dict[str, str] = field(default_factory=dict)
    counters: Any = None  # the counters (key or user buckets) that admitted it, charged its output
    bucket_id: int | None = None


def price(entry: ModelEntry | None, input_tokens: int, output_tokens: int) -> Decimal:
    """Exact cost in USD from the registry's per-million-token prices."""
    if entry is None:
        return Decimal(0)
    return (input_tokens * Decimal(str(entry.price_input_per_mtok))
            + output_tokens * Decimal(str(entry.price_output_per_mtok))) / Decimal(1_000_000)


class AccessControl:
    def __init__(self, store: Store, bootstrap_keys: list[str] | None = None, redis_url: str | None = None):
        self.store = store
        self.bootstrap_keys = [k for k in (bootstrap_keys or []) if k]
        redis_url = redis_url if redis_url is not None else env("CANDOR_REDIS_URL")
        self.counters = RedisCounters(redis_url) if redis_url else DbCounters(store)
        self.user_counters = (RedisCounters(redis_url, namespace="rl-user") if redis_url
                              else DbCounters(store, UserRateBucket))
        self.secret = hashing_secret(store)

    # -- who ---------------------------------------------------------------------------------
    def authenticate(self, secret: str | None) -> KeyContext:
        if not secret:
            raise ApiError(401, "authentication_error", "x-api-key header is required")
        if any(secrets_match(secret, k) for k in self.bootstrap_keys):
            return KeyContext(key_id=None, prefix=BOOTSTRAP, username=BOOTSTRAP, pseudonym=BOOTSTRAP,
                              role="admin", models=None)
        try:
            with self.store.session() as session:
                return authenticate(session, secret)
        except KeyRejected as exc:
            raise ApiError(exc.status, exc.error_type, exc.message) from None

    # -- may they --------------------------------------------------------------------------
    @staticmethod
    def limits_for(ctx: KeyContext, entry: ModelEntry) -> Limits:
        """The key's own limits, else the model tier's defaults from the registry."""
        defaults = entry.extra
        return Limits(rpm=ctx.rpm or defaults.get("rpm"), itpm=ctx.itpm or defaults.get("itpm"),
                      otpm=ctx.otpm or defaults.get("otpm"))

    @staticmethod
    def check_model(ctx: KeyContext, entry: ModelEntry) -> None:
        if ctx.models is not None and entry.name not in ctx.models:
            raise ApiError(403, "permission_error",
                           f"model: this API key may not use {entry.name}; it may use {', '.join(ctx.models)}")

    def admit(self, ctx: KeyContext, entry: ModelEntry, input_tokens: int) -> Admission:
        """Admit one request of an API key or (key_id None, user_id set) of the chat page."""
        self.check_model(ctx, entry)
        page = ctx.key_id is None
        if page and ctx.user_id is None:
            return Admission()  # a bootstrap key or an anonymous `--no-auth` caller: unlimited
        who = "your account" if page else "this API key"
        if not page and ctx.monthly_limit_usd is not None:
            spent = month_spend(self.store, ctx.key_id)
            if spent >= ctx.monthly_limit_usd:
                raise ApiError(402, "billing_error",
                               f"this API key has reached its monthly spend limit of ${ctx.monthly_limit_usd:.2f} "
                               f"(${spent:.4f} spent this month)")
        if ctx.user_monthly_limit_usd is not None:
            spent = month_spend(self.store, pseudonym=ctx.pseudonym)
            if spent >= ctx.user_monthly_limit_usd:
                raise ApiError(402, "billing_error",
                               f"the account {ctx.username!r} has reached its monthly spend limit of "
                               f"${ctx.user_monthly_limit_usd:.2f} (${spent:.4f} spent this month, page and "
                               f"API keys together)")
        limits = self.limits_for(ctx, entry)
        counters, bucket = (self.user_counters, ctx.user_id) if page else (self.counters, ctx.key_id)
        assert bucket is not None  # a page caller has a user, a key caller a key
        now = time.time()
        decision = counters.admit(bucket, limits, input_tokens, now)
        headers = rate_headers(limits, decision.state)
        if not decision.allowed:
            wait = decision.retry_after
            exceeded = decision.exceeded or "requests"
            limit = {"requests": limits.rpm, "input tokens": limits.itpm, "output tokens": limits.otpm}[exceeded]
            raise ApiError(429, "rate_limit_error",
                           f"{who} has exceeded its rate limit of {limit} {exceeded} per minute"
                           f"{' for chat-page answers' if page else ''}; retry in {wait} s",
                           headers={**headers, "retry-after": str(wait)})
        return Admission(limits, decision.state, headers, counters, bucket)

    def headers_for(self, ctx: KeyContext | None, entry: ModelEntry | None = None) -> dict[str, str]:
        """Rate-limit headers for responses that did not go through `admit`."""
        if ctx is None or ctx.key_id is None:
            return {}
        limits = Limits(ctx.rpm, ctx.itpm, ctx.otpm) if entry is None else self.limits_for(ctx, entry)
        return rate_headers(limits, self.counters.peek(ctx.key_id, limits))

    # -- what it cost ------------------------------------------------------------------------
    def finish(self, ctx: KeyContext | None, admission: Admission | None, entry: ModelEntry | None, *,
               model_name: str, endpoint: str, input_tokens: int, output_tokens: int, ttft_s: float | None,
               latency_s: float, status: int, end_user: str | None) -> None:
        if admission and admission.counters is not None and admission.bucket_id is not None:
            admission.counters.add_output(admission.bucket_id, output_tokens)
        cost = price(entry, input_tokens, output_tokens)
        record(self.store, UsageEvent(
            key_id=ctx.key_id if ctx else None, key_prefix=ctx.prefix if ctx else "",
            user_pseudonym=ctx.pseudonym if ctx else "", model=model_name, endpoint=endpoint,
            input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost,
            ttft_ms=None if ttft_s is None else ttft_s * 1000, latency_ms=latency_s * 1000, status=status,
            end_user=end_user), self.secret)
