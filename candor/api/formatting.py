"""Formatted-output requests on the APIs, mapped onto `candor.formats`.

Anthropic: `output_config.format = {"type": "json_schema", "schema": {...}}` (the official field),
or the Candor extension `candor = {"format": "json"|"xml"|"yaml"|"markdown", "schema": {...}}`.
OpenAI: `response_format` (`json_object` or `json_schema`), or the same `candor` extension.
The grammar constrains decoding; the finished text is parsed by a real parser before it is
returned. An answer cut short by max_tokens is returned as it is (its stop reason says so),
without a parsed value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from candor.engine.base import Finish
from candor.errors import InvalidRequestError

FORMATS = ("json", "xml", "yaml", "markdown")


@dataclass(frozen=True)
class FormatSpec:
    fmt: str
    schema: dict[str, Any] | None
    grammar: str
    options: tuple[tuple[str, Any], ...] = ()

    def check(self, text: str, finish: Finish) -> Any:
        """The parsed value as JSON data, or None when generation stopped before the output
        could be complete (max_tokens, or a caller's stop sequence); the stop reason says so.
        A finished answer that does not parse is a FormatError (500): it means a grammar bug."""
        from candor import formats

        if finish.stop_reason in ("max_tokens", "stop_sequence"):
            return None
        value = formats.validate(self.fmt, text, self.schema, **dict(self.options))
        return formats.to_jsonable(self.fmt, value)


def make_spec(fmt: str, schema: dict[str, Any] | None, field: str, options: dict[str, Any] | None = None) -> FormatSpec:
    from candor import formats

    if fmt not in FORMATS:
        raise InvalidRequestError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}", field=field)
    if schema is not None:
        if fmt != "json":
            raise InvalidRequestError("a schema is only supported with the json format", field=field)
        if not isinstance(schema, dict):
            raise InvalidRequestError("schema must be a JSON object", field=field)
        formats.check_schema(schema, field=field)
    options = dict(options or {})
    try:
        grammar = formats.grammar_for(fmt, schema, **options)
    except InvalidRequestError as exc:
        if exc.field in (None, "schema", "format"):
            raise
        message = exc.message.removeprefix(f"{exc.field}: ")
        raise InvalidRequestError(message, field=f"candor.{exc.field}") from None
    return FormatSpec(fmt, schema, grammar, tuple(sorted(options.items(), key=lambda kv: kv[0])))


def _from_candor(ext: dict[str, Any] | None) -> FormatSpec | None:
    if not ext or not ext.get("format"):
        return None
    options = {k: v for k, v in ext.items() if k not in ("format", "schema", "self_critique")}
    return make_spec(ext["format"], ext.get("schema"), "candor.format", options)


def format_spec_from_anthropic(output_config: dict[str, Any] | None,
                               ext: dict[str, Any] | None) -> FormatSpec | None:
    fmt = (output_config or {}).get("format")
    if fmt:
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            raise InvalidRequestError("only {'type': 'json_schema', 'schema': {...}} is supported",
                                      field="output_config.format")
        return make_spec("json", fmt.get("schema"), "output_config.format.schema")
    return _from_candor(ext)


def format_spec_from_openai(response_format: dict[str, Any] | None,
                            ext: dict[str, Any] | None) -> FormatSpec | None:
    if response_format:
        kind = response_format.get("type")
        if kind == "json_object":
            return make_spec("json", None, "response_format")
        if kind == "json_schema":
            spec = response_format.get("json_schema") or {}
            return make_spec("json", spec.get("schema"), "response_format.json_schema.schema")
        if kind not in (None, "text"):
            raise InvalidRequestError(f"unsupported response_format type {kind!r}", field="response_format.type")
    return _from_candor(ext)
