"""api_keys: the reseller API's keys; a per-user API switch; orders placed quietly

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("push_codes", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        sa.UniqueConstraint("user_id", name="uq_api_keys_user_id"),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("api_allowed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    for table in ("activations", "smm_orders"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("quiet", sa.Boolean(), nullable=False, server_default=sa.false())
            )


def downgrade() -> None:
    for table in ("smm_orders", "activations"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("quiet")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("api_allowed")
    op.drop_table("api_keys")
