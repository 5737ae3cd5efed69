"""The Files API's storage: uploads kept in the database, bytes and metadata in one row.

Why the database: an upload is one INSERT in one transaction, so a failed upload leaves nothing
behind and a delete removes bytes and metadata together; there is no second place (a folder) to
drift out of step after a crash, and PostgreSQL deployments get the files with their backups.
Uploads are checked by extracting their text first (type, corruption, encryption, text layer,
zip bombs), so only files a document block can use are stored.

Ownership: every file belongs to the caller that uploaded it (an API key, the server's bootstrap
keys as one owner, or anonymous callers of a --no-auth server); other callers get 404.

The chat page's attachments are rows of the same table that also name their conversation
(`conversation_id`, deleted with it by a foreign key) and the prompt tokens of their text
(`tokens`); their owner is the page's caller, `user:<id>`, which no API key ever is.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from candor.config import env
from candor.documents.errors import DocumentError, DocumentTooLargeError
from candor.documents.extract import KIND_MEDIA, Document, Limits, extract, kind_of
from candor.errors import InvalidRequestError, NotFoundError
from candor.store import Store
from candor.store.models import files

MAX_FILE_BYTES = 30 * 1024 * 1024  # under the server's 32 MB request limit, which the multipart body must fit
MIN_EXPIRY, MAX_EXPIRY = 3600, 7_776_000
_BAD_NAME = set('<>:"|?*\\/') | {chr(i) for i in range(32)}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class FileExpiredError(NotFoundError):
    """After `expires_at` a file's content is gone for downloads and document blocks (404)."""

    error_code = "file_expired"


def new_file_id() -> str:
    return "file_011" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def max_file_bytes() -> int:
    return int(env("CANDOR_FILES_MAX_BYTES") or MAX_FILE_BYTES)


@dataclass(frozen=True)
class FileMeta:
    id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: dt.datetime
    expires_at: dt.datetime | None
    kind: str
    pages: int | None
    conversation_id: int | None = None  # a chat-page attachment's conversation
    tokens: int | None = None  # a chat-page attachment's text in its model's tokens

    def wire(self, legacy: bool = False) -> dict:
        """file_metadata; the legacy beta shape (files-api-2025-04-14 header) has no expires_at."""
        out = {"id": self.id, "type": "file", "filename": self.filename, "mime_type": self.mime_type,
               "size_bytes": self.size_bytes, "created_at": _rfc3339(self.created_at), "downloadable": True}
        if not legacy:
            out["expires_at"] = _rfc3339(self.expires_at) if self.expires_at else None
        return out

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or dt.datetime.now(dt.UTC))


