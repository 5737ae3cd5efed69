"""The chat page: sessions, branching turns with their statistics, votes and ratings.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("current_leaf_id", sa.Integer))
    with op.batch_alter_table("chat_messages") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer))
        batch.add_column(sa.Column("model", sa.String(120)))
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="done"))
        batch.add_column(sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("ttft_ms", sa.Double))
        batch.add_column(sa.Column("tokens_per_s", sa.Double))
        batch.add_column(sa.Column("cost_usd", sa.Numeric(14, 8), nullable=False, server_default="0"))
        batch.create_foreign_key("fk_chat_messages_parent", "chat_messages", ["parent_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_chat_messages_parent_id", ["parent_id"])
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index("ix_web_sessions_user_id", "web_sessions", ["user_id"])
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("conversation_id", sa.Integer, sa.ForeignKey("conversations.id", ondelete="SET NULL")),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("answer_a_id", sa.Integer, sa.ForeignKey("chat_messages.id", ondelete="SET NULL")),
        sa.Column("answer_b_id", sa.Integer, sa.ForeignKey("chat_messages.id", ondelete="SET NULL")),
        sa.Column("answer_a", sa.Text, nullable=False),
        sa.Column("answer_b", sa.Text, nullable=False),
        sa.Column("model_a", sa.String(120), nullable=False),
        sa.Column("model_b", sa.String(120), nullable=False),
        sa.Column("choice", sa.String(16)),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("voted_at", TZ),
    )
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("chat_messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("value", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("message_id", "user_id"),
    )
    op.create_index("ix_ratings_message_id", "ratings", ["message_id"])


def downgrade() -> None:
    op.drop_table("ratings")
    op.drop_table("votes")
    op.drop_table("web_sessions")
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_index("ix_chat_messages_parent_id")
        batch.drop_constraint("fk_chat_messages_parent", type_="foreignkey")
        for column in ("cost_usd", "tokens_per_s", "ttft_ms", "output_tokens", "input_tokens", "status", "model",
                       "parent_id"):
            batch.drop_column(column)
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("current_leaf_id")
