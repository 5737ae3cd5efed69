"""The remote engine against a real OpenAI-compatible server: llama-cpp-python's own server,
started by the test on the embedded model (a stand-in for vLLM or llama.cpp's server)."""

import socket
import subprocess
import sys
import time

import httpx
import pytest

from candor.chat import Message
from candor.chat.service import ChatParams, stream_chat
from candor.engine.base import GenerateRequest, SamplingParams, TextDelta, collect
from candor.engine.hub import EngineHub
from candor.engine.remote import RemoteConfig, RemoteEngine
from candor.errors import ContextWindowExceededError
from candor.registry import ModelEntry, Registry

GREEDY = SamplingParams(temperature=0.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(model_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--model_alias", "gemma"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("llama_cpp.server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
async def completions(server_url):
    eng = RemoteEngine("remote", RemoteConfig(base_url=server_url, model="gemma", api="completions",
                                              context_window=2048))
    yield eng
    await eng.close()


async def test_streams_and_reports_usage(completions):
    req = GenerateRequest(prompt="The capital of France is", max_tokens=6, sampling=GREEDY)
    deltas = [e async for e in completions.generate(req)]
    assert sum(isinstance(d, TextDelta) for d in deltas) >= 2  # really streamed
    finish = deltas[-1]
    assert finish.stop_reason == "max_tokens"
    assert finish.usage.output_tokens == 6
    assert finish.usage.input_tokens == await completions.count_tokens(req.prompt)


async def test_same_text_as_the_embedded_engine(completions, engine):
    req = GenerateRequest(prompt="\n\nHuman: What is the capital of France?\n\nAssistant:", max_tokens=12,
                          sampling=GREEDY, end_sequences=("\n\nHuman:",))
    remote_text, _ = await collect(completions.generate(req))
    local_text, _ = await collect(engine.generate(req))
    assert remote_text == local_text


async def test_stop_sequence_reported(completions):
    req = GenerateRequest(prompt="Count: 1, 2, 3, 4, 5,", max_tokens=30, sampling=GREEDY, stop_sequences=("8",))
    text, finish = await collect(completions.generate(req))
    assert finish.stop_reason == "stop_sequence" and finish.stop_sequence == "8"
    assert "8" not in text


async def test_context_overflow_checked_before_sending(completions):
    with pytest.raises(ContextWindowExceededError, match="2048"):
        await collect(completions.generate(GenerateRequest(prompt="word " * 1900, max_tokens=400)))


async def test_health(completions):
    health = await completions.health()
    assert health.ok and "HTTP 200" in health.detail


async def test_registry_entry_with_chat_api_through_the_hub(server_url, monkeypatch):
    monkeypatch.setenv("TEST_REMOTE_URL", server_url)
    entry = ModelEntry(name="far", engine="remote", base_url="${TEST_REMOTE_URL}", remote_model="gemma",
                       remote_api="chat", context_window=2048)
    hub = EngineHub(Registry({"far": entry}))
    model = await hub.get("far")
    events = [e async for e in stream_chat(model, [Message("user", "Say hi")], "Be brief.",
                                            ChatParams(max_tokens=5, temperature=0))]
    assert events[-1].usage.output_tokens <= 5 and events[-1].usage.input_tokens > 0
    assert any(isinstance(e, TextDelta) for e in events)
    await hub.close()


async def test_next_token_logprobs(completions):
    scores = await completions.next_token_logprobs("The Eiffel Tower is in the city of", [" Paris", " zzzq"])
    assert scores[" Paris"] > scores[" zzzq"]
    assert scores[" Paris"] < 0


async def test_penalties_are_sent_to_the_server(completions):
    """A request's frequency and presence penalties reach llama-cpp-python's real server: the
    greedy text changes with them, and is the same without them as with zeros."""
    prompt = "List the colours of the rainbow, then list them again:"
    texts = []
    for sampling in (GREEDY, SamplingParams(temperature=0.0, frequency_penalty=0.0),
                     SamplingParams(temperature=0.0, frequency_penalty=2.0, presence_penalty=1.0)):
        text, _ = await collect(completions.generate(GenerateRequest(prompt=prompt, max_tokens=30, sampling=sampling)))
        texts.append(text)
    assert texts[0] == texts[1] != texts[2]
