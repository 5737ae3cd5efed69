"""The engine interface every layer above talks to.

`generate` is an async stream of `TextDelta` events that always ends with one `Finish` event
(stop reason plus usage). Nothing above this module imports llama_cpp, httpx-to-engine code or
torch: the API, CLI, web page, evals and data generation all go through `Engine`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from candor.errors import InvalidRequestError

StopReason = Literal["end_turn", "stop_sequence", "max_tokens", "refusal"]  # refusal: moderation stopped it


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings in Anthropic's ranges (validated by `validate`)."""

    temperature: float = 1.0
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    # OpenAI's, -2..2: minus frequency_penalty times each token's count so far, minus presence_penalty
    # once a token has occurred (in the answer; unconstrained answers only)
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

    def validate(self) -> None:
        if not 0.0 <= self.temperature <= 1.0:
            raise InvalidRequestError(f"range: 0..1, got {self.temperature}", field="temperature")
        if self.top_p is not None and not 0.0 <= self.top_p <= 1.0:
            raise InvalidRequestError(f"range: 0..1, got {self.top_p}", field="top_p")
        if self.top_k is not None and self.top_k < 0:
            raise InvalidRequestError(f"must be >= 0, got {self.top_k}", field="top_k")
        for name in ("frequency_penalty", "presence_penalty"):
            value = getattr(self, name)
            if not -2.0 <= value <= 2.0:
                raise InvalidRequestError(f"range: -2..2, got {value}", field=name)

    @property
    def penalised(self) -> bool:
        return self.frequency_penalty != 0.0 or self.presence_penalty != 0.0


@dataclass(frozen=True)
class RepetitionGuard:
    """A model's guard against loops, as llama.cpp's samplers (applied before temperature and
    greedy choice, to the answer's own tokens, not the prompt's). SmolLM2-135M-Instruct decoded
    greedily repeats one sentence or list item to `max_tokens` in half of everyday requests; see
    the registry's candor-instant entry and the README.

    DRY ("don't repeat yourself") lowers the logit of a token that would extend a sequence already
    seen in the answer, by `dry_multiplier * dry_base ** (length - dry_allowed_length)`; its
    sequences restart at newlines, colons, quotes and asterisks, so list and table structure stay
    free. `repeat_penalty` divides the logits of tokens among the last `repeat_last_n` (1.0: off)."""

    dry_multiplier: float = 0.0  # 0: no DRY
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = 1024
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64

    @property
    def active(self) -> bool:
        return self.dry_multiplier > 0 or self.repeat_penalty != 1.0


DRY_BREAKERS = ("\n", ":", "\"", "*")  # llama.cpp's own defaults


@dataclass(frozen=True)
class GenerateRequest:
    """A fully rendered prompt plus limits: engines never see chat messages.

    `stop_sequences` are the caller's own (reported as `stop_sequence`); `end_sequences` come
    from the chat format (such as "\\n\\nHuman:") and end the turn (reported as `end_turn`).
    `grammar` is an optional GBNF grammar that constrains decoding.
    """

    prompt: str
    max_tokens: int
    sampling: SamplingParams = field(default_factory=SamplingParams)
    stop_sequences: tuple[str, ...] = ()
    end_sequences: tuple[str, ...] = ()
    grammar: str | None = None
    # The conversation as OpenAI-style {"role", "content"} dicts, for engines that apply the
    # model's chat template themselves (remote chat servers); others read only `prompt`.
    messages: tuple[dict[str, str], ...] | None = None

    def validate(self) -> None:
        if not self.prompt or not self.prompt.strip():
            raise InvalidRequestError("prompt is empty", field="prompt")
        if self.max_tokens < 1:
            raise InvalidRequestError(f"must be >= 1, got {self.max_tokens}", field="max_tokens")
        for i, stop in enumerate(self.stop_sequences):
            if not stop:
                raise InvalidRequestError("stop sequences must be non-empty", field=f"stop_sequences.{i}")
        self.sampling.validate()


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finish:
    stop_reason: StopReason
    usage: Usage
    stop_sequence: str | None = None


Event = TextDelta | Finish


@dataclass(frozen=True)
class Health:
    ok: bool
    model: str
    detail: str = ""
    queue_depth: int = 0
    busy: bool = False


class Engine(abc.ABC):
    """One loaded model. Implementations admit generations through a fair, bounded queue."""

    name: str

    @property
    @abc.abstractmethod
    def context_window(self) -> int: ...

    @abc.abstractmethod
    def generate(self, request: GenerateRequest) -> AsyncGenerator[Event, None]:
        """Stream text deltas, then one Finish. Closing the iterator early cancels generation."""

    @abc.abstractmethod
    async def count_tokens(self, text: str) -> int: ...

    @abc.abstractmethod
    async def health(self) -> Health: ...

    async def next_token_logprobs(self, prompt: str, candidates: Sequence[str]) -> dict[str, float]:
        """Log-probability that the model continues `prompt` with each candidate's first token:
        how evals read a multiple-choice answer letter and how AI feedback reads its soft label."""
        raise NotImplementedError(f"{type(self).__name__} cannot report log-probabilities")

    async def close(self) -> None:
        """Release the model's resources."""


async def collect(events: AsyncIterator[Event]) -> tuple[str, Finish]:
    """Drain a generation into (text, finish): the non-streaming form of `generate`."""
    parts: list[str] = []
    finish: Finish | None = None
    async for event in events:
        if isinstance(event, TextDelta):
            parts.append(event.text)
        else:
            finish = event
    if finish is None:  # pragma: no cover - engines always finish
        raise RuntimeError("engine ended without a Finish event")
    return "".join(parts), finish
