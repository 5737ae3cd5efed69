"""Anthropic `document` content blocks: validated and read into `DocumentInput`s.

Sources: `text` (plain text, cited by characters), `base64` (a PDF, cited by pages; DOCX, HTML,
Markdown and CSV are accepted too and cited by characters of their extracted text), `content`
(a string or text blocks, cited by block) and `file` (a Files API id, resolved by the caller's
`resolve_file`). `url` sources are refused: the server never fetches from the network.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from candor.documents.errors import DocumentError
from candor.documents.extract import Document, extract, from_blocks, from_text

MAX_TITLE = 500
FileResolver = Callable[[str, str], tuple[bytes, str, str]]  # (file_id, where) -> (data, mime type, filename)


@dataclass(frozen=True)
class DocumentInput:
    index: int  # 0-based over every document block of the request (the wire's document_index)
    message: int  # the message it came in
    doc: Document
    title: str | None
    context: str | None
    citations: bool
    file_id: str | None = None

    @property
    def citation_type(self) -> str:
        if self.doc.kind == "pdf":
            return "page_location"
        if self.doc.kind == "content":
            return "content_block_location"
        return "char_location"


def _str_or_none(block: dict[str, Any], name: str, where: str, limit: int | None = None) -> str | None:
    value = block.get(name)
    if value is not None and not isinstance(value, str):
        raise DocumentError("must be a string or null", field=f"{where}.{name}")
    if value is not None and limit is not None and len(value) > limit:
        raise DocumentError(f"is {len(value)} characters, over the limit of {limit}", field=f"{where}.{name}")
    return value


def _citations(block: dict[str, Any], where: str) -> bool:
    config = block.get("citations")
    if config is None:
        return False
    if not isinstance(config, dict) or not isinstance(config.get("enabled", False), bool):
        raise DocumentError('must be {"enabled": true|false} or null', field=f"{where}.citations")
    return bool(config.get("enabled", False))


def _content_blocks(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list) or not content:
        raise DocumentError("must be a string or a non-empty list of text blocks", field=f"{where}.content")
    texts = []
    for i, item in enumerate(content):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "image":
            raise DocumentError("image blocks are not supported: Candor models read text only",
                                field=f"{where}.content.{i}.type")
        if kind != "text" or not isinstance(item.get("text"), str):
            raise DocumentError("must be a text block with a string 'text'", field=f"{where}.content.{i}")
        texts.append(item["text"])
    return texts


def read_source(source: Any, where: str, resolve_file: FileResolver | None) -> tuple[Document, str | None]:
    """The document a block's `source` names, and its file id when it came from the Files API."""
    where = f"{where}.source"
    if not isinstance(source, dict):
        raise DocumentError("Field required: an object with a 'type'", field=where)
    kind = source.get("type")
    if kind == "text":
        if source.get("media_type", "text/plain") != "text/plain":
            raise DocumentError("Input should be 'text/plain'", field=f"{where}.media_type")
        data = source.get("data")
        if not isinstance(data, str):
            raise DocumentError("Field required: a string", field=f"{where}.data")
        return from_text(data, where=where), None
    if kind == "base64":
        data = source.get("data")
        if not isinstance(data, str):
            raise DocumentError("Field required: a base64 string", field=f"{where}.data")
        if data.startswith("data:"):
            raise DocumentError("must be bare base64, without a data: URL prefix", field=f"{where}.data")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise DocumentError("is not valid base64", field=f"{where}.data") from None
        media_type = source.get("media_type")
        if not isinstance(media_type, str):
            raise DocumentError("Field required: e.g. 'application/pdf'", field=f"{where}.media_type")
        return extract(raw, media_type, where=f"{where}.data"), None
    if kind == "content":
        return from_blocks(_content_blocks(source.get("content"), where), where=where), None
    if kind == "url":
        raise DocumentError("url sources are not supported: Candor does not fetch from the network; send the "
                            "document as base64 or upload it with the Files API and use its file_id",
                            field=f"{where}.type")
    if kind == "file":
        file_id = source.get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise DocumentError("Field required: a file id", field=f"{where}.file_id")
        if resolve_file is None:
            raise DocumentError("file sources are not available here", field=f"{where}.type")
        data, media_type, filename = resolve_file(file_id, f"{where}.file_id")
        return extract(data, media_type, filename, where=f"{where}.file_id"), file_id
    raise DocumentError(f"unknown source type {kind!r}; expected text, base64, content, file or url",
                        field=f"{where}.type")


def read_documents(messages: list[tuple[str, Any]], resolve_file: FileResolver | None = None) -> list[DocumentInput]:
    """Every document block of (role, content) messages, in request order; [] when there are none."""
    found: list[DocumentInput] = []
    for m, (role, content) in enumerate(messages):
        if not isinstance(content, list):
            continue
        for j, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != "document":
                continue
            where = f"messages.{m}.content.{j}"
            if role != "user":
                raise DocumentError("document blocks may appear only in user messages", field=f"{where}.type")
            doc, file_id = read_source(block.get("source"), where, resolve_file)
            found.append(DocumentInput(len(found), m, doc, _str_or_none(block, "title", where, MAX_TITLE),
                                       _str_or_none(block, "context", where), _citations(block, where), file_id))
    if len({d.citations for d in found}) > 1:
        raise DocumentError("citations must be enabled on all documents or on none of them", field="messages")
    return found
