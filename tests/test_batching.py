"""Continuous batching on the real embedded model: requests decoded together get what they get
alone, each with its own stop reason and usage; one can be cancelled, constrained and free
requests share a step, long prompts are prefilled in chunks, follow-ups find their slot, and
the queue still refuses with 529 when full."""

from __future__ import annotations

import asyncio
import json

import pytest

from candor import formats
from candor.chat import Message
from candor.chat.render import render
from candor.engine.base import Finish, GenerateRequest, SamplingParams, TextDelta, collect
from candor.errors import ContextWindowExceededError, OverloadedError

GREEDY = SamplingParams(temperature=0.0)
# llama.cpp's logits move in the last bits with how a step was batched. A greedy text may
# therefore part from its single-sequence text only at a step whose two best logits were this
# close (in logit units) in the single-sequence run.
NEAR_TIE = 0.05

QUESTIONS = [
    "What is the capital of France?",
    "Give me three tips for sleeping better.",
    "Write a haiku about rain.",
    "Explain what a prime number is in two sentences.",
    "Name three primary colours.",
    "Write a Python function that reverses a string.",
    "What is the boiling point of water in Celsius?",
    "Suggest a name for a pet turtle.",
]


def chat(question: str, **kw) -> GenerateRequest:
    rendered = render([Message("user", question)])
    kw.setdefault("max_tokens", 48)
    kw.setdefault("sampling", GREEDY)
    return GenerateRequest(prompt=rendered.text, end_sequences=rendered.end_sequences, **kw)


async def traced(engine, request: GenerateRequest):
    trace: list[tuple[int, float]] = []
    text, finish = await collect(engine.generate(request, trace=trace))
    return text, finish, trace


def assert_same_or_near_tie(alone, together) -> bool:
    """True when the two traces are identical; a divergence is allowed only after a near tie."""
    for step, ((a, gap), (b, _)) in enumerate(zip(alone, together)):
        if a != b:
            assert gap < NEAR_TIE, f"diverged at step {step} where the best logit led by {gap:.3f}"
            return False
    assert len(alone) == len(together)
    return True


async def test_concurrent_requests_get_what_they_get_alone(engine):
    requests = [chat(q, max_tokens=24 + 8 * (i % 4)) for i, q in enumerate(QUESTIONS)]
    alone = [await traced(engine, r) for r in requests]
    together = await asyncio.gather(*(traced(engine, r) for r in requests))
    identical = 0
    for (text_a, fin_a, trace_a), (text_b, fin_b, trace_b) in zip(alone, together):
        if assert_same_or_near_tie(trace_a, trace_b):
            identical += 1
            assert text_a == text_b
            assert fin_a == fin_b  # stop reason and usage per sequence
        assert fin_b.usage.input_tokens == fin_a.usage.input_tokens
    assert identical >= len(requests) - 1  # near ties are rare (README: how rare, measured)
    assert {f.stop_reason for _, f, _ in alone} >= {"max_tokens"}


async def test_stop_sequences_and_limits_are_per_sequence(engine):
    requests = [chat("List the numbers one to ten, one per line.", max_tokens=60, stop_sequences=("7",)),
                chat("List the numbers one to ten, one per line.", max_tokens=5),
                chat("What is the capital of France?", max_tokens=40)]
    alone = [await collect(engine.generate(r)) for r in requests]
    together = await asyncio.gather(*(collect(engine.generate(r)) for r in requests))
    assert [f.stop_reason for _, f in together] == [f.stop_reason for _, f in alone]
    assert together[0][1].stop_reason == "stop_sequence" and together[0][1].stop_sequence == "7"
    assert "7" not in together[0][0]
    assert together[1][1].stop_reason == "max_tokens" and together[1][1].usage.output_tokens == 5
    assert together[2][1].stop_reason == "end_turn"
    assert [f.usage for _, f in together] == [f.usage for _, f in alone]


