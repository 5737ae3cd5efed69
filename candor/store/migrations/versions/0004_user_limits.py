"""Chat-page limits per user: rate limits and a monthly spend limit, and their token buckets.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("rpm", sa.Integer))
        batch.add_column(sa.Column("itpm", sa.Integer))
        batch.add_column(sa.Column("otpm", sa.Integer))
        batch.add_column(sa.Column("monthly_limit_usd", sa.Numeric(14, 6)))
    op.create_table(
        "user_rate_buckets",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("requests", sa.Double, nullable=False),
        sa.Column("input_tokens", sa.Double, nullable=False),
        sa.Column("output_tokens", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_index("ix_usage_user_time", "usage", ["user_pseudonym", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_user_time", "usage")
    op.drop_table("user_rate_buckets")
    with op.batch_alter_table("users") as batch:
        for column in ("monthly_limit_usd", "otpm", "itpm", "rpm"):
            batch.drop_column(column)
