"""One page answer on its way: the turns the model sees, admission under the user's limits, the
question and answer stored, the answer streamed, saved (also when stopped) and metered.

Answers go through the same generation path as the API (candor.serving.generation) and, when the
conversation has attachments, the same documents service (candor.serving.documents): the
attachments are placed before the question and the finished answer is cited. A question is
stored only once its answer is admitted, so a refused one (429, 402) leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from candor.accounts.access import price
from candor.accounts.keys import page_caller
from candor.chat.render import Message
from candor.chat.service import ChatParams
from candor.engine.base import TextDelta
from candor.errors import CandorError, InvalidRequestError
from candor.serving.critique import record as record_critique
from candor.serving.documents import PlacedDocuments
from candor.serving.generation import Admitted, admit_generation, begin_generation
from candor.store.models import ChatMessage, User
from candor.web import attachments, citations
from candor.web import conversations as convs
from candor.web.admission import PageGate
from candor.web.common import sse, store_of, with_session


class PageAnswer:
    """One admitted answer on its way: the generation is begun inside the response stream.
    `placed`: the conversation's attachments as they went into the prompt (None: it has none)."""

    def __init__(self, admitted: Admitted, gate: PageGate, model: str, answer_id: int,
                 placed: PlacedDocuments | None = None):
        self.admitted, self.gate, self.model, self.answer_id = admitted, gate, model, answer_id
        self.placed = placed


def plan(request: Request, user: User, cid: int, content: str | None, parent_id: int | None):
    """The turns the model will see, before anything is stored: (messages, system, model of the
    conversation, id of the question when regenerating)."""

    def read(s):
        conv = convs.get_owned(s, user, cid)
        if content is None:  # regenerate
            if parent_id is None:
                raise InvalidRequestError("regenerating needs parent_id, the question to answer again", field="parent_id")
            question = convs.get_message(s, conv, parent_id)
            if question.role != "user":
                raise InvalidRequestError("parent_id must be a user turn", field="parent_id")
            return convs.history(s, conv, question), conv.system, conv.model, question.id
        if not content.strip():
            raise InvalidRequestError("the message is empty", field="content")
        if parent_id is not None and convs.get_message(s, conv, parent_id).role != "assistant":
            raise InvalidRequestError("a user turn must follow an assistant turn", field="parent_id")
        earlier = convs.history(s, conv, convs.get_message(s, conv, parent_id)) if parent_id is not None else []
        return [*earlier, Message("user", content)], conv.system, conv.model, None

    return with_session(store_of(request), read)


async def with_attachments(request: Request, user: User, cid: int, model: str, messages: list[Message],
                           system: str | None, max_tokens: int) -> tuple[list[Message], PlacedDocuments | None]:
    """The turns with the conversation's attachments placed in `model`'s window (see
    candor.web.attachments.place); unchanged when it has none."""
    loaded = await request.app.state.hub.get(model)
    return await attachments.place(request.app.state.files, loaded, user, cid, messages, system, max_tokens)


async def admit(request: Request, user: User, model: str, messages, system, params: ChatParams,
                critique: Any = None, endpoint: str = "/web/chat") -> tuple[Admitted, PageGate]:
    """Admission under the user's limits; a refusal is metered and raised (the page shows it)."""
    gate = PageGate(request.app.state.access, page_caller(user), endpoint)
    started = time.perf_counter()
    try:
        admitted = await admit_generation(request.app.state.hub, model, messages, system, params, gate, critique)
    except CandorError as exc:
        await asyncio.to_thread(gate.finish, request.app.state.hub.registry, model, status=exc.status_code,
                                input_tokens=0, output_tokens=0, ttft_s=None,
                                latency_s=time.perf_counter() - started)
        raise
    return admitted, gate


def store_turns(request: Request, user: User, cid: int, question_id: int | None, content: str | None,
                 parent_id: int | None, models: list[str]) -> tuple[int, list[int]]:
    """Save the question (unless regenerating) and a placeholder per answer, in one transaction."""

    def add(s):
        conv = convs.get_owned(s, user, cid)
        qid = question_id if question_id is not None else convs.add(s, conv, parent_id, "user", content).id
        answers = [convs.add(s, conv, qid, "assistant", "", model=m, status="streaming").id for m in models]
        return qid, answers

    return with_session(store_of(request), add)


async def stream_answer(request: Request, job: PageAnswer, side: str | None = None) -> AsyncIterator[bytes]:
    """Stream one admitted answer, saving it (also when stopped) and metering it; an answer about
    attachments is cited once it is complete, and keeps what went into its prompt either way."""
    store, model, answer_id = store_of(request), job.model, job.answer_id
    kept: dict[str, Any] = {"placements": job.placed.report()["documents"]} if job.placed is not None else {}
    yield sse({"type": "start", "side": side, "message_id": answer_id, "model": model})
    gen, status, started, error, http_status = None, "done", time.perf_counter(), None, 200
    try:
        gen = await begin_generation(job.admitted)
        async for event in gen.events():
            if isinstance(event, TextDelta):
                yield sse({"type": "delta", "side": side, "text": event.text})
    except CandorError as exc:
        status, error, http_status = "error", exc.message, exc.status_code
    except BaseException:
        status = "stopped"  # the page went away or pressed Stop: metered as served, like the API
        raise
    finally:
        text = "".join(gen.text_parts) if gen else ""
        fin = gen.finish if gen else None
        out_tokens = fin.usage.output_tokens if fin else len(gen.text_parts) if gen else 0
        in_tokens = gen.input_tokens if gen else 0
        entry = request.app.state.hub.registry.get(model)
        # a self-critiqued answer arrives whole at the end: its rate counts every call it took
        since = (gen.started if gen.critique is not None else gen.first_token_at or started) if gen else started
        elapsed = time.perf_counter() - since if gen else 0
        stats = {"input_tokens": in_tokens, "output_tokens": out_tokens,
                 "ttft_ms": gen.ttft * 1000 if gen and gen.ttft is not None else None,
                 "tokens_per_s": out_tokens / elapsed if elapsed > 0 else None,
                 "cost_usd": price(entry, in_tokens, out_tokens)}

        def save(s):
            msg = s.get(ChatMessage, answer_id)
            msg.content, msg.status = text, status
            msg.documents = json.dumps(kept) if kept else None
            for k, v in stats.items():
                setattr(msg, k, v)

        with_session(store, save)  # synchronous on purpose: this also runs while the request is cancelled
        if gen is not None and gen.critique is not None:
            record_critique(store, gen.critique, gen.critique_settings, model, message_id=answer_id)
        job.gate.finish(request.app.state.hub.registry, model, status=http_status, input_tokens=in_tokens,
                        output_tokens=out_tokens, ttft_s=gen.ttft if gen else None,
                        latency_s=time.perf_counter() - started)
    if job.placed is not None and job.placed.citer is not None and text:
        kept = citations.record(await job.placed.content(text), kept["placements"])
        await asyncio.to_thread(with_session, store,
                                lambda s: setattr(s.get(ChatMessage, answer_id), "documents", json.dumps(kept)))
    done = {"type": "done", "side": side, "message_id": answer_id, "status": status,
            "html": citations.render(text, kept), "critiqued": bool(gen and gen.critique is not None),
            "stop_reason": fin.stop_reason if fin else None, **stats, "cost_usd": str(stats["cost_usd"]),
            **citations.view_fields(kept)}
    if error:
        done["error"] = error
    yield sse(done)
