"""`candor complete TEXT`: one-shot generation, streamed or as JSON.

With --format the answer is constrained by that format's grammar (candor.formats), buffered, and
checked by a real parser before anything is printed; --json then adds the parsed value.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from candor import formats
from candor.chat.render import Message
from candor.chat.service import ChatParams, stream_chat
from candor.cli.common import handle_errors, make_hub
from candor.engine.base import Finish, TextDelta
from candor.errors import InvalidRequestError


def load_schema(path: str) -> dict:
    """Read a JSON Schema file; every problem names the file (exit 2 through handle_errors)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc.strerror or exc}", field="schema") from None
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise InvalidRequestError(f"{path} is not valid JSON: {exc}", field="schema") from None
    try:
        formats.check_schema(schema)
    except InvalidRequestError as exc:
        problem = exc.message.removeprefix("schema: ")
        raise InvalidRequestError(f"{path}: {problem}", field="schema") from None
    return schema


def format_options(fmt: str | None, schema_file: str | None, tags: str | None, root: str | None) -> dict:
    if schema_file and fmt != "json":
        raise InvalidRequestError("--schema needs --format json", field="schema")
    if (tags or root) and fmt != "xml":
        raise InvalidRequestError("--tags and --root need --format xml", field="tags" if tags else "root")
    options: dict[str, Any] = {}
    if tags:
        options["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
    if root:
        options["root"] = root
    return options


@click.command()
@click.argument("text")
@click.option("--model", "model_name", default=None, help="Registry name (default: the first entry).")
@click.option("--max-tokens", type=int, default=512, show_default=True, help="Most tokens to generate.")
@click.option("--temperature", type=float, default=None, help="0..1; 0 is greedy (default: the model's default_temperature).")
@click.option("--top-p", type=float, default=None, help="Nucleus sampling, 0..1.")
@click.option("--top-k", type=int, default=None, help="Sample from the k likeliest tokens (>= 0).")
@click.option("--stop", "stops", multiple=True, help="Stop sequence (repeatable).")
@click.option("--seed", type=int, default=None, help="Seed for reproducible sampling.")
@click.option("--system", default=None, help="System prompt.")
@click.option("--format", "fmt", type=click.Choice(formats.FORMATS), default=None,
              help="Constrain the answer to this format and check it with a parser before printing.")
@click.option("--schema", "schema_file", default=None, metavar="FILE",
              help="JSON Schema file the answer must match (needs --format json).")
@click.option("--tags", default=None, help="Comma-separated XML element names (--format xml).")
@click.option("--root", default=None, help="Name of the XML root element (--format xml).")
@click.option("--json", "as_json", is_flag=True, help="Print text, stop reason and usage as JSON.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def complete(text, model_name, max_tokens, temperature, top_p, top_k, stops, seed, system, fmt, schema_file,
             tags, root, as_json, models_file):
    """Answer TEXT once and exit."""
    options = format_options(fmt, schema_file, tags, root)
    schema = load_schema(schema_file) if schema_file else None
    grammar = formats.grammar_for(fmt, schema, **options) if fmt else None
    hub = make_hub(models_file)
    name = model_name or hub.registry.default_name()
    params = ChatParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                        seed=seed, stop_sequences=tuple(stops), grammar=grammar)
    params.validate(hub.registry.get(name))  # bad input fails before the model loads
    stream = not as_json and not fmt  # formatted answers are checked before they are printed

    async def run() -> dict:
        model = await hub.get(name)
        parts, finish, started, first = [], None, time.perf_counter(), None
        try:
            async for event in stream_chat(model, [Message("user", text)], system, params):
                if isinstance(event, TextDelta):
                    first = first or time.perf_counter()
                    parts.append(event.text)
                    if stream:
                        sys.stdout.write(event.text)
                        sys.stdout.flush()
                elif isinstance(event, Finish):
                    finish = event
        finally:
            await hub.close()
        assert finish is not None
        return {
            "model": name,
            "text": "".join(parts),
            "stop_reason": finish.stop_reason,
            "stop_sequence": finish.stop_sequence,
            "usage": {"input_tokens": finish.usage.input_tokens, "output_tokens": finish.usage.output_tokens},
            "time_to_first_token_s": round((first or time.perf_counter()) - started, 4),
            "total_s": round(time.perf_counter() - started, 4),
        }

    result = asyncio.run(run())
    if fmt:
        parsed = formats.check_output(fmt, result["text"], result["stop_reason"], schema,
                                      result["usage"]["output_tokens"], **options)
        result["format"] = fmt
        result["parsed"] = formats.to_jsonable(fmt, parsed)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    elif fmt:
        click.echo(result["text"])
    else:
        click.echo()
