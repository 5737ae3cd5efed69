"""A model's chat format: how its conversations are rendered, with the registry's default system
prompt. Built here rather than in candor.engine, which knows templates only as strings."""

from __future__ import annotations

from candor.chat.render import ChatFormat
from candor.engine.hub import LoadedModel
from candor.engine.weights import ensure_weights
from candor.registry import ModelEntry


def chat_format(model: LoadedModel) -> ChatFormat:
    """How a loaded model's conversations are rendered, with the registry's default system prompt."""
    return ChatFormat(model.chat_template, dict(model.special_tokens), model.entry.system_prompt)


def chat_format_of(entry: ModelEntry) -> ChatFormat:
    """An embedded model's chat format without loading its weights (training renders with it)."""
    if entry.engine == "remote" or entry.prompt_format == "human-assistant":
        return ChatFormat(default_system=entry.system_prompt)
    from candor.engine.llama import read_chat_format

    template, tokens = read_chat_format(ensure_weights(entry))
    if entry.prompt_format == "template" and not template:
        from candor.errors import WeightsError

        raise WeightsError(f"{entry.name} asks for prompt_format = 'template' but its GGUF has no chat template")
    return ChatFormat(template, tokens, entry.system_prompt)
