"""The one chat renderer: (system, messages) → prompt text plus the sequences that end a turn.

Serving, training and evals all call `render`, so a conversation becomes the same text everywhere.
Base models get Anthropic's original format, with the system text before the first Human turn:

    {system}\\n\\nHuman: {user}\\n\\nAssistant: {assistant}\\n\\nHuman: {user}\\n\\nAssistant:

and "\\n\\nHuman:" ends the turn, so a base model never writes the user's next line. A model whose
GGUF carries a Jinja chat template is rendered with that template instead, keeping the system
prompt (folded into the first user turn when the template has no system role).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import jinja2
import jinja2.sandbox

from candor.errors import InvalidRequestError

HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    end_sequences: tuple[str, ...]
    prefill: str = ""  # text of a final assistant message that the answer continues


def as_messages(items: Iterable[Message | Mapping[str, str]]) -> list[Message]:
    out = []
    for item in items:
        if isinstance(item, Message):
            out.append(item)
        else:
            out.append(Message(role=item["role"], content=item["content"]))  # type: ignore[arg-type]
    return out


def validate_messages(messages: list[Message]) -> None:
    """Claude-2 rules: starts with user, roles alternate, content non-empty (a final assistant
    prefill may be empty but must not end in whitespace)."""
    if not messages:
        raise InvalidRequestError("at least one message is required", field="messages")
    for i, m in enumerate(messages):
        if m.role not in ("user", "assistant"):
            raise InvalidRequestError(f"role must be 'user' or 'assistant', got {m.role!r}", field=f"messages.{i}.role")
        if i == 0 and m.role != "user":
            raise InvalidRequestError('first message must use the "user" role', field="messages")
        if i > 0 and m.role == messages[i - 1].role:
            raise InvalidRequestError(
                f'roles must alternate between "user" and "assistant", but found multiple "{m.role}" roles in a row',
                field="messages")
        last = i == len(messages) - 1
        if m.role == "user" and not m.content.strip():
            raise InvalidRequestError("user messages must have non-empty content", field=f"messages.{i}")
        if m.role == "assistant" and last and m.content != m.content.rstrip():
            raise InvalidRequestError("final assistant content cannot end with trailing whitespace",
                                      field=f"messages.{i}")
        if m.role == "assistant" and not last and not m.content.strip():
            raise InvalidRequestError("assistant messages must have non-empty content", field=f"messages.{i}")


def render(messages: Iterable[Message | Mapping[str, str]], system: str | None = None, *,
           chat_template: str | None = None, special_tokens: Mapping[str, str] | None = None) -> RenderedPrompt:
    """Render a conversation. With `chat_template`, use it; otherwise Human/Assistant."""
    msgs = as_messages(messages)
    validate_messages(msgs)
    if chat_template:
        return _render_template(msgs, system, chat_template, dict(special_tokens or {}))
    return _render_human_assistant(msgs, system)


def _render_human_assistant(msgs: list[Message], system: str | None) -> RenderedPrompt:
    parts = [system.strip()] if system and system.strip() else []
    for m in msgs:
        label = HUMAN if m.role == "user" else ASSISTANT
        parts.append(f"{label} {m.content.strip()}" if m.content else label)
    prefill = ""
    if msgs[-1].role == "user":
        parts.append(ASSISTANT)
    else:
        prefill = msgs[-1].content
    return RenderedPrompt(text="".join(parts), end_sequences=(HUMAN,), prefill=prefill)


class _TemplateError(Exception):
    pass


def _raise(message: str) -> None:
    raise _TemplateError(message)


def _render_template(msgs: list[Message], system: str | None, template: str,
                     tokens: dict[str, str]) -> RenderedPrompt:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    compiled = env.from_string(template)
    prefill = msgs[-1].content if msgs[-1].role == "assistant" else ""
    turns = [{"role": m.role, "content": m.content} for m in (msgs[:-1] if prefill or msgs[-1].role == "assistant" else msgs)]

    def run(items: list[dict[str, str]]) -> str:
        return compiled.render(messages=items, add_generation_prompt=True, **tokens)

    if system and system.strip():
        try:
            text = run([{"role": "system", "content": system.strip()}] + turns)
        except _TemplateError:
            folded = [dict(t) for t in turns]
            folded[0]["content"] = f"{system.strip()}\n\n{folded[0]['content']}"
            text = run(folded)
    else:
        text = run(turns)
    bos = tokens.get("bos_token")
    if bos and text.startswith(bos):
        text = text[len(bos):]  # the engine adds BOS itself when it tokenizes
    return RenderedPrompt(text=text + prefill, end_sequences=(), prefill=prefill)
