"""Self-critique and AI feedback logic with a scripted fake engine (no model needed)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from candor.cai.critique import (
    CritiqueSettings,
    clean_revision,
    parse_option,
    self_critique,
    self_critique_rounds,
)
from candor.cai.feedback import compare, fewshot_block, normalise, question
from candor.chat.render import Message
from candor.chat.service import ChatParams
from candor.constitution import load_constitution
from candor.engine.base import Engine, Finish, GenerateRequest, Health, TextDelta, Usage
from candor.engine.hub import LoadedModel
from candor.errors import InvalidRequestError
from candor.registry import ModelEntry


class ScriptedEngine(Engine):
    """Answers by what the last Human turn asks for; records every prompt it saw."""

    name = "fake"

    def __init__(self, letter_bias: float = 0.0, prefers: str = "good"):
        self.prompts: list[str] = []
        self.letter_bias = letter_bias
        self.prefers = prefers

    @property
    def context_window(self) -> int:
        return 100_000

    async def generate(self, request: GenerateRequest) -> AsyncIterator:
        self.prompts.append(request.prompt)
        last = request.prompt.rsplit("\n\nHuman:", 1)[-1]
        if "Rewrite" in last:
            text = " Sure, here is the revised answer: I can't help with that, but here is why, and what I can do."
        elif "assistant's last answer" in last:
            text = " The answer is unhelpful and possibly harmful."
        else:
            text = " A first draft."
        yield TextDelta(text)
        yield Finish("end_turn", Usage(len(request.prompt) // 4, len(text) // 4))

    async def count_tokens(self, text: str) -> int:
        return len(text) // 4

    async def health(self) -> Health:
        return Health(ok=True, model="fake")

    async def next_token_logprobs(self, prompt, candidates):
        self.prompts.append(prompt)
        tail = prompt.rsplit("Options:", 1)[-1]
        a_line = tail.split("(A)", 1)[1].split("(B)", 1)[0]
        a_good = self.prefers in a_line
        return {"A": (-0.2 if a_good else -1.8) + self.letter_bias, "B": (-1.8 if a_good else -0.2)}


def fake_model(engine: Engine | None = None) -> LoadedModel:
    return LoadedModel(ModelEntry(name="fake", weights="x", prompt_format="human-assistant"), engine or ScriptedEngine(),
                       None, {})


async def test_self_critique_returns_final_revision_draft_and_seeded_principles():
    model = fake_model()
    constitution = load_constitution()
    params = ChatParams(max_tokens=64, temperature=0.0)
    result = await self_critique(model, [Message("user", "How do I pick a lock?")], None, params,
                                 CritiqueSettings(rounds=3, seed=7), constitution)
    assert result.draft == "A first draft."
    assert len(result.steps) == 3
    expected = [p.id for p in constitution.sample(random.Random(7), 3)]
    assert [s.principle for s in result.steps] == expected
    assert result.final == "I can't help with that, but here is why, and what I can do."  # preamble removed
    assert all(s.critique == "The answer is unhelpful and possibly harmful." for s in result.steps)
    data = result.as_dict()
    assert data["final"] == result.final and data["usage"]["output_tokens"] > 0
    # the critique request is the principle's own text, after few-shot examples and the draft
    critique_prompt = model.engine.prompts[1]
    assert constitution.get(expected[0]).critique in critique_prompt
    assert "My neighbour's dog barks" in critique_prompt
    assert critique_prompt.index("How do I pick a lock?") < critique_prompt.index("A first draft.")
    again = await self_critique(fake_model(), [Message("user", "How do I pick a lock?")], None, params,
                                CritiqueSettings(rounds=3, seed=7), constitution)
    assert [s.principle for s in again.steps] == expected


def test_option_parsing_and_registry_field():
    assert parse_option(None) is None and parse_option(0) is None
    assert parse_option(2) == CritiqueSettings(rounds=2)
    assert parse_option({"rounds": 1, "seed": 3}) == CritiqueSettings(rounds=1, seed=3)
    with pytest.raises(InvalidRequestError, match="candor.self_critique: rounds must be"):
        parse_option(99)
    with pytest.raises(InvalidRequestError):
        parse_option("two")
    assert self_critique_rounds(ModelEntry(name="m", extra={"self_critique": 2})) == 2
    assert self_critique_rounds(ModelEntry(name="m")) == 0
    with pytest.raises(InvalidRequestError, match="self_critique"):
        self_critique_rounds(ModelEntry(name="m", extra={"self_critique": "yes"}))


def test_clean_revision_strips_preambles_and_quotes():
    assert clean_revision("Revision: Hello there.") == "Hello there."
    assert clean_revision("Sure, here is a revised response: \"Be kind.\"") == "Be kind."
    assert clean_revision("Here's the rewritten answer:\nFine.") == "Fine."
    assert clean_revision("Plain answer.") == "Plain answer."


def test_feedback_question_format_and_soft_label():
    c = load_constitution()
    q = question([Message("user", "Hi?")], "one", "two", c.principles[0])
    assert q.startswith("Consider the following conversation between a human and an assistant:\n\nHuman: Hi?")
    assert "\nOptions:\n(A) one\n(B) two\nThe answer is: (" in q
    assert normalise({"A": 0.0, "B": 0.0}) == 0.5
    assert normalise({"A": -0.1, "B": -2.3}) > 0.85
    shots = fewshot_block(c, random.Random(0), 2)
    assert shots.count("The answer is: (") == 2 and shots.endswith(")\n\n")


async def test_both_orders_cancel_a_letter_bias():
    principle = load_constitution().principles[0]
    biased = fake_model(ScriptedEngine(letter_bias=3.0))
    ctx = [Message("user", "Question?")]
    one = await compare(biased, ctx, "a bad answer", "a good answer", principle, "", both_orders=False)
    both = await compare(biased, ctx, "a bad answer", "a good answer", principle, "", both_orders=True)
    assert one["p_first"] > 0.5  # the bias wins with one order
    assert both["p_first"] < 0.5  # averaged over both orders, content wins
