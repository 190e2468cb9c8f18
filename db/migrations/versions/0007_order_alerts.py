"""orders that need a human: when the admins were told, and SMM orders the panel cannot show

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("activations") as batch:
        batch.add_column(sa.Column("alerted_at", TS, nullable=True))
    with op.batch_alter_table("smm_orders") as batch:
        batch.add_column(sa.Column("trouble_since", TS, nullable=True))
        batch.add_column(sa.Column("trouble", sa.String(128), nullable=True))
        batch.add_column(sa.Column("alerted_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("smm_orders") as batch:
        batch.drop_column("alerted_at")
        batch.drop_column("trouble")
        batch.drop_column("trouble_since")
    with op.batch_alter_table("activations") as batch:
        batch.drop_column("alerted_at")