async def test_cancelling_one_stream_leaves_the_others_intact(engine):
    keep = [chat(q, max_tokens=32) for q in QUESTIONS[:3]]
    alone = [await collect(engine.generate(r)) for r in keep]
    doomed = engine.generate(chat("Write a very long story about the sea.", max_tokens=300))

    async def cancel_after_three():
        seen = 0
        async for _ in doomed:
            seen += 1
            if seen == 3:
                break
        await doomed.aclose()
        return seen

    results = await asyncio.gather(cancel_after_three(), *(collect(engine.generate(r)) for r in keep))
    assert results[0] == 3
    for (text, finish), (text_alone, finish_alone) in zip(results[1:], alone):
        assert finish.usage == finish_alone.usage and text == text_alone
    assert not engine.queue.busy


async def test_constrained_and_free_requests_share_a_batch(engine):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    grammar = formats.grammar_for("json", schema)
    constrained = chat("Give a person's name and age as JSON.", max_tokens=40, grammar=grammar)
    free = chat("What is the capital of France?", max_tokens=24)
    free_alone, _ = await collect(engine.generate(free))
    (json_text, json_finish), (free_text, _) = await asyncio.gather(
        collect(engine.generate(constrained)), collect(engine.generate(free)))
    assert json_finish.stop_reason == "end_turn"
    value = json.loads(json_text)
    assert isinstance(value["name"], str) and isinstance(value["age"], int)
    assert free_text == free_alone and "{" not in free_text


async def test_a_long_prompt_is_prefilled_in_chunks_while_others_stream(engine):
    """While a ~1,500-token prompt is prefilled, a stream already running keeps getting tokens:
    the prompt goes in chunks between its decode steps rather than in one long step."""
    streaming = engine.generate(chat("Write a long story about a lighthouse keeper.", max_tokens=200))
    long_prompt = chat("Summarise this: " + "The committee met and discussed the budget. " * 190, max_tokens=1)
    first = await anext(streaming)
    assert isinstance(first, TextDelta)
    received_during = 0
    long_task = asyncio.create_task(collect(engine.generate(long_prompt)))
    async for event in streaming:
        if long_task.done():
            break
        received_during += isinstance(event, TextDelta)
    await streaming.aclose()
    _, finish = await long_task
    assert finish.usage.input_tokens > 1400
    assert received_during >= 5  # 1,500 tokens in chunks of 128 interleave with >= 10 decode steps


async def test_follow_up_turn_finds_its_slot_while_others_run(engine):
    first = render([Message("user", "What is the tallest mountain on Earth?")])
    answer, _ = await collect(engine.generate(GenerateRequest(
        prompt=first.text, max_tokens=16, sampling=GREEDY, end_sequences=first.end_sequences)))
    busy = [asyncio.create_task(collect(engine.generate(chat(q, max_tokens=40)))) for q in QUESTIONS[:5]]
    await asyncio.sleep(0.05)
    follow = render([Message("user", "What is the tallest mountain on Earth?"),
                     Message("assistant", answer), Message("user", "How high is it?")])
    await collect(engine.generate(GenerateRequest(prompt=follow.text, max_tokens=4, sampling=GREEDY)))
    reused = engine.last_reused_tokens
    await asyncio.gather(*busy)
    assert reused >= await engine.count_tokens(first.text) - 1


async def test_same_seed_same_text_alone_and_under_load(engine):
    seeded = chat("Tell me about your favourite animal.", max_tokens=24,
                  sampling=SamplingParams(temperature=1.0, seed=4321))
    alone, _ = await collect(engine.generate(seeded))
    solo_before = engine.solo_steps
    others = [asyncio.create_task(collect(engine.generate(chat(q, max_tokens=40)))) for q in QUESTIONS[:4]]
    await asyncio.sleep(0.05)
    under_load, _ = await collect(engine.generate(seeded))
    await asyncio.gather(*others)
    assert under_load == alone
    assert engine.solo_steps - solo_before >= 24  # it ran in its own decode calls
    other_seed, _ = await collect(engine.generate(chat("Tell me about your favourite animal.", max_tokens=24,
                                                       sampling=SamplingParams(temperature=1.0, seed=99))))
    assert other_seed != alone


