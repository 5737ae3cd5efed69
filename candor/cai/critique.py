"""Self-critique: draft → critique against principles drawn at random (seeded) → revision.

The same loop serves inference (an answer the model critiques and revises before it is returned)
and data generation (`candor cai revise`). It talks to any `LoadedModel` through the chat
service, so the embedded model, a remote OpenAI-compatible server or an Anthropic-compatible one
all work. The critique and revision requests are chat turns after the draft:

    Human: {question}  Assistant: {draft}  Human: {critique request}  Assistant: {critique}
    Human: {revision request}  Assistant: {revision}

preceded by few-shot examples in the same shape, which keep small models from confusing the
two steps. Each round revises the previous round's answer under a newly drawn principle.

Serving integration (for the API/registry owners): a registry entry may set `self_critique = N`
(an extra field, read by `self_critique_rounds(entry)`); a request may set the Candor extension
field `candor.self_critique` (an integer N, or `{"rounds": N, "seed": S}`), which overrides it.
The result's `final` is what is returned (and streamed); `draft` and `steps` are for the store.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from candor.chat.render import Message, as_messages
from candor.chat.service import ChatParams, stream_chat
from candor.constitution import Constitution, Principle, load_constitution
from candor.engine.base import Finish, collect
from candor.engine.hub import LoadedModel
from candor.errors import InvalidRequestError

REGISTRY_FIELD = "self_critique"  # rounds per answer in a registry entry's extra fields
REQUEST_FIELD = "candor.self_critique"  # the request extension field
MAX_ROUNDS = 8

_PREAMBLE = re.compile(
    r"^\s*(?:(?:revision|revised(?: answer| response)?|critique|new answer|rewritten answer)\s*:\s*"
    r"|(?:sure|okay|ok|certainly|of course)[,!.]?\s+here(?:'s| is)[^:\n]*:\s*"
    r"|here(?:'s| is) (?:a |the |my )?(?:revised|rewritten|new|improved)[^:\n]*:\s*)",
    re.IGNORECASE)


@dataclass
class CritiqueStep:
    round: int
    principle: str
    critique_request: str
    critique: str
    revision_request: str
    revision: str


@dataclass
class CritiqueResult:
    draft: str
    steps: list[CritiqueStep] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str = "end_turn"  # of the text returned: the last revision, or the draft

    @property
    def final(self) -> str:
        return self.steps[-1].revision if self.steps else self.draft

    def as_dict(self) -> dict[str, Any]:
        return {"draft": self.draft, "steps": [asdict(s) for s in self.steps], "final": self.final,
                "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}}


@dataclass(frozen=True)
class CritiqueSettings:
    rounds: int = 1
    seed: int | None = None
    critique_max_tokens: int = 128
    temperature: float | None = None  # None: the request's own
    fewshot: int = 3  # how many few-shot examples precede each request


def parse_option(value: Any) -> CritiqueSettings | None:
    """The `candor.self_critique` extension field: an integer, or {"rounds", "seed"}."""
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Mapping)):
        raise InvalidRequestError("must be an integer number of rounds or an object with 'rounds'",
                                  field=REQUEST_FIELD)
    rounds, seed = (value, None) if isinstance(value, int) else (value.get("rounds", 1), value.get("seed"))
    if not isinstance(rounds, int) or isinstance(rounds, bool) or not 0 <= rounds <= MAX_ROUNDS:
        raise InvalidRequestError(f"rounds must be an integer 0..{MAX_ROUNDS}, got {rounds!r}", field=REQUEST_FIELD)
    if seed is not None and not isinstance(seed, int):
        raise InvalidRequestError(f"seed must be an integer, got {seed!r}", field=REQUEST_FIELD)
    return CritiqueSettings(rounds=rounds, seed=seed) if rounds else None


def self_critique_rounds(entry) -> int:
    """Rounds a registry entry asks for (`self_critique = N` in models.toml), 0 if none."""
    value = (getattr(entry, "extra", None) or {}).get(REGISTRY_FIELD, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ROUNDS:
        raise InvalidRequestError(f"{entry.name}.{REGISTRY_FIELD} must be an integer 0..{MAX_ROUNDS}",
                                  field=REGISTRY_FIELD)
    return value


def clean_revision(text: str) -> str:
    """Drop preambles such as "Sure, here is the revised answer:" and wrapping quotes."""
    text = text.strip()
    for _ in range(2):
        text = _PREAMBLE.sub("", text, count=1).strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def fewshot_turns(k: int) -> list[Message]:
    from candor.cai.fewshot import CRITIQUE_EXAMPLES

    turns: list[Message] = []
    for ex in CRITIQUE_EXAMPLES[:max(0, k)]:
        turns += [Message("user", ex.prompt), Message("assistant", ex.answer),
                  Message("user", ex.critique_request), Message("assistant", ex.critique),
                  Message("user", ex.revision_request), Message("assistant", ex.revision)]
    return turns


async def generate(model: LoadedModel, messages: Sequence[Message], system: str | None,
                   params: ChatParams) -> tuple[str, Finish]:
    text, finish = await collect(stream_chat(model, messages, system, params))
    return text.strip(), finish


async def critique_and_revise(model: LoadedModel, conversation: Sequence[Message], answer: str,
                              principles: Sequence[Principle], params: ChatParams, system: str | None = None,
                              settings: CritiqueSettings = CritiqueSettings(),
                              result: CritiqueResult | None = None) -> CritiqueResult:
    """One critique and one revision per principle, each round revising the last answer."""
    result = result or CritiqueResult(draft=answer)
    shots = fewshot_turns(settings.fewshot)
    temperature = params.temperature if settings.temperature is None else settings.temperature
    current = answer
    for n, principle in enumerate(principles, start=1):
        seed = None if params.seed is None else params.seed + 2 * n
        base = shots + list(conversation) + [Message("assistant", current or "(no answer)")]
        ask = base + [Message("user", principle.critique)]
        c_params = ChatParams(max_tokens=min(settings.critique_max_tokens, params.max_tokens),
                              temperature=temperature, top_p=params.top_p, top_k=params.top_k, seed=seed)
        critique, fin = await generate(model, ask, system, c_params)
        result.input_tokens += fin.usage.input_tokens
        result.output_tokens += fin.usage.output_tokens
        revise = ask + [Message("assistant", critique or "Nothing to add."), Message("user", principle.revision)]
        r_params = ChatParams(max_tokens=params.max_tokens,
                              temperature=temperature, top_p=params.top_p, top_k=params.top_k,
                              seed=None if seed is None else seed + 1)
        raw, fin = await generate(model, revise, system, r_params)
        result.input_tokens += fin.usage.input_tokens
        result.output_tokens += fin.usage.output_tokens
        revision = clean_revision(raw) or current  # an empty revision keeps the answer it revised
        result.stop_reason = fin.stop_reason if revision is not current else result.stop_reason
        result.steps.append(CritiqueStep(n, principle.id, principle.critique, critique, principle.revision, revision))
        current = revision
    return result


async def self_critique(model: LoadedModel, messages: Iterable[Message | Mapping[str, str]], system: str | None,
                        params: ChatParams, settings: CritiqueSettings,
                        constitution: Constitution | None = None) -> CritiqueResult:
    """Inference-time self-critique: draft, then `settings.rounds` critique/revision rounds under
    principles drawn with `random.Random(settings.seed)`. Returns the final text plus the draft
    and the critiques, for the store and the chat page."""
    constitution = constitution or load_constitution()
    msgs = as_messages(messages)
    draft, fin = await generate(model, msgs, system, params)
    if msgs and msgs[-1].role == "assistant":  # a prefill: the draft continues it
        draft, msgs = (msgs[-1].content + draft).strip(), msgs[:-1]
    result = CritiqueResult(draft=draft, input_tokens=fin.usage.input_tokens, output_tokens=fin.usage.output_tokens,
                            stop_reason=fin.stop_reason)
    rng = random.Random(settings.seed)
    principles = constitution.sample(rng, settings.rounds)
    return await critique_and_revise(model, msgs, draft, principles, params, system, settings, result)
