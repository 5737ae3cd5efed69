"""The shared answer path's stream framing: a stream that breaks after it started ends with the
error body the error handler builds (request id included), and metrics see the end once."""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from candor.api.answer import streamed
from candor.api.context import context_of
from candor.api.sse import data_only, frame
from candor.errors import InvalidRequestError


class Ends:
    def __init__(self):
        self.seen = []

    def finished(self, request, gen):
        self.seen.append(gen)


def app_with(error_frame, path: str) -> tuple[TestClient, Ends]:
    app = FastAPI()
    app.state.metrics = Ends()

    async def frames():
        yield frame("message_start", {"message": {}})
        raise InvalidRequestError("the answer broke", field="max_tokens")

    @app.post(path)
    async def route(request: Request):
        request.app.state.ids = context_of(request).request_id
        return streamed(request, "the generation", frames(), error_frame)

    return TestClient(app), app.state.metrics


def test_a_broken_anthropic_stream_ends_with_the_handlers_error_body():
    client, ends = app_with(lambda body: frame("error", body), "/v1/messages")
    text = client.post("/v1/messages").text
    last = json.loads(text.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert last == {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: the answer broke"},
                    "request_id": client.app.state.ids}
    assert ends.seen == ["the generation"]


def test_a_broken_openai_stream_ends_with_the_openai_error_body():
    client, ends = app_with(data_only, "/v1/chat/completions")
    last = json.loads(client.post("/v1/chat/completions").text.strip().split("\n\n")[-1][len("data: "):])
    assert last == {"error": {"message": "max_tokens: the answer broke", "type": "invalid_request_error", "param": "max_tokens",
                              "code": "invalid_request_error"}}
    assert ends.seen == ["the generation"]
