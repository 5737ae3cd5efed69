"""The chat generation path: messages in, engine events out.

The CLI, the API server and the web page all call `stream_chat`, so limits, rendering and the
treatment of the answer's first characters are the same whichever door a request came in by.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass, field

from candor.chat.model_format import chat_format
from candor.chat.render import Message, RenderedPrompt, as_messages
from candor.engine.base import Event, GenerateRequest, SamplingParams, TextDelta
from candor.engine.hub import LoadedModel
from candor.errors import InvalidRequestError
from candor.registry import ModelEntry


@dataclass(frozen=True)
class ChatParams:
    max_tokens: int
    temperature: float | None = None  # None: the model's registry default (default_temperature)
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop_sequences: tuple[str, ...] = field(default_factory=tuple)
    grammar: str | None = None
    frequency_penalty: float = 0.0  # OpenAI's Chat Completions fields (see SamplingParams)
    presence_penalty: float = 0.0

    def sampling(self, entry: ModelEntry) -> SamplingParams:
        return SamplingParams(temperature_for(entry, self.temperature), self.top_p, self.top_k, self.seed,
                              self.frequency_penalty, self.presence_penalty)

    def validate(self, entry: ModelEntry) -> None:
        """Check what can be checked before the model is loaded."""
        sampling = self.sampling(entry)
        sampling.validate()
        if sampling.penalised and self.grammar:
            field_name = "frequency_penalty" if self.frequency_penalty else "presence_penalty"
            raise InvalidRequestError("penalties cannot be combined with formatted output (response_format): "
                                      "a format's structure repeats by design", field=field_name)
        check_max_tokens(entry, self.max_tokens)
        for i, stop in enumerate(self.stop_sequences):
            if not stop:
                raise InvalidRequestError("stop sequences must be non-empty", field=f"stop_sequences.{i}")


def check_max_tokens(entry: ModelEntry, max_tokens: int) -> None:
    limit = entry.max_output_tokens
    if max_tokens < 1:
        raise InvalidRequestError(f"must be >= 1, got {max_tokens}", field="max_tokens")
    if max_tokens > limit:
        raise InvalidRequestError(
            f"{max_tokens} > {limit}, which is the maximum allowed number of output tokens for {entry.name}",
            field="max_tokens")


def temperature_for(entry: ModelEntry, requested: float | None) -> float:
    """The request's temperature, or the model's default when the request names none."""
    return entry.default_temperature if requested is None else requested


def render_for(model: LoadedModel, messages: Iterable[Message | Mapping[str, str]],
               system: str | None) -> RenderedPrompt:
    """The model's own format; without a system prompt, the registry's default one."""
    return chat_format(model).render(messages, system)


def build_request(model: LoadedModel, messages: Iterable[Message | Mapping[str, str]], system: str | None,
                  params: ChatParams) -> tuple[GenerateRequest, RenderedPrompt]:
    msgs = as_messages(messages)
    check_max_tokens(model.entry, params.max_tokens)
    rendered = render_for(model, msgs, system)
    system = chat_format(model).system_for(system)
    wire = ([{"role": "system", "content": system}] if system else []) + \
        [{"role": m.role, "content": m.content} for m in msgs]
    request = GenerateRequest(
        prompt=rendered.text,
        max_tokens=params.max_tokens,
        sampling=params.sampling(model.entry),
        stop_sequences=tuple(params.stop_sequences),
        end_sequences=rendered.end_sequences,
        grammar=_grammar_with_end(params.grammar, rendered),
        messages=tuple(wire),
    )
    request.validate()
    return request, rendered


def _grammar_with_end(grammar: str | None, rendered: RenderedPrompt) -> str | None:
    """A format grammar that also lets the answer end the way the prompt format ends a turn
    (plain-text end sequences only; a chat template ends with an end-of-generation token,
    which llama.cpp's grammar sampler already allows once the value is complete)."""
    if not grammar or not rendered.end_sequences:
        return grammar
    from candor.formats import allow_end

    return allow_end(grammar, rendered.end_sequences[0])


async def stream_chat(model: LoadedModel, messages: Iterable[Message | Mapping[str, str]],
                      system: str | None, params: ChatParams) -> AsyncGenerator[Event, None]:
    """Generate the assistant's answer. Without a prefill, the space the format leaves after
    "Assistant:" is dropped from the start of the answer."""
    request, rendered = build_request(model, messages, system, params)
    strip = not rendered.prefill
    events = model.engine.generate(request)
    try:
        async for event in events:
            if strip and isinstance(event, TextDelta):
                text = event.text.lstrip()
                if not text:
                    continue
                strip = False
                event = TextDelta(text)
            yield event
    finally:
        await events.aclose()
