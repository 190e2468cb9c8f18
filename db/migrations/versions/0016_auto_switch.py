"""automatic provider switching and actions from the group: why a provider was switched off by
itself (provider_settings.auto_off_*), the buttons an alert carries (notifications.action,
.target) and what an admin did with them (group_actions)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("provider_settings") as batch:
        batch.add_column(sa.Column("auto_off_reason", sa.String(16), nullable=True))
        batch.add_column(sa.Column("auto_off_at", TS, nullable=True))
        batch.add_column(sa.Column("auto_off_detail", sa.String(200), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("action", sa.String(16), nullable=True))
        batch.add_column(sa.Column("target", sa.String(64), nullable=True))
    op.create_table(
        "group_actions",
        sa.Column("notification_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("verb", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("done_by", sa.BigInteger(), nullable=False),
        sa.Column("done_at", TS, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("detail", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("group_actions")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("target")
        batch.drop_column("action")
    with op.batch_alter_table("provider_settings") as batch:
        batch.drop_column("auto_off_detail")
        batch.drop_column("auto_off_at")
        batch.drop_column("auto_off_reason")
