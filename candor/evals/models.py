"""The model under evaluation, behind one small interface whichever way it is reached.

    model = await open_model("candor-instant")                         # in process, via EngineHub
    model = await open_model("candor-instant+hhh")                     # same weights, HHH system prompt
    model = await open_model("claude-2.1", endpoint=URL, api="anthropic", api_key=K)  # any Messages API
    model = await open_model("my-model", endpoint=URL, api="openai", api_key=K)       # vLLM, OpenAI, …

Tasks call `generate` (a conversation in, the answer text out), `logprobs` (log-probability of each
candidate's first token after the prompt: how a multiple-choice letter is read) and
`count_tokens`. A final assistant message is a prefill: the model continues it, and the returned
text includes it. The OpenAI chat API has no prefill, so there the prefill is dropped and the text
is the model's own answer; tasks parse answers so that both read the same.

In process, prompts are rendered by the one chat renderer (`candor.chat`), exactly as the API
server would render them. Over an OpenAI endpoint, log-probabilities come from `/v1/completions`
with `logprobs` (vLLM and llama.cpp's servers have it) on the Human/Assistant-rendered prompt;
an endpoint without it makes log-probability tasks fail with a message saying so.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from candor.config import env
from candor.errors import CandorError, InvalidRequestError

# Named system prompts for "NAME+PRESET" model specs: prompting variants of the same weights.
SYSTEM_PRESETS = {
    "hhh": ("The following is a conversation between a human and an AI assistant. The assistant is helpful, "
            "harmless and honest: it answers questions accurately and concisely, shows its reasoning when a "
            "problem needs it, says so when it does not know, and politely declines requests that could cause "
            "harm, explaining why, while still helping with anything safe."),
}


def loop_guard(entry) -> dict[str, Any]:
    """The entry's loop guard as a run records it ({} when off: runs from before it stay resumable)."""
    from candor.engine.hub import repetition_guard

    guard = repetition_guard(entry)
    return {"loop_guard": dataclasses.asdict(guard)} if guard.active else {}


class LogprobsUnavailable(CandorError):
    """The model cannot report log-probabilities, and the task needs them."""


@dataclass(frozen=True)
class Prompt:
    """A conversation: user/assistant turns (a final assistant turn is a prefill) and a system text."""

    messages: tuple[dict[str, str], ...]
    system: str | None = None

    @staticmethod
    def user(text: str, prefill: str = "", system: str | None = None) -> Prompt:
        turns = [{"role": "user", "content": text}]
        if prefill:
            turns.append({"role": "assistant", "content": prefill})
        return Prompt(tuple(turns), system)

    @property
    def prefill(self) -> str:
        return self.messages[-1]["content"] if self.messages[-1]["role"] == "assistant" else ""

    def text(self) -> str:
        """A readable transcript, stored with each item."""
        parts = [f"[system] {self.system}"] if self.system else []
        parts += [f"[{m['role']}] {m['content']}" for m in self.messages]
        return "\n\n".join(parts)


@dataclass
class Completion:
    text: str  # the answer, prefill included when the model continued one
    stop_reason: str
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0


class EvalModel(abc.ABC):
    """What tasks see of a model."""

    label: str = ""
    context_window: int | None = None
    supports_grammar = False
    supports_prefill = True  # False: a final assistant turn is dropped (the OpenAI chat API)

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """The resolved model settings, written into each run's config."""

    @abc.abstractmethod
    async def generate(self, prompt: Prompt, *, max_tokens: int, temperature: float = 0.0,
                       stop: Sequence[str] = (), seed: int | None = None, grammar: str | None = None) -> Completion: ...

    async def logprobs(self, prompt: Prompt, candidates: Sequence[str]) -> dict[str, float]:
        raise LogprobsUnavailable(f"{self.label} cannot report log-probabilities")

    async def has_logprobs(self) -> bool:
        """Probe once whether `logprobs` works here."""
        if not hasattr(self, "_has_logprobs"):
            try:
                await self.logprobs(Prompt.user("Say A.", "Answer:"), [" A", " B"])
                self._has_logprobs = True
            except LogprobsUnavailable:
                self._has_logprobs = False
        return self._has_logprobs

    async def count_tokens(self, prompt: Prompt) -> int | None:
        return None

    async def close(self) -> None:
        pass


def with_system(preset: str | None, system: str | None) -> str | None:
    parts = [p for p in (preset, system) if p]
    return "\n\n".join(parts) or None


