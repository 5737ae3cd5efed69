"""Formatted output through the APIs: the SDKs' own structured-output helpers (`parse` with a
pydantic model) and the `candor` extension field, against a real `candor serve` process."""

from __future__ import annotations

import json
from typing import Literal

import pytest
import yaml
from pydantic import BaseModel, Field
from test_api import HTTP, KEY, running_server

GREEDY = {"temperature": 0}
PROMPT = [{"role": "user", "content": "Describe the novel Emma as JSON."}]


class Book(BaseModel):
    title: str = Field(max_length=60)
    year: int
    genre: Literal["fiction", "science", "history"]


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


def test_openai_parse_with_pydantic_model(oai):
    result = oai.chat.completions.parse(model="candor-instant", messages=PROMPT, response_format=Book,
                                        temperature=0, max_tokens=120)
    choice = result.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, Book)
    assert choice.message.parsed == Book.model_validate_json(choice.message.content)


def test_openai_json_schema_streamed(oai):
    schema = {**Book.model_json_schema(), "additionalProperties": False}
    stream = oai.chat.completions.create(model="candor-instant", messages=PROMPT, stream=True, max_tokens=120,
                                         temperature=0, response_format={
                                             "type": "json_schema", "json_schema": {"name": "Book", "schema": schema}})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "stop"
    Book.model_validate_json(text)


def test_anthropic_parse_with_pydantic_model(client):
    message = client.messages.parse(model="candor-instant", max_tokens=120, output_format=Book,
                                    messages=PROMPT, extra_body=GREEDY)
    assert message.stop_reason == "end_turn"
    assert isinstance(message.parsed_output, Book)
    assert message.parsed_output == Book.model_validate_json(message.content[0].text)


def test_candor_extension_returns_the_parsed_value(client):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "legs": {"type": "integer", "minimum": 0, "maximum": 8}},
              "required": ["name", "legs"], "additionalProperties": False}
    message = client.messages.create(model="candor-instant", max_tokens=80, messages=[
        {"role": "user", "content": "Describe a cat as JSON."}],
        extra_body={**GREEDY, "candor": {"format": "json", "schema": schema}})
    assert message.stop_reason == "end_turn"
    assert message.model_extra["candor"]["parsed"] == json.loads(message.content[0].text)
    assert 0 <= message.model_extra["candor"]["parsed"]["legs"] <= 8


def test_candor_extension_yaml_streamed(client):
    with client.messages.stream(model="candor-instant", max_tokens=120, messages=[
            {"role": "user", "content": "List three fruits in YAML."}],
            extra_body={**GREEDY, "candor": {"format": "yaml", "max_items": 3, "max_depth": 1}}) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"  # greedy: this prompt finishes well inside max_tokens
    value = yaml.safe_load(text)
    assert isinstance(value, (dict, list)) and 1 <= len(value) <= 3


def test_cut_output_says_so_and_has_no_parsed_value(client):
    message = client.messages.create(model="candor-instant", max_tokens=3, messages=PROMPT,
                                     extra_body={**GREEDY, "candor": {"format": "json"}})
    assert message.stop_reason == "max_tokens" and "candor" not in (message.model_extra or {})


@pytest.mark.parametrize("extra, field, words", [
    ({"output_config": {"format": {"type": "regex", "pattern": "a+"}}}, "output_config.format", "json_schema"),
    ({"output_config": {"format": {"type": "json_schema", "schema": {"type": "string", "pattern": "^a"}}}},
     "output_config.format.schema", "pattern"),
    ({"candor": {"format": "toml"}}, "candor.format", "json, xml, yaml, markdown"),
    ({"candor": {"format": "xml", "colour": "red"}}, "candor.colour", "unknown option"),
    ({"candor": {"format": "yaml", "schema": {"type": "object"}}}, "candor.format", "only supported with the json"),
    ({"candor": {"format": "json", "max_depth": 0}}, "candor.max_depth", ""),
])
def test_bad_format_requests_name_the_field(server, extra, field, words):
    response = HTTP.post(f"{server}/v1/messages", headers={"x-api-key": KEY}, json={
        "model": "candor-instant", "max_tokens": 10, "messages": PROMPT, **extra})
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert message.startswith(f"{field}:") and words in message, message


def test_openai_bad_response_format(server):
    response = HTTP.post(f"{server}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, json={
        "model": "candor-instant", "messages": PROMPT, "response_format": {"type": "grammar"}})
    assert response.status_code == 400 and "response_format.type" in response.json()["error"]["message"]
