"""Self-critique audit records: the draft and each critique/revision round of an answer.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "critiques",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), unique=True),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id", ondelete="SET NULL")),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("chat_messages.id", ondelete="CASCADE")),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("seed", sa.BigInteger),
        sa.Column("draft", sa.Text, nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("final", sa.Text, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_critiques_created_at", "critiques", ["created_at"])
    op.create_index("ix_critiques_key_id", "critiques", ["key_id"])
    op.create_index("ix_critiques_message_id", "critiques", ["message_id"])


def downgrade() -> None:
    op.drop_table("critiques")
