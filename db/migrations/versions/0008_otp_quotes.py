"""otp_quotes: the price a confirmation screen showed, kept under its Buy button's token

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "otp_quotes",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("token", sa.String(32), primary_key=True),
        sa.Column("country", sa.String(48), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_otp_quotes_created_at", "otp_quotes", ["created_at"])


def downgrade() -> None:
    op.drop_table("otp_quotes")
