"""Keys, limits and metering through a real server process, as an operator would see them."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
from decimal import Decimal

import anthropic
import httpx
import pytest

HTTP = httpx.Client(timeout=120)  # generous: a loaded CI machine can be slow to answer

from stores import backends, fresh_url
from test_api import KEY, start_server

MSG = [{"role": "user", "content": "Hi"}]


def candor(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "candor", *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env}, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def new_key(env: dict, user: str, *flags: str, role: str = "member") -> str:
    candor(env, "users", "create", user, "--role", role)
    return candor(env, "keys", "create", "--user", user, *flags).strip().splitlines()[-1]


@pytest.fixture(params=backends())
def deployment(request, tmp_path):
    """A server on a fresh database (SQLite, or PostgreSQL when configured)."""
    url, drop = fresh_url(request.param, tmp_path)
    env = {"CANDOR_DATABASE_URL": url}
    candor(env, "db", "upgrade")
    proc, base = start_server(env=env)
    yield env, base
    proc.terminate()
    proc.wait(timeout=30)
    drop()


def client(base: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=base, max_retries=0)


def test_operator_flow_limits_headers_and_usage_that_adds_up(deployment):
    env, base = deployment
    admins = [u for u in json.loads(candor(env, "users", "list", "--json")) if u["role"] == "admin"]
    assert [u["username"] for u in admins] == ["admin"]  # made at first start
    pending = new_key(env, "patience", role="pending")
    with pytest.raises(anthropic.PermissionDeniedError, match="waiting for an administrator"):
        client(base, pending).messages.create(model="candor-instant", max_tokens=2, messages=MSG)
    candor(env, "users", "approve", "patience")
    answers = []
    raw = client(base, pending).messages.with_raw_response.create(model="candor-instant", max_tokens=3, messages=MSG,
                                                                 metadata={"user_id": "end-user-1"})
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "60"  # tier default from the registry
    answers.append(raw.parse())

    key = new_key(env, "rita", "--rpm", "2", "--models", "candor-instant")
    rita = client(base, key)
    for _ in range(2):
        raw = rita.messages.with_raw_response.create(model="candor-instant", max_tokens=3, messages=MSG)
        answers.append(raw.parse())
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "0"
    with pytest.raises(anthropic.RateLimitError) as err:
        rita.messages.create(model="candor-instant", max_tokens=3, messages=MSG)
    assert 1 <= int(err.value.response.headers["retry-after"]) <= 60
    assert err.value.response.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert "rate limit of 2 requests per minute" in err.value.message
    with pytest.raises(anthropic.PermissionDeniedError, match="may not use candor-2"):
        rita.messages.create(model="candor-2", max_tokens=3, messages=MSG)
    models = HTTP.get(f"{base}/v1/models", headers={"x-api-key": key})
    assert models.headers["anthropic-ratelimit-requests-limit"] == "2"  # headers on every response

    report = json.loads(candor(env, "usage", "--by", "key", "--format", "json"))
    ok = [a for a in answers]
    total_in = sum(a.usage.input_tokens for a in ok)
    total_out = sum(a.usage.output_tokens for a in ok)
    assert sum(r["input_tokens"] for r in report) == total_in
    assert sum(r["output_tokens"] for r in report) == total_out
    assert sum(r["requests"] for r in report) == 6  # 4 answered, a 403 pending refusal... and the 429 and 403
    expected_cost = (total_in * Decimal("1.63") + total_out * Decimal("5.51")) / 1_000_000
    assert sum(Decimal(r["cost_usd"]) for r in report) == expected_cost
    csv_text = candor(env, "usage", "--by", "model", "--format", "csv")
    assert csv_text.splitlines()[0].startswith("model,requests,errors,input_tokens,output_tokens,cost_usd")


def test_spend_limit_answers_the_billing_error(deployment):
    env, base = deployment
    key = new_key(env, "sam", "--monthly-limit-usd", "0.00001")
    sam = client(base, key)
    sam.messages.create(model="candor-instant", max_tokens=5, messages=MSG)  # spends more than the limit
    with pytest.raises(anthropic.APIStatusError) as err:
        sam.messages.create(model="candor-instant", max_tokens=5, messages=MSG)
    assert err.value.status_code == 402 and err.value.body["error"]["type"] == "billing_error"


def test_revoked_and_unknown_keys(deployment):
    env, base = deployment
    key = new_key(env, "rev")
    client(base, key).messages.create(model="candor-instant", max_tokens=1, messages=MSG)
    listed = json.loads(candor(env, "keys", "list", "--json"))
    candor(env, "keys", "revoke", listed[0]["prefix"])
    with pytest.raises(anthropic.AuthenticationError, match="revoked"):
        client(base, key).messages.create(model="candor-instant", max_tokens=1, messages=MSG)


def test_admin_endpoints(deployment):
    env, base = deployment
    member = new_key(env, "mem")
    r = HTTP.get(f"{base}/v1/admin/users", headers={"x-api-key": member})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    admin = {"x-api-key": KEY}  # the bootstrap key acts as an administrator
    assert HTTP.post(f"{base}/v1/admin/users", headers=admin, json={"username": "newbie", "role": "pending"}).status_code == 200
    assert HTTP.post(f"{base}/v1/admin/users/newbie/approve", headers=admin).json()["role"] == "member"
    made = HTTP.post(f"{base}/v1/admin/keys", headers=admin, json={"user": "newbie", "rpm": 7}).json()
    assert made["key"].startswith("sk-candor-") and made["rpm"] == 7
    client(base, made["key"]).messages.create(model="candor-instant", max_tokens=1, messages=MSG)
    usage = HTTP.get(f"{base}/v1/admin/usage?by=user", headers=admin).json()["data"]
    assert sum(r["requests"] for r in usage) >= 1
    assert HTTP.post(f"{base}/v1/admin/keys/{made['id']}/revoke", headers=admin).json()["revoked_at"]
    exported = HTTP.get(f"{base}/v1/admin/users/newbie/export", headers=admin).json()
    assert exported["user"]["username"] == "newbie" and len(exported["keys"]) == 1
    assert HTTP.delete(f"{base}/v1/admin/users/newbie", headers=admin).status_code == 200
    bad = HTTP.post(f"{base}/v1/admin/users", headers=admin, json={"username": "x", "role": "wizard"})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("role:")


@pytest.mark.parametrize("backend", backends())
def test_limit_holds_across_two_worker_processes(backend, tmp_path):
    url, drop = fresh_url(backend, tmp_path)
    env = {"CANDOR_DATABASE_URL": url}
    candor(env, "db", "upgrade")
    key = new_key(env, "burst", "--rpm", "10")
    proc, base = start_server("--workers", "2", env=env)
    try:
        def call(_):
            return HTTP.post(f"{base}/v1/messages", headers={"x-api-key": key}, timeout=120, json={
                "model": "candor-instant", "max_tokens": 1, "messages": MSG}).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(call, range(50)))
        assert statuses.count(200) == 10
        assert statuses.count(429) == 40
        report = json.loads(candor(env, "usage", "--by", "key", "--format", "json"))
        assert sum(r["requests"] for r in report) == 50 and sum(r["errors"] for r in report) == 40
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        drop()


# -- in process (no server, no model): hosts, refused requests' usage, disabled users ----------
def test_allowed_hosts_setting_and_wildcard_binds(local_app, monkeypatch):
    monkeypatch.setenv("CANDOR_ALLOWED_HOSTS", "chat.example.org, Other.Example.")
    c, _ = local_app()
    for host, status in (("chat.example.org:443", 200), ("other.example", 200), ("evil.example", 421),
                         ("192.168.1.20:8000", 421)):
        assert c.get("/health", headers={"host": host}).status_code == status, host
    monkeypatch.delenv("CANDOR_ALLOWED_HOSTS")
    c, _ = local_app(host="0.0.0.0")  # every address: any IP is fine, names must be listed
    assert c.get("/health", headers={"host": "192.168.1.20:8000"}).status_code == 200
    assert c.get("/health", headers={"host": "[fe80::1]:8000"}).status_code == 200
    assert c.get("/health", headers={"host": "evil.example"}).status_code == 421
    monkeypatch.setenv("CANDOR_ALLOWED_HOSTS", "*")
    c, _ = local_app()
    assert c.get("/health", headers={"host": "evil.example"}).status_code == 200


def test_usage_of_refused_requests_is_labelled_unauthenticated(local_app):
    from candor.accounts.usage import report

    c, store = local_app()
    body = {"model": "candor-instant", "max_tokens": 1, "messages": MSG}
    assert c.post("/v1/messages", json=body).status_code == 401
    assert c.post("/v1/messages", json=body, headers={"x-api-key": "sk-wrong"}).status_code == 401
    assert c.post("/v1/messages", json={**body, "model": "nope"}, headers={"x-api-key": KEY}).status_code == 404
    by_key = {r["key"]: r["requests"] for r in report(store, by="key")}
    assert by_key == {"(unauthenticated)": 2, "bootstrap": 1}
    assert {r["user"] for r in report(store, by="user")} == {"(unauthenticated)", "bootstrap"}


def test_disabled_users_keys_are_refused(local_app):
    c, _ = local_app()
    admin = {"x-api-key": KEY}
    assert c.post("/v1/admin/users", headers=admin, json={"username": "dora", "role": "member"}).status_code == 200
    key = {"x-api-key": c.post("/v1/admin/keys", headers=admin, json={"user": "dora"}).json()["key"]}
    assert c.get("/v1/models", headers=key).status_code == 200
    assert c.post("/v1/admin/users/dora/disable", headers=admin).json()["status"] == "disabled"
    for r in (c.get("/v1/models", headers=key),
              c.post("/v1/messages", headers=key, json={"model": "candor-instant", "max_tokens": 1, "messages": MSG}),
              c.post("/v1/chat/completions", headers=key, json={"model": "candor-instant", "messages": MSG})):
        assert r.status_code == 403, r.text
        assert "'dora' is disabled" in r.text
    assert c.post("/v1/admin/users/dora/approve", headers=admin).json()["status"] == "active"
    assert c.get("/v1/models", headers=key).status_code == 200  # enabling again restores the keys


def test_a_body_over_the_size_limit_gets_its_usage_record_too(local_app):
    from candor.store.models import UsageRecord

    c, store = local_app(max_body_bytes=2000)
    r = c.post("/v1/messages", content=b'{"model": "' + b"x" * 5000 + b'"}',
               headers={"x-api-key": KEY, "content-type": "application/json"})
    assert r.status_code == 413
    with store.session() as s:  # refused before routing, still one record per metered request
        assert [(u.endpoint, u.status) for u in s.query(UsageRecord)] == [("/v1/messages", 413)]
