"""activations, catalog snapshots

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "activations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("confirm_key", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("country", sa.String(48), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(32)),
        sa.Column("provider_order_id", sa.String(64)),
        sa.Column("phone", sa.String(32)),
        sa.Column("upstream_price", sa.String(32)),
        sa.Column("upstream_currency", sa.String(3)),
        sa.Column("rate", sa.String(32)),
        sa.Column("markup_percent", sa.String(16)),
        sa.Column("code", sa.String(64)),
        sa.Column("sms_text", sa.Text()),
        sa.Column("codes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("fail_reason", sa.String(64)),
        sa.Column("card_chat_id", sa.BigInteger()),
        sa.Column("card_message_id", sa.BigInteger()),
        sa.Column("card_updated_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("cancel_after", TS),
        sa.Column("expires_at", TS),
        sa.Column("closed_at", TS),
    )
    op.create_index("ix_activations_status", "activations", ["status", "provider"])
    op.create_index("ix_activations_user", "activations", ["user_id", "id"])
    op.create_index(
        "ix_activations_provider_order", "activations", ["provider", "provider_order_id"]
    )
    op.create_table(
        "catalog_snapshots",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_snapshots")
    op.drop_table("activations")
