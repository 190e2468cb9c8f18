"""payments: customers' own top-ups (Telegram Stars, Crypto Pay)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(128)),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("credited", sa.BigInteger()),
        sa.Column("price", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("rate", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("refund_attempts", sa.Integer(), nullable=False),
        sa.Column("pay_url", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("paid_at", TS),
        sa.Column("refunded_at", TS),
        sa.UniqueConstraint("method", "external_id", name="uq_payments_method_external_id"),
    )
    op.create_index("ix_payments_status", "payments", ["status", "method", "id"])
    op.create_index("ix_payments_user_id_id", "payments", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_payments_user_id_id", table_name="payments")
    op.drop_index("ix_payments_status", table_name="payments")
    op.drop_table("payments")
