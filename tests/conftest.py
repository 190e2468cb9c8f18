from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app, run
from bot.settings import Settings
from services import wallet
from tests import databases
from tests.fakes.telegram import FakeTelegram

ADMIN_ID = 900_001
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("pg", id="pg", marks=pytest.mark.postgres),  # `-m postgres`: that half only
]
# For a test that is about PostgreSQL itself: its PostgreSQL run only (left out with the half).
PG_ONLY = pytest.mark.parametrize("database_backend", [BACKENDS[1]])
_PG = pytest.StashKey[tuple[databases.PgServer | None, str]]()  # the server, or why none
_PG_OFF = pytest.StashKey[bool]()  # the PostgreSQL half is left out of this run


# --- the two databases (tests/databases.py) ----------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-postgres",
        action="store_true",
        help=f"fail at once, instead of skipping the PostgreSQL half, when {databases.ENV} "
        "is not set or its server does not answer (CI)",
    )


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", None)  # an xdist worker: the controller decided
    if worker is not None and not worker["pg_available"]:
        server, reason = None, worker["pg_reason"]
    else:
        server, reason = databases.probe()
    config.stash[_PG] = (server, reason)
    # Every worker must collect the same tests: only the controller's answer deselects.
    config.stash[_PG_OFF] = server is None if worker is None else not worker["pg_available"]
    if server is None and config.getoption("--require-postgres"):
        raise pytest.UsageError(f"--require-postgres: PostgreSQL does not answer: {reason}")
    if server is not None and worker is None:
        server.drop_stale()  # once per run, by the controller (or the only process)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, on the controller: tell each worker whether the PostgreSQL half runs."""
    server, reason = node.config.stash[_PG]
    node.workerinput["pg_available"] = server is not None
    node.workerinput["pg_reason"] = reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a server the PostgreSQL half is left out (deselected, not one skip per test);
    the terminal summary says so once."""
    if not config.stash[_PG_OFF]:
        return
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        is_pg = callspec is not None and callspec.params.get("database_backend") == "pg"
        (dropped if is_pg else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    server, reason = config.stash[_PG]
    if server is None:
        terminalreporter.write_line(f"PostgreSQL half skipped: {reason}", yellow=True)
    else:
        where = server.url.render_as_string(hide_password=True)
        terminalreporter.write_line(f"PostgreSQL half ran on {where} ({server.version})")


@pytest.fixture(scope="session")
def pg_server(pytestconfig: pytest.Config) -> Iterator[databases.PgServer]:
    server, reason = pytestconfig.stash[_PG]
    if server is None:  # the controller reached it, this worker cannot
        pytest.fail(f"PostgreSQL does not answer: {reason}")
    yield server
    server.close()


@pytest.fixture(params=BACKENDS)
def database_backend(request: pytest.FixtureRequest) -> str:
    """`sqlite` or `pg`: every test that uses a database runs once on each."""
    return request.param


def _database(request: pytest.FixtureRequest, tmp_path: Path, migrated: bool) -> Iterator[str]:
    if request.getfixturevalue("database_backend") == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    server: databases.PgServer = request.getfixturevalue("pg_server")
    url = server.create(migrated=migrated)
    try:
        yield url
    finally:
        server.drop(url)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, database_backend: str, tmp_path: Path):
    """The test's own database: a SQLite file in tmp_path (created by whoever opens it first), or
    a fresh PostgreSQL database already migrated to head."""
    yield from _database(request, tmp_path, migrated=True)


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, database_backend: str, tmp_path: Path):
    """Like database_url, but never migrated (for the migrations' own tests)."""
    yield from _database(request, tmp_path, migrated=False)


# --- helpers -------------------------------------------------------------------------------


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.05):
    """Poll a (sync or async) predicate until it is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def make_settings(tg: FakeTelegram, tmp_path: Path, **overrides: Any) -> Settings:
    """The bot's settings against the fake Bot API; pass database_url= (the fixture) for the
    test's database, else a SQLite file in tmp_path."""
    values: dict[str, Any] = {
        "bot_token": tg.token,
        "telegram_api_url": tg.url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "admin_ids": [ADMIN_ID],
        "throttle_rate_per_s": 0,
        "outbox_interval_s": 0.2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


class RunningBot:
    """The real bot (real aiogram Bot and Dispatcher, the test's database) in this event loop."""

    def __init__(self, app: App, task: asyncio.Task[None], tg: FakeTelegram) -> None:
        self.app = app
        self.task = task
        self.tg = tg

    @property
    def db(self):
        return self.app.db

    async def balance(self, user_id: int) -> int:
        async with self.db.read() as session:
            return await wallet.balance(session, user_id)

    async def ledger(self, user_id: int) -> list:
        async with self.db.read() as session:
            return list(reversed(await wallet.history(session, user_id, limit=10_000)))

    async def fund(self, user_id: int, amount: int) -> None:
        async with self.db.write() as session:
            await wallet.credit(
                session, user_id, amount, reason="topup", key=f"test-fund:{user_id}:{amount}"
            )

    async def activations(self, user_id: int | None = None) -> list:
        from sqlalchemy import select

        from db.models import Activation

        async with self.db.read() as session:
            query = select(Activation).order_by(Activation.id)
            if user_id is not None:
                query = query.where(Activation.user_id == user_id)
            return list((await session.execute(query)).scalars())

    async def wait_catalog(self) -> None:
        await eventually(lambda: self.app.catalog.offer_count() > 0)

    async def assert_ledger_invariant(self) -> None:
        async with self.db.read() as session:
            report = await wallet.audit(session)
        assert report.ok, report.mismatches

    async def stop(self) -> None:
        if not self.task.done():
            with contextlib.suppress(RuntimeError):
                await self.app.dp.stop_polling()
            await asyncio.wait_for(self.task, 15)


@pytest.fixture
async def start_bot(
    tg: FakeTelegram, tmp_path: Path, database_url: str
) -> AsyncIterator[Callable[..., Any]]:
    running: list[RunningBot] = []

    async def _start(**overrides: Any) -> RunningBot:
        overrides.setdefault("database_url", database_url)
        app = build_app(make_settings(tg, tmp_path, **overrides))
        calls_before = tg.get_updates_calls
        task = asyncio.create_task(run(app, handle_signals=False, polling_timeout=1))
        await tg.wait_for(lambda: task.done() or tg.get_updates_calls > calls_before, 15)
        if task.done():
            task.result()
        bot = RunningBot(app, task, tg)
        running.append(bot)
        return bot

    yield _start
    for bot in running:
        await bot.stop()
    for bot in running:
        assert not bot.app.errors, f"the catch-all error handler fired for {bot.app.errors}"


@pytest.fixture
async def bot(start_bot) -> RunningBot:
    return await start_bot()
