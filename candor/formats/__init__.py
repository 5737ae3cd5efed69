"""Guaranteed-parseable formatted output: a grammar to constrain decoding, a parser to check it.

    grammar = grammar_for("json", schema)           # GBNF for GenerateRequest/ChatParams.grammar
    value = check_output("json", text, finish.stop_reason, schema)   # parsed, or a clear error

`grammar_for` is our own code (no converter from elsewhere), so what each grammar allows is
written down in its module: json_grammar and schema (JSON and JSON Schema), xml_format,
yaml_format, markdown_format. Grammars are pure functions of their arguments and cached.
`validate` parses with a real parser (json + jsonschema, defusedxml, yaml.safe_load,
markdown-it-py) so a grammar bug shows up as a FormatError rather than as bad output.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from candor.errors import InvalidRequestError
from candor.formats.errors import FormatError, IncompleteOutputError
from candor.formats.limits import DEFAULT_LIMITS, Limits, check_limit, limits_from
from candor.formats.schema import check_schema as _check_schema
from candor.formats.schema import pointer

FORMATS = ("json", "xml", "yaml", "markdown")
_SIZES = {"max_depth": 4, "max_items": 16, "max_string": 256}
OPTIONS: dict[str, dict[str, Any]] = {
    "json": dict(_SIZES),
    "xml": {"tags": None, "root": None, **_SIZES},
    "yaml": dict(_SIZES),
    "markdown": {"max_items": 16, "max_blocks": 32},
}

__all__ = ["FORMATS", "FormatError", "IncompleteOutputError", "allow_end", "check_finish", "check_output",
           "check_schema", "grammar_for", "to_jsonable", "validate"]


def _options(fmt: str, options: dict[str, Any]) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise InvalidRequestError(f"must be one of {', '.join(FORMATS)}, got {fmt!r}", field="format")
    known = OPTIONS[fmt]
    for key in options:
        if key not in known:
            allowed = ", ".join(known) or "none"
            raise InvalidRequestError(f"unknown option for the {fmt} format (options: {allowed})", field=key)
    merged = {**known, **{k: v for k, v in options.items() if v is not None}}
    for key, value in merged.items():
        if key.startswith("max_"):
            check_limit(key, value)
    return merged


def grammar_for(fmt: str, schema: dict | None = None, **options: Any) -> str:
    """The GBNF grammar for `fmt` ("json", "xml", "yaml" or "markdown").

    json: any JSON object, or with `schema` a value matching that JSON Schema. xml: options tags
    (element names) and root (the root element's name). Size options (see limits.Limits):
    max_depth (nesting, default 4), max_items (entries per container, 16) and max_string
    (characters per free-form string, 256) for json, xml and yaml; max_items (lines per block,
    16) and max_blocks (32) for markdown. Unknown options, bad values and unsupported schemas
    raise InvalidRequestError naming the option or the schema keyword.
    """
    opts = _options(fmt, options)
    if schema is not None and fmt != "json":
        raise InvalidRequestError(f"a schema is only supported with the json format, not {fmt}", field="schema")
    key = json.dumps(opts, sort_keys=True)
    if schema is not None:
        try:
            schema_json = json.dumps(schema, sort_keys=False)
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(f"must be JSON data: {exc}", field="schema") from None
        check_schema(schema, limits=limits_from(opts))
        return _json_schema_grammar(schema_json, key)
    return _grammar(fmt, key)


def allow_end(grammar: str, end: str) -> str:
    """Let a finished formatted answer be followed by the prompt format's end-of-turn text.

    A base model that has finished a value wants to write "\n\nHuman:" next; a grammar that
    forbids it leaves only more items to write, so answers loop until max_tokens. With the end
    text allowed after the value the engine's end-sequence matcher stops there (end_turn) and
    the answer is the value alone. The grammar's own rules never name `root` (checked).
    """
    from candor.formats.gbnf import lit

    head, sep, rest = grammar.partition("root ::=")
    if not sep or head and not head.endswith("\n") or "formatted-value" in grammar:
        raise ValueError("grammar has no top-level root rule to extend")
    return f"root ::= formatted-value ({lit(end)})?\n{head}formatted-value ::={rest}"


def check_schema(schema: Any, field: str = "schema", limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse, with InvalidRequestError(field=field), a schema that is not valid JSON Schema or
    that uses keywords the grammar cannot enforce (the message names the keyword and its place)."""
    _check_schema(schema, field, limits)


@functools.lru_cache(maxsize=64)
def _grammar(fmt: str, options_json: str) -> str:
    opts = json.loads(options_json)
    limits = limits_from(opts)
    if fmt == "json":
        from candor.formats import json_grammar
        from candor.formats.gbnf import Grammar

        g = Grammar()
        return g.render(json_grammar.free_object(g, 1, limits))
    if fmt == "xml":
        from candor.formats.xml_format import xml_grammar

        return xml_grammar(opts["tags"], opts["root"], limits)
    if fmt == "yaml":
        from candor.formats.yaml_format import yaml_grammar

        return yaml_grammar(limits)
    from candor.formats.markdown_format import markdown_grammar

    return markdown_grammar(limits)


@functools.lru_cache(maxsize=64)
def _json_schema_grammar(schema_json: str, options_json: str) -> str:
    from candor.formats.schema import schema_grammar

    return schema_grammar(json.loads(schema_json), limits_from(json.loads(options_json)))


def validate(fmt: str, text: str, schema: dict | None = None, **options: Any) -> Any:
    """Parse finished output with a real parser and check the format's guarantees.

    Returns the parsed value (a dict/list for json and yaml, an ElementTree Element for xml, the
    markdown-it block tokens for markdown); raises FormatError saying what failed. Give it the
    options given to grammar_for to check them too (XML element names, root and depth).
    """
    _options(fmt, options)  # unknown options and bad values are refused here too
    if fmt == "json":
        return _validate_json(text, schema)
    if fmt == "xml":
        from candor.formats.xml_format import parse_xml

        return parse_xml(text, options.get("tags"), options.get("root"), options.get("max_depth"))
    if fmt == "yaml":
        from candor.formats.yaml_format import parse_yaml

        return parse_yaml(text)
    from candor.formats.markdown_format import parse_markdown

    return parse_markdown(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _validate_json(text: str, schema: dict | None) -> Any:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise FormatError(f"output is not valid JSON: {exc}") from None
    if schema is None:
        if not isinstance(value, dict):
            raise FormatError(f"JSON output is a {type(value).__name__}, not an object")
        return value
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    validator = validator_for(schema)(schema, format_checker=FormatChecker())
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.path))), None)
    if error is not None:
        where = pointer(list(error.absolute_path))
        raise FormatError(f"JSON output does not match the schema at {where}: {error.message}")
    return value


def check_finish(fmt: str, stop_reason: str, output_tokens: int | None = None) -> None:
    """Raise IncompleteOutputError when generation stopped before the output could be complete."""
    if stop_reason in ("max_tokens", "stop_sequence"):
        raise IncompleteOutputError(fmt, stop_reason, output_tokens)


def check_output(fmt: str, text: str, stop_reason: str, schema: dict | None = None,
                 output_tokens: int | None = None, **options: Any) -> Any:
    """`check_finish`, then `validate`: the parsed value of a finished formatted answer."""
    check_finish(fmt, stop_reason, output_tokens)
    return validate(fmt, text, schema, **options)


def to_jsonable(fmt: str, value: Any) -> Any:
    """A parsed value as JSON-serialisable data (XML and Markdown become plain dicts/lists)."""
    if fmt == "xml":
        from candor.formats.xml_format import to_data as xml_data

        return xml_data(value)
    if fmt == "markdown":
        from candor.formats.markdown_format import to_data as markdown_data

        return markdown_data(value)
    return value
