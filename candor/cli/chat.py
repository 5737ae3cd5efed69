"""`candor chat`: an interactive terminal chat.

Answers stream as they are generated. Ctrl-C stops the answer in progress (the engine stops
within a token or two) and returns to the prompt; at the prompt it clears the line, and Ctrl-D or
/exit leaves. A line ending in a backslash continues on the next line; a line of three double
quotes starts and ends a block of several lines.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from candor.chat.render import Message
from candor.chat.service import ChatParams, stream_chat
from candor.cli.common import handle_errors, make_hub
from candor.engine.base import Finish, TextDelta
from candor.engine.hub import EngineHub
from candor.errors import CandorError

HELP = """commands:
  /reset          start a new conversation (keeps the system prompt)
  /system TEXT    set the system prompt (/system alone shows it, /system - clears it)
  /model NAME     switch model (/model alone lists them)
  /save FILE      save the conversation as a Markdown transcript
  /help           this text
  /exit           leave (or Ctrl-D)
multi-line: end a line with \\ to continue, or wrap lines in \"\"\" … \"\"\""""


@dataclass
class Conversation:
    model: str
    system: str | None = None
    messages: list[Message] = field(default_factory=list)

    def to_markdown(self) -> str:
        lines = [f"# Candor conversation ({self.model}, {dt.datetime.now():%Y-%m-%d %H:%M})", ""]
        if self.system:
            lines += ["**System:**", "", self.system, ""]
        for m in self.messages:
            lines += [f"**{'You' if m.role == 'user' else 'Assistant'}:**", "", m.content, ""]
        return "\n".join(lines)


def read_input(prompt: str = "you> ") -> str | None:
    """One user turn; None at end of input. Handles `\\` continuations and \"\"\" blocks."""
    try:
        first = input(prompt)
    except EOFError:
        return None
    if first.strip() == '"""':
        lines = []
        while True:
            try:
                line = input("... ")
            except EOFError:
                break
            if line.strip() == '"""':
                break
            lines.append(line)
        return "\n".join(lines)
    lines = [first]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        try:
            lines.append(input("... "))
        except EOFError:
            break
    return "\n".join(lines)


class ChatRepl:
    def __init__(self, hub: EngineHub, conv: Conversation, params: ChatParams):
        self.hub = hub
        self.conv = conv
        self.params = params
        self.loop = asyncio.new_event_loop()

    def command(self, line: str) -> bool:
        """Run a slash command; False means leave."""
        name, _, arg = line[1:].partition(" ")
        arg = arg.strip()
        if name in ("exit", "quit"):
            return False
        if name == "reset":
            self.conv.messages.clear()
            click.echo("(new conversation)", err=True)
        elif name == "system":
            if not arg:
                click.echo(f"system: {self.conv.system or '(none)'}", err=True)
            else:
                self.conv.system = None if arg == "-" else arg
                click.echo("(system prompt set)" if self.conv.system else "(system prompt cleared)", err=True)
        elif name == "model":
            if not arg:
                click.echo(f"model: {self.conv.model}; available: {', '.join(self.hub.registry.names)}", err=True)
            else:
                self.loop.run_until_complete(self.hub.get(arg))  # fails with the known names listed
                self.conv.model = arg
                click.echo(f"(model: {arg})", err=True)
        elif name == "save":
            if not arg:
                click.echo("usage: /save FILE", err=True)
            else:
                Path(arg).expanduser().write_text(self.conv.to_markdown(), encoding="utf-8")
                click.echo(f"(saved to {arg})", err=True)
        elif name == "help":
            click.echo(HELP, err=True)
        else:
            click.echo(f"unknown command /{name}; /help lists them", err=True)
        return True

    async def _answer(self, out: list[str], stats: dict) -> None:
        model = await self.hub.get(self.conv.model)
        started = time.perf_counter()
        async for event in stream_chat(model, self.conv.messages, self.conv.system, self.params):
            if isinstance(event, TextDelta):
                stats.setdefault("first", time.perf_counter() - started)
                out.append(event.text)
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, Finish):
                stats["finish"] = event
        stats["total"] = time.perf_counter() - started

    def answer(self, text: str) -> None:
        self.conv.messages.append(Message("user", text))
        out: list[str] = []
        stats: dict = {}
        task = self.loop.create_task(self._answer(out, stats))
        self.loop.add_signal_handler(signal.SIGINT, task.cancel)
        stopped = False
        try:
            self.loop.run_until_complete(task)
        except asyncio.CancelledError:
            stopped = True
        except CandorError:
            self.conv.messages.pop()
            raise
        finally:
            self.loop.remove_signal_handler(signal.SIGINT)
        reply = "".join(out).strip()
        click.echo()
        if reply:
            self.conv.messages.append(Message("assistant", reply))
        else:
            self.conv.messages.pop()  # keep the turns alternating
        finish: Finish | None = stats.get("finish")
        if stopped:
            click.echo("[stopped]", err=True)
        elif finish:
            gen_time = stats["total"] - stats.get("first", 0.0)
            rate = finish.usage.output_tokens / gen_time if gen_time > 0 else 0.0
            click.echo(f"[{finish.usage.output_tokens} tokens · {rate:.1f} tokens/s · "
                       f"first token {stats.get('first', 0):.2f} s · {finish.stop_reason}]", err=True)

    def run(self) -> None:
        click.echo(f"Candor chat with {self.conv.model}. /help for commands, Ctrl-C stops an answer, "
                   "Ctrl-D leaves.", err=True)
        try:
            self.loop.run_until_complete(self.hub.get(self.conv.model))
            while True:
                try:
                    text = read_input()
                except KeyboardInterrupt:
                    click.echo(err=True)
                    continue
                if text is None:
                    break
                if not text.strip():
                    continue
                try:
                    if text.startswith("/"):
                        if not self.command(text.strip()):
                            break
                    else:
                        self.answer(text)
                except CandorError as exc:
                    click.echo(f"error: {exc.message}", err=True)
        finally:
            self.loop.run_until_complete(self.hub.close())
            self.loop.close()


@click.command()
@click.option("--model", "model_name", default=None, help="Registry name (default: the first entry).")
@click.option("--system", default=None, help="System prompt.")
@click.option("--max-tokens", type=int, default=1024, show_default=True, help="Most tokens per answer.")
@click.option("--temperature", type=float, default=None, help="0..1; 0 is greedy (default: the model's default_temperature).")
@click.option("--top-p", type=float, default=None, help="Nucleus sampling, 0..1.")
@click.option("--top-k", type=int, default=None, help="Sample from the k likeliest tokens.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible sampling.")
@click.option("--models-file", default=None, help="Extra registry TOML (default: $CANDOR_MODELS_FILE).")
@handle_errors
def chat(model_name, system, max_tokens, temperature, top_p, top_k, seed, models_file):
    """Talk to the assistant in the terminal."""
    hub = make_hub(models_file)
    name = model_name or hub.registry.default_name()
    params = ChatParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k, seed=seed)
    params.validate(hub.registry.get(name))
    ChatRepl(hub, Conversation(model=name, system=system), params).run()