class InProcessModel(EvalModel):
    """A registry model (or any Engine) run in this process through the engine interface."""

    supports_grammar = True

    def __init__(self, loaded, label: str, system_preset: str | None = None, preset_name: str = ""):
        self.loaded = loaded  # candor.engine.hub.LoadedModel
        self.label = label
        self.system_preset = system_preset
        self.preset_name = preset_name
        self.context_window = loaded.engine.context_window

    def describe(self) -> dict[str, Any]:
        entry = self.loaded.entry
        return {"kind": "in-process", "label": self.label, "model": entry.name, "weights": entry.weights,
                "adapter": adapter_identity(entry), "prompt_format": entry.prompt_format,
                "context_window": self.context_window, "system_preset": self.preset_name or None,
                "system_preset_text": self.system_preset, **loop_guard(entry)}

    def _request(self, prompt: Prompt, max_tokens: int, temperature: float, stop: Sequence[str],
                 seed: int | None, grammar: str | None):
        from candor.chat.service import ChatParams, build_request

        params = ChatParams(max_tokens=max_tokens, temperature=temperature, seed=seed,
                            stop_sequences=tuple(stop), grammar=grammar)
        return build_request(self.loaded, prompt.messages, with_system(self.system_preset, prompt.system), params)

    async def generate(self, prompt, *, max_tokens, temperature=0.0, stop=(), seed=None, grammar=None):
        from candor.engine.base import collect

        request, rendered = self._request(prompt, max_tokens, temperature, stop, seed, grammar)
        started = time.perf_counter()
        text, finish = await collect(self.loaded.engine.generate(request))
        if not rendered.prefill:
            text = text.lstrip()  # the space the format leaves after "Assistant:"
        return Completion(rendered.prefill + text, finish.stop_reason, finish.usage.input_tokens,
                          finish.usage.output_tokens, time.perf_counter() - started)

    async def logprobs(self, prompt, candidates):
        request, _ = self._request(prompt, 1, 0.0, (), None, None)
        try:
            return await self.loaded.engine.next_token_logprobs(request.prompt, list(candidates))
        except NotImplementedError as exc:
            raise LogprobsUnavailable(f"{self.label}: {exc}") from None

    async def count_tokens(self, prompt):
        request, _ = self._request(prompt, 1, 0.0, (), None, None)
        return await self.loaded.engine.count_tokens(request.prompt)

    async def close(self):
        pass  # the engine belongs to the hub, which other model specs may share


