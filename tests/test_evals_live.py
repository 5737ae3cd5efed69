"""Short real runs: the embedded model in process, and the same command against a real `candor serve`
through the official anthropic and openai SDKs (endpoint mode)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.evals import data as eval_data
from test_api import KEY, running_server

FIXTURES = eval_data.folder()  # written at test time by tests/fixtures/evals/data.py
SHORT = ["--limit", "1", "--data-dir", str(FIXTURES), "--quiet", "-o", "gsm8k.shots=1", "-o", "gsm8k.max_tokens=12",
         "-o", "mmlu-law.shots=0"]


def candor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "candor", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def results(out: Path, model: str, task: str) -> dict:
    return json.loads((out / model / task / "results.json").read_text())


def test_real_run_on_the_embedded_model(tmp_path):
    run = candor("eval", "gsm8k", "mmlu-law", "--model", "candor-instant", "--out", str(tmp_path), *SHORT)
    assert run.returncode == 0, run.stderr
    assert "gsm8k · candor-instant: accuracy" in run.stdout
    gsm = results(tmp_path, "candor-instant", "gsm8k")
    assert gsm["config"]["model"]["kind"] == "in-process" and gsm["n_items"] == 1
    record = json.loads((tmp_path / "candor-instant" / "gsm8k" / "items.jsonl").read_text())
    assert record["answer"] and record["output_tokens"] <= 12
    law = results(tmp_path, "candor-instant", "mmlu-law")
    assert law["config"]["resolved"]["scoring"] == "logprob"
    assert set(json.loads((tmp_path / "candor-instant" / "mmlu-law" / "items.jsonl").read_text())["logprobs"]) == set(
        "ABCD")


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


def test_endpoint_mode_with_both_sdks(server, tmp_path):
    anthropic_run = candor("eval", "gsm8k", "mmlu-law", "--endpoint", server, "--api", "anthropic", "--api-key", KEY,
                           "--model", "candor-instant", "--out", str(tmp_path / "a"), *SHORT)
    assert anthropic_run.returncode == 0, anthropic_run.stderr
    gsm = results(tmp_path / "a", "candor-instant", "gsm8k")
    assert gsm["config"]["model"] == {**gsm["config"]["model"], "kind": "anthropic-endpoint", "url": server}
    assert gsm["timing"]["output_tokens"] > 0
    # The Messages API has no log-probabilities: multiple choice falls back to asking for the letter.
    assert results(tmp_path / "a", "candor-instant", "mmlu-law")["config"]["resolved"]["scoring"] == "generate"

    openai_run = candor("eval", "gsm8k", "--endpoint", f"{server}/v1", "--api", "openai", "--api-key", KEY,
                        "--model", "candor-instant", "--out", str(tmp_path / "o"), *SHORT)
    assert openai_run.returncode == 0, openai_run.stderr
    assert results(tmp_path / "o", "candor-instant", "gsm8k")["config"]["model"]["kind"] == "openai-endpoint"

    needs = candor("eval", "mmlu-law", "--endpoint", f"{server}/v1", "--api", "openai", "--api-key", KEY,
                   "--model", "candor-instant", "--out", str(tmp_path / "n"), *SHORT, "-o", "scoring=logprob")
    assert needs.returncode == 1 and "log-probabilities" in needs.stderr and "scoring=generate" in needs.stderr


@pytest.fixture(scope="module")
def llama_server(model_path):
    """llama-cpp-python's OpenAI-compatible server (a stand-in for vLLM), which has /v1/completions
    with logprobs."""
    import time

    import httpx
    from test_api import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--model_alias", "gemma"],
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


def test_log_probabilities_over_an_openai_endpoint(llama_server, tmp_path):
    run = candor("eval", "mmlu-law", "--endpoint", llama_server, "--api", "openai", "--api-key", "none",
                 "--model", "gemma", "--out", str(tmp_path), *SHORT, "-o", "scoring=logprob")
    assert run.returncode == 0, run.stderr
    assert results(tmp_path, "gemma", "mmlu-law")["config"]["resolved"]["scoring"] == "logprob"
    record = json.loads((tmp_path / "gemma" / "mmlu-law" / "items.jsonl").read_text())
    assert max(record["logprobs"].values()) > float("-inf")