def _rfc3339(t: dt.datetime) -> str:
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def clean_filename(name: str | None, mime_type: str) -> str:
    """The last path component; an absent name becomes `unnamed` plus the type's extension."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base:
        ext = {v: k for k, v in KIND_MEDIA.items()}.get(mime_type, "text")
        return "unnamed." + {"markdown": "md", "text": "txt"}.get(ext, ext)
    if len(base) > 255:
        raise InvalidRequestError(f"is {len(base)} characters, over the limit of 255", field="file.filename")
    if any(c in _BAD_NAME for c in base):
        raise InvalidRequestError('must not contain < > : " | ? * \\ / or control characters', field="file.filename")
    return base


def _meta(row) -> FileMeta:
    utc = (lambda t: t if t is None or t.tzinfo else t.replace(tzinfo=dt.UTC))
    return FileMeta(row.id, row.filename, row.mime_type, row.size_bytes, utc(row.created_at), utc(row.expires_at),
                    row.kind, row.pages, row.conversation_id, row.tokens)


@dataclass(frozen=True)
class Upload:
    """An upload that was read successfully (see `FileStore.read`) and may now be stored."""

    meta: FileMeta
    doc: Document
    data: bytes


_COLUMNS = [c for c in files.c if c.name != "content"]


class FileStore:
    def __init__(self, store: Store, max_bytes: int | None = None):
        self.store = store
        self.max_bytes = max_bytes or max_file_bytes()

    def create(self, owner: str, key_id: int | None, filename: str | None, content_type: str | None, data: bytes,
               expires_in: int | None = None) -> tuple[FileMeta, Document]:
        """Store an upload once it has been read successfully; its metadata and extracted text."""
        upload = self.read(filename, content_type, data, expires_in)
        return self.save(owner, key_id, upload), upload.doc

    def read(self, filename: str | None, content_type: str | None, data: bytes,
             expires_in: int | None = None) -> Upload:
        """Check an upload and extract its text (type, size, corruption, encryption, text layer,
        zip bombs), storing nothing: a file that cannot be read is refused here."""
        if len(data) > self.max_bytes:
            raise DocumentTooLargeError(f"file is {len(data)} bytes, over the limit of {self.max_bytes}", field="file")
        if expires_in is not None and not MIN_EXPIRY <= expires_in <= MAX_EXPIRY:
            raise InvalidRequestError(f"must be between {MIN_EXPIRY} and {MAX_EXPIRY}, got {expires_in}",
                                      field="expires_in_seconds")
        declared = (content_type or "").split(";")[0].strip().lower() or None
        kind = kind_of(declared, filename, data, "file")
        doc = extract(data, declared, filename, limits=Limits(max_bytes=self.max_bytes), where="file")
        mime = declared if declared and (declared.startswith("text/") or declared in KIND_MEDIA.values()) \
            else KIND_MEDIA[kind]
        now = dt.datetime.now(dt.UTC)
        meta = FileMeta(new_file_id(), clean_filename(filename, mime), mime, len(data), now,
                        now + dt.timedelta(seconds=expires_in) if expires_in else None, kind,
                        len(doc.units) + len(doc.empty_pages) if kind == "pdf" else None)
        return Upload(meta, doc, data)

    def save(self, owner: str, key_id: int | None, upload: Upload, *, conversation_id: int | None = None,
             tokens: int | None = None) -> FileMeta:
        """Store a read upload in one transaction; a chat-page attachment names its conversation."""
        meta = dataclasses.replace(upload.meta, conversation_id=conversation_id, tokens=tokens)
        with self.store.session() as s:
            s.execute(files.insert().values(
                id=meta.id, owner=owner, key_id=key_id, filename=meta.filename, mime_type=meta.mime_type,
                size_bytes=meta.size_bytes, sha256=hashlib.sha256(upload.data).hexdigest(), kind=meta.kind,
                pages=meta.pages, created_at=meta.created_at, expires_at=meta.expires_at, content=upload.data,
                conversation_id=conversation_id, tokens=tokens))
        return meta

    def attachments(self, owner: str, conversation_id: int) -> list[FileMeta]:
        """A conversation's attachments, oldest first."""
        with self.store.session() as s:
            rows = s.execute(sa.select(*_COLUMNS).where(files.c.owner == owner, files.c.conversation_id == conversation_id)
                             .order_by(files.c.created_at, files.c.id))
            return [_meta(r) for r in rows]

    def get(self, owner: str, file_id: str) -> FileMeta:
        with self.store.session() as s:
            row = s.execute(sa.select(*_COLUMNS).where(files.c.id == file_id, files.c.owner == owner)).first()
        if row is None:
            raise NotFoundError(f"File `{file_id}` not found.", field="file_id")
        return _meta(row)

    def content(self, owner: str, file_id: str) -> tuple[FileMeta, bytes]:
        """The bytes of a live file; an expired one is 404 (its metadata stays readable)."""
        meta = self.get(owner, file_id)
        if meta.expired():
            raise FileExpiredError(f"File `{file_id}` has expired.", field="file_id")
        with self.store.session() as s:
            data = s.execute(sa.select(files.c.content).where(files.c.id == file_id)).scalar_one()
        return meta, data

    def delete(self, owner: str, file_id: str) -> None:
        with self.store.session() as s:
            gone = s.execute(sa.select(files.c.id).where(files.c.id == file_id, files.c.owner == owner)).first()
            if gone is not None:
                s.execute(files.delete().where(files.c.id == file_id))
        if gone is None:
            raise NotFoundError(f"File `{file_id}` not found.", field="file_id")

    def list(self, owner: str, limit: int = 20, after: str | None = None, before: str | None = None,
             ids: list[str] | None = None) -> tuple[list[FileMeta], bool]:
        """Newest first; `after`/`before` are file ids or page tokens (see `page_token`)."""
        order = (files.c.created_at.desc(), files.c.id.desc())
        query = sa.select(*_COLUMNS).where(files.c.owner == owner)
        if ids is not None:
            query = query.where(files.c.id.in_(ids))
        with self.store.session() as s:
            if after:
                t, i = self._position(s, owner, after, "page" if after.startswith("page_") else "after_id")
                query = query.where(sa.or_(files.c.created_at < t, sa.and_(files.c.created_at == t, files.c.id < i)))
            if before:
                t, i = self._position(s, owner, before, "before_id")
                query = query.where(sa.or_(files.c.created_at > t, sa.and_(files.c.created_at == t, files.c.id > i)))
                rows = list(s.execute(query.order_by(files.c.created_at.asc(), files.c.id.asc()).limit(limit + 1)))
                more = len(rows) > limit
                return [_meta(r) for r in reversed(rows[:limit])], more
            rows = list(s.execute(query.order_by(*order).limit(limit + 1)))
        return [_meta(r) for r in rows[:limit]], len(rows) > limit

    def _position(self, s, owner: str, cursor: str, field: str) -> tuple[dt.datetime, str]:
        if cursor.startswith("page_"):
            try:
                t, i = json.loads(base64.urlsafe_b64decode(cursor[5:] + "=" * (-len(cursor[5:]) % 4)))
                return dt.datetime.fromisoformat(t), i
            except (ValueError, TypeError):
                raise InvalidRequestError("is not a page token from a previous list", field=field) from None
        row = s.execute(sa.select(files.c.created_at, files.c.id)
                        .where(files.c.id == cursor, files.c.owner == owner)).first()
        if row is None:
            raise InvalidRequestError(f"no file {cursor!r}", field=field)
        return row.created_at, row.id

    @staticmethod
    def page_token(meta: FileMeta) -> str:
        raw = json.dumps([meta.created_at.isoformat(), meta.id]).encode()
        return "page_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def resolve(self, owner: str, file_id: str, where: str) -> tuple[bytes, str, str]:
        """For a document block's file source: 404 for another owner's or an expired file."""
        try:
            meta, data = self.content(owner, file_id)
        except NotFoundError as exc:
            raise type(exc)(exc.message, field=where) from None
        return data, meta.mime_type, meta.filename


__all__ = ["DocumentError", "FileMeta", "FileStore", "Upload", "files"]