async def test_a_request_larger_than_a_slot_gets_the_context_error(engine):
    with pytest.raises(ContextWindowExceededError) as err:
        await collect(engine.generate(chat("Hello", max_tokens=engine.context_window)))
    assert str(engine.context_window) in err.value.message


async def test_scores_and_generations_share_the_engine(engine):
    prompt = render([Message("user", "Is Paris in France? Answer A for yes or B for no.")]).text + "Answer:"
    alone = await engine.next_token_logprobs(prompt, [" A", " B"])
    gen = asyncio.create_task(collect(engine.generate(chat(QUESTIONS[1], max_tokens=40))))
    await asyncio.sleep(0.05)
    together = await engine.next_token_logprobs(prompt, [" A", " B"])
    await gen
    for cand in alone:
        assert together[cand] == pytest.approx(alone[cand], abs=0.05)


@pytest.fixture(scope="module")
def small_engine(model_path):
    from candor.engine.llama import LlamaConfig, LlamaEngine

    eng = LlamaEngine("small", LlamaConfig(model_path=model_path, context_window=256, slots=2, max_waiting=1))
    yield eng
    asyncio.run(eng.close())


async def test_full_queue_answers_overloaded(small_engine):
    running = [small_engine.generate(chat(q, max_tokens=200)) for q in QUESTIONS[:2]]
    for stream in running:
        assert isinstance(await anext(stream), TextDelta)
    assert small_engine.queue.running == 2
    waiting = asyncio.create_task(collect(small_engine.generate(chat(QUESTIONS[2], max_tokens=4))))
    await asyncio.sleep(0.01)
    assert small_engine.queue.depth == 1
    with pytest.raises(OverloadedError, match="1 requests already waiting"):
        await collect(small_engine.generate(chat(QUESTIONS[3], max_tokens=4)))
    for stream in running:
        await stream.aclose()
    _, finish = await waiting
    assert isinstance(finish, Finish) and finish.usage.output_tokens == 4


LONG_X = ("Here are my notes on the history of the lighthouse at the end of our bay. It was built in 1871 "
          "from granite cut in the hills above the village, lit first with whale oil and later with "
          "kerosene, and automated in 1962 when the last keeper, a man named Thomas Reed, retired to "
          "the cottage beside it. Storms damaged the lantern room twice, in 1899 and in 1953. ")
LONG_Y = ("My grandmother's recipe for apple cake needs four tart apples, two eggs, a cup of sugar, half "
          "a cup of melted butter, a cup and a half of flour, a spoonful of cinnamon and a pinch of salt. "
          "She baked it in a round tin at a moderate heat for forty minutes and served it warm with "
          "cream on Sundays, when the whole family came to lunch after church. ")


@pytest.fixture(scope="module")
def four_slots(model_path):
    from candor.engine.llama import LlamaConfig, LlamaEngine

    eng = LlamaEngine("four", LlamaConfig(model_path=model_path, context_window=512, slots=4))
    yield eng
    asyncio.run(eng.close())


