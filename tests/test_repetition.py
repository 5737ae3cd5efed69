"""The loop guard (candor.engine.base.RepetitionGuard) on the real default model, and its registry fields."""

from __future__ import annotations

import dataclasses

import pytest

from candor.errors import InvalidRequestError
from candor.registry import load_registry

COFFEE = "How do I make a good cup of coffee?"  # greedy without the guard: the same sentences again and again


def repeated_share(text: str, n: int = 8) -> float:
    words = text.split()
    grams = [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    return (len(grams) - len(set(grams))) / max(1, len(grams))


async def answer(entry, prompt: str, max_tokens: int = 300, grammar: str | None = None):
    from candor.chat.service import ChatParams, stream_chat
    from candor.engine.base import TextDelta
    from candor.engine.hub import build_engine

    model = build_engine(entry)
    try:
        return "".join([event.text async for event in stream_chat(
            model, [{"role": "user", "content": prompt}], None, ChatParams(max_tokens=max_tokens, grammar=grammar))
            if isinstance(event, TextDelta)])
    finally:
        await model.engine.close()


async def test_the_default_models_guard_ends_a_greedy_loop(model_path, monkeypatch):
    """Greedy SmolLM2 answers COFFEE by repeating its sentences (a third of its 8-word runs or more);
    with the registry's guard (DRY and a light repetition penalty) it repeats almost nothing (over
    40 everyday requests: benchmarks/repetition.py)."""
    monkeypatch.setenv("CANDOR_SLOTS", "1")
    entry = load_registry().get("candor-instant")
    assert entry.dry_multiplier > 0 and entry.repeat_penalty > 1
    looping = await answer(dataclasses.replace(entry, dry_multiplier=0.0, repeat_penalty=1.0), COFFEE)
    assert repeated_share(looping) > 0.3
    guarded = await answer(entry, COFFEE)
    assert repeated_share(guarded) < 0.05
    assert guarded[:60] == looping[:60]  # the same answer until the loop would begin


async def test_a_grammar_constrained_answer_goes_without_the_guard(model_path, monkeypatch):
    """A format's structure repeats by design, and the grammar's refused tokens would enter the
    guard's history: constrained answers are decoded as if the guard were off."""
    from candor import formats

    monkeypatch.setenv("CANDOR_SLOTS", "1")
    entry = load_registry().get("candor-instant")
    prompt = "List the days of the week as a JSON array of objects with name and number."
    grammar = formats.grammar_for("json")
    guarded = await answer(entry, prompt, 120, grammar)
    plain = await answer(dataclasses.replace(entry, dry_multiplier=0.0, repeat_penalty=1.0), prompt, 120, grammar)
    assert guarded == plain
    free = [await answer(e, prompt, 120) for e in (entry, dataclasses.replace(entry, dry_multiplier=0.0,
                                                                             repeat_penalty=1.0))]
    assert free[0] != free[1]  # unconstrained, the guard does change this answer


@pytest.mark.parametrize("body, field", [
    ("dry_multiplier = -1", "dry_multiplier"),
    ("dry_base = 1.0", "dry_base"),
    ("dry_allowed_length = 0", "dry_allowed_length"),
    ("dry_penalty_last_n = -1", "dry_penalty_last_n"),
    ("repeat_penalty = 0", "repeat_penalty"),
    ("repeat_last_n = 0", "repeat_last_n"),
    ('engine = "remote"\nbase_url = "http://x"\ndry_multiplier = 0.8', "dry_multiplier"),
])
def test_bad_guard_settings_name_the_field(tmp_path, body, field):
    user = tmp_path / "models.toml"
    user.write_text(f'[models.bad]\nweights = "x"\n{body}\n')
    with pytest.raises(InvalidRequestError, match=f"models.bad.{field}"):
        load_registry(user)
