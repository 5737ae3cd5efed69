"""Files API: POST/GET /v1/files, GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content.

Both shapes the SDKs expect: with `anthropic-beta: files-api-2025-04-14` the legacy beta list
({data, has_more, first_id, last_id}, before_id/after_id cursors, no expires_at); without it the
GA list ({data, next_page}, `page` and `ids[]`). Uploads are downloadable by their owner (a
self-hosted deviation from Anthropic's cloud, where uploads are not). Storage: candor.documents.files;
ownership and the multipart body: candor.serving.files (shared with the chat page's attachments).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response

from candor.api.context import context_of
from candor.documents.files import FileStore
from candor.documents.index import default_cache
from candor.errors import InvalidRequestError
from candor.serving.files import multipart, owner_of

router = APIRouter()
BETA = "files-api-2025-04-14"


def _owner(request: Request) -> str:
    return owner_of(context_of(request).key)[0]


def _store(request: Request) -> FileStore:
    return request.app.state.files


def _legacy(request: Request) -> bool:
    return BETA in request.headers.get("anthropic-beta", "")


@router.post("/v1/files")
async def upload(request: Request, background: BackgroundTasks) -> dict:
    """Store the file, then index and embed it after the response (the first question finds it ready)."""
    store = _store(request)
    parts = multipart(await request.body(), request.headers.get("content-type", ""))
    if "file" not in parts:
        raise InvalidRequestError("Field required: a multipart part named 'file'", field="file")
    filename, content_type, data = parts["file"]
    expires = parts["expires_in_seconds"][2].decode("latin-1").strip() if "expires_in_seconds" in parts else None
    if expires is not None and not expires.lstrip("-").isdigit():
        raise InvalidRequestError("must be an integer number of seconds", field="expires_in_seconds")
    owner, key_id = owner_of(context_of(request).key)
    meta, doc = await asyncio.to_thread(store.create, owner, key_id, filename, content_type, data,
                                        int(expires) if expires is not None else None)
    background.add_task(default_cache().ingest, doc)  # a sync task: Starlette runs it in a thread
    return meta.wire(_legacy(request))


@router.get("/v1/files")
async def list_files(request: Request, limit: int = 20, page: str | None = None, after_id: str | None = None,
                     before_id: str | None = None) -> dict:
    legacy = _legacy(request)
    ids = request.query_params.getlist("ids[]") or request.query_params.getlist("ids") or None
    if not legacy and (after_id or before_id):
        raise InvalidRequestError("before_id and after_id need the anthropic-beta: files-api-2025-04-14 header; "
                                  "use page", field="after_id" if after_id else "before_id")
    if ids is not None and (page or "limit" in request.query_params):
        raise InvalidRequestError("ids[] cannot be combined with page or limit", field="ids[]")
    if ids is not None and len(ids) > 100:
        raise InvalidRequestError(f"at most 100 ids, got {len(ids)}", field="ids[]")
    if not 1 <= limit <= 1000:
        raise InvalidRequestError(f"must be between 1 and 1000, got {limit}", field="limit")
    store = _store(request)
    items, more = await asyncio.to_thread(store.list, _owner(request), 100 if ids else limit,
                                          page or after_id, before_id, ids)
    data = [m.wire(legacy) for m in items]
    if legacy:
        return {"data": data, "has_more": more, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}
    return {"data": data, "next_page": FileStore.page_token(items[-1]) if more and items else None}


@router.get("/v1/files/{file_id}")
async def get_file(file_id: str, request: Request) -> dict:
    meta = await asyncio.to_thread(_store(request).get, _owner(request), file_id)
    return meta.wire(_legacy(request))


@router.get("/v1/files/{file_id}/content")
async def download(file_id: str, request: Request) -> Response:
    meta, data = await asyncio.to_thread(_store(request).content, _owner(request), file_id)
    return Response(data, media_type=meta.mime_type,
                    headers={"content-disposition": f"attachment; filename=\"{meta.filename}\""})


@router.delete("/v1/files/{file_id}")
async def delete_file(file_id: str, request: Request) -> dict:
    await asyncio.to_thread(_store(request).delete, _owner(request), file_id)
    return {"id": file_id, "type": "file_deleted"}
