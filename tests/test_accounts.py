"""The store and access rules, on SQLite and (when configured) PostgreSQL."""

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select
from stores import backends, fresh_url, redis_url  # noqa: F401  (redis_url is a fixture)

from candor.accounts import keys as key_ops
from candor.accounts import users as user_ops
from candor.accounts.access import AccessControl, price
from candor.accounts.cost import Workload, conversation_tokens, cost_table
from candor.accounts.limits import DbCounters, Limits, RedisCounters, rate_headers
from candor.accounts.retention import purge_conversations
from candor.accounts.usage import UsageEvent, record, report
from candor.errors import AccessError, InvalidRequestError, NotFoundError
from candor.registry import load_registry
from candor.store import Store
from candor.store.models import ApiKey, ChatMessage, Conversation, UsageRecord, utcnow


@pytest.fixture(params=backends())
def store(request, tmp_path):
    url, drop = fresh_url(request.param, tmp_path)
    s = Store(url)
    s.upgrade()
    yield s
    s.dispose()
    drop()


def test_migrations_upgrade_downgrade_upgrade(store):
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(store._alembic()).get_current_head()
    assert head >= "0004" and store.current_revision() == head
    assert {"users", "api_keys", "usage", "rate_buckets", "user_rate_buckets", "conversations", "critiques"} <= set(
        inspect(store.engine).get_table_names())
    assert {"rpm", "monthly_limit_usd"} <= {c["name"] for c in inspect(store.engine).get_columns("users")}
    store.downgrade("0003")  # each step down works: 0004 drops the users' limit columns again
    assert "rpm" not in {c["name"] for c in inspect(store.engine).get_columns("users")}
    store.downgrade("base")
    assert store.current_revision() is None
    assert "users" not in inspect(store.engine).get_table_names()
    store.upgrade()
    assert store.current_revision() == head


def test_users_pending_approve_disable_and_errors(store):
    with store.session() as s:
        user_ops.create_user(s, "alice", password="correct horse")
    with store.session() as s:
        alice = user_ops.get_user(s, "alice")
        assert alice.role == "pending" and alice.approved_at is None
        assert alice.password_hash.startswith("$argon2") and "correct horse" not in alice.password_hash
        assert user_ops.verify_password(alice, "correct horse") and not user_ops.verify_password(alice, "wrong")
        with pytest.raises(InvalidRequestError, match="already exists"):
            user_ops.create_user(s, "alice")
    with store.session() as s:
        assert user_ops.approve_user(s, "alice").role == "member"
        assert user_ops.disable_user(s, "alice").status == "disabled"
        with pytest.raises(NotFoundError, match="bob"):
            user_ops.get_user(s, "bob")
        with pytest.raises(InvalidRequestError, match="password: must be at least 8"):
            user_ops.create_user(s, "carol", password="short")


def test_password_check_spends_one_hash_for_unknown_names_too(store, monkeypatch):
    from argon2 import PasswordHasher

    verified = []
    real = PasswordHasher.verify
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, stored, pw: verified.append(stored) or real(self, stored, pw))
    with store.session() as s:
        user_ops.create_user(s, "alice", role="member", password="correct horse")
        user_ops.create_user(s, "nopass", role="member")  # made by the CLI without a password
    with store.session() as s:
        assert user_ops.check_password(s, "alice", "correct horse").username == "alice"
        assert user_ops.check_password(s, "alice", "wrong horse") is None
        assert user_ops.check_password(s, "nobody", "correct horse") is None
        assert user_ops.check_password(s, "nopass", "correct horse") is None
    assert len(verified) == 4  # one Argon2 verification each, with the same parameters
    assert len({h.rsplit("$", 2)[0] for h in verified}) == 1


def test_first_admin_is_made_once(store):
    with store.session() as s:
        made = user_ops.ensure_admin(s)
        assert made is not None and made[0].role == "admin" and len(made[1]) >= 12
    with store.session() as s:
        assert user_ops.ensure_admin(s) is None


def make_key(store, role="member", **limits):
    with store.session() as s:
        user = user_ops.create_user(s, f"u{role}{len(user_ops.list_users(s))}", role=role)
        key, secret = key_ops.create_key(s, user, **limits)
        return key.id, secret


