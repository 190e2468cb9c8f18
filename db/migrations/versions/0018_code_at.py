"""activations.code_at: when the first code arrived (the proofs channel's "code in 14 s")

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activations") as batch:
        batch.add_column(sa.Column("code_at", sa.DateTime(timezone=True)))
        batch.create_index("ix_activations_code_at", ["code_at"])


def downgrade() -> None:
    with op.batch_alter_table("activations") as batch:
        batch.drop_index("ix_activations_code_at")
        batch.drop_column("code_at")
