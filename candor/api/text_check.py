"""Request bodies must hold valid Unicode text.

JSON can spell a lone UTF-16 surrogate ("\\ud800"); Python decodes it into a str that cannot be
encoded as UTF-8, so it would fail later in the tokenizer or the database. This dependency finds
the first such string after FastAPI has parsed the body (the parse is cached on the request) and
answers 400 naming where it is.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from candor.errors import InvalidRequestError


def _printable(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def lone_surrogate_at(value: Any, where: str = "") -> str | None:
    """The dotted path of the first string (or object key) that is not valid Unicode, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "body"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{_printable(str(key))}" if where else _printable(str(key))
            found = lone_surrogate_at(key, path) or lone_surrogate_at(item, path)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = lone_surrogate_at(item, f"{where}.{i}" if where else str(i))
            if found:
                return found
    return None


async def require_valid_text(request: Request) -> None:
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    try:
        body = await request.json()
    except ValueError:  # not JSON: the route's own parsing reports it
        return
    where = lone_surrogate_at(body)
    if where:
        raise InvalidRequestError("contains a lone UTF-16 surrogate (such as \\ud800), which is not valid "
                                  "Unicode text; send the character itself or a complete surrogate pair",
                                  field=where)
