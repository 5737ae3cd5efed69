"""Documents in a conversation, for every surface: document blocks read (Files API ids resolved for
their owner), placed in the model's window (whole or retrieved), and the answer cited.

The Messages API, the Chat Completions API and the chat page's attachments all come through
here: the page sends a conversation's attachments as `file` sources with citations on, exactly
as an API client would send its uploads.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from candor.chat.render import Message
from candor.documents.blocks import DocumentInput, FileResolver, read_documents
from candor.documents.cite import Citer, citer_for, content_blocks
from candor.documents.files import FileStore
from candor.documents.pack import Placement
from candor.documents.place import place
from candor.engine.hub import LoadedModel
from candor.errors import InvalidRequestError

CITATIONS_NOTE = ("chosen by the server: each answer sentence cites the document sentence that best supports "
                  "it by shared words and MiniLM similarity, when that support passes a threshold")


def resolver_for(files: FileStore | None, owner: str) -> FileResolver | None:
    """How `file` sources are read for `owner`: another owner's file is 404 (None: no Files API)."""
    if files is None:
        return None
    store = files

    def resolve(file_id: str, where: str) -> tuple[bytes, str, str]:
        return store.resolve(owner, file_id, where)

    return resolve


async def read_documents_of(messages: list[tuple[str, Any]], files: FileStore | None,
                            owner: str) -> list[DocumentInput]:
    """Every document block of (role, content) messages, read off the event loop (PDF extraction
    is CPU work); [] when there are none."""
    return await asyncio.to_thread(read_documents, messages, resolver_for(files, owner))


@dataclass
class PlacedDocuments:
    """What went into the prompt, and the citer that cites the answer when citations are on."""

    placements: list[Placement]
    citer: Citer | None

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"documents": [pl.report() for pl in self.placements]}
        if self.citer is not None:
            out["citations"] = CITATIONS_NOTE
        return out

    async def content(self, text: str) -> list[dict[str, Any]]:
        """The answer as text blocks: each cited sentence its own block with its citations."""
        if self.citer is None:
            return [{"type": "text", "text": text}] if text else []
        citer = self.citer
        return content_blocks(await asyncio.to_thread(citer.segments, text))


async def place_documents(model: LoadedModel, messages: list[Message], system: str | None,
                          docs: list[DocumentInput], max_tokens: int,
                          formatted: bool) -> tuple[list[Message], PlacedDocuments]:
    """The conversation with its documents packed into `model`'s window, and what was placed."""
    if formatted and any(d.citations for d in docs):
        raise InvalidRequestError("citations cannot be enabled together with a structured output format",
                                  field="output_config.format")
    placed, placements = await place(model, messages, system, docs, max_tokens)
    citer = await asyncio.to_thread(citer_for, placements)
    return placed, PlacedDocuments(placements, citer)
