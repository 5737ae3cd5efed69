"""Starting a generation for an API request or a chat-page answer, shared by every endpoint.

The first event is read before the HTTP response starts, so queueing, context and validation
errors still get their proper status code (400, 529…) even for streaming requests; after that,
the stream is handed to the endpoint's framing. Timing for metrics is kept here too.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from candor.chat.render import Message
from candor.chat.service import ChatParams, build_request, stream_chat
from candor.engine.base import Event, Finish, TextDelta, Usage
from candor.engine.hub import EngineHub, LoadedModel
from candor.moderation.service import caller_of
from candor.registry import ModelEntry


@dataclass
class Generation:
    model: LoadedModel
    input_tokens: int
    started: float
    _first: Event | None
    _events: AsyncGenerator[Event, None]
    first_token_at: float | None = None
    finish: Finish | None = None
    text_parts: list[str] = field(default_factory=list)
    critique: Any = None  # candor.cai.critique.CritiqueResult of a self-critiqued answer
    critique_settings: Any = None

    async def events(self) -> AsyncGenerator[Event, None]:
        """All events, the primed first one included; closing this cancels generation."""
        try:
            if self._first is not None:
                first, self._first = self._first, None
                yield self._note(first)
            async for event in self._events:
                yield self._note(event)
        finally:
            await self._events.aclose()

    async def collect(self) -> tuple[str, Finish]:
        async for _ in self.events():
            pass
        assert self.finish is not None
        return "".join(self.text_parts), self.finish

    def _note(self, event: Event) -> Event:
        if isinstance(event, TextDelta):
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self.text_parts.append(event.text)
        elif isinstance(event, Finish):
            self.finish = event
        return event

    @property
    def ttft(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started


class Gate(Protocol):
    """Access checks around a generation: `allow_model` before the model is loaded, `admit` once
    the prompt's size is known (rate and spend limits), before it takes a place in the queue."""

    def allow_model(self, entry: ModelEntry) -> None: ...

    async def admit(self, entry: ModelEntry, input_tokens: int) -> None: ...

    def charge_input(self, input_tokens: int) -> None:
        """The input tokens actually used, when more than admitted (self-critique's extra calls)."""


async def _replay(text: str, finish: Finish) -> AsyncGenerator[Event, None]:
    if text:
        yield TextDelta(text)
    yield finish


@dataclass
class Admitted:
    """A request that passed validation and admission (rate and spend limits) and may now take
    a place in the model's queue. Surfaces that must store something between the two steps
    (the chat page saves the question only once it is admitted) call `admit_generation` and
    `begin_generation` separately; the API endpoints call `start_generation`."""

    model: LoadedModel
    messages: list[Message | Mapping[str, str]]
    system: str | None
    params: ChatParams
    input_tokens: int
    gate: Gate | None = None
    critique: Any = None
    moderator: Any = None  # candor.moderation.service.Moderator, from the hub (None: moderation off)


async def admit_generation(hub: EngineHub, model_name: str, messages: Iterable[Message | Mapping[str, str]],
                           system: str | None, params: ChatParams, gate: Gate | None = None,
                           critique: Any = None) -> Admitted:
    """Resolve the model, validate, render and count the prompt, and admit it through `gate`."""
    if gate is not None:
        gate.allow_model(hub.registry.get(model_name))
    model = await hub.get(model_name)
    params.validate(model.entry)
    messages = list(messages)
    request, _ = build_request(model, messages, system, params)  # validates before queueing
    input_tokens = await model.engine.count_tokens(request.prompt)
    if gate is not None:
        await gate.admit(model.entry, input_tokens)
    return Admitted(model, messages, system, params, input_tokens, gate, critique, getattr(hub, "moderator", None))


async def begin_generation(admitted: Admitted) -> Generation:
    """Start an admitted answer. With `critique` (candor.cai.critique.CritiqueSettings) the draft
    is critiqued and revised first and the generation replays the final revision; its usage
    counts every call made, and `Generation.critique` holds the draft and rounds for the store."""
    model, messages, system, params, critique = (admitted.model, admitted.messages, admitted.system,
                                                 admitted.params, admitted.critique)
    started = time.perf_counter()
    moderator = admitted.moderator
    caller = caller_of(admitted.gate)
    if moderator is not None:  # a blocked request never reaches the engine
        decision = await moderator.check_input(messages, caller, model.name)
        if decision is not None and decision.action == "block":
            refusal = Finish("refusal", Usage(admitted.input_tokens, 0))
            return Generation(model=model, input_tokens=admitted.input_tokens, started=started, _first=None,
                              _events=_replay(moderator.policy.message(decision), refusal))
    if critique is not None:
        from candor.cai.critique import self_critique

        result = await self_critique(model, messages, system, params, critique)
        if admitted.gate is not None:
            admitted.gate.charge_input(result.input_tokens)
        finish = Finish(result.stop_reason, Usage(result.input_tokens, result.output_tokens))  # type: ignore[arg-type]
        gen = Generation(model=model, input_tokens=result.input_tokens, started=started, _first=None,
                         _events=_replay(result.final, finish), critique=result, critique_settings=critique)
        return _moderate_output(gen, admitted, caller)
    events = stream_chat(model, messages, system, params)
    try:
        first = await events.__anext__()
    except BaseException:
        await events.aclose()
        raise
    gen = Generation(model=model, input_tokens=admitted.input_tokens, started=started, _first=first, _events=events)
    if isinstance(first, TextDelta):
        gen.first_token_at = time.perf_counter()
    return _moderate_output(gen, admitted, caller)


def _moderate_output(gen: Generation, admitted: Admitted, caller: Any) -> Generation:
    """Route the answer's events through the moderator's output check (when it is on) and its
    personal-data redaction (when the deployment asks for it)."""
    moderator = admitted.moderator
    if moderator is None:
        return gen

    async def chain(first: Event | None, rest: AsyncGenerator[Event, None]) -> AsyncGenerator[Event, None]:
        try:
            if first is not None:
                yield first
            async for event in rest:
                yield event
        finally:
            await rest.aclose()

    first, gen._first = gen._first, None
    events = chain(first, gen._events)
    if moderator.output_mode(caller) != "off":
        events = moderator.watch(events, admitted.messages, caller, gen.model.name,
                                 gen.model.engine.count_tokens, admitted.input_tokens)
    gen._events = moderator.redact(events)
    return gen


async def start_generation(hub: EngineHub, model_name: str, messages: Iterable[Message | Mapping[str, str]],
                           system: str | None, params: ChatParams, gate: Gate | None = None,
                           critique: Any = None) -> Generation:
    """Admit and start an answer in one step (see `admit_generation` and `begin_generation`)."""
    return await begin_generation(await admit_generation(hub, model_name, messages, system, params, gate, critique))
