"""Chat-page attachments: files that belong to a conversation (deleted with it) with their token
count, and the citations or summary parts an answer keeps.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("conversation_id", sa.Integer))
        batch.add_column(sa.Column("tokens", sa.Integer))
        batch.create_foreign_key("fk_files_conversation", "conversations", ["conversation_id"], ["id"],
                                 ondelete="CASCADE")
        batch.create_index("ix_files_conversation_id", ["conversation_id"])
    with op.batch_alter_table("chat_messages") as batch:
        batch.add_column(sa.Column("documents", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_column("documents")
    op.execute("DELETE FROM files WHERE conversation_id IS NOT NULL")  # attachments cannot outlive the column
    with op.batch_alter_table("files") as batch:
        batch.drop_index("ix_files_conversation_id")
        batch.drop_constraint("fk_files_conversation", type_="foreignkey")
        batch.drop_column("tokens")
        batch.drop_column("conversation_id")
