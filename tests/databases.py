"""The databases the tests run on: a SQLite file in the test's folder, and a PostgreSQL
database of its own when TEST_DATABASE_URL names a server (`postgresql+asyncpg://user@host:port/db`).

On PostgreSQL, `db` in TEST_DATABASE_URL is only the one the admin statements run in. Each test
gets a fresh database, `CREATE DATABASE ... TEMPLATE` of one migrated once per test process
(copying a template is faster than running the migrations again), dropped after the test. Names
start with `otp_test_<pid>_`, so parallel workers and parallel runs never share one, and a run that
was killed leaves databases the next run on the same machine drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

ENV = "TEST_DATABASE_URL"
CONNECT_TIMEOUT_S = 5
PREFIX = "otp_test_"
_STALE = re.compile(PREFIX + r"(\d+)_\w+")
T = TypeVar("T")


def run_async(function: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine function to its end from synchronous code (fixtures), in a thread of its
    own: the test's event loop is never touched."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(function())).result()


@dataclass
class PgServer:
    url: URL  # TEST_DATABASE_URL
    version: str
    version_num: int
    prefix: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}")
    template: str | None = None
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def dsn(self) -> str:
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def database_url(self, name: str) -> str:
        return self.url.set(database=name).render_as_string(hide_password=False)

    async def _admin(self, *statements: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    def _drop_statements(self, name: str) -> list[str]:
        if self.version_num >= 130000:
            return [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)']
        return [
            # `name` is one of ours (PREFIX, a pid, a counter): nothing from outside
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",  # noqa: S608
            f'DROP DATABASE IF EXISTS "{name}"',
        ]

    def create(self, *, migrated: bool = True) -> str:
        """A new database, migrated to head (from the template) or empty; its URL."""
        template = self._migrated_template() if migrated else "template0"
        name = f"{self.prefix}_{next(self._names)}"
        run_async(lambda: self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        return self.database_url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        assert name is not None and name.startswith(self.prefix), url
        run_async(lambda: self._admin(*self._drop_statements(name)))

    def _migrated_template(self) -> str:
        if self.template is None:
            from db.engine import Database
            from db.migrate import upgrade

            name = f"{self.prefix}_template"
            create = f'CREATE DATABASE "{name}"'
            run_async(lambda: self._admin(*self._drop_statements(name), create))

            async def migrate() -> None:
                database = Database(self.database_url(name))
                try:
                    await upgrade(database)
                finally:
                    await database.dispose()  # a template must have no connections

            run_async(migrate)
            self.template = name
        return self.template

    def close(self) -> None:
        if self.template is not None:
            template, self.template = self.template, None
            run_async(lambda: self._admin(*self._drop_statements(template)))

    def drop_stale(self) -> None:
        """Databases left by killed runs on this machine (their process is gone)."""
        if self.url.host not in (None, "", "127.0.0.1", "localhost", "::1"):
            return  # another machine's server: its pids are not ours to judge

        async def stale() -> list[str]:
            import asyncpg

            connection = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
            try:
                rows = await connection.fetch(
                    "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", PREFIX
                )
            finally:
                await connection.close()
            return [row["datname"] for row in rows if _is_stale(row["datname"])]

        for name in run_async(stale):
            with contextlib.suppress(Exception):  # another run dropped it first
                run_async(lambda name=name: self._admin(*self._drop_statements(name)))


def _is_stale(name: str) -> bool:
    match = _STALE.fullmatch(name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, not ours
        return False
    return False


def probe() -> tuple[PgServer | None, str]:
    """The server TEST_DATABASE_URL names, or None and why not (one line)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return None, f"{ENV} is not set"
    try:
        url = make_url(raw)
    except ArgumentError:
        return None, f"{ENV} is not a database URL"
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "asyncpg":
        return None, f"{ENV} is not a postgresql+asyncpg:// URL"
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    try:
        import asyncpg
    except ImportError:
        return None, "asyncpg is not installed"

    async def version() -> tuple[str, int]:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
        try:
            text = await connection.fetchval("SELECT version()")
            number = await connection.fetchval("SELECT current_setting('server_version_num')")
        finally:
            await connection.close()
        return " ".join(str(text).split()[:2]), int(number)

    try:
        text, number = run_async(version)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return None, f"cannot reach {where} ({reason})"
    return PgServer(url=url, version=text, version_num=number), ""