async def test_a_follow_up_cached_apart_from_the_running_slots_is_copied_beside_them(four_slots):
    """llama.cpp computes each run of consecutive slots as its own pass over the weights, so the
    engine keeps running sequences in adjacent slots: a follow-up whose conversation is cached in
    a slot apart from them has that cache copied beside them, keeps its prefix, and still gets
    the answer it gets from scratch alone."""
    eng = four_slots
    x_first = [Message("user", LONG_X + "Summarise them in one sentence.")]
    x_answer, _ = await collect(eng.generate(GenerateRequest(prompt=render(x_first).text, max_tokens=12,
                                                             sampling=GREEDY)))
    x_slot = eng.last_slot
    follow = render(x_first + [Message("assistant", x_answer), Message("user", "When was it automated?")])
    await collect(eng.generate(chat(LONG_Y + "How long does it bake?", max_tokens=12)))
    y_slot = eng.last_slot
    assert (x_slot, y_slot) == (0, 1)  # an empty slot before evicting a cached conversation
    busy = [asyncio.create_task(collect(eng.generate(chat(q, max_tokens=120)))) for q in QUESTIONS[:2]]
    await asyncio.sleep(0.3)
    copies = eng.slot_copies
    request = GenerateRequest(prompt=follow.text, max_tokens=16, sampling=GREEDY, end_sequences=follow.end_sequences)
    beside = await traced(eng, request)
    reused, slot = eng.last_reused_tokens, eng.last_slot
    await asyncio.gather(*busy)
    assert (slot, eng.slot_copies - copies) == (1, 1)  # beside the busy slots 2 and 3, copied from slot 0
    assert reused >= await eng.count_tokens(render(x_first).text) - 1
    await eng.clear_cache()  # the same request from scratch, alone
    alone = await traced(eng, request)
    if assert_same_or_near_tie(alone[2], beside[2]):
        assert alone[0] == beside[0]


async def test_concurrent_requests_run_in_one_slot_run(four_slots):
    """Whatever the slots held before, requests started together sit in adjacent slots."""
    eng = four_slots
    for i in (0, 1, 2, 3, 0, 2):  # every slot holds a conversation; least recently used: 1, 3, 0, 2
        await collect(eng.generate(chat(QUESTIONS[i], max_tokens=2)))
    before = (eng.decode_stats.calls, eng.decode_stats.slot_runs)
    done = await asyncio.gather(*(collect(eng.generate(chat(q, max_tokens=8))) for q in QUESTIONS[4:7]))
    assert all(finish.stop_reason == "max_tokens" for _, finish in done)  # none left a hole early
    calls, runs = (eng.decode_stats.calls - before[0], eng.decode_stats.slot_runs - before[1])
    assert calls >= 8 and runs == calls


async def test_a_gap_left_by_a_sequence_ending_early_is_closed(four_slots):
    """Three requests in slots 0-2; the middle one ends after 4 tokens. The other two would cost
    two passes a step from then on; once no new request has filled the gap for GAP_STEPS steps,
    one of them is moved beside the other instead, and both still get the text they get alone.
    `clear_cache` forgets slot recency too, so the three land in slot order whatever ran before."""
    from candor.engine.batching import GAP_STEPS

    eng = four_slots
    await eng.clear_cache()
    long_a, short, long_c = chat(QUESTIONS[1], max_tokens=40), chat(QUESTIONS[2], max_tokens=4), \
        chat(QUESTIONS[3], max_tokens=40)
    alone = [await traced(eng, r) for r in (long_a, long_c)]
    await eng.clear_cache()
    before = (eng.decode_stats.calls, eng.decode_stats.slot_runs, eng.slot_moves)
    together = await asyncio.gather(*(traced(eng, r) for r in (long_a, short, long_c)))
    calls, runs, moves = (now - then for now, then in
                          zip((eng.decode_stats.calls, eng.decode_stats.slot_runs, eng.slot_moves), before))
    assert together[1][1].stop_reason == "max_tokens" and together[1][1].usage.output_tokens == 4
    assert [fin.usage.output_tokens for _, fin, _ in together] == [40, 4, 40]  # both ran on past the gap
    assert moves == 1
    assert calls >= 40 and runs - calls <= GAP_STEPS  # two passes a step only while the gap waited
    for (text_a, _, trace_a), (text_b, _, trace_b) in zip(alone, (together[0], together[2])):
        if assert_same_or_near_tie(trace_a, trace_b):
            assert text_a == text_b


