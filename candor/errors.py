"""Typed errors shared by every layer.

Each error knows the API error type and HTTP status it maps to, so the API layer can turn any
of them into the Anthropic error body with one handler, and the CLI can print the message alone.
"""

from __future__ import annotations


class CandorError(Exception):
    """Base class: a message meant for the user, plus the API error type and status."""

    error_type = "api_error"
    status_code = 500
    error_code: str | None = None  # a finer code for clients (the API's error.details.error_code)

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRequestError(CandorError):
    """Bad input: names the field and the allowed range in its message."""

    error_type = "invalid_request_error"
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None):
        if field and not message.startswith(f"{field}:"):
            message = f"{field}: {message}"
        super().__init__(message, field=field)


class ContextWindowExceededError(InvalidRequestError):
    """Prompt tokens plus max_tokens do not fit in the model's context window."""

    def __init__(self, *, prompt_tokens: int, max_tokens: int, context_window: int, model: str):
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.context_window = context_window
        super().__init__(
            f"prompt is {prompt_tokens} tokens and max_tokens is {max_tokens}: "
            f"{prompt_tokens} + {max_tokens} = {prompt_tokens + max_tokens} > {context_window}, "
            f"the context window of {model}",
            field="max_tokens",
        )


class NotFoundError(CandorError):
    error_type = "not_found_error"
    status_code = 404


class UnknownModelError(NotFoundError):
    """A model name that is not in the registry; lists the names that are."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(
            f"model: unknown model {name!r}; known models: {', '.join(sorted(known)) or '(none)'}",
            field="model",
        )


class WeightsError(CandorError):
    """Weights missing or corrupt: the message names the path (and checksums when they differ)."""

    error_type = "api_error"
    status_code = 500


class OverloadedError(CandorError):
    """The model's queue is full; the client should retry later."""

    error_type = "overloaded_error"
    status_code = 529

    def __init__(self, message: str, *, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class EngineError(CandorError):
    """The engine failed while generating (a remote server error, a llama.cpp failure)."""

    error_type = "api_error"
    status_code = 500


class AccessError(CandorError):
    """Refused by access control (401, 402, 403, 429…): status, API error type and extra headers
    (such as retry-after and the rate-limit family) travel with it."""

    def __init__(self, status_code: int, error_type: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.headers = headers or {}
