"""A generation-only engine for Anthropic-compatible endpoints (`POST /v1/messages`), so a
stronger remote model can write critiques and revisions for `candor cai revise`; the engine hub
builds it like every other engine.

Selected by a registry entry with `engine = "remote"` and the extra field
`remote_protocol = "anthropic"` (`base_url` up to and including `/v1`, `api_key_env`,
`remote_model`). Candor's own server speaks the same API, so one Candor can generate data for
another. The Messages API gives no log-probabilities, so such a model cannot be a feedback model.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx

from candor.engine.base import Engine, Event, Finish, GenerateRequest, Health, TextDelta, Usage
from candor.errors import EngineError, InvalidRequestError


class AnthropicEngine(Engine):
    def __init__(self, name: str, base_url: str, model: str, api_key: str = "", context_window: int = 100_000,
                 timeout_s: float = 600.0, transport: httpx.AsyncBaseTransport | None = None):
        self.name = name
        self.model = model
        self._window = context_window
        headers = {"x-api-key": api_key, "anthropic-version": "2023-06-01"}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/", headers=headers,
                                         timeout=httpx.Timeout(timeout_s, connect=10.0), transport=transport)

    @property
    def context_window(self) -> int:
        return self._window

    async def generate(self, request: GenerateRequest) -> AsyncGenerator[Event, None]:
        request.validate()
        if request.messages is None:
            raise InvalidRequestError(f"{self.name} is a chat model: send messages", field="messages")
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        body = {"model": self.model, "max_tokens": request.max_tokens,
                "messages": [m for m in request.messages if m["role"] != "system"],
                "temperature": request.sampling.temperature}
        if system:
            body["system"] = system
        if request.sampling.penalised:
            raise InvalidRequestError(f"{self.name} is served by an Anthropic-compatible API, which has no "
                                      "frequency or presence penalties", field="frequency_penalty")
        if request.sampling.top_p is not None:
            body["top_p"] = request.sampling.top_p
        if request.sampling.top_k is not None:
            body["top_k"] = request.sampling.top_k
        if request.stop_sequences:
            body["stop_sequences"] = list(request.stop_sequences)
        try:
            response = await self._client.post("messages", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"{self.name}: could not reach the Anthropic-compatible endpoint: {exc}") from exc
        if response.status_code != 200:
            raise EngineError(f"{self.name}: HTTP {response.status_code}: {response.text[:400]}")
        data = response.json()
        text = "".join(block.get("text", "") for block in data.get("content", []) if block.get("type") == "text")
        if text:
            yield TextDelta(text)
        usage = data.get("usage") or {}
        reason = data.get("stop_reason")
        usage_ = Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)))
        if reason == "stop_sequence":
            yield Finish("stop_sequence", usage_, stop_sequence=data.get("stop_sequence"))
        else:
            yield Finish("max_tokens" if reason == "max_tokens" else "end_turn", usage_)

    async def count_tokens(self, text: str) -> int:
        response = await self._client.post("messages/count_tokens", json={
            "model": self.model, "messages": [{"role": "user", "content": text}]})
        if response.status_code != 200:
            raise EngineError(f"{self.name}: count_tokens answered HTTP {response.status_code}")
        return int(response.json()["input_tokens"])

    async def health(self) -> Health:
        return Health(ok=True, model=self.name, detail=str(self._client.base_url))

    async def close(self) -> None:
        await self._client.aclose()
