"""The one chat renderer: (system, messages) → prompt text plus the sequences that end a turn.

Serving, training and evals all call `render`, so a conversation becomes the same text everywhere.
Base models get Anthropic's original format, with the system text before the first Human turn:

    {system}\\n\\nHuman: {user}\\n\\nAssistant: {assistant}\\n\\nHuman: {user}\\n\\nAssistant:

and "\\n\\nHuman:" ends the turn, so a base model never writes the user's next line. A model whose
GGUF carries a Jinja chat template is rendered with that template instead, keeping the system
prompt (folded into the first user turn when the template has no system role).

A `ChatFormat` bundles what rendering needs for one model (its template, special tokens and the
registry's default system prompt), so serving and training render a conversation identically.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import jinja2
import jinja2.sandbox

from candor.errors import InvalidRequestError

HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
Role = Literal["user", "assistant"]
_TURN = re.compile(r"\n\n(Human|Assistant):")


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
           chat_template: str | None = None, special_tokens: Mapping[str, str] | None = None,
           close_last: bool = False) -> RenderedPrompt:
    """Render a conversation. With `chat_template`, use it; otherwise Human/Assistant.
    `close_last` renders a final assistant message as a finished turn (training), not a prefill."""
    msgs = as_messages(messages)
    validate_messages(msgs)
    if chat_template:
        return _render_template(msgs, system, chat_template, dict(special_tokens or {}), close_last)
    return _render_human_assistant(msgs, system)


def render_answer(messages: Iterable[Message | Mapping[str, str]], system: str | None = None, *,
                  chat_template: str | None = None,
                  special_tokens: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(prompt, completion) for a conversation whose last message is the assistant's answer.

    The prompt is exactly what serving renders for the conversation so far; the completion is the
    answer followed by the format's own end of turn ("\\n\\nHuman:", or the template's end-of-turn
    text such as "<|im_end|>"), so a model trained on it learns to stop where serving stops it."""
    msgs = as_messages(messages)
    if len(msgs) < 2 or msgs[-1].role != "assistant" or not msgs[-1].content.strip():
        raise InvalidRequestError("a training conversation must end with the assistant's answer", field="messages")
    answer = msgs[-1].content.strip()
    prompt = render(msgs[:-1], system, chat_template=chat_template, special_tokens=special_tokens).text
    if not chat_template:
        return prompt, " " + answer + HUMAN
    closed = render(msgs[:-1] + [Message("assistant", answer)], system, chat_template=chat_template,
                    special_tokens=special_tokens, close_last=True).text
    if not closed.startswith(prompt + answer):
        raise InvalidRequestError("the chat template renders an answer in a way Candor cannot split into "
                                  "prompt and completion", field="chat_template")
    return prompt, closed[len(prompt):].rstrip("\n")  # no newline after the end-of-turn token


@dataclass(frozen=True)
class ChatFormat:
    """How one model's conversations become prompt text: its chat template (None: the
    Human/Assistant format), the special tokens the template uses, and the system prompt used
    when a request brings none (a request's own system prompt replaces it)."""

    chat_template: str | None = None
    special_tokens: Mapping[str, str] = field(default_factory=dict)
    default_system: str = ""

    def system_for(self, system: str | None) -> str | None:
        return system if system and system.strip() else (self.default_system or None)

    def render(self, messages: Iterable[Message | Mapping[str, str]], system: str | None = None) -> RenderedPrompt:
        return render(messages, self.system_for(system), chat_template=self.chat_template,
                      special_tokens=self.special_tokens)

    def render_answer(self, messages: Iterable[Message | Mapping[str, str]],
                      system: str | None = None) -> tuple[str, str]:
        return render_answer(messages, self.system_for(system), chat_template=self.chat_template,
                             special_tokens=self.special_tokens)


HUMAN_ASSISTANT = ChatFormat()


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


def parse_prompt(prompt: str) -> tuple[list[Message], str | None]:
    """Split "\\n\\nHuman: …\\n\\nAssistant:" text into (messages, system), enforcing the rules of
    the legacy Text Completions API; any model then renders the turns in its own format."""
    prompt = prompt.rstrip(" ")
    marks = list(_TURN.finditer(prompt))
    if not marks or marks[0].group(1) != "Human":
        raise InvalidRequestError('prompt must start with "\\n\\nHuman:" turn after an optional system prompt',
                                  field="prompt")
    if marks[-1].group(1) != "Assistant" or prompt[marks[-1].end():].strip():
        raise InvalidRequestError('prompt must end with "\\n\\nAssistant:" turn', field="prompt")
    system = prompt[: marks[0].start()].strip() or None
    messages: list[Message] = []
    for mark, following in zip(marks, marks[1:] + [None]):
        text = prompt[mark.end(): following.start() if following else len(prompt)].strip()
        role = "user" if mark.group(1) == "Human" else "assistant"
        if following is None:
            break  # the final, empty Assistant turn
        if messages and messages[-1].role == role:
            raise InvalidRequestError(f"prompt has two {mark.group(1)} turns in a row", field="prompt")
        messages.append(Message(role, text))  # type: ignore[arg-type]
    return messages, system


class _TemplateError(Exception):
    pass


def _raise(message: str) -> None:
    raise _TemplateError(message)


@functools.lru_cache(maxsize=16)
def _compiled(template: str) -> jinja2.Template:
    """The template compiled once per process: compiling SmolLM2's took 2.1 ms on an idle machine,
    on every request, about a third of the event loop's own work while 16 clients streamed
    (benchmarks/concurrency.py under py-spy). A compiled template keeps no state between renders."""
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(template)


def _render_template(msgs: list[Message], system: str | None, template: str,
                     tokens: dict[str, str], close_last: bool = False) -> RenderedPrompt:
    compiled = _compiled(template)
    open_answer = msgs[-1].role == "assistant" and not close_last
    prefill = msgs[-1].content if open_answer else ""
    turns = [{"role": m.role, "content": m.content} for m in (msgs[:-1] if open_answer else msgs)]

    def run(items: list[dict[str, str]]) -> str:
        return compiled.render(messages=items, add_generation_prompt=not close_last, **tokens)

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
    if bos and text.startswith(bos) and tokens.get("add_bos_token", "true") != "false":
        text = text[len(bos):]  # the engine adds BOS itself when it tokenizes
    return RenderedPrompt(text=text + prefill, end_sequences=(), prefill=prefill)