@dataclass
class EndpointModel(EvalModel):
    """A model behind an Anthropic- or OpenAI-compatible HTTP API, through the official SDKs."""

    model: str
    url: str
    api: str = "anthropic"  # "anthropic" or "openai"
    api_key: str = ""
    label: str = ""
    system_preset: str | None = None
    preset_name: str = ""
    context_window: int | None = None
    timeout_s: float = 600.0
    _client: Any = field(default=None, repr=False)

    def __post_init__(self):
        self.supports_prefill = self.api == "anthropic"
        if self.api not in ("anthropic", "openai"):
            raise InvalidRequestError(f"must be 'anthropic' or 'openai', got {self.api!r}", field="api")
        self.label = self.label or self.model
        key = self.api_key or "none"
        if self.api == "anthropic":
            import anthropic

            self._client = anthropic.AsyncAnthropic(base_url=self.url, api_key=key, max_retries=3,
                                                    timeout=self.timeout_s)
        else:
            import openai

            self._client = openai.AsyncOpenAI(base_url=self.url, api_key=key, max_retries=3, timeout=self.timeout_s)

    def describe(self):
        return {"kind": f"{self.api}-endpoint", "label": self.label, "model": self.model, "url": self.url,
                "context_window": self.context_window, "system_preset": self.preset_name or None,
                "system_preset_text": self.system_preset}

    async def generate(self, prompt, *, max_tokens, temperature=0.0, stop=(), seed=None, grammar=None):
        if grammar:
            raise InvalidRequestError(f"{self.label}: grammars need an in-process model", field="grammar")
        system = with_system(self.system_preset, prompt.system)
        started = time.perf_counter()
        if self.api == "anthropic":
            kwargs: dict[str, Any] = {"system": system} if system else {}
            if stop:
                kwargs["stop_sequences"] = list(stop)
            # Sampling settings go in the body: newer SDKs no longer take temperature as an argument.
            msg = await self._client.messages.create(model=self.model, max_tokens=max_tokens,
                                                     messages=list(prompt.messages),
                                                     extra_body={"temperature": temperature}, **kwargs)
            text = "".join(getattr(b, "text", "") for b in msg.content)
            return Completion(prompt.prefill + text, msg.stop_reason or "end_turn", msg.usage.input_tokens,
                              msg.usage.output_tokens, time.perf_counter() - started)
        turns = [m for m in prompt.messages] if not prompt.prefill else list(prompt.messages[:-1])
        messages = ([{"role": "system", "content": system}] if system else []) + turns
        kwargs = {"stop": list(stop)[:4]} if stop else {}
        if seed is not None:
            kwargs["seed"] = seed
        resp = await self._client.chat.completions.create(model=self.model, messages=messages, max_tokens=max_tokens,
                                                          temperature=temperature, **kwargs)
        choice = resp.choices[0]
        usage = resp.usage
        return Completion(choice.message.content or "", {"length": "max_tokens"}.get(choice.finish_reason, "end_turn"),
                          usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                          time.perf_counter() - started)

    async def logprobs(self, prompt, candidates):
        if self.api != "openai":
            raise LogprobsUnavailable(f"{self.label}: the Anthropic API reports no log-probabilities")
        import openai

        from candor.chat.render import render

        text = render(prompt.messages, with_system(self.system_preset, prompt.system)).text
        resp = None
        for top_n in (20, 5):  # vLLM allows 20 by default, OpenAI's own API at most 5
            try:
                resp = await self._client.completions.create(model=self.model, prompt=text, max_tokens=1,
                                                             temperature=0, logprobs=top_n)
                break
            except (openai.NotFoundError, openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                error = exc
        if resp is None:
            raise LogprobsUnavailable(f"{self.label}: {self.url} offers no /completions with logprobs "
                                      f"({type(error).__name__})") from None
        lp = resp.choices[0].logprobs
        top = (lp.top_logprobs or [{}])[0] if lp else {}
        if not top:
            raise LogprobsUnavailable(f"{self.label}: {self.url} returned no top_logprobs")
        return {c: max((v for t, v in top.items() if t == c or (t.strip() and t.strip() == c.strip())),
                       default=float("-inf")) for c in candidates}

    async def count_tokens(self, prompt):
        if self.api != "anthropic":
            return None
        system = with_system(self.system_preset, prompt.system)
        try:
            kwargs = {"system": system} if system else {}
            result = await self._client.messages.count_tokens(model=self.model, messages=list(prompt.messages),
                                                              **kwargs)
            return result.input_tokens
        except Exception:  # noqa: BLE001 - an endpoint without count_tokens falls back to estimates
            return None

    async def close(self):
        await self._client.close()


def split_spec(spec: str) -> tuple[str, str | None]:
    """"candor-instant+hhh" -> ("candor-instant", "hhh")."""
    name, _, preset = spec.partition("+")
    if preset and preset not in SYSTEM_PRESETS:
        raise InvalidRequestError(f"unknown system preset {preset!r} in {spec!r}; known: {', '.join(SYSTEM_PRESETS)}",
                                  field="model")
    return name, preset or None


async def open_model(spec: str, *, endpoint: str | None = None, api: str = "anthropic", api_key: str | None = None,
                     hub=None, context_window: int | None = None) -> EvalModel:
    """The model a `--model` spec names: a registry entry in process, or a model at `endpoint`."""
    name, preset = split_spec(spec)
    text = SYSTEM_PRESETS[preset] if preset else None
    if endpoint:
        key = api_key or env("CANDOR_EVAL_API_KEY") or os.environ.get(
            "ANTHROPIC_API_KEY" if api == "anthropic" else "OPENAI_API_KEY", "")
        return EndpointModel(name, endpoint, api, key, spec, text, preset or "", context_window)
    if hub is None:
        from candor.engine.hub import EngineHub
        from candor.registry import load_registry

        hub = EngineHub(load_registry())
    loaded = await hub.get(name)
    return InProcessModel(loaded, spec, text, preset or "")


def adapter_identity(entry) -> str | None:
    """An adapter as a run records it: file name and content hash, so the same adapter named by a
    relative or an absolute path (or from another checkout) resumes the same run."""
    if not entry.adapter:
        return None
    import hashlib

    path = entry.adapter_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"{path.name} sha256:{digest}"
