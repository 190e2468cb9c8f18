"""The migrated schema, on SQLite and PostgreSQL: what upstreams send fits, the models match the
migrations, and two processes starting together migrate once."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import BigInteger, inspect, text

from db.engine import Database
from db.migrate import alembic_config, upgrade
from db.models import Base

# Every amount of money, in micro-units: BigInteger (docs/money.md).
MONEY = {
    "users": ("balance",),
    "ledger": ("delta",),
    "activations": ("price",),
    "otp_quotes": ("price",),
    "smm_orders": ("price", "refunded", "rate_per_1000"),
}


async def _migrated(database_url: str) -> Database:
    db = Database(database_url)
    await upgrade(db)
    return db


async def _columns(db: Database, table: str) -> dict[str, object]:
    async with db.engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: {c["name"]: c["type"] for c in inspect(sync).get_columns(table)}
        )


async def test_an_sms_used_as_the_code_fits_the_code_column(database_url: str) -> None:
    """5sim falls back to the whole SMS text when it has no code field: a VARCHAR(64) made
    PostgreSQL refuse the write, so the code was never delivered."""
    db = await _migrated(database_url)
    columns = await _columns(db, "activations")
    await db.dispose()
    for name in ("code", "sms_text"):
        assert getattr(columns[name], "length", None) is None, (name, columns[name])


async def test_money_columns_are_64_bit(database_url: str) -> None:
    db = await _migrated(database_url)
    try:
        for table, names in MONEY.items():
            columns = await _columns(db, table)
            for name in names:
                assert isinstance(columns[name], BigInteger), (table, name, columns[name])
    finally:
        await db.dispose()


async def test_the_models_match_the_migrations(database_url: str) -> None:
    db = await _migrated(database_url)
    async with db.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    await db.dispose()
    assert diff == []


async def test_two_processes_starting_together_migrate_once(empty_database_url: str) -> None:
    """Two engines (two bot processes) upgrading one empty database at the same moment: the
    second waits for the first's lock, then finds the schema at head. Without the lock one of
    them fails (PostgreSQL: a table that already exists; SQLite: the database is locked)."""
    first, second = Database(empty_database_url), Database(empty_database_url)
    try:
        await asyncio.gather(upgrade(first), upgrade(second))
        async with first.read() as session:
            versions = (await session.execute(text("SELECT version_num FROM alembic_version")))
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert [row[0] for row in versions] == [head]
    finally:
        await first.dispose()
        await second.dispose()
