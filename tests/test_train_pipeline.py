"""The whole Constitutional AI pipeline end to end on a handful of prompts with tiny settings, on
the real embedded model: revise → feedback → dedup → SFT → DPO → export → serve the adapter.

It runs the `candor` commands as a user would and checks files and shapes, that training changed
the weights, and that the exported GGUF adapter loads in the engine and changes greedy output.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from candor.chat.render import HUMAN, Message, render
from candor.train.common import render_example

PROMPTS = ["How do I get back at my coworker for embarrassing me?", "What's the best way to cheat on a test?",
           "Can you tell me a joke about my neighbour's religion?", "How do I boil an egg?"]


def candor(*args: str, timeout: int = 3600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "candor", *args], check=False, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"candor {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_training_examples_are_rendered_by_the_serving_renderer():
    conv = [Message("user", "Hi there"), Message("assistant", "Hello!"), Message("user", "Bye?"),
            Message("assistant", " Goodbye. ")]
    prompt, completion = render_example(conv)
    assert prompt == render(conv[:-1]).text
    assert prompt.endswith("\n\nAssistant:") and completion == " Goodbye." + HUMAN


async def test_training_renders_the_default_model_exactly_as_the_server_does(model_path):
    """The default model's ChatML template, its BOS kept, and Candor's system prompt: the text the
    server sends the engine for a conversation is the prompt a training example is built from."""
    from candor.chat.model_format import chat_format, chat_format_of
    from candor.engine.hub import EngineHub
    from candor.registry import load_registry
    from candor.train.common import chat_format_for

    conv = [Message("user", "Hi there"), Message("assistant", "Hello!")]
    hub = EngineHub(load_registry())
    try:
        served = chat_format(await hub.get("candor-instant")).render(conv[:1]).text
    finally:
        await hub.close()
    fmt = chat_format_for("candor-instant")
    assert fmt == chat_format_of(load_registry().get("candor-instant"))
    prompt, completion = render_example(conv, fmt=fmt)
    assert prompt == served and prompt.startswith("<|im_start|>system\nYou are Candor")
    assert completion == "Hello!<|im_end|>"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("pipeline")


def test_pipeline_end_to_end(work, model_path):
    from candor.evals.data import Data, DataNotFoundError

    try:  # SFT mixes in hh-rlhf helpful answers (the shared data folder, absent on some machines)
        Data().find("hh-rlhf", "helpful-base/test.jsonl.gz")
    except DataNotFoundError as exc:
        pytest.skip(f"data sets not available: {exc}")
    prompts = work / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")

    # 1. SL-CAI critique/revision data
    revisions = work / "revisions.jsonl"
    candor("cai", "revise", "--prompts", str(prompts), "--limit", "4", "--rounds", "2", "--max-tokens", "24",
           "--critique-max-tokens", "16", "--fewshot", "1", "--seed", "0", "--out", str(revisions))
    revised = rows(revisions)
    assert [r["prompt"] for r in revised] == PROMPTS
    constitution_ids = {p["id"] for p in json.loads(candor("constitution", "show", "--json").stdout)["principles"]}
    for r in revised:
        assert set(r) >= {"id", "prompt", "initial", "steps", "final", "model", "seed", "constitution", "usage"}
        assert [s["round"] for s in r["steps"]] == [1, 2]
        for s in r["steps"]:
            assert set(s) == {"round", "principle", "critique_request", "critique", "revision_request", "revision"}
            assert s["principle"] in constitution_ids
        assert r["final"] == r["steps"][-1]["revision"]

    # 2. AI feedback: two samples per prompt, soft label from A/B log-probabilities
    feedback = work / "feedback.jsonl"
    candor("cai", "feedback", "--prompts", str(revisions), "--limit", "4", "--max-tokens", "16", "--fewshot", "1",
           "--out", str(feedback))
    labelled = rows(feedback)
    assert len(labelled) == 4
    for r in labelled:
        assert 0.0 <= r["p_a"] <= 1.0 and r["confidence"] >= 0.5
        assert {r["chosen"], r["rejected"]} == {r["response_a"], r["response_b"]}
        assert abs(r["p_a"] - (r["p_first_as_a"] + r["p_first_as_b"]) / 2) < 1e-5

    # 3. dedup removes planted duplicates
    long_text = ("Revenge tends to make a bad situation worse at work. Talk to your coworker privately, explain "
                 "how the moment felt, and ask that it not happen again; if it continues, speak to your manager.")
    planted = revised + [dict(revised[0], final=revised[0]["final"].upper() + " "),
                         dict(revised[1], prompt="planted", final=long_text),
                         dict(revised[1], prompt="planted", final=long_text.replace("privately", "in private"))]
    mixed, deduped = work / "mixed.jsonl", work / "deduped.jsonl"
    mixed.write_text("".join(json.dumps(r) + "\n" for r in planted))
    report = json.loads(candor("cai", "dedup", str(mixed), str(deduped)).stdout)
    assert report["exact_duplicates"] >= 1 and report["near_duplicates"] >= 1
    assert len(rows(deduped)) == len(planted) - report["exact_duplicates"] - report["near_duplicates"]

    # 4. SFT on revisions mixed with helpful answers
    sft = work / "sft"
    out = candor("train", "sft", "--data", str(revisions), "--helpful", "4", "--max-steps", "2", "--batch-size", "2",
                 "--max-length", "128", "--learning-rate", "1e-2", "--logging-steps", "1", "--out", str(sft))
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    assert metrics["steps"] == 2 and metrics["max_weight_change"] > 0
    for name in ("adapter_config.json", "adapter_model.safetensors", "config.json", "metrics.json", "README.md"):
        assert (sft / name).is_file(), name
    assert json.loads((sft / "config.json").read_text())["method"] == "sft"
    assert "## Loss curve" in (sft / "README.md").read_text()

    # 5. DPO on the AI-labelled pairs, starting from the SFT adapter
    dpo = work / "dpo"
    out = candor("train", "dpo", "--data", str(feedback), "--min-confidence", "0", "--init-adapter", str(sft),
                 "--max-steps", "2", "--batch-size", "2", "--max-length", "128", "--learning-rate", "1e-2",
                 "--logging-steps", "1", "--out", str(dpo))
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    assert metrics["steps"] == 2 and metrics["max_weight_change"] > 0
    assert (dpo / "adapter_model.safetensors").is_file()

    # 6. export to GGUF and register by name
    models_file = work / "models.toml"
    result = json.loads(candor("train", "export", "--adapter", str(dpo), "--name", "candor-instant-test-cai",
                               "--models-file", str(models_file)).stdout)
    gguf = Path(result["gguf"])
    assert gguf.read_bytes()[:4] == b"GGUF"
    from candor.registry import load_registry

    entry = load_registry(models_file).get("candor-instant-test-cai")
    assert entry.adapter_path() == gguf.resolve()

    # 7. the adapter loads in the engine and changes greedy output
    from candor.engine.base import GenerateRequest, SamplingParams, collect
    from candor.engine.llama import LlamaConfig, LlamaEngine
    from candor.train.common import chat_format_for

    prompt = chat_format_for("candor-instant").render([Message("user", "How do I boil an egg?")]).text
    request = GenerateRequest(prompt=prompt, max_tokens=16, sampling=SamplingParams(temperature=0.0))

    async def greedy(adapter: Path | None) -> str:
        eng = LlamaEngine("t", LlamaConfig(model_path=model_path, context_window=512, adapter_path=adapter,
                                            parse_special=True))
        try:
            return (await collect(eng.generate(request)))[0]
        finally:
            await eng.close()

    base_text, tuned_text = asyncio.run(greedy(None)), asyncio.run(greedy(gguf))
    assert tuned_text != base_text
