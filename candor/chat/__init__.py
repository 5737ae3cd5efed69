"""Chat rendering and the chat-level generation path shared by the CLI, API and web page."""

from candor.chat.render import (
    ASSISTANT,
    HUMAN,
    HUMAN_ASSISTANT,
    ChatFormat,
    Message,
    RenderedPrompt,
    as_messages,
    render,
    render_answer,
    validate_messages,
)

__all__ = ["ASSISTANT", "HUMAN", "HUMAN_ASSISTANT", "ChatFormat", "Message", "RenderedPrompt", "as_messages",
           "render", "render_answer", "validate_messages"]
