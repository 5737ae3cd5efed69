"""Users, API keys, usage records, rate-limit buckets, conversations and settings.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(120), nullable=False, unique=True),
        sa.Column("email", sa.String(320)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255)),
        sa.Column("pseudonym", sa.String(32), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("approved_at", TZ),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("models", sa.JSON),
        sa.Column("expires_at", TZ),
        sa.Column("rpm", sa.Integer),
        sa.Column("itpm", sa.Integer),
        sa.Column("otpm", sa.Integer),
        sa.Column("monthly_limit_usd", sa.Numeric(14, 6)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ),
        sa.Column("last_used_at", TZ),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_table(
        "usage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id", ondelete="SET NULL")),
        sa.Column("key_prefix", sa.String(32), nullable=False),
        sa.Column("user_pseudonym", sa.String(32), nullable=False),
        sa.Column("end_user_hash", sa.String(64)),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Numeric(14, 8), nullable=False),
        sa.Column("ttft_ms", sa.Numeric(12, 3)),
        sa.Column("latency_ms", sa.Numeric(12, 3), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
    )
    op.create_index("ix_usage_key_time", "usage", ["key_id", "created_at"])
    op.create_index("ix_usage_time", "usage", ["created_at"])
    op.create_table(
        "rate_buckets",
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("requests", sa.Double, nullable=False),
        sa.Column("input_tokens", sa.Double, nullable=False),
        sa.Column("output_tokens", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("system", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_conversations_user_id", "conversations", ["user_id"])
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_chat_messages_conversation_id", "chat_messages", ["conversation_id"])
    op.create_table(
        "settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("settings", "chat_messages", "conversations", "rate_buckets", "usage", "api_keys", "users"):
        op.drop_table(table)