def test_keys_are_stored_as_hashes_and_checked(store):
    key_id, secret = make_key(store, rpm=5, models=["candor-instant"])
    with store.session() as s:
        row = s.get(ApiKey, key_id)
        assert secret.startswith(row.prefix) and row.key_hash == key_ops.hash_key(secret)
        assert secret not in repr(row.__dict__)
        ctx = key_ops.authenticate(s, secret)
        assert ctx.key_id == key_id and ctx.rpm == 5 and ctx.models == ("candor-instant",)
        with pytest.raises(key_ops.KeyRejected) as err:
            key_ops.authenticate(s, secret + "x")
        assert err.value.status == 401
    with store.session() as s:
        key_ops.revoke_key(s, str(key_id))
    with store.session() as s, pytest.raises(key_ops.KeyRejected, match="revoked"):
        key_ops.authenticate(s, secret)


def test_pending_disabled_and_expired_keys_are_refused(store):
    _, pending = make_key(store, role="pending")
    with store.session() as s, pytest.raises(key_ops.KeyRejected, match="waiting for an administrator") as err:
        key_ops.authenticate(s, pending)
    assert err.value.status == 403
    key_id, secret = make_key(store, expires_at=utcnow() + dt.timedelta(seconds=60))
    with store.session() as s:
        s.get(ApiKey, key_id).expires_at = utcnow() - dt.timedelta(seconds=1)
    with store.session() as s, pytest.raises(key_ops.KeyRejected, match="expired"):
        key_ops.authenticate(s, secret)
    with store.session() as s, pytest.raises(InvalidRequestError, match="rpm: must be >= 1"):
        key_ops.create_key(s, user_ops.list_users(s)[0], rpm=0)


def check_counters(counters, key_id):
    limits = Limits(rpm=3, itpm=100, otpm=50)
    t = 1_000_000.0
    assert [counters.admit(key_id, limits, 10, t).allowed for _ in range(4)] == [True, True, True, False]
    refused = counters.admit(key_id, limits, 10, t)
    assert refused.exceeded == "requests" and refused.retry_after == 20  # one request refills in 60/3 s
    assert counters.admit(key_id, limits, 10, t + 20).allowed  # continuously refilled: no window edge
    assert not counters.admit(key_id, limits, 10, t + 21).allowed
    assert counters.admit(key_id, limits, 95, t + 60).allowed  # input bucket full again (100)
    tokens = counters.admit(key_id, limits, 10, t + 60)
    assert not tokens.allowed and tokens.exceeded == "input tokens"
    counters.add_output(key_id, 50)
    out = counters.admit(key_id, Limits(rpm=10, itpm=1000, otpm=50), 1, t + 60)
    assert not out.allowed and out.exceeded == "output tokens"
    assert counters.peek(key_id, limits, t + 60).output_tokens == pytest.approx(0)
    huge = counters.admit(key_id, limits, 500, t + 600)
    assert not huge.allowed and huge.exceeded == "input tokens" and huge.retry_after == 60


def test_rate_counters_in_the_database(store):
    key_id, _ = make_key(store)
    check_counters(DbCounters(store), key_id)


def test_rate_counters_in_redis(redis_url):  # noqa: F811
    check_counters(RedisCounters(redis_url), 4242)


def test_rate_headers_follow_anthropic_names():
    from candor.accounts.limits import UNLIMITED, BucketState

    h = rate_headers(Limits(rpm=10, itpm=40_000, otpm=None), BucketState(7.0, 38_766.0, UNLIMITED, at=360.0))
    assert h["anthropic-ratelimit-requests-limit"] == "10" and h["anthropic-ratelimit-requests-remaining"] == "7"
    assert h["anthropic-ratelimit-input-tokens-remaining"] == "39000"  # rounded to the thousand
    assert h["anthropic-ratelimit-requests-reset"] == "1970-01-01T00:06:18Z"  # full again in 3 × 6 s
    assert "anthropic-ratelimit-output-tokens-limit" in h and "anthropic-ratelimit-tokens-limit" in h


