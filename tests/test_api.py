"""Conformance: the official `anthropic` and `openai` SDKs against a real `candor serve` process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

import anthropic
import httpx
import openai
import pytest

HTTP = httpx.Client(timeout=120)  # generous: a loaded CI machine can be slow to answer

KEY = "sk-test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*extra: str, env: dict | None = None):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "candor", "serve", "--port", str(port), "--api-key", KEY, *extra],
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()}")
        try:
            if HTTP.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


@contextlib.contextmanager
def running_server(*extra: str, env: dict | None = None):
    """A `candor serve` process for the duration of the block; its base URL."""
    proc, url = start_server(*extra, env=env)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


# The SDK clients for a module's `server`: the `client` and `oai` fixtures in conftest.py.


GREEDY = {"temperature": 0}


def test_messages_create(client):
    msg = client.messages.create(model="candor-instant", max_tokens=30, extra_body=GREEDY,
                                 messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert msg.id.startswith("msg_") and msg.type == "message" and msg.role == "assistant"
    assert msg.content[0].type == "text" and "Paris" in msg.content[0].text
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens == client.messages.count_tokens(
        model="candor-instant", messages=[{"role": "user", "content": "What is the capital of France?"}]).input_tokens
    assert msg._request_id.startswith("req_")


def test_readme_example_without_sampling_settings_answers_like_greedy(client):
    """The README's SDK example names no temperature: candor-instant's registry default (0) applies,
    so a new user's first question gets the model's best answer every time."""
    ask = {"role": "user", "content": "What is the capital of France?"}
    with client.messages.stream(model="candor-instant", max_tokens=30, messages=[ask]) as stream:
        streamed = "".join(stream.text_stream)
    again = client.messages.create(model="candor-instant", max_tokens=30, messages=[ask]).content[0].text
    greedy = client.messages.create(model="candor-instant", max_tokens=30, extra_body=GREEDY,
                                    messages=[ask]).content[0].text
    assert streamed == again == greedy and "Paris" in streamed


def test_system_blocks_stop_sequences_and_max_tokens(client):
    msg = client.messages.create(model="candor-instant", max_tokens=40, extra_body=GREEDY,
                                 system=[{"type": "text", "text": "You count."}], stop_sequences=["4"],
                                 messages=[{"role": "user", "content": [
                                     {"type": "text", "text": "Count from 1 to 10, separated by commas."}]}])
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "4"
    assert msg.content[0].text.startswith("1, 2, 3")
    short = client.messages.create(model="candor-instant", max_tokens=2, extra_body=GREEDY,
                                   messages=[{"role": "user", "content": "Tell me a long story."}])
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 2


def test_prefill_is_continued(client):
    msg = client.messages.create(model="candor-instant", max_tokens=8, extra_body=GREEDY, messages=[
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is"}])
    assert msg.content[0].text.strip().startswith("Paris")


def test_stream_helper_and_raw_events(client):
    with client.messages.stream(model="candor-instant", max_tokens=12, extra_body=GREEDY,
                                messages=[{"role": "user", "content": "Say hello."}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) >= 2 and "".join(pieces) == final.content[0].text
    assert final.usage.output_tokens > 0 and final.stop_reason in ("end_turn", "max_tokens")
    kinds = [e.type for e in client.messages.create(model="candor-instant", max_tokens=5, stream=True,
                                                   messages=[{"role": "user", "content": "Hi"}])]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "content_block_delta" in kinds


def test_sse_framing_has_event_lines_and_types(server):
    with HTTP.stream("POST", f"{server}/v1/messages", headers={"x-api-key": KEY}, json={
            "model": "candor-instant", "max_tokens": 5, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}) as r:
        text = r.read().decode()
    frames = [f for f in text.split("\n\n") if f.strip()]
    for f in frames:
        event, data = f.split("\n")
        assert event.startswith("event: ") and data.startswith("data: ")
        assert json.loads(data[6:])["type"] == event[7:]
    assert "event: ping" in text


def test_models_list_paginates_and_get(client):
    ids = [m.id for m in client.models.list(limit=1)]  # the SDK follows has_more/last_id
    assert ids[:2] == ["candor-instant", "candor-2"] and len(ids) == len(set(ids)) >= 3
    page = client.models.list(limit=1)
    assert page.has_more and page.first_id == "candor-instant" == page.last_id
    assert client.models.retrieve("candor-2").id == "candor-2"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-9")


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"model": "claude-9"}, anthropic.NotFoundError, "known models"),
    ({"max_tokens": 5000}, anthropic.BadRequestError, "5000 > 4096"),
    ({"messages": [{"role": "assistant", "content": "hi"}]}, anthropic.BadRequestError, "first message"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}, anthropic.BadRequestError, "image"),
    ({"messages": []}, anthropic.BadRequestError, "at least one message"),
    ({"extra_body": {"temperature": 1.5}}, anthropic.BadRequestError, "temperature: range: 0..1"),
])
def test_typed_errors(client, kwargs, exc, message):
    args = {"model": "candor-instant", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], **kwargs}
    with pytest.raises(exc) as err:
        client.messages.create(**args)
    assert message in str(err.value)
    assert err.value.response.headers["x-should-retry"] == "false"
    assert err.value.body["type"] == "error" and err.value.body["request_id"].startswith("req_")


def test_auth_errors(server):
    bad = anthropic.Anthropic(api_key="wrong", base_url=server, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="candor-instant", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    r = HTTP.post(f"{server}/v1/messages", json={})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert HTTP.get(f"{server}/health").status_code == 200  # open without a key
    assert HTTP.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_malformed_bodies(server):
    headers = {"x-api-key": KEY, "content-type": "application/json"}
    r = HTTP.post(f"{server}/v1/messages", headers=headers, content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = HTTP.post(f"{server}/v1/messages", headers=headers, json={"model": "candor-instant", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["message"] == "max_tokens: Field required"
    r = HTTP.post(f"{server}/v1/messages", headers=headers,
                   json={"model": "candor-instant", "max_tokens": "lots", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("max_tokens:")
    assert r.headers["request-id"].startswith("req_")


def test_odd_bytes_in_keys_and_text_are_4xx_not_500(server):
    for header in ({"x-api-key": "clé-✓".encode()}, {"authorization": "Bearer clé".encode()}):
        r = HTTP.get(f"{server}/v1/models", headers=header)  # non-ASCII header bytes
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    headers = {"x-api-key": KEY, "content-type": "application/json"}
    lone = b'{"model": "candor-instant", "max_tokens": 3, "messages": [{"role": "user", "content": "hi \\ud800"}]}'
    r = HTTP.post(f"{server}/v1/messages", headers=headers, content=lone)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("messages.0.content: contains a lone")
    r = HTTP.post(f"{server}/v1/chat/completions", headers=headers, content=lone.replace(b'"max_tokens": 3, ', b""))
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages.0.content"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_openai_zero_max_tokens_is_400(oai, field):
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="candor-instant", messages=[{"role": "user", "content": "Hi"}], **{field: 0})
    assert err.value.body["param"] == field and err.value.body["message"] == f"{field}: must be >= 1, got 0"


def test_host_header_must_name_this_server(server):
    port = server.rsplit(":", 1)[1]
    r = HTTP.get(f"{server}/v1/models", headers={"x-api-key": KEY, "host": f"evil.example:{port}"})
    assert r.status_code == 421 and "does not answer to Host 'evil.example:" in r.json()["error"]["message"]
    assert "CANDOR_ALLOWED_HOSTS" in r.json()["error"]["message"] and r.headers["request-id"].startswith("req_")
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "LOCALHOST"):
        assert HTTP.get(f"{server}/v1/models", headers={"x-api-key": KEY, "host": host}).status_code == 200, host


def test_over_long_prompt_is_400(client):
    with pytest.raises(anthropic.BadRequestError, match="context window"):
        client.messages.create(model="candor-instant", max_tokens=4096,
                               messages=[{"role": "user", "content": "word " * 30000}])


def test_text_completions_raw_http(server):
    headers = {"x-api-key": KEY}
    body = {"model": "candor-instant", "prompt": "\n\nHuman: What is the capital of France?\n\nAssistant:",
            "max_tokens_to_sample": 20, "temperature": 0}
    r = HTTP.post(f"{server}/v1/complete", headers=headers, json=body)
    data = r.json()
    assert r.status_code == 200 and data["type"] == "completion" and "Paris" in data["completion"]
    assert data["stop_reason"] == "stop_sequence"
    with HTTP.stream("POST", f"{server}/v1/complete", headers=headers, json={**body, "stream": True}) as s:
        text = s.read().decode()
    frames = [f for f in text.split("\n\n") if f.strip()]
    assert all(f.startswith(("event: completion\n", "event: ping\n")) for f in frames)
    assert json.loads(frames[-1].split("data: ")[1])["stop_reason"] in ("stop_sequence", "max_tokens")
    assert "[DONE]" not in text
    bad = HTTP.post(f"{server}/v1/complete", headers=headers, json={**body, "prompt": "Hello"})
    assert bad.status_code == 400 and '\\n\\nHuman:' in bad.json()["error"]["message"]


def test_openai_create_and_stream(oai):
    r = oai.chat.completions.create(model="candor-instant", max_tokens=20, temperature=0, messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"}])
    assert r.object == "chat.completion" and "Paris" in r.choices[0].message.content
    assert r.choices[0].finish_reason in ("stop", "length") and r.usage.total_tokens > 0
    chunks = list(oai.chat.completions.create(model="candor-instant", max_tokens=6, stream=True,
                                              stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": "Hi"}]))
    assert chunks[-1].usage.completion_tokens <= 6
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "Hi"}])


def test_openai_frequency_and_presence_penalties_reach_the_sampler(oai):
    """OpenAI's penalties, as the official SDK sends them, reach the sampler (a greedy answer
    changes; zero changes nothing), and are checked as OpenAI checks them (-2..2); formatted
    output refuses them."""
    ask = {"model": "candor-instant", "max_tokens": 40, "temperature": 0,
           "messages": [{"role": "user", "content": "Name five fruits, then name them again."}]}
    plain = oai.chat.completions.create(**ask).choices[0].message.content
    assert oai.chat.completions.create(**ask, frequency_penalty=0, presence_penalty=0).choices[0].message.content == plain
    penalised = oai.chat.completions.create(**ask, frequency_penalty=2.0, presence_penalty=1.0).choices[0].message.content
    assert penalised != plain
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(**ask, presence_penalty=2.5)
    assert err.value.body["param"] == "presence_penalty" and "-2..2" in err.value.body["message"]
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(**ask, frequency_penalty=0.5, response_format={"type": "json_object"})
    assert err.value.body["param"] == "frequency_penalty"


def test_metrics_count_the_engine_forward_passes(server, client):
    def passes() -> dict[str, float]:
        text = HTTP.get(f"{server}/metrics", headers={"x-api-key": KEY}).text
        return {name: float(line.split()[-1]) for name in ("calls", "tokens", "seconds") for line in text.splitlines()
                if line.startswith(f'candor_engine_decode_{name}_total{{model="candor-instant"}}')}

    before = passes()
    client.messages.create(model="candor-instant", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    after = passes()
    assert after["calls"] >= before["calls"] + 3  # the prompt, then one pass per sampled token but the last
    assert after["tokens"] > before["tokens"] + 3 and after["seconds"] > before["seconds"]
    text = HTTP.get(f"{server}/metrics", headers={"x-api-key": KEY}).text
    for reason in ("prefix", "move", "spill"):  # KV stream copies between slots, by why they were made
        assert f'candor_engine_kv_copies_total{{model="candor-instant",reason="{reason}"}}' in text


def test_request_too_large(server):
    r = HTTP.post(f"{server}/v1/messages", headers={"x-api-key": KEY},
                   content=b"x" * (33 * 1024 * 1024))
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


def test_metrics_and_health(server, client):
    client.messages.create(model="candor-instant", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    text = HTTP.get(f"{server}/metrics", headers={"x-api-key": KEY}).text
    assert 'candor_requests_total{endpoint="/v1/messages",status="200"}' in text
    assert "candor_time_to_first_token_seconds_bucket" in text and "candor_queue_depth" in text
    assert 'candor_tokens_total{direction="output",model="candor-instant"}' in text
    health = HTTP.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["models"][0]["model"] == "candor-instant"


def test_disconnect_cancels_and_frees_the_engine(server, client):
    with HTTP.stream("POST", f"{server}/v1/messages", headers={"x-api-key": KEY}, json={
            "model": "candor-instant", "max_tokens": 2000, "stream": True, "temperature": 0,
            "messages": [{"role": "user", "content": "Write a very long story about the sea."}]}, timeout=60) as r:
        for line in r.iter_lines():
            if "content_block_delta" in line:
                break  # leave mid-stream
    for _ in range(50):
        if not HTTP.get(f"{server}/health", timeout=60).json()["models"][0]["busy"]:
            break
        time.sleep(0.1)
    assert not HTTP.get(f"{server}/health", timeout=60).json()["models"][0]["busy"]
    msg = client.messages.create(model="candor-instant", max_tokens=3, messages=[{"role": "user", "content": "Hi"}])
    assert msg.usage.output_tokens <= 3


def test_full_queue_answers_529_and_the_sdk_retries():
    # One sequence slot and no waiting room: a second request while one streams is refused.
    proc, url = start_server(env={"CANDOR_MAX_WAITING": "0", "CANDOR_SLOTS": "1"})
    try:
        # A list the model keeps continuing (greedy: it runs to max_tokens), so the model stays busy.
        body = {"model": "candor-instant", "max_tokens": 2000, "stream": True, "temperature": 0,
                "messages": [{"role": "user", "content": "List 300 animals, numbered."},
                             {"role": "assistant", "content": "1. Lion\n2. Tiger\n3. Bear\n4."}]}
        result: dict = {}
        busy = threading.Event()
        with httpx.Client(timeout=120) as http, \
                http.stream("POST", f"{url}/v1/messages", headers={"x-api-key": KEY}, json=body) as held:

            def keep_reading():  # stop reading and httpx closes the stream, which frees the model
                try:
                    for line in held.iter_lines():
                        if "content_block_delta" in line:
                            busy.set()
                except httpx.HTTPError:
                    pass

            reader = threading.Thread(target=keep_reading)
            reader.start()
            assert busy.wait(60)
            no_retry = anthropic.Anthropic(api_key=KEY, base_url=url, max_retries=0)
            with pytest.raises(anthropic.APIStatusError) as err:
                no_retry.messages.create(model="candor-instant", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
            assert err.value.status_code == 529 and err.value.body["error"]["type"] == "overloaded_error"
            assert err.value.response.headers["retry-after"] == "1"
            retrying = anthropic.Anthropic(api_key=KEY, base_url=url, max_retries=10)
            thread = threading.Thread(target=lambda: result.update(msg=retrying.messages.create(
                model="candor-instant", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])))
            thread.start()
            time.sleep(2.5)  # the SDK meets 529s while the stream holds the model
            held.close()
            reader.join(timeout=30)
        thread.join(timeout=120)  # closing the stream freed the model; a retry gets through
        assert result["msg"].usage.output_tokens <= 2
        metrics = HTTP.get(f"{url}/metrics", headers={"x-api-key": KEY}).text
        refused = next(line for line in metrics.splitlines()
                       if line.startswith('candor_requests_total{endpoint="/v1/messages",status="529"}'))
        assert float(refused.split()[-1]) >= 2  # the first refusal and at least one the SDK retried
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_no_auth_is_refused_off_loopback():
    result = subprocess.run([sys.executable, "-m", "candor", "serve", "--host", "0.0.0.0", "--no-auth"],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "loopback" in result.stderr


def test_no_auth_keeps_admin_and_critiques_closed():
    with running_server("--no-auth", "--no-preload") as url:  # started with a bootstrap key too
        assert HTTP.get(f"{url}/v1/models").status_code == 200  # the model endpoints are open
        assert HTTP.get(f"{url}/v1/models", headers={"x-api-key": "anything"}).status_code == 200
        for headers in ({}, {"x-api-key": "anything"}):
            r = HTTP.get(f"{url}/v1/admin/users", headers=headers)
            assert r.status_code == 401 and "administrator" in r.json()["error"]["message"]
            assert HTTP.get(f"{url}/v1/candor/critiques/req_x", headers=headers).status_code == 401
        assert HTTP.get(f"{url}/v1/admin/users", headers={"x-api-key": KEY}).status_code == 200
        assert HTTP.get(f"{url}/v1/candor/critiques/req_x", headers={"x-api-key": KEY}).status_code == 404


SDK0_SCRIPT = """
import sys, anthropic
client = anthropic.Anthropic(api_key=sys.argv[2], base_url=sys.argv[1], max_retries=0)
prompt = f"{anthropic.HUMAN_PROMPT} What is the capital of France?{anthropic.AI_PROMPT}"
done = client.completions.create(model="candor-instant", prompt=prompt, max_tokens_to_sample=20, temperature=0)
assert done.stop_reason == "stop_sequence", done
assert "Paris" in done.completion, done
parts = list(client.completions.create(model="candor-instant", prompt=prompt, max_tokens_to_sample=20,
                                       temperature=0, stream=True))
assert "".join(p.completion for p in parts) == done.completion, parts
assert parts[-1].stop_reason == "stop_sequence"
try:
    client.completions.create(model="candor-instant", prompt="Hello", max_tokens_to_sample=5)
except anthropic.BadRequestError as exc:
    assert "Human:" in str(exc)
else:
    raise AssertionError("a prompt without turns was accepted")
print("ok", anthropic.__version__)
"""


@pytest.fixture(scope="session")
def sdk0_python(tmp_path_factory) -> str:
    """An isolated environment with the 0.x anthropic SDK, the last line with completions.create."""
    from pathlib import Path

    venv = Path(os.environ["CANDOR_HOME"]) / "sdk0-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "anthropic<1"], check=True, timeout=600)
    return str(python)


def test_text_completions_with_the_0x_sdk(server, sdk0_python):
    result = subprocess.run([sdk0_python, "-c", SDK0_SCRIPT, server, KEY], check=False, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok 0.")
