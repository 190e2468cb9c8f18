"""Writes that must not fail when the row is already there: dialect-specific SQL, kept here (as
a worker's row claims are in db/claims.py). SQLite and PostgreSQL both spell it
`INSERT ... ON CONFLICT (...) DO NOTHING / DO UPDATE`, but SQLAlchemy builds it from each
dialect's own `insert()`.

Under concurrency (PostgreSQL, or several processes) a read-then-insert can lose the race and
raise IntegrityError; these statements cannot: the database decides, in one statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def _insert(session: AsyncSession, table: Table) -> sqlite.Insert | postgresql.Insert:
    return _dialect_insert(session.get_bind().dialect.name, table)


def _dialect_insert(dialect: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"no upsert for the {dialect} dialect")


def _table(model: type[DeclarativeBase]) -> Table:
    return cast(Table, model.__table__)


def insert_ignore_statement(
    dialect: str, model: type[DeclarativeBase], *, keys: Sequence[str]
) -> sqlite.Insert | postgresql.Insert:
    """`insert_ignore()` as a statement to build once and execute with each row's values as
    parameters (rowcount 1: inserted)."""
    statement = _dialect_insert(dialect, _table(model))
    return statement.on_conflict_do_nothing(index_elements=list(keys))


async def insert_ignore(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: Mapping[str, Any],
    *,
    keys: Sequence[str],
) -> bool:
    """INSERT the row unless one with the same `keys` (a unique or primary key) exists.
    True if this statement inserted it. A concurrent uncommitted insert of the same key is
    waited for: it commits (False here) or rolls back (this one inserts)."""
    statement = _insert(session, _table(model)).values(dict(values))
    statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount == 1


async def upsert(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: Mapping[str, Any],
    *,
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """INSERT the row, or on a conflict of `keys` set the `update` columns to `values`'."""
    statement = _insert(session, _table(model)).values(dict(values))
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={column: statement.excluded[column] for column in update},
    )
    await session.execute(statement)
