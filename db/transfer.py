"""Move a shop from SQLite to PostgreSQL: `python -m bot migrate-data <sqlite-url> <pg-url>`.

The target is migrated to head first; the source must already be there (the bot upgrades its own
database at start-up), so both have the same tables and columns, the ones in `db/models.py`.
Every table is then copied in foreign-key order, in batches, in ONE transaction on the target,
which also locks the tables against a bot started on it meanwhile. Before that transaction
commits, every table is read back row by row and compared with the source (in primary-key
order), and the caller's own check (the ledger audit) runs on the copy: any difference rolls the
whole copy back, so the target is either a faithful copy or as empty as it was. The source is
read in one transaction too (a consistent snapshot); nothing is written to it (it is opened as
the bot opens it, which keeps a shop's database in WAL mode).

Integer ids are copied as they are; afterwards each id sequence is set past the largest id, so
the bot's next row gets a fresh one.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Column, ColumnElement, Row, Table, func, inspect, select, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import String

from db.engine import Database, DatabaseUnavailable, _reason, check_database, parse_url
from db.migrate import alembic_config, upgrade
from db.models import Base

BATCH = 1000
LOCK_TIMEOUT = "10s"
SQLITE_EXAMPLE = "sqlite+aiosqlite:///data/bot.db"
POSTGRESQL_EXAMPLE = "postgresql+asyncpg://user:password@host:5432/database"
FIRST_LOOK = ("users", "ledger")  # a shop's rows, if any: named first when refusing a target

# A check of the copy inside the target's transaction: None if it passes, else why (one line).
Check = Callable[[AsyncSession], Awaitable[str | None]]


class TransferRefused(Exception):
    """A precondition does not hold; nothing was written (one line, never a password)."""


class TransferFailed(Exception):
    """The copy or its check failed and was rolled back (one line naming the table)."""


@dataclass(frozen=True)
class TransferReport:
    revision: str
    rows: dict[str, int]  # table -> rows copied, in copy order
    next_ids: dict[str, int]  # table -> the id its sequence gives next

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def tables() -> list[Table]:
    """The shop's tables, parents before children (alembic_version is not one of them)."""
    return list(Base.metadata.sorted_tables)


def masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def transfer(
    source_url: str, target_url: str, *, check: Check | None = None
) -> TransferReport:
    """Copy every row of the SQLite shop at `source_url` into the empty PostgreSQL database at
    `target_url`. TransferRefused: nothing was tried; TransferFailed: rolled back."""
    source_path = _source_path(source_url)
    _checked_url("target", target_url, "postgresql")
    if not source_path.is_file():
        raise TransferRefused(f"source: no database at {source_path}")
    for role, url in (("source", source_url), ("target", target_url)):
        try:
            await check_database(url)
        except DatabaseUnavailable as exc:
            raise TransferRefused(f"{role}: {exc}") from None
    source, destination = Database(source_url), Database(target_url)
    try:
        revision = await _source_revision(source)
        await _refuse_rows(destination)
        await _upgrade_target(destination)
        return await _copy(source, destination, revision, check)
    finally:
        await source.dispose()
        await destination.dispose()


async def _copy(
    source: Database, target: Database, revision: str, check: Check | None
) -> TransferReport:
    async with (
        source.engine.connect() as src,
        src.begin(),  # one snapshot of the source for the copy and the comparison
        target.engine.connect() as dst,
        dst.begin(),  # all or nothing
    ):
        await _lock(dst)
        await _refuse_rows_in(dst, tables())
        rows = {table.name: await _copy_table(src, dst, table) for table in tables()}
        next_ids = await _reset_sequences(dst)
        for table in tables():
            await _compare(src, dst, table)
        if check is not None:
            async with AsyncSession(bind=dst) as session:  # joins dst's transaction
                problem = await check(session)
            if problem is not None:
                raise TransferFailed(f"{problem}; nothing was written to the target")
    return TransferReport(revision=revision, rows=rows, next_ids=next_ids)


# --- preconditions ---------------------------------------------------------------------------


def _checked_url(role: str, url: str, backend: str) -> URL:
    try:
        parsed = parse_url(url)
    except ValueError as exc:
        raise TransferRefused(f"{role}: {exc}") from None
    if parsed.get_backend_name() != backend:
        example = SQLITE_EXAMPLE if backend == "sqlite" else POSTGRESQL_EXAMPLE
        raise TransferRefused(f"{role}: must be a {backend} URL ({example})")
    return parsed


def _source_path(url: str) -> Path:
    parsed = _checked_url("source", url, "sqlite")
    if not parsed.database or parsed.database == ":memory:":
        raise TransferRefused(f"source: names no database file ({SQLITE_EXAMPLE})")
    return Path(parsed.database)


