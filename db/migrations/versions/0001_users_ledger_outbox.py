"""users, ledger, outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("username", sa.String(64)),
        sa.Column("first_name", sa.String(128)),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("banned", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("blocked_bot", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("balance >= 0", name="ck_users_balance_nonnegative"),
    )
    op.create_index("ix_users_username", "users", ["username"])
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(64)),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column("admin_id", sa.BigInteger()),
        sa.Column("comment", sa.String(256)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_ledger_user_id_id", "ledger", ["user_id", "id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("not_before", TS),
        sa.Column("sent_at", TS),
        sa.Column("failed", sa.String(256)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_outbox_pending", "outbox", ["sent_at", "id"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("ledger")
    op.drop_index("ix_users_username", "users")
    op.drop_table("users")
