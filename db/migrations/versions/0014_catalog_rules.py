"""catalog rules and run-time rates: what an admin hides, prices, renames (/hide, /show, /price,
/minprofit, /rename) and a provider's exchange rate set by /rate over its PROVIDERS `rate`

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_rules",
        # hide | price | minprofit | rename
        sa.Column("rule", sa.String(16), primary_key=True),
        # country | service | otp | smm | category
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False, server_default=""),
        sa.Column("admin_id", sa.BigInteger()),
        sa.Column("updated_at", TS, nullable=False),
    )
    with op.batch_alter_table("provider_settings") as batch:
        batch.add_column(sa.Column("rate", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provider_settings") as batch:
        batch.drop_column("rate")
    op.drop_table("catalog_rules")
