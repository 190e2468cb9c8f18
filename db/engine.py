"""The database: one async engine, and units of work that never share a transaction.

SQLite (the default) runs in WAL mode with a busy timeout. Every write unit of work starts with
`BEGIN IMMEDIATE`, so two writers never interleave and a conditional debit can never lose an
update. Within one process, writers also queue on an asyncio.Lock: SQLite serializes them anyway,
and waiting on a lock is cheaper than sleeping in SQLite's busy handler. On PostgreSQL neither is
needed and both are skipped; repositories use portable SQL only, and the few statements that
differ between the two are built in `db/upsert.py` (upserts) and `db/claims.py` (row claims).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10.0
_AFTER_COMMIT = "after_commit"
# The URLs the bot runs on: (backend, driver) -> an example for the error message.
SUPPORTED = {
    ("sqlite", "aiosqlite"): "sqlite+aiosqlite:///data/bot.db",
    ("postgresql", "asyncpg"): "postgresql+asyncpg://user:password@host:5432/database",
}


class DatabaseUnavailable(Exception):
    """The database cannot be opened: one line saying which (never its password) and why."""


def parse_url(url: str) -> URL:
    """The URL if the bot can run on it; ValueError with a one-line reason otherwise (the
    message never repeats the URL: it may hold a password)."""
    examples = " or ".join(SUPPORTED.values())
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"is not a database URL (expected {examples})") from None
    if (parsed.get_backend_name(), parsed.get_driver_name()) not in SUPPORTED:
        raise ValueError(f"{parsed.drivername}:// is not supported (expected {examples})")
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        raise ValueError("names no database (expected .../<database> at the end)")
    return parsed


def after_commit(session: AsyncSession, topic: str) -> None:
    """Ask for `topic`'s subscribers (e.g. the outbox worker's wake-up) to run once this unit
    of work has committed; never if it rolls back. Whoever writes a row a worker sends calls
    this, so no caller has to kick a worker by hand."""
    session.info.setdefault(_AFTER_COMMIT, set()).add(topic)


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        # sqlite3: how long to wait for a lock; asyncpg: how long to wait for the server.
        timeout = BUSY_TIMEOUT_MS / 1000 if self.is_sqlite else CONNECT_TIMEOUT_S
        connect_args = {"timeout": timeout}
        self.engine: AsyncEngine = create_async_engine(
            self.url, echo=echo, connect_args=connect_args, pool_pre_ping=not self.is_sqlite
        )
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._write_engine = self.engine.execution_options(sqlite_immediate=True)
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._subscribers: defaultdict[str, list[Callable[[], None]]] = defaultdict(list)

    def subscribe(self, topic: str, callback: Callable[[], None]) -> None:
        """Run `callback` after every commit of a unit of work that asked for `topic`."""
        self._subscribers[topic].append(callback)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: commits on success, rolls back on any exception."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self._writer())
            async with session.begin():
                yield session
            topics = session.info.pop(_AFTER_COMMIT, set())
        for topic in sorted(topics):  # committed: the effects the unit of work collected
            for callback in self._subscribers.get(topic, ()):
                callback()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (a snapshot in WAL mode; never blocks writers)."""
        async with self._reader() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


async def check_database(url: str) -> None:
    """Open the database once and run `SELECT 1`; DatabaseUnavailable, one line, if that
    fails (a server that does not answer, a missing database, a wrong password, a SQLite
    folder that cannot be created)."""
    where = make_url(url).render_as_string(hide_password=True)
    try:
        database = Database(url)
    except OSError as exc:
        raise DatabaseUnavailable(f"cannot open {where}: {_reason(exc)}") from None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + 5), database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        raise DatabaseUnavailable(f"cannot connect to {where}: timed out") from None
    except (OSError, SQLAlchemyError) as exc:
        raise DatabaseUnavailable(f"cannot connect to {where}: {_reason(exc)}") from None
    finally:
        await database.dispose()


def _reason(exc: BaseException) -> str:
    """The driver's own words (asyncpg's "database ... does not exist", the OS's "Connection
    refused"), on one line."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    words = " ".join(str(cause).split()) or type(cause).__name__
    return words[:300]


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
