"""Revisions through an Anthropic-compatible endpoint (a mock transport stands in for the server)."""

from __future__ import annotations

import json

import httpx

from candor.cai.revise import ReviseSettings, revise_one
from candor.constitution import load_constitution
from candor.engine.anthropic import AnthropicEngine
from candor.engine.hub import LoadedModel, is_anthropic
from candor.registry import ModelEntry


def test_registry_field_selects_the_protocol():
    assert is_anthropic(ModelEntry(name="c", engine="remote", base_url="u", extra={"remote_protocol": "anthropic"}))
    assert not is_anthropic(ModelEntry(name="c", engine="remote", base_url="u"))


async def test_revise_through_messages_api():
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        assert request.url.path == "/v1/messages" and request.headers["x-api-key"] == "k"
        last = body["messages"][-1]["content"]
        text = "Revised: be kind." if "Rewrite" in last else ("Critique: rude." if "last answer" in last else "Draft.")
        return httpx.Response(200, json={"content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                                         "usage": {"input_tokens": 10, "output_tokens": 3}})

    engine = AnthropicEngine("claude", "http://remote.test/v1", "claude-x", "k",
                             transport=httpx.MockTransport(handler))
    model = LoadedModel(ModelEntry(name="claude", engine="remote", base_url="x"), engine, None, {})
    cfg = ReviseSettings(rounds=2, fewshot=1, max_tokens=50)
    row = await revise_one(model, "Insult my friend for me.", 0, cfg, load_constitution())
    assert row["initial"] == "Draft." and len(row["steps"]) == 2
    assert row["final"] == "be kind." and row["steps"][0]["critique"] == "Critique: rude."
    assert all(b["model"] == "claude-x" for b in seen)
    assert seen[0]["messages"] == [{"role": "user", "content": "Insult my friend for me."}]
    assert len(seen) == 5  # initial answer + 2 × (critique, revision)
    await engine.close()
