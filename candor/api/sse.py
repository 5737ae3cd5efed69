"""Server-sent event framing: every Anthropic frame has an `event:` line and a JSON `type`."""

from __future__ import annotations

import json
from typing import Any


def frame(event: str, data: dict[str, Any]) -> bytes:
    payload = {"type": event, **data} if "type" not in data else data
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def data_only(data: dict[str, Any] | str) -> bytes:
    """OpenAI framing: `data:` lines only, ending with `data: [DONE]`."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
