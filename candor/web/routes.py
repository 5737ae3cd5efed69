"""HTTP for the chat page: pages, sign-in, conversations, streaming answers, compare and feedback.

Answers go through the same generation path as the API and are admitted and metered like an API
call: the user's own rate and spend limits (see candor.accounts.access), a usage record per
answer under the user's pseudonym and the key prefix "web". A question is stored only once its
answer is admitted, so a refused one (429, 402) leaves nothing behind and the page keeps the text
(candor.web.answers). Attachments and summaries: candor.web.documents.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from candor.accounts import users as user_ops
from candor.chat.service import ChatParams
from candor.errors import AccessError, InvalidRequestError, NotFoundError
from candor.moderation import records as moderation_records
from candor.serving.critique import as_json as critique_json
from candor.serving.critique import critique_settings
from candor.store.models import ChatMessage, CritiqueRecord, Rating, Vote, utcnow
from candor.web import answers, sessions
from candor.web import conversations as convs
from candor.web.common import in_session, sse, store_of, user_of, with_session
from candor.web.feedback import CHOICES, leaderboard, prompt_text
from candor.web.markdown import highlight_css

STATIC = Path(__file__).parent / "static"
router = APIRouter()


# -- pages ------------------------------------------------------------------------------------
@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


@router.get("/web/highlight.css", include_in_schema=False)
async def code_css() -> PlainTextResponse:
    return PlainTextResponse(highlight_css(), media_type="text/css")


# -- accounts ---------------------------------------------------------------------------------
class Credentials(BaseModel):
    username: str
    password: str
    email: str | None = None


@router.post("/web/api/signin")
async def signin(body: Credentials, request: Request, response: Response) -> dict:
    throttle = request.app.state.signin_throttle
    address = request.client.host if request.client else "unknown"
    throttle.attempt(body.username, address)  # 429 after too many failures for the name or address

    def check(s):
        user = user_ops.check_password(s, body.username, body.password)
        if user is not None:
            s.expunge(user)
        return user

    user = await in_session(request, check)
    if user is None:
        raise AccessError(401, "authentication_error", "wrong username or password")
    throttle.succeeded(body.username, address)
    if user.status != "active":
        raise AccessError(403, "permission_error", "this account is disabled")
    csrf = await asyncio.to_thread(sessions.start_session, store_of(request), user, request, response)
    return {"user": {"username": user.username, "role": user.role}, "csrf": csrf, "pending": user.role == "pending"}


@router.post("/web/api/signup")
async def signup(body: Credentials, request: Request) -> dict:
    """A request for an account: it waits as pending until an administrator approves it."""
    if not body.password:
        raise InvalidRequestError("is required", field="password")

    def make(s):
        user_ops.create_user(s, body.username, role="pending", password=body.password, email=body.email)

    await in_session(request, make)
    return {"status": "pending", "message": "Thanks! An administrator will review your request."}


@router.post("/web/api/signout")
async def signout(request: Request, response: Response) -> dict:
    await asyncio.to_thread(sessions.end_session, store_of(request), request, response)
    return {"signed_out": True}


@router.get("/web/api/me")
async def me(request: Request) -> dict:
    found = await asyncio.to_thread(sessions.current, store_of(request), request)
    if found is None:
        raise AccessError(401, "authentication_error", "sign in first")
    user, row = found
    if user.status != "active":
        raise AccessError(403, "permission_error", "this account is disabled")
    registry = request.app.state.hub.registry
    return {"user": {"username": user.username, "role": user.role}, "csrf": row.csrf_token,
            "pending": user.role == "pending", "models": registry.names, "default_model": registry.default_name()}


# -- conversations ------------------------------------------------------------------------------
class NewConversation(BaseModel):
    model: str | None = None
    system: str | None = None


class ConversationEdit(BaseModel):
    title: str | None = Field(default=None, max_length=300)
    model: str | None = None
    system: str | None = None


@router.get("/web/api/conversations")
async def list_conversations(request: Request, q: str | None = None) -> dict:
    user = await user_of(request)
    return {"data": await in_session(request, convs.list_for, user, q)}


@router.post("/web/api/conversations")
async def new_conversation(body: NewConversation, request: Request) -> dict:
    user = await user_of(request)
    registry = request.app.state.hub.registry
    model = body.model or registry.default_name()
    registry.get(model)
    return await in_session(request, lambda s: convs.view(s, convs.create(s, user, model, body.system), user))


@router.get("/web/api/conversations/{cid}")
async def get_conversation(cid: int, request: Request) -> dict:
    user = await user_of(request)
    return await in_session(request, lambda s: convs.view(s, convs.get_owned(s, user, cid), user))


@router.patch("/web/api/conversations/{cid}")
async def edit_conversation(cid: int, body: ConversationEdit, request: Request) -> dict:
    user = await user_of(request)
    if body.model:
        request.app.state.hub.registry.get(body.model)

    def edit(s):
        conv = convs.get_owned(s, user, cid)
        if body.title is not None:
            conv.title = body.title.strip()
        if body.model:
            conv.model = body.model
        if body.system is not None:
            conv.system = body.system.strip() or None
        return convs.view(s, conv, user)

    return await in_session(request, edit)


@router.delete("/web/api/conversations/{cid}")
async def delete_conversation(cid: int, request: Request) -> dict:
    user = await user_of(request)
    await in_session(request, lambda s: s.delete(convs.get_owned(s, user, cid)))
    return {"deleted": cid}


class Switch(BaseModel):
    message_id: int


@router.post("/web/api/conversations/{cid}/switch")
async def switch_branch(cid: int, body: Switch, request: Request) -> dict:
    user = await user_of(request)

    def go(s):
        conv = convs.get_owned(s, user, cid)
        convs.switch(s, conv, body.message_id)
        return convs.view(s, conv, user)

    return await in_session(request, go)


# -- answers ------------------------------------------------------------------------------------
class Turn(BaseModel):
    content: str | None = None  # None: regenerate the answer to parent_id
    parent_id: int | None = None
    model: str | None = None
    max_tokens: int = Field(default=1024, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=1)  # None: the model's default
    self_critique: int | None = Field(default=None, ge=0, le=8)  # None: the model's registry setting


class Comparison(BaseModel):
    content: str
    parent_id: int | None = None
    model_a: str
    model_b: str
    max_tokens: int = Field(default=1024, ge=1)
    temperature: float = Field(default=0.8, ge=0, le=1)


@router.post("/web/api/conversations/{cid}/messages")
async def send(cid: int, body: Turn, request: Request) -> StreamingResponse:
    user = await user_of(request)
    messages, system, conv_model, question_id = await asyncio.to_thread(
        answers.plan, request, user, cid, body.content, body.parent_id)
    model = body.model or conv_model
    params = ChatParams(max_tokens=body.max_tokens, temperature=body.temperature)
    critique = critique_settings(request.app.state.hub.registry.get(model), body.self_critique)
    messages, placed = await answers.with_attachments(request, user, cid, model, messages, system, body.max_tokens)
    admitted, gate = await answers.admit(request, user, model, messages, system, params, critique)
    question_id, (answer_id,) = await asyncio.to_thread(
        answers.store_turns, request, user, cid, question_id, body.content, body.parent_id, [model])
    job = answers.PageAnswer(admitted, gate, model, answer_id, placed)

    async def stream():
        yield sse({"type": "question", "message_id": question_id})
        async for chunk in answers.stream_answer(request, job):
            yield chunk

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"})


@router.post("/web/api/conversations/{cid}/compare")
async def compare(cid: int, body: Comparison, request: Request) -> StreamingResponse:
    """Two answers, one after the other; both are admitted before anything is stored."""
    user = await user_of(request)
    for name in (body.model_a, body.model_b):
        request.app.state.hub.registry.get(name)
    turns, system, _, _ = await asyncio.to_thread(answers.plan, request, user, cid, body.content, body.parent_id)
    seeds = random.sample(range(1, 2**31), 2)  # two samples of one model differ by seed
    admitted, placements = [], []
    for model, seed in ((body.model_a, seeds[0]), (body.model_b, seeds[1])):
        params = ChatParams(max_tokens=body.max_tokens, temperature=body.temperature, seed=seed)
        messages, placed = await answers.with_attachments(request, user, cid, model, turns, system, body.max_tokens)
        admitted.append(await answers.admit(request, user, model, messages, system, params))
        placements.append(placed)
    question_id, answer_ids = await asyncio.to_thread(
        answers.store_turns, request, user, cid, None, body.content, body.parent_id, [body.model_a, body.model_b])
    jobs = {side: answers.PageAnswer(adm, gate, model, aid, placed) for side, (adm, gate), model, aid, placed
            in zip("ab", admitted, (body.model_a, body.model_b), answer_ids, placements)}

    async def stream():
        yield sse({"type": "question", "message_id": question_id})
        for side in "ab":
            async for chunk in answers.stream_answer(request, jobs[side], side):
                yield chunk

        def record(s):
            conv = convs.get_owned(s, user, cid)
            question = convs.get_message(s, conv, question_id)
            a, b = s.get(ChatMessage, answer_ids[0]), s.get(ChatMessage, answer_ids[1])
            conv.current_leaf_id = a.id
            vote = Vote(user_id=user.id, conversation_id=cid, prompt=prompt_text(s, conv, question),
                        answer_a_id=a.id, answer_b_id=b.id, answer_a=a.content, answer_b=b.content,
                        model_a=body.model_a, model_b=body.model_b)
            s.add(vote)
            s.flush()
            return vote.id

        vote_id = await asyncio.to_thread(with_session, store_of(request), record)
        yield sse({"type": "compared", "vote_id": vote_id})

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-cache"})


class VoteBody(BaseModel):
    choice: str
    comment: str | None = Field(default=None, max_length=4000)


@router.post("/web/api/votes/{vote_id}")
async def vote(vote_id: int, body: VoteBody, request: Request) -> dict:
    user = await user_of(request)
    if body.choice not in CHOICES:
        raise InvalidRequestError(f"must be one of {', '.join(CHOICES)}, got {body.choice!r}", field="choice")

    def cast(s):
        v = s.get(Vote, vote_id)
        if v is None or v.user_id != user.id:
            raise InvalidRequestError(f"no vote {vote_id} of yours", field="vote")
        v.choice, v.comment, v.voted_at = body.choice, (body.comment or "").strip() or None, utcnow()
        conv = convs.get_owned(s, user, v.conversation_id)
        chosen = v.answer_b_id if body.choice == "b" else v.answer_a_id  # the chosen answer continues
        if chosen:
            conv.current_leaf_id = chosen
        return convs.view(s, conv, user)

    return await in_session(request, cast)


class RatingBody(BaseModel):
    value: int
    comment: str | None = Field(default=None, max_length=4000)


@router.post("/web/api/messages/{message_id}/rating")
async def rate(message_id: int, body: RatingBody, request: Request) -> dict:
    user = await user_of(request)
    if body.value not in (1, -1):
        raise InvalidRequestError(f"must be 1 (thumbs up) or -1 (thumbs down), got {body.value}", field="value")

    def put(s):
        msg = s.get(ChatMessage, message_id)
        if msg is None or msg.role != "assistant":
            raise InvalidRequestError(f"no answer {message_id}", field="message")
        convs.get_owned(s, user, msg.conversation_id)
        row = s.query(Rating).filter_by(message_id=message_id, user_id=user.id).one_or_none()
        if row is None:
            row = Rating(message_id=message_id, user_id=user.id, value=body.value)
            s.add(row)
        row.value, row.comment = body.value, (body.comment or "").strip() or None
        return {"message_id": message_id, "value": row.value, "comment": row.comment}

    return await in_session(request, put)


@router.get("/web/api/messages/{message_id}/critique")
async def critique(message_id: int, request: Request) -> dict:
    """The draft and critiques behind a self-critiqued answer (shown on request)."""
    user = await user_of(request)

    def load(s):
        msg = s.get(ChatMessage, message_id)
        if msg is None:
            raise NotFoundError(f"no answer {message_id}", field="message")
        convs.get_owned(s, user, msg.conversation_id)
        row = s.scalar(select(CritiqueRecord).where(CritiqueRecord.message_id == message_id))
        if row is None:
            raise NotFoundError(f"answer {message_id} was not self-critiqued", field="message")
        return critique_json(row)

    return await in_session(request, load)


@router.get("/web/api/leaderboard")
async def get_leaderboard(request: Request) -> dict:
    await user_of(request, admin=True)
    return {"data": await asyncio.to_thread(leaderboard, store_of(request))}



@router.get("/web/api/moderation/events")
async def flagged(request: Request, unreviewed: bool = False) -> dict:
    """Requests and answers the moderation classifier flagged, newest first (administrators)."""
    await user_of(request, admin=True)
    return {"data": await asyncio.to_thread(moderation_records.list_events, store_of(request), limit=100,
                                            unreviewed=unreviewed)}


@router.post("/web/api/moderation/events/{event_id}/reviewed")
async def reviewed(event_id: int, request: Request) -> dict:
    await user_of(request, admin=True)
    if not await asyncio.to_thread(moderation_records.mark_reviewed, store_of(request), event_id):
        raise NotFoundError(f"no moderation event {event_id}", field="event")
    return {"id": event_id, "reviewed": True}
