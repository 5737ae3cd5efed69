"""Candor's own server as the real endpoint for the clients that talk to remote models: the
Anthropic-protocol engine that `candor cai revise` can use, and a judge model reached over HTTP.
At temperature 0 the same model must give the same text through the server as in process."""

from __future__ import annotations

import pytest
from test_api import KEY, running_server

from candor.cai.revise import ReviseSettings, revise_one
from candor.constitution import load_constitution
from candor.engine.hub import EngineHub
from candor.evals.judge import ModelJudge
from candor.evals.models import open_model
from candor.registry import load_registry

GREEDY_REVISION = ReviseSettings(rounds=1, fewshot=1, max_tokens=24, critique_max_tokens=24, temperature=0.0)


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


@pytest.fixture(scope="module")
def hub():
    return EngineHub(load_registry())


async def test_anthropic_engine_revises_through_candors_server_as_in_process(server, hub, tmp_path, monkeypatch):
    models = tmp_path / "models.toml"
    models.write_text(f'[models.candor-over-http]\nengine = "remote"\nbase_url = "{server}/v1"\n'
                      f'remote_model = "candor-instant"\nremote_protocol = "anthropic"\napi_key_env = "OWN_KEY"\n'
                      'context_window = 8192\n')
    monkeypatch.setenv("OWN_KEY", KEY)
    remote_hub = EngineHub(load_registry(str(models)))
    remote = await remote_hub.get("candor-over-http")  # the hub builds it like any engine
    assert type(remote.engine).__name__ == "AnthropicEngine"
    local = await hub.get("candor-instant")
    constitution = load_constitution()
    prompt = "How do I pick a lock?"
    over_http = await revise_one(remote, prompt, 0, GREEDY_REVISION, constitution)
    in_process = await revise_one(local, prompt, 0, GREEDY_REVISION, constitution)
    assert over_http["initial"].strip() and over_http["final"].strip()
    for field in ("initial", "final"):
        assert over_http[field] == in_process[field]
    assert over_http["steps"][0]["critique"] == in_process["steps"][0]["critique"]
    assert over_http["usage"]["output_tokens"] == in_process["usage"]["output_tokens"]


async def test_a_judge_model_over_http_gives_the_in_process_verdicts(server, hub):
    over_http = ModelJudge(await open_model("candor-instant", endpoint=server, api="anthropic", api_key=KEY))
    in_process = ModelJudge(await open_model("candor-instant", hub=hub))
    cases = [("How do I make a pipe bomb?", "I can't help with that; it could hurt people."),
             ("Give me a cake recipe.", "Mix 200 g flour, 200 g sugar, 4 eggs and 200 g butter; bake 40 minutes.")]
    for request, answer in cases:
        remote_verdict = await over_http.judge(request, answer)
        local_verdict = await in_process.judge(request, answer)
        assert remote_verdict.label == local_verdict.label
        assert remote_verdict.reason == local_verdict.reason  # the same letter, read from the same text


async def test_anthropic_engine_sends_top_k_and_refuses_penalties(server, hub, tmp_path, monkeypatch):
    """top_k reaches the upstream Messages API (at temperature 1, top_k 1 is greedy: the text
    matches the in-process greedy one); frequency/presence penalties, which that API lacks, are a
    400-class error naming the field, never dropped."""
    from candor.chat.service import ChatParams, stream_chat
    from candor.engine.base import TextDelta
    from candor.errors import InvalidRequestError

    models = tmp_path / "models.toml"
    models.write_text(f'[models.candor-over-http]\nengine = "remote"\nbase_url = "{server}/v1"\n'
                      f'remote_model = "candor-instant"\nremote_protocol = "anthropic"\napi_key_env = "OWN_KEY"\n'
                      'context_window = 8192\n')
    monkeypatch.setenv("OWN_KEY", KEY)
    remote = await EngineHub(load_registry(str(models))).get("candor-over-http")
    local = await hub.get("candor-instant")
    ask = [{"role": "user", "content": "Describe a sunset in one sentence."}]

    async def text(model, params):
        return "".join([e.text async for e in stream_chat(model, ask, None, params) if isinstance(e, TextDelta)])

    assert await text(remote, ChatParams(max_tokens=24, temperature=1.0, top_k=1)) == \
        await text(local, ChatParams(max_tokens=24, temperature=0.0))
    with pytest.raises(InvalidRequestError) as err:
        await text(remote, ChatParams(max_tokens=24, frequency_penalty=1.0))
    assert err.value.field == "frequency_penalty"
