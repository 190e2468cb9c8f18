"""activations.code without a length: 5sim gives the whole SMS when it has no code field

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activations") as batch:
        batch.alter_column("code", type_=sa.Text(), existing_type=sa.String(64))


def downgrade() -> None:
    with op.batch_alter_table("activations") as batch:
        batch.alter_column("code", type_=sa.String(64), existing_type=sa.Text())
