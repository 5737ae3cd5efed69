"""Documents placed into a conversation: the prompt the model sees, whole or retrieved.

The question used for retrieval is the last user message's own text (documents left out). The
prompt's size is measured with the model's own renderer and tokenizer, so "fits" means fits.
"""

from __future__ import annotations

from candor.chat.render import Message
from candor.chat.service import render_for
from candor.documents.blocks import DocumentInput
from candor.documents.pack import Placement, pack, prefixes, render_whole
from candor.engine.hub import LoadedModel


def with_documents(messages: list[Message], docs_text: dict[int, str]) -> list[Message]:
    """Each message with its documents' text before its own text."""
    out = []
    for i, m in enumerate(messages):
        docs = docs_text.get(i)
        out.append(Message(m.role, f"{docs}\n\n{m.content}" if docs and m.content else docs or m.content))
    return out


def whole_messages(messages: list[Message], inputs: list[DocumentInput]) -> list[Message]:
    """The conversation with every document in whole (what count_tokens counts)."""
    texts: dict[int, list[str]] = {}
    for d in inputs:
        texts.setdefault(d.message, []).append(render_whole(d))
    return with_documents(messages, {m: "\n\n".join(t) for m, t in texts.items()})


def question_of(messages: list[Message]) -> str:
    users = [m.content for m in messages if m.role == "user"]
    return users[-1] if users else ""


async def place(model: LoadedModel, messages: list[Message], system: str | None, inputs: list[DocumentInput],
                max_tokens: int) -> tuple[list[Message], list[Placement]]:
    """The conversation with its documents packed into `model`'s window, and what was placed."""

    async def measure(docs_text: dict[int, str]) -> int:
        return await model.engine.count_tokens(render_for(model, with_documents(messages, docs_text), system).text)

    window = model.entry.context_window - max_tokens
    placements = await pack(inputs, question_of(messages), window, measure, model.engine.count_tokens)
    return with_documents(messages, prefixes(placements)), placements
