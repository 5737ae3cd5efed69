"""Typed errors for documents: each names the problem (and the limit) so a client can fix its input."""

from __future__ import annotations

from candor.errors import CandorError, InvalidRequestError


class DocumentError(InvalidRequestError):
    """A document that cannot be read: corrupt, encrypted, empty, of an unsupported type (400)."""


class DocumentTooLargeError(CandorError):
    """A document over a size, page or decompressed-size limit (413)."""

    error_type = "request_too_large"
    status_code = 413

    def __init__(self, message: str, *, field: str | None = None):
        if field and not message.startswith(f"{field}:"):
            message = f"{field}: {message}"
        super().__init__(message, field=field)
