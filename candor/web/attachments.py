"""Files attached to a conversation on the chat page.

An attachment is a row of the Files API's table, stored through the same FileStore
(candor.documents.files): read and checked before anything is stored (type, size, corruption,
encryption, text layer, zip bombs), bytes and metadata in one transaction. It also names its
conversation, so it is deleted with the conversation (a foreign key with ON DELETE CASCADE:
deleting the conversation, deleting its user, or the retention purge), and its owner is the
page's caller, `user:<id>` (candor.serving.files.owner_of), which no API key ever is: another
user, or an API key, gets 404 for it.

Questions reach the attachments the way API document blocks reach uploads: the conversation's
files become `file` sources with citations on, read, placed and cited by
candor.serving.documents, the service the Messages API uses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from candor.accounts.keys import page_caller
from candor.chat.render import Message
from candor.documents.blocks import DocumentInput
from candor.documents.extract import Document
from candor.documents.files import FileMeta, FileStore
from candor.engine.hub import LoadedModel
from candor.errors import NotFoundError
from candor.serving.documents import PlacedDocuments, place_documents, read_documents_of
from candor.serving.files import owner_of
from candor.store.models import User


def owner(user: User) -> str:
    return owner_of(page_caller(user))[0]


def view(meta: FileMeta) -> dict[str, Any]:
    return {"id": meta.id, "filename": meta.filename, "mime_type": meta.mime_type, "size_bytes": meta.size_bytes,
            "kind": meta.kind, "pages": meta.pages, "tokens": meta.tokens, "created_at": meta.created_at.isoformat()}


async def attach(files: FileStore, model: LoadedModel, user: User, conversation_id: int, filename: str | None,
                 content_type: str | None, data: bytes) -> tuple[FileMeta, Document]:
    """Read the file (a file that cannot be read is refused and nothing is stored), count its
    text in the conversation's model's tokens, and store it with the conversation."""
    upload = await asyncio.to_thread(files.read, filename, content_type, data)
    tokens = await model.engine.count_tokens(upload.doc.text)
    meta = await asyncio.to_thread(files.save, owner(user), None, upload, conversation_id=conversation_id,
                                   tokens=tokens)
    return meta, upload.doc


def listed(files: FileStore, user: User, conversation_id: int) -> list[FileMeta]:
    return files.attachments(owner(user), conversation_id)


def owned(files: FileStore, user: User, conversation_id: int, file_id: str) -> FileMeta:
    """One attachment of this user's conversation; 404 for anything else, another user's included."""
    meta = files.get(owner(user), file_id)  # 404 for another owner's file
    if meta.conversation_id != conversation_id:
        raise NotFoundError(f"attachment `{file_id}` not found in this conversation", field="file_id")
    return meta


def blocks(metas: list[FileMeta]) -> list[dict[str, Any]]:
    """The attachments as Anthropic document blocks: file sources, titled, citations on."""
    return [{"type": "document", "source": {"type": "file", "file_id": m.id}, "title": m.filename,
             "citations": {"enabled": True}} for m in metas]


async def read(files: FileStore, user: User, metas: list[FileMeta]) -> list[DocumentInput]:
    """The attachments read as the API reads file sources (for their owner only)."""
    return await read_documents_of([("user", blocks(metas))], files, owner(user))


async def place(files: FileStore, model: LoadedModel, user: User, conversation_id: int, messages: list[Message],
                system: str | None, max_tokens: int) -> tuple[list[Message], PlacedDocuments | None]:
    """The turns with the conversation's attachments placed before the last question (whole when
    they fit the window, else retrieved passages), or unchanged when it has none."""
    metas = await asyncio.to_thread(listed, files, user, conversation_id)
    if not metas or not messages:
        return messages, None
    wire: list[tuple[str, Any]] = [(m.role, m.content) for m in messages[:-1]]
    wire.append((messages[-1].role, [*blocks(metas), {"type": "text", "text": messages[-1].content}]))
    docs = await read_documents_of(wire, files, owner(user))
    return await place_documents(model, messages, system, docs, max_tokens, formatted=False)
