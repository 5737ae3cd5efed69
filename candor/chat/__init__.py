"""Chat rendering and the chat-level generation path shared by the CLI, API and web page."""

from candor.chat.render import (
    ASSISTANT,
    HUMAN,
    Message,
    RenderedPrompt,
    as_messages,
    render,
    validate_messages,
)

__all__ = ["ASSISTANT", "HUMAN", "Message", "RenderedPrompt", "as_messages", "render", "validate_messages"]