def _revisions() -> tuple[str, set[str]]:
    """This bot's head revision, and every revision it knows."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return str(scripts.get_current_head()), {s.revision for s in scripts.walk_revisions()}


async def _source_revision(source: Database) -> str:
    def read(connection: Connection) -> str | None:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()

    async with source.engine.connect() as connection:
        revision = await connection.run_sync(read)
    head, known = _revisions()
    if revision is None:
        raise TransferRefused("source: not a shop database (it has no alembic_version table)")
    if revision == head:
        return revision
    if revision not in known:
        raise TransferRefused(
            f"source: at revision {revision}, which this bot does not know (written by a newer"
            " version?): run migrate-data from that version"
        )
    raise TransferRefused(
        f"source: at revision {revision}, this bot's migrations end at {head}: start the bot"
        " once on the source (its DATABASE_URL) so that it upgrades it, stop it, then run"
        " migrate-data again"
    )


async def _refuse_rows(target: Database) -> None:
    """Before migrating the target: refuse one that already holds a shop's rows."""

    def existing(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    async with target.engine.connect() as connection:
        present = await connection.run_sync(existing)
        await _refuse_rows_in(connection, [t for t in tables() if t.name in present])


async def _refuse_rows_in(connection: AsyncConnection, among: list[Table]) -> None:
    for table in sorted(among, key=lambda t: t.name not in FIRST_LOOK):
        if await connection.scalar(select(1).select_from(table).limit(1)) is not None:
            raise TransferRefused(
                f"target is not empty ({table.name} has rows): migrate-data copies into an"
                " empty database only"
            )


async def _upgrade_target(target: Database) -> None:
    try:
        await upgrade(target)
    except CommandError as exc:  # e.g. a revision this bot does not know
        raise TransferRefused(f"target: {' '.join(str(exc).split())}") from None


async def _lock(dst: AsyncConnection) -> None:
    """No bot may write to the target while it is being filled (it waits, or we give up)."""
    names = ", ".join(dst.dialect.identifier_preparer.format_table(t) for t in tables())
    try:
        await dst.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        await dst.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
    except DBAPIError as exc:
        raise TransferRefused(
            f"target: its tables are in use ({_reason(exc)}): stop every bot on it first"
        ) from None


# --- the copy --------------------------------------------------------------------------------


def _key(table: Table, connection: AsyncConnection) -> list[ColumnElement[Any]]:
    """ORDER BY the primary key, the same on both: byte order for strings (SQLite's BINARY,
    PostgreSQL's "C"), whatever the PostgreSQL database's collation."""
    columns: list[Column[Any]] = list(table.primary_key.columns)
    if connection.dialect.name != "postgresql":
        return list(columns)
    return [c.collate("C") if isinstance(c.type, String) else c for c in columns]


async def _batches(connection: AsyncConnection, table: Table) -> AsyncGenerator[list[Row[Any]]]:
    query = select(table).order_by(*_key(table, connection))
    result = await connection.stream(query.execution_options(yield_per=BATCH))
    async for partition in result.partitions(BATCH):
        yield list(partition)


async def _copy_table(src: AsyncConnection, dst: AsyncConnection, table: Table) -> int:
    copied = 0
    try:
        async for batch in _batches(src, table):
            await dst.execute(table.insert(), [dict(row._mapping) for row in batch])
            copied += len(batch)
    except SQLAlchemyError as exc:
        raise TransferFailed(
            f"{table.name}: copying the rows from row {copied + 1} on failed ({_reason(exc)});"
            " nothing was written to the target"
        ) from None
    return copied


async def _reset_sequences(dst: AsyncConnection) -> dict[str, int]:
    """Each serial id's sequence: the next value is max(id) + 1 (1 for an empty table)."""
    next_ids: dict[str, int] = {}
    for table in tables():
        column = table.autoincrement_column
        if column is None:
            continue
        largest = select(func.max(column)).scalar_subquery()
        sequence = func.pg_get_serial_sequence(table.name, column.name)
        # setval(..., false): the value given is the next one handed out; NULL: no sequence
        next_id = await dst.scalar(
            select(func.setval(sequence, func.coalesce(largest, 0) + 1, False))
        )
        if next_id is not None:
            next_ids[table.name] = int(next_id)
    return next_ids


async def _rows(connection: AsyncConnection, table: Table) -> AsyncGenerator[tuple[Any, ...]]:
    async for batch in _batches(connection, table):
        for row in batch:
            yield tuple(row)


async def _compare(src: AsyncConnection, dst: AsyncConnection, table: Table) -> None:
    """Every row of the target equals the source's, in the same order, and no more."""
    source_rows, target_rows = _rows(src, table), _rows(dst, table)
    number = 0
    try:
        while True:
            left = await anext(source_rows, None)
            right = await anext(target_rows, None)
            if left is None and right is None:
                return
            number += 1
            if left != right:
                row = left or right or ()
                names = table.columns.keys()
                ids = {c.name: row[names.index(c.name)] for c in table.primary_key.columns}
                how = "missing" if right is None else "extra" if left is None else "different"
                raise TransferFailed(
                    f"{table.name}: row {number} {ids} is {how} in the target after the copy;"
                    " nothing was written to the target"
                )
    finally:
        await source_rows.aclose()
        await target_rows.aclose()
