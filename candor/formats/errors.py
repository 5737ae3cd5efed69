"""Errors of formatted output, kept apart so callers can tell a server bug from a short budget.

Constrained decoding makes unparseable output impossible unless generation stopped early, so:
`FormatError` (500, api_error) is a finished answer that still failed its parser, which is our
bug; `IncompleteOutputError` (400) is an answer cut off by max_tokens or a stop sequence, which
the caller can fix by raising max_tokens (or dropping the stop sequence).
"""

from __future__ import annotations

from candor.errors import CandorError, InvalidRequestError


class FormatError(CandorError):
    """Finished output that does not parse or breaks the format's guarantees (a server bug)."""

    error_type = "api_error"
    status_code = 500


class IncompleteOutputError(InvalidRequestError):
    """Generation stopped before the formatted output was complete."""

    def __init__(self, fmt: str, stop_reason: str, output_tokens: int | None = None):
        self.fmt = fmt
        self.stop_reason = stop_reason
        if stop_reason == "max_tokens":
            used = f" after {output_tokens} tokens" if output_tokens is not None else ""
            message = (f"the {fmt} output was cut off by max_tokens{used} and is incomplete, so it cannot "
                       "be parsed; raise max_tokens")
            field = "max_tokens"
        else:
            message = (f"the {fmt} output was cut off by a stop sequence and is incomplete, so it cannot "
                       "be parsed; remove stop sequences that can occur inside the output")
            field = "stop_sequences"
        super().__init__(message, field=field)
