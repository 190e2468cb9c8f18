"""smm orders

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "smm_orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("confirm_key", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_order_id", sa.String(64)),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("service_name", sa.String(256), nullable=False),
        sa.Column("category", sa.String(256), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("link", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer()),
        sa.Column("interval", sa.Integer()),
        sa.Column("extra", sa.Text()),
        sa.Column("rate_per_1000", sa.BigInteger(), nullable=False),
        sa.Column("upstream_rate", sa.String(32), nullable=False),
        sa.Column("upstream_currency", sa.String(3), nullable=False),
        sa.Column("rate", sa.String(32), nullable=False),
        sa.Column("markup_percent", sa.String(16), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("can_refill", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("can_cancel", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("start_count", sa.BigInteger()),
        sa.Column("remains", sa.BigInteger()),
        sa.Column("refill_id", sa.String(64)),
        sa.Column("refill_status", sa.String(32)),
        sa.Column("fail_reason", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("submitted_at", TS),
        sa.Column("checked_at", TS),
        sa.Column("cancel_requested_at", TS),
        sa.Column("closed_at", TS),
        sa.CheckConstraint("refunded >= 0 AND refunded <= price", name="ck_smm_orders_refund"),
    )
    op.create_index("ix_smm_orders_status", "smm_orders", ["status", "provider"])
    op.create_index("ix_smm_orders_user", "smm_orders", ["user_id", "id"])
    op.create_index(
        "ix_smm_orders_provider_order", "smm_orders", ["provider", "provider_order_id"]
    )


def downgrade() -> None:
    op.drop_table("smm_orders")
