"""The migrated schema: what upstreams send fits, and the models match the migrations."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from db.engine import Database
from db.migrate import upgrade
from db.models import Base


async def _migrated(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}")
    await upgrade(db)
    return db


async def test_an_sms_used_as_the_code_fits_the_code_column(tmp_path: Path) -> None:
    """5sim falls back to the whole SMS text when it has no code field: a VARCHAR(64) made
    PostgreSQL refuse the write, so the code was never delivered."""
    db = await _migrated(tmp_path)
    async with db.engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"]: c["type"] for c in inspect(sync).get_columns("activations")}
        )
    await db.dispose()
    for name in ("code", "sms_text"):
        assert getattr(columns[name], "length", None) is None, (name, columns[name])


async def test_the_models_match_the_migrations(tmp_path: Path) -> None:
    db = await _migrated(tmp_path)
    async with db.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    await db.dispose()
    assert diff == []
