"""A remote engine: the same interface over any OpenAI-compatible server (vLLM, llama.cpp's server).

`completions` mode sends Candor's rendered prompt to `/v1/completions`, so a base model on a GPU
server sees exactly what the embedded engine would. `chat` mode sends the conversation to
`/v1/chat/completions` and lets the server apply the model's chat template. The caller's stop
sequences are matched here, so the stop reason is reported the same way as by the embedded engine.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from candor.engine.base import Engine, Event, Finish, GenerateRequest, Health, TextDelta, Usage
from candor.engine.queue import GenerationQueue
from candor.engine.stops import StopMatcher
from candor.errors import ContextWindowExceededError, EngineError, InvalidRequestError


@dataclass(frozen=True)
class RemoteConfig:
    base_url: str  # e.g. http://gpu-host:8000/v1
    model: str  # the name the remote server knows the model by
    api_key: str = ""
    api: str = "chat"  # "completions" or "chat"
    context_window: int = 8192
    timeout_s: float = 600.0
    max_concurrent: int = 64  # remote servers batch; this only bounds what one process sends
    max_waiting: int = 256


class RemoteEngine(Engine):
    def __init__(self, name: str, config: RemoteConfig):
        self.name = name
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(base_url=config.base_url.rstrip("/") + "/", headers=headers,
                                         timeout=httpx.Timeout(config.timeout_s, connect=10.0))
        self._queue = GenerationQueue(name, config.max_waiting)
        self._tokenize_style: str | None = None

    @property
    def context_window(self) -> int:
        return self.config.context_window

    @property
    def queue(self) -> GenerationQueue:
        return self._queue

    async def close(self) -> None:
        await self._client.aclose()

    async def health(self) -> Health:
        try:
            response = await self._client.get("models")
            ok = response.status_code == 200
            detail = f"{self.config.base_url}: HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, detail = False, f"{self.config.base_url}: {exc}"
        return Health(ok=ok, model=self.name, detail=detail, queue_depth=self._queue.depth, busy=self._queue.busy)

    # -- tokens ------------------------------------------------------------------------------
    def _root_url(self) -> str:
        url = self.config.base_url.rstrip("/")
        return url.removesuffix("/v1")

    async def count_tokens(self, text: str) -> int:
        """Ask the server: vLLM and llama.cpp's server answer /tokenize, llama-cpp-python's
        server /extras/tokenize. The style that works is remembered."""
        styles = [self._tokenize_style] if self._tokenize_style else ["vllm", "llama.cpp", "llama-cpp-python"]
        for style in styles:
            path, body = {
                "vllm": ("/tokenize", {"model": self.config.model, "prompt": text}),
                "llama.cpp": ("/tokenize", {"content": text, "add_special": True}),
                "llama-cpp-python": ("/extras/tokenize", {"input": text}),
            }[style]
            try:
                response = await self._client.post(self._root_url() + path, json=body)
            except httpx.HTTPError as exc:
                raise EngineError(f"{self.name}: could not reach {self.config.base_url}: {exc}") from exc
            if response.status_code == 200:
                data = response.json()
                tokens = data.get("count", None)
                if tokens is None:
                    tokens = len(data.get("tokens", []))
                self._tokenize_style = style
                return int(tokens)
        raise EngineError(f"{self.name}: the server at {self.config.base_url} offers no tokenize endpoint")

    async def next_token_logprobs(self, prompt: str, candidates: Sequence[str]) -> dict[str, float]:
        """Reads the top log-probabilities of one completion token (OpenAI `logprobs`, which vLLM
        and llama.cpp's servers support). A candidate outside the top list gets -inf."""
        body = {"model": self.config.model, "prompt": prompt, "max_tokens": 1, "temperature": 0,
                "logprobs": 20}
        try:
            response = await self._client.post("completions", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"{self.name}: could not reach {self.config.base_url}: {exc}") from exc
        if response.status_code != 200:
            self._raise_for(response, None)
        choice = response.json()["choices"][0]
        top = ((choice.get("logprobs") or {}).get("top_logprobs") or [{}])[0]
        return {c: max((v for t, v in top.items() if t == c or (t.strip() and t.strip() == c.strip())),
                       default=float("-inf")) for c in candidates}

    # -- generation --------------------------------------------------------------------------
    def _body(self, request: GenerateRequest) -> tuple[str, dict[str, Any]]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": request.max_tokens,
            "temperature": s.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if s.top_p is not None:
            body["top_p"] = s.top_p
        if s.top_k is not None:
            body["top_k"] = s.top_k  # vLLM and llama.cpp accept top_k as an extension
        if s.seed is not None:
            body["seed"] = s.seed
        if s.frequency_penalty:
            body["frequency_penalty"] = s.frequency_penalty
        if s.presence_penalty:
            body["presence_penalty"] = s.presence_penalty
        # Only the format's end-of-turn sequences go to the server: OpenAI-style servers do not
        # say which stop matched, so the caller's own are matched here (and the stream closed).
        if request.end_sequences:
            body["stop"] = list(request.end_sequences)[:4]
        if request.grammar:
            body["grammar"] = request.grammar  # llama.cpp's extension; vLLM takes guided_grammar
            body["guided_grammar"] = request.grammar
        if self.config.api == "chat":
            if request.messages is None:
                raise InvalidRequestError(f"{self.name} is a chat model: send messages", field="messages")
            body["messages"] = list(request.messages)
            return "chat/completions", body
        body["prompt"] = request.prompt
        return "completions", body

    async def generate(self, request: GenerateRequest) -> AsyncGenerator[Event, None]:
        request.validate()
        path, body = self._body(request)
        if path == "completions":
            prompt_tokens = await self.count_tokens(request.prompt)
            if prompt_tokens + request.max_tokens > self.context_window:
                raise ContextWindowExceededError(prompt_tokens=prompt_tokens, max_tokens=request.max_tokens,
                                                 context_window=self.context_window, model=self.name)
        async with self._queue.slot():
            matcher = StopMatcher(request.stop_sequences, request.end_sequences)
            finish_reason, usage, chunks = None, None, 0
            try:
                async with self._client.stream("POST", path, json=body) as response:
                    if response.status_code != 200:
                        await response.aread()
                        self._raise_for(response, request)
                    async for data in _sse_data(response):
                        if data.get("usage"):
                            usage = data["usage"]
                        for choice in data.get("choices") or []:
                            piece = (choice.get("delta") or {}).get("content") if path.startswith("chat") \
                                else choice.get("text")
                            if piece:
                                chunks += 1
                                out = matcher.feed(piece)
                                if out:
                                    yield TextDelta(out)
                            if choice.get("finish_reason"):
                                finish_reason = choice["finish_reason"]
                        if matcher.hit is not None:
                            break
            except httpx.HTTPError as exc:
                raise EngineError(f"{self.name}: request to {self.config.base_url} failed: {exc}") from exc
            tail = matcher.flush()
            if tail:
                yield TextDelta(tail)
            input_tokens = int(usage["prompt_tokens"]) if usage else await self.count_tokens(request.prompt)
            output_tokens = int(usage["completion_tokens"]) if usage else chunks
            yield self._finish(matcher, finish_reason, Usage(input_tokens, output_tokens))

    @staticmethod
    def _finish(matcher: StopMatcher, finish_reason: str | None, usage: Usage) -> Finish:
        hit = matcher.hit
        if hit is not None:
            return Finish("end_turn", usage) if hit.is_end_of_turn else \
                Finish("stop_sequence", usage, stop_sequence=hit.sequence)
        if finish_reason == "length":
            return Finish("max_tokens", usage)
        return Finish("end_turn", usage)

    def _raise_for(self, response: httpx.Response, request: GenerateRequest | None) -> None:
        try:
            detail = response.json()
            message = (detail.get("error") or {}).get("message") if isinstance(detail.get("error"), dict) \
                else detail.get("error") or detail.get("detail") or detail
        except ValueError:
            message = response.text
        text = str(message)
        if 400 <= response.status_code < 500:
            raise InvalidRequestError(f"{self.name} (remote) refused the request: {text}")
        raise EngineError(f"{self.name} (remote) answered HTTP {response.status_code}: {text}")


async def _sse_data(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if isinstance(data, dict) and "error" in data and "choices" not in data:
            raise EngineError(f"remote stream error: {data['error']}")
        yield data
