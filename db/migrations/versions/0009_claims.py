"""claims on orders in flight, so that every process sees them

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("activations") as batch:
        batch.add_column(sa.Column("claimed_until", TS, nullable=True))
    with op.batch_alter_table("smm_orders") as batch:
        batch.add_column(sa.Column("claimed_until", TS, nullable=True))
        batch.add_column(sa.Column("acting_until", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("smm_orders") as batch:
        batch.drop_column("acting_until")
        batch.drop_column("claimed_until")
    with op.batch_alter_table("activations") as batch:
        batch.drop_column("claimed_until")