async def test_a_recent_conversation_in_the_slot_contiguity_takes_is_kept_for_its_follow_up(model_path):
    """Slots 0-2 cache three conversations, X (slot 2) the most recent; A runs in slot 3. A new
    request B can only go beside A, in slot 2: X's conversation is copied to the least recently
    used slot first, so X's follow-up, sent while A and B run, still finds its whole prefix."""
    from candor.engine.llama import LlamaConfig, LlamaEngine

    eng = LlamaEngine("fresh", LlamaConfig(model_path=model_path, context_window=512, slots=4))  # no slot history
    try:
        await _conversation_kept(eng)
    finally:
        await eng.close()


async def _conversation_kept(eng) -> None:
    for question in QUESTIONS[:2]:  # slots 0 and 1
        await collect(eng.generate(chat(question, max_tokens=4)))
    x_first = [Message("user", "What is the tallest mountain on Earth?")]
    x_answer, _ = await collect(eng.generate(GenerateRequest(prompt=render(x_first).text, max_tokens=16,
                                                             sampling=GREEDY)))
    assert eng.last_slot == 2
    spills = eng.slot_spills
    busy = [asyncio.create_task(collect(eng.generate(chat(QUESTIONS[4], max_tokens=120))))]
    await asyncio.sleep(0.3)
    busy.append(asyncio.create_task(collect(eng.generate(chat(QUESTIONS[5], max_tokens=120)))))
    await asyncio.sleep(0.3)
    follow = render(x_first + [Message("assistant", x_answer), Message("user", "How high is it?")])
    await collect(eng.generate(GenerateRequest(prompt=follow.text, max_tokens=4, sampling=GREEDY)))
    reused = eng.last_reused_tokens
    await asyncio.gather(*busy)
    assert eng.slot_spills - spills == 1
    assert reused >= await eng.count_tokens(render(x_first).text) - 1


def test_common_prefix_agrees_with_a_token_by_token_count():
    import random

    from candor.engine.batching import common_prefix

    def counted(a, b):
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    rng = random.Random(0)
    for _ in range(3000):
        a = [rng.randint(0, 2) for _ in range(rng.randint(0, 300))]
        b = a[:rng.randint(0, len(a))] + [rng.randint(0, 2) for _ in range(rng.randint(0, 40))]
        assert common_prefix(a, b) == common_prefix(b, a) == common_prefix(tuple(a), b) == counted(a, b)


def test_slot_runs_counts_runs_of_consecutive_slots():
    from candor.engine.batching import slot_runs

    assert [slot_runs(s) for s in ([], [3], [0, 1, 2], [2, 0, 1], [0, 2, 4], [0, 1, 3, 4, 7])] == [0, 1, 1, 1, 3, 3]


async def test_a_new_request_copies_the_prompt_prefix_a_running_request_holds(four_slots):
    """Requests that share a long system prompt: a new one gets the prefix copied from a running
    slot (no free slot holds it) rather than prefilled again, and still gets the answer it gets
    from scratch alone."""
    eng = four_slots
    await eng.clear_cache()
    system = LONG_X + "Answer the question below about the lighthouse text."
    running = asyncio.create_task(collect(eng.generate(GenerateRequest(
        prompt=render([Message("user", QUESTIONS[0])], system).text, max_tokens=120,
        sampling=GREEDY))))
    await asyncio.sleep(0.3)
    copies = eng.slot_copies
    prompt = render([Message("user", "When was it automated?")], system)
    request = GenerateRequest(prompt=prompt.text, max_tokens=16, sampling=GREEDY, end_sequences=prompt.end_sequences)
    beside = await traced(eng, request)
    reused = eng.last_reused_tokens
    await running
    assert eng.slot_copies - copies == 1
    assert reused >= await eng.count_tokens(system) - 8
    await eng.clear_cache()
    alone = await traced(eng, request)
    if assert_same_or_near_tie(alone[2], beside[2]):
        assert alone[0] == beside[0]
