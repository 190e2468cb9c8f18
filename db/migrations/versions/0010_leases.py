"""leases for jobs one process runs at a time; claims on outbox and notification rows

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    for table in ("outbox", "notifications"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("claimed_until", TS, nullable=True))
            batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in ("notifications", "outbox"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("claimed_by")
            batch.drop_column("claimed_until")
    op.drop_table("leases")
