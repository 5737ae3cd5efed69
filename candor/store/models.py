"""Tables. Usage records hold counts and costs only, never prompt or answer text."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="pending")  # admin | member | pending
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | disabled
    password_hash: Mapped[str | None] = mapped_column(String(255))
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)  # what usage records name
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The chat page's limits for this user (None: the model tier's defaults); the monthly limit
    # caps everything the user spends, page answers and all their keys together.
    rpm: Mapped[int | None] = mapped_column(Integer)
    itpm: Mapped[int | None] = mapped_column(Integer)
    otpm: Mapped[int | None] = mapped_column(Integer)
    monthly_limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    keys: Mapped[list[ApiKey]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                              passive_deletes=True)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    prefix: Mapped[str] = mapped_column(String(32))  # shown in listings; the rest is never stored
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    models: Mapped[list[str] | None] = mapped_column(JSON)  # None: every model
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rpm: Mapped[int | None] = mapped_column(Integer)
    itpm: Mapped[int | None] = mapped_column(Integer)
    otpm: Mapped[int | None] = mapped_column(Integer)
    monthly_limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship(back_populates="keys")


class UsageRecord(Base):
    __tablename__ = "usage"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    key_prefix: Mapped[str] = mapped_column(String(32), default="")
    user_pseudonym: Mapped[str] = mapped_column(String(32), default="")
    end_user_hash: Mapped[str | None] = mapped_column(String(64))  # keyed hash of metadata.user_id
    model: Mapped[str] = mapped_column(String(120))
    endpoint: Mapped[str] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(14, 8), default=Decimal(0))
    ttft_ms: Mapped[float | None] = mapped_column(Numeric(12, 3))
    latency_ms: Mapped[float] = mapped_column(Numeric(12, 3), default=0)
    status: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_usage_key_time", "key_id", "created_at"), Index("ix_usage_time", "created_at"),
                      Index("ix_usage_user_time", "user_pseudonym", "created_at"))


class _Buckets:
    """Token-bucket levels (requests, input tokens, output tokens), refilled continuously at the
    per-minute limit. Updated with one conditional UPDATE, so limits hold across server processes
    sharing the database."""

    requests: Mapped[float] = mapped_column(Double)
    input_tokens: Mapped[float] = mapped_column(Double)
    output_tokens: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)  # unix seconds


class RateBucket(_Buckets, Base):
    """One API key's buckets."""

    __tablename__ = "rate_buckets"
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)


class UserRateBucket(_Buckets, Base):
    """One user's buckets for chat-page answers (a user's keys have their own)."""

    __tablename__ = "user_rate_buckets"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    model: Mapped[str] = mapped_column(String(120), default="")
    system: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    current_leaf_id: Mapped[int | None] = mapped_column(Integer)  # the branch on screen
    messages: Mapped[list[ChatMessage]] = relationship(back_populates="conversation", cascade="all, delete-orphan",
                                                       passive_deletes=True, order_by="ChatMessage.id")


class ChatMessage(Base):
    """A turn of a conversation. Turns form a tree (parent_id): editing a question or
    regenerating an answer adds a sibling, so earlier versions stay reachable."""

    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("chat_messages.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="done")  # done | stopped | error
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    ttft_ms: Mapped[float | None] = mapped_column(Double)
    tokens_per_s: Mapped[float | None] = mapped_column(Double)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(14, 8), default=Decimal(0))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # JSON: an answer about attachments, its citations and where they sit in the text, and what
    # went into the prompt; a summary, the parts it was made from (candor.web.citations)
    documents: Mapped[str | None] = mapped_column(Text)
    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the store only its hash."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Vote(Base):
    """A compare-mode judgement: the prompt, both answers and both models, and the choice."""

    __tablename__ = "votes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    prompt: Mapped[str] = mapped_column(Text)  # the conversation up to the answers, as the renderer wrote it
    answer_a_id: Mapped[int | None] = mapped_column(ForeignKey("chat_messages.id", ondelete="SET NULL"))
    answer_b_id: Mapped[int | None] = mapped_column(ForeignKey("chat_messages.id", ondelete="SET NULL"))
    answer_a: Mapped[str] = mapped_column(Text)
    answer_b: Mapped[str] = mapped_column(Text)
    model_a: Mapped[str] = mapped_column(String(120))
    model_b: Mapped[str] = mapped_column(String(120))
    choice: Mapped[str | None] = mapped_column(String(16))  # a | b | tie | both_bad; None until voted
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    voted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Rating(Base):
    """Thumbs up (+1) or down (-1) on an answer, with an optional comment."""

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("chat_messages.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    value: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (UniqueConstraint("message_id", "user_id"),)


class Setting(Base):
    """Server-wide values that must survive restarts (such as the end-user hashing secret)."""

    __tablename__ = "settings"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("name"),)


class CritiqueRecord(Base):
    """A self-critiqued answer's draft and critique/revision rounds, kept for audit (the answer
    itself is what the client got). Keyed by the API request id, or by the chat page's answer."""

    __tablename__ = "critiques"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("chat_messages.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(120))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    draft: Mapped[str] = mapped_column(Text)
    steps: Mapped[list] = mapped_column(JSON)  # [{round, principle, critique_request, critique, ...}]
    final: Mapped[str] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)


class ModerationEvent(Base):
    """A moderation decision on a request or an answer that the classifier flagged (candor.moderation):
    what was decided and why, for review by admins. The judged text is kept only when the deployment
    keeps conversation text (CANDOR_MODERATION_KEEP_TEXT), and is purged with it."""

    __tablename__ = "moderation_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    model: Mapped[str] = mapped_column(String(120), default="")
    stage: Mapped[str] = mapped_column(String(8))  # input | output
    action: Mapped[str] = mapped_column(String(8))  # allow | flag | block (allow: flagged, moderation off for the key)
    category: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    text: Mapped[str | None] = mapped_column(Text)
    reviewed: Mapped[bool] = mapped_column(default=False)


# The Files API's uploads (candor.documents.files reads and writes it with SQLAlchemy Core: bytes
# and metadata in one row), and the chat page's attachments, which also name their conversation
# and go with it. Created by migration 0006; conversation_id and tokens by 0007.
files = sa.Table(
    "files", Base.metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id", ondelete="CASCADE")),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("mime_type", sa.String(255), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("pages", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id", ondelete="CASCADE")),
    sa.Column("tokens", sa.Integer),
    sa.Index("ix_files_owner_created", "owner", "created_at"),
    sa.Index("ix_files_key_id", "key_id"),
    sa.Index("ix_files_conversation_id", "conversation_id"),
)
