"""The HTTP API: Anthropic Messages and Text Completions, OpenAI Chat Completions, health, metrics."""

from candor.api.app import create_app

__all__ = ["create_app"]
