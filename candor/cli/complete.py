"""`candor complete TEXT`: one-shot generation, streamed or as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import click

from candor.chat.render import Message
from candor.chat.service import ChatParams, stream_chat
from candor.cli.common import handle_errors, make_hub
from candor.engine.base import Finish, TextDelta


@click.command()
@click.argument("text")
@click.option("--model", "model_name", default=None, help="Registry name (default: the first entry).")
@click.option("--max-tokens", type=int, default=512, show_default=True, help="Most tokens to generate.")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="0..1; 0 is greedy.")
@click.option("--top-p", type=float, default=None, help="Nucleus sampling, 0..1.")
@click.option("--top-k", type=int, default=None, help="Sample from the k likeliest tokens (>= 0).")
@click.option("--stop", "stops", multiple=True, help="Stop sequence (repeatable).")
@click.option("--seed", type=int, default=None, help="Seed for reproducible sampling.")
@click.option("--system", default=None, help="System prompt.")
@click.option("--json", "as_json", is_flag=True, help="Print text, stop reason and usage as JSON.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def complete(text, model_name, max_tokens, temperature, top_p, top_k, stops, seed, system, as_json, models_file):
    """Answer TEXT once and exit."""
    hub = make_hub(models_file)
    name = model_name or hub.registry.default_name()
    params = ChatParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                        seed=seed, stop_sequences=tuple(stops))
    params.validate(hub.registry.get(name))  # bad input fails before the model loads

    async def run() -> dict:
        model = await hub.get(name)
        parts, finish, started, first = [], None, time.perf_counter(), None
        try:
            async for event in stream_chat(model, [Message("user", text)], system, params):
                if isinstance(event, TextDelta):
                    first = first or time.perf_counter()
                    parts.append(event.text)
                    if not as_json:
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
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        click.echo()
