"""Apply Alembic migrations at start-up, on the bot's own engine, under a lock.

Two bot processes started together (a restart overlapping the old one, two replicas) must not
both run a migration: the second waits for the first and then finds nothing to do. On PostgreSQL
the lock is a transaction-level advisory lock taken in the migrations' own transaction (DDL is
transactional there, so the whole upgrade commits at once and the lock goes with the commit); on
SQLite the transaction starts with `BEGIN IMMEDIATE`, which holds the database's write lock from
the first statement on.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from db.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock's key: any bigint of our own; this one is "otp-stor" in ASCII.
MIGRATION_LOCK = 0x6F74_702D_7374_6F72


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    def _run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    engine = database.engine.execution_options(sqlite_immediate=True)  # BEGIN IMMEDIATE
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        await connection.run_sync(_run)