def test_admission_spend_limit_and_model_allowlist(store):
    access = AccessControl(store, bootstrap_keys=["boot"])
    entry = load_registry().get("candor-instant")
    _, secret = make_key(store, monthly_limit_usd=0.001, models=["candor-instant"])
    ctx = access.authenticate(secret)
    admission = access.admit(ctx, entry, 100)
    assert admission.headers["anthropic-ratelimit-requests-limit"] == "60"  # the tier's default from the registry
    with pytest.raises(AccessError) as err:
        access.admit(ctx, load_registry().get("candor-2"), 10)
    assert err.value.status_code == 403 and "may not use candor-2" in err.value.message
    access.finish(ctx, admission, entry, model_name=entry.name, endpoint="/v1/messages", input_tokens=100,
                  output_tokens=200, ttft_s=0.1, latency_s=0.5, status=200, end_user="customer-17")
    with pytest.raises(AccessError) as err:
        access.admit(ctx, entry, 10)
    assert err.value.status_code == 402 and err.value.error_type == "billing_error"
    boot = access.authenticate("boot")
    assert boot.is_admin and access.admit(boot, entry, 10).headers == {}
    with store.session() as s:
        row = s.scalars(select(UsageRecord)).one()
    assert row.end_user_hash and "customer-17" not in row.end_user_hash and len(row.end_user_hash) == 64
    assert Decimal(str(row.cost_usd)) == price(entry, 100, 200) == Decimal("0.001265")


def test_usage_report_adds_up(store):
    entry = load_registry().get("candor-instant")
    for i, model in enumerate(["candor-instant", "candor-instant", "candor-2"]):
        record(store, UsageEvent(None, "sk-a", "u_1", model, "/v1/messages", 10 * (i + 1), 5, price(entry, 10 * (i + 1), 5),
                                 1.0, 2.0, 200 if i < 2 else 429), b"k" * 32)
    by_model = {r["model"]: r for r in report(store, by="model")}
    assert by_model["candor-instant"]["requests"] == 2 and by_model["candor-instant"]["input_tokens"] == 30
    assert by_model["candor-2"]["errors"] == 1
    total = sum(r["cost_usd"] for r in report(store, by="day"))
    assert total == price(entry, 60, 15)


def test_delete_and_export_and_purge(store):
    key_id, _secret = make_key(store)
    with store.session() as s:
        user = s.get(ApiKey, key_id).user
        name = user.username
        old = Conversation(user_id=user.id, title="old", updated_at=utcnow() - dt.timedelta(days=40))
        new = Conversation(user_id=user.id, title="new")
        s.add_all([old, new])
        s.flush()
        s.add_all([ChatMessage(conversation_id=old.id, role="user", content="secret text"),
                   ChatMessage(conversation_id=new.id, role="user", content="hello")])
    record(store, UsageEvent(key_id, "p", "u", "candor-instant", "/v1/messages", 1, 1, Decimal(0), None, 1, 200),
           b"k" * 32)
    with store.session() as s:
        exported = user_ops.export_user(s, name)
    assert {c["title"] for c in exported["conversations"]} == {"old", "new"} and len(exported["usage"]) == 1
    assert purge_conversations(store, 30) == 1
    with store.session() as s:
        assert [c.title for c in s.scalars(select(Conversation))] == ["new"]
        assert s.scalars(select(ChatMessage)).all()[0].content == "hello"  # the old one's messages went too
        user_ops.delete_user(s, name)
    with store.session() as s:
        assert s.scalars(select(Conversation)).all() == [] and s.get(ApiKey, key_id) is None
        assert s.scalars(select(UsageRecord)).one().key_id is None  # counts stay, anonymous


def test_cost_of_the_launch_workload():
    w = Workload()
    assert conversation_tokens(100, w) == (795, 399)  # 3 rounds: 67, 67+133+67, 2*(67+133)+67 input
    rows = cost_table([load_registry().get("candor-instant")], w)
    first = rows[0]
    assert first["per_conversation_usd"] == (795 * Decimal("1.63") + 399 * Decimal("5.51")) / 1_000_000
    assert first["total_usd"] == first["per_conversation_usd"] * 2_500_000
