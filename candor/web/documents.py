"""HTTP for the chat page's attachments: attach (multipart, as the Files API takes it), list,
download, remove, and "Summarise", which streams its progress as server-sent events.

Storage and ownership: candor.web.attachments (the Files API's store; deleted with the
conversation). A summary runs candor.documents.summarize's map-reduce, each model call admitted
under the user's limits, moderated and metered like a page answer (endpoint "/web/summarize");
over a rate limit it waits for the retry time, and says so, rather than failing half-way. The
summary is stored as a question and answer of the conversation only once it is complete.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from candor.accounts.access import price
from candor.chat.render import Message
from candor.chat.service import ChatParams
from candor.documents.index import default_cache
from candor.documents.summarize import CHUNK_TOKENS, Summary, summarize
from candor.errors import AccessError, CandorError, InvalidRequestError
from candor.serving.files import multipart
from candor.serving.generation import begin_generation
from candor.store.models import User, utcnow
from candor.web import answers, attachments
from candor.web import conversations as convs
from candor.web.citations import render
from candor.web.common import in_session, sse, store_of, user_of, with_session

log = logging.getLogger(__name__)
router = APIRouter()
MAX_RATE_WAITS = 5  # per model call of a summary: a call that still cannot be admitted fails


def _files(request: Request):
    return request.app.state.files


@router.get("/web/api/conversations/{cid}/attachments")
async def list_attachments(cid: int, request: Request) -> dict:
    user = await user_of(request)
    await in_session(request, convs.get_owned, user, cid)
    metas = await asyncio.to_thread(attachments.listed, _files(request), user, cid)
    return {"data": [attachments.view(m) for m in metas]}


@router.post("/web/api/conversations/{cid}/attachments")
async def attach(cid: int, request: Request, background: BackgroundTasks) -> dict:
    """Store a file with the conversation once it has been read; index and embed it after the
    response, so the first question finds it ready."""
    user = await user_of(request)
    conv = await in_session(request, convs.get_owned, user, cid)
    parts = multipart(await request.body(), request.headers.get("content-type", ""))
    if "file" not in parts:
        raise InvalidRequestError("Field required: a multipart part named 'file'", field="file")
    filename, content_type, data = parts["file"]
    model = await request.app.state.hub.get(conv.model)
    meta, doc = await attachments.attach(_files(request), model, user, cid, filename, content_type, data)

    def touch(s):  # attaching is activity (retention counts from it); a new conversation takes the file's name
        conv = convs.get_owned(s, user, cid)
        conv.updated_at = utcnow()
        conv.title = conv.title or meta.filename

    await in_session(request, touch)
    background.add_task(default_cache().ingest, doc)  # a sync task: Starlette runs it in a thread
    return attachments.view(meta)


async def _attachment(request: Request, cid: int, file_id: str):
    """The signed-in user, the file store and the attachment `file_id` of their conversation `cid`
    (404 for anyone else's)."""
    user = await user_of(request)
    await in_session(request, convs.get_owned, user, cid)
    files = _files(request)
    return user, files, await asyncio.to_thread(attachments.owned, files, user, cid, file_id)


@router.get("/web/api/conversations/{cid}/attachments/{file_id}/content")
async def download(cid: int, file_id: str, request: Request) -> Response:
    user, files, meta = await _attachment(request, cid, file_id)
    _, data = await asyncio.to_thread(files.content, attachments.owner(user), meta.id)
    fallback = meta.filename.encode("ascii", "replace").decode().replace("?", "_")
    return Response(data, media_type=meta.mime_type, headers={
        "content-disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(meta.filename)}",
        "x-content-type-options": "nosniff", "content-security-policy": "sandbox"})


@router.delete("/web/api/conversations/{cid}/attachments/{file_id}")
async def remove(cid: int, file_id: str, request: Request) -> dict:
    user, files, meta = await _attachment(request, cid, file_id)
    await asyncio.to_thread(files.delete, attachments.owner(user), meta.id)
    return {"id": file_id, "deleted": True}


# -- summaries ------------------------------------------------------------------------------------
class SummaryRequest(BaseModel):
    parent_id: int | None = None  # the answer the summary follows (None: a conversation's first turn)
    max_tokens: int = Field(default=300, ge=16)  # the summary's; each part's summary gets half
    chunk_tokens: int = Field(default=CHUNK_TOKENS, ge=256)  # prompt tokens per model call


class _Calls:
    """The model calls of one summary: each admitted, moderated and metered like a page answer."""

    def __init__(self, request: Request, user: User, model: str, events: asyncio.Queue):
        self.request, self.user, self.model, self.events = request, user, model, events
        self.input_tokens = self.output_tokens = 0
        self.cost = Decimal(0)

    async def ask(self, prompt: str, max_tokens: int) -> str:
        state = self.request.app.state
        params = ChatParams(max_tokens=max_tokens, temperature=0)
        for attempt in range(MAX_RATE_WAITS + 1):
            try:
                admitted, gate = await answers.admit(self.request, self.user, self.model,
                                                     [Message("user", prompt)], None, params,
                                                     endpoint="/web/summarize")
                break
            except AccessError as exc:
                wait = exc.headers.get("retry-after")
                if exc.status_code != 429 or wait is None or attempt == MAX_RATE_WAITS:
                    raise
                self.events.put_nowait({"type": "progress", "stage": "waiting", "retry_after": int(wait)})
                await asyncio.sleep(max(1, int(wait)))
        started = time.perf_counter()
        gen, status = None, 200
        try:
            gen = await begin_generation(admitted)
            text, _ = await gen.collect()
        except CandorError as exc:
            status = exc.status_code
            raise
        finally:
            fin = gen.finish if gen else None
            out_tokens = fin.usage.output_tokens if fin else 0
            in_tokens = gen.input_tokens if gen else 0
            gate.finish(state.hub.registry, self.model, status=status, input_tokens=in_tokens,
                        output_tokens=out_tokens, ttft_s=gen.ttft if gen else None,
                        latency_s=time.perf_counter() - started)
            self.input_tokens += in_tokens
            self.output_tokens += out_tokens
            self.cost += price(state.hub.registry.get(self.model), in_tokens, out_tokens)
        return text.strip()


def _summary_record(title: str, file_id: str, summary: Summary) -> dict[str, Any]:
    return {"summary": {"file_id": file_id, "title": title, "mode": summary.mode,
                        "parts": [{"location": c.label(), "start_char_index": c.start, "end_char_index": c.end,
                                   "pages": list(c.pages) if c.pages else None, "summary": c.summary}
                                  for c in summary.chunks]}}


@router.post("/web/api/conversations/{cid}/attachments/{file_id}/summary")
async def summarise(cid: int, file_id: str, body: SummaryRequest, request: Request) -> StreamingResponse:
    """A structured summary of one attachment: `progress` events while it works (stage "map"
    with done/total for a long document, "reduce", "waiting" over a rate limit), then `done`
    with the stored answer, or `error`."""
    user = await user_of(request)

    def check(s):
        conv = convs.get_owned(s, user, cid)
        if body.parent_id is not None and convs.get_message(s, conv, body.parent_id).role != "assistant":
            raise InvalidRequestError("a summary must follow an assistant turn", field="parent_id")
        return conv.model

    model_name = await in_session(request, check)
    files = _files(request)
    meta = await asyncio.to_thread(attachments.owned, files, user, cid, file_id)
    (document,) = await attachments.read(files, user, [meta])
    model = await request.app.state.hub.get(model_name)
    events: asyncio.Queue = asyncio.Queue()
    calls = _Calls(request, user, model_name, events)

    def progress(stage: str, done: int, total: int) -> None:
        events.put_nowait({"type": "progress", "stage": stage, "done": done, "total": total})

    async def stream() -> AsyncIterator[bytes]:
        yield sse({"type": "progress", "stage": "start", "done": 0, "total": 1, "title": meta.filename,
                   "tokens": meta.tokens, "pages": meta.pages})
        task = asyncio.create_task(summarize(model, document.doc, body.max_tokens, body.chunk_tokens, progress, calls.ask))
        try:
            while not task.done() or not events.empty():
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield sse(getter.result())
                else:
                    getter.cancel()
            summary = task.result()
        except CandorError as exc:
            yield sse({"type": "error", "message": exc.message, "status": exc.status_code})
            return
        except Exception:  # said on the page; the details go to the log
            log.exception("summary of %s failed", file_id)
            yield sse({"type": "error", "message": "the summary failed on the server", "status": 500})
            return
        finally:
            if not task.done():
                task.cancel()  # the page went away: stop calling the model
        kept = _summary_record(meta.filename, meta.id, summary)

        def save(s):
            conv = convs.get_owned(s, user, cid)
            question = convs.add(s, conv, body.parent_id, "user", f"Summarise “{meta.filename}”")
            answer = convs.add(s, conv, question.id, "assistant", summary.text, model=model_name, status="done",
                               input_tokens=calls.input_tokens, output_tokens=calls.output_tokens,
                               cost_usd=calls.cost, documents=json.dumps(kept))
            return question.id, answer.id

        question_id, answer_id = await asyncio.to_thread(with_session, store_of(request), save)
        yield sse({"type": "done", "question_id": question_id, "message_id": answer_id, "html": render(summary.text, {}),
                   "input_tokens": calls.input_tokens, "output_tokens": calls.output_tokens,
                   "cost_usd": str(calls.cost), **kept})

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"})

