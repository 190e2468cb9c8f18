"""outbox edits: a row may edit a message already sent (the activation card) instead of sending

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("message_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("markup", sa.Text(), nullable=True))
    op.create_index("ix_outbox_message", "outbox", ["chat_id", "message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("markup")
        batch.drop_column("message_id")
