"""Moderation decisions: one row per flagged request or answer (candor.moderation).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderation_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id", ondelete="SET NULL")),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("model", sa.String(120), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("category", sa.String(32)),
        sa.Column("score", sa.Double, nullable=False),
        sa.Column("threshold", sa.Double, nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("reviewed", sa.Boolean, nullable=False),
    )
    for column in ("created_at", "request_id", "key_id", "user_id"):
        op.create_index(f"ix_moderation_events_{column}", "moderation_events", [column])


def downgrade() -> None:
    for column in ("user_id", "key_id", "request_id", "created_at"):
        op.drop_index(f"ix_moderation_events_{column}", "moderation_events")
    op.drop_table("moderation_events")
