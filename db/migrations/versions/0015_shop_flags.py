"""shop_flags: shop-wide switches an admin sets at run time (maintenance mode)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_flags",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text()),
        sa.Column("admin_id", sa.BigInteger()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("shop_flags")
