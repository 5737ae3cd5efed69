"""The embedded engine on the real default model, at temperature 0 with short outputs."""

import asyncio

import pytest

from candor.chat import Message, render
from candor.engine.base import Finish, GenerateRequest, SamplingParams, TextDelta, collect
from candor.errors import ContextWindowExceededError, InvalidRequestError

GREEDY = SamplingParams(temperature=0.0)


def chat_request(text: str, **kw) -> GenerateRequest:
    rendered = render([Message("user", text)])
    kw.setdefault("max_tokens", 24)
    return GenerateRequest(prompt=rendered.text, sampling=GREEDY, end_sequences=rendered.end_sequences, **kw)


async def test_max_tokens_stop_reason_and_usage(engine):
    req = GenerateRequest(prompt="The numbers from one to fifty: one, two, three,", max_tokens=7, sampling=GREEDY)
    text, finish = await collect(engine.generate(req))
    assert finish.stop_reason == "max_tokens"
    assert finish.usage.output_tokens == 7
    assert finish.usage.input_tokens == await engine.count_tokens(req.prompt)
    assert text.strip()


async def test_greedy_is_deterministic(engine):
    req = chat_request("Name three fruits.", max_tokens=12)
    first, _ = await collect(engine.generate(req))
    second, _ = await collect(engine.generate(req))
    assert first == second


async def test_user_stop_sequence_reports_the_sequence_and_drops_it(engine):
    req = GenerateRequest(prompt="Count: 1, 2, 3, 4, 5,", max_tokens=30, sampling=GREEDY, stop_sequences=("8",))
    text, finish = await collect(engine.generate(req))
    assert finish.stop_reason == "stop_sequence" and finish.stop_sequence == "8"
    assert "8" not in text and "7" in text


async def test_format_end_sequence_is_end_turn(engine):
    # The base model soon writes the next "Human:" turn; the format's end sequence stops it.
    req = chat_request("Hello!", max_tokens=200)
    text, finish = await collect(engine.generate(req))
    assert finish.stop_reason == "end_turn" and finish.stop_sequence is None
    assert "Human:" not in text


async def test_non_ascii_streams_intact(engine):
    prompt = "Traduire en japonais et en français : « bonjour » → こんにちは, « merci » →"
    req = GenerateRequest(prompt=prompt, max_tokens=24, sampling=GREEDY)
    deltas = []
    async for event in engine.generate(req):
        if isinstance(event, TextDelta):
            deltas.append(event.text)
    assert all("\ufffd" not in d for d in deltas)
    joined = "".join(deltas)
    assert joined.encode("utf-8").decode("utf-8") == joined
    assert any(ord(c) > 127 for c in joined)  # the model did produce non-ASCII text


async def test_consumer_stopping_cancels_generation(engine):
    req = GenerateRequest(prompt="Write a very long story about the sea.", max_tokens=400, sampling=GREEDY)
    events = engine.generate(req)
    seen = 0
    async for event in events:
        seen += 1
        if seen == 3:
            break
    await events.aclose()
    # The model is free at once: the next request runs and its cache position moved on little.
    assert not engine.queue.busy
    _, finish = await collect(engine.generate(GenerateRequest(prompt="Hi", max_tokens=2, sampling=GREEDY)))
    assert finish.usage.output_tokens == 2


async def test_cancelled_task_frees_the_engine(engine):
    req = GenerateRequest(prompt="Once upon a time", max_tokens=400, sampling=GREEDY)
    got = asyncio.Event()

    async def consume():
        async for event in engine.generate(req):
            got.set()

    task = asyncio.create_task(consume())
    await got.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert not engine.queue.busy and engine.queue.depth == 0


async def test_context_overflow_states_both_numbers_and_window(engine):
    prompt = "word " * 1900
    req = GenerateRequest(prompt=prompt, max_tokens=500, sampling=GREEDY)
    with pytest.raises(ContextWindowExceededError) as err:
        await collect(engine.generate(req))
    n = await engine.count_tokens(prompt)
    assert f"prompt is {n} tokens" in err.value.message
    assert "max_tokens is 500" in err.value.message and "2048" in err.value.message


@pytest.mark.parametrize("kw, field", [
    ({"sampling": SamplingParams(temperature=1.5)}, "temperature"),
    ({"sampling": SamplingParams(top_p=-0.1)}, "top_p"),
    ({"sampling": SamplingParams(top_k=-1)}, "top_k"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"prompt": "   "}, "prompt"),
])
async def test_bad_input_names_the_field(engine, kw, field):
    base = {"prompt": "Hi", "max_tokens": 4, "sampling": GREEDY}
    with pytest.raises(InvalidRequestError) as err:
        await collect(engine.generate(GenerateRequest(**{**base, **kw})))
    assert err.value.field == field


async def test_follow_up_turn_reuses_the_prefix(engine):
    first = render([Message("user", "What is the capital of France?")])
    answer, _ = await collect(engine.generate(GenerateRequest(
        prompt=first.text, max_tokens=16, sampling=GREEDY, end_sequences=first.end_sequences)))
    follow = render([Message("user", "What is the capital of France?"), Message("assistant", answer.strip() or "Paris."),
                     Message("user", "And of Spain?")])
    await collect(engine.generate(GenerateRequest(prompt=follow.text, max_tokens=4, sampling=GREEDY)))
    assert engine.last_reused_tokens >= await engine.count_tokens(first.text) - 1


async def test_seeded_sampling_repeats(engine):
    req = GenerateRequest(prompt="My favourite animal is", max_tokens=10,
                          sampling=SamplingParams(temperature=1.0, seed=1234))
    assert (await collect(engine.generate(req)))[0] == (await collect(engine.generate(req)))[0]


async def test_grammar_constrains_output(engine):
    req = GenerateRequest(prompt="Is the sky blue? Answer:", max_tokens=5, sampling=GREEDY,
                          grammar='root ::= " yes" | " no"')
    text, finish = await collect(engine.generate(req))
    assert text in (" yes", " no")
    assert isinstance(finish, Finish)


async def test_next_token_logprobs_rank_the_obvious_answer(engine):
    prompt = "The Eiffel Tower is in the city of"
    scores = await engine.next_token_logprobs(prompt, [" Paris", " Berlin", " banana"])
    assert set(scores) == {" Paris", " Berlin", " banana"}
    assert all(v < 0 for v in scores.values())
    assert scores[" Paris"] > scores[" Berlin"] > scores[" banana"]
    # Scored again with the prefix cached: equal up to llama.cpp's batching noise (~1e-2).
    again = await engine.next_token_logprobs(prompt, [" Paris"])
    assert abs(again[" Paris"] - scores[" Paris"]) < 0.05
    # and generation still works after scoring
    text, _ = await collect(engine.generate(GenerateRequest(prompt=prompt, max_tokens=2, sampling=GREEDY)))
    assert text
