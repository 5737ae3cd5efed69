"""Uploads as both surfaces receive them: who owns a file, and the multipart body it comes in.

Storage and the checks on what is stored are candor.documents.files (FileStore); the Files API
(candor.api.files) and the chat page's attachments (candor.web.attachments) both store through it.
"""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP

from candor.accounts.keys import KeyContext
from candor.errors import InvalidRequestError

Parts = dict[str, tuple[str | None, str | None, bytes]]  # name -> (filename, declared type, bytes)


def owner_of(ctx: KeyContext | None) -> tuple[str, int | None]:
    """Who owns what a caller uploads: its key, or one owner for the bootstrap keys or anonymous
    callers; a signed-in chat-page user (a caller with a user and no key) is `user:<id>`."""
    if ctx is None or ctx.is_anonymous:
        return "anonymous", None
    if ctx.key_id is not None:
        return f"key:{ctx.key_id}", ctx.key_id
    if ctx.user_id is not None:
        return f"user:{ctx.user_id}", None
    return f"bootstrap:{ctx.prefix}", None


def multipart(body: bytes, content_type: str) -> Parts:
    """name -> (filename, declared content type, bytes) of each part. Parsed with the standard
    library's MIME parser because a part without a filename (raw bytes from an SDK) is still a
    file here, and its bytes must arrive exactly as sent."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequestError("the body must be multipart/form-data with a 'file' part", field="file")
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise InvalidRequestError("the multipart body could not be parsed", field="file")
    out: Parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            declared = part["content-type"]
            out[name] = (part.get_filename(), str(declared) if declared is not None else None,
                         payload if isinstance(payload, bytes) else b"")
    return out
