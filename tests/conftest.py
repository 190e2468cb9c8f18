from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app, run
from bot.settings import Settings
from db.engine import Database
from db.migrate import upgrade
from services import wallet
from tests import databases, redis_server
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
_REDIS = pytest.StashKey[tuple[str | None, str]]()  # TEST_REDIS_URL if it answers, or why not
WEBHOOK_SECRET = "test-webhook-secret_0123456789"


# --- the two databases (tests/databases.py) ----------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-postgres",
        action="store_true",
        help=f"fail at once, instead of skipping the PostgreSQL half, when {databases.ENV} "
        "is not set or its server does not answer (CI)",
    )
    parser.addoption(
        "--require-redis",
        action="store_true",
        help="fail at once, instead of leaving out the tests that need Redis, when "
        f"{redis_server.ENV} (default {redis_server.DEFAULT_URL}) does not answer (CI)",
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
    # Redis (tests/redis_server.py): asked once, by the controller; the workers are told.
    if worker is not None:
        config.stash[_REDIS] = (worker["redis_url"], worker["redis_reason"])
    else:
        config.stash[_REDIS] = redis_server.probe()
        redis_url, redis_reason = config.stash[_REDIS]
        if redis_url is None and config.getoption("--require-redis"):
            raise pytest.UsageError(f"--require-redis: Redis does not answer: {redis_reason}")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, on the controller: tell each worker whether the PostgreSQL half runs."""
    server, reason = node.config.stash[_PG]
    node.workerinput["pg_available"] = server is not None
    node.workerinput["pg_reason"] = reason
    node.workerinput["redis_url"], node.workerinput["redis_reason"] = node.config.stash[_REDIS]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a server the PostgreSQL half is left out (deselected, not one skip per test),
    and so are the tests that need Redis without one; the terminal summary says so once."""
    pg_off, redis_off = config.stash[_PG_OFF], config.stash[_REDIS][0] is None
    if not (pg_off or redis_off):
        return
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        is_pg = callspec is not None and callspec.params.get("database_backend") == "pg"
        needs_redis = "redis_url" in getattr(item, "fixturenames", ())
        (dropped if (pg_off and is_pg) or (redis_off and needs_redis) else kept).append(item)
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
    redis_url, redis_reason = config.stash[_REDIS]
    if redis_url is None:
        terminalreporter.write_line(f"Redis tests skipped: {redis_reason}", yellow=True)


@pytest.fixture
def redis_url(pytestconfig: pytest.Config) -> str:
    """TEST_REDIS_URL (tests/redis_server.py); a test asking for it is left out without one."""
    url, reason = pytestconfig.stash[_REDIS]
    if url is None:  # pragma: no cover - deselected at collection
        pytest.fail(f"Redis does not answer: {reason}")
    return url


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
async def two(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two processes' databases: two engines on the test's one database."""
    first, second = Database(database_url), Database(database_url)
    await upgrade(first)
    yield first, second
    await first.dispose()
    await second.dispose()


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

    def __init__(
        self,
        app: App,
        task: asyncio.Task[None],
        tg: FakeTelegram,
        stop_webhook: asyncio.Event | None = None,
    ) -> None:
        self.app = app
        self.task = task
        self.tg = tg
        self.stop_webhook = stop_webhook  # webhook mode: set to stop

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
            if self.stop_webhook is not None:
                self.stop_webhook.set()
            else:
                with contextlib.suppress(RuntimeError):
                    await self.app.dp.stop_polling()
            await asyncio.wait_for(self.task, 15)


def webhook_listener(path: str = "/telegram/webhook") -> tuple[socket.socket, dict[str, Any]]:
    """A listening socket on a free port of 127.0.0.1, and the WEBHOOK_* settings for it."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    return listener, {
        "webhook_url": f"http://127.0.0.1:{port}{path}",
        "webhook_listen": f"127.0.0.1:{port}",
        "webhook_secret": WEBHOOK_SECRET,
    }


async def _start_webhook(app: App, listener: socket.socket, tg: FakeTelegram) -> RunningBot:
    from bot.webhook import run_webhook

    stop = asyncio.Event()
    sets_before = len(tg.calls_of("setWebhook"))
    task = asyncio.create_task(run_webhook(app, listener, handle_signals=False, stop=stop))
    await tg.wait_for(
        lambda: (
            task.done()
            or (tg.webhook is not None and len(tg.calls_of("setWebhook")) > sets_before)
        ),
        15,
    )
    if task.done():
        task.result()
    return RunningBot(app, task, tg, stop_webhook=stop)


@pytest.fixture
async def start_bot(
    tg: FakeTelegram, tmp_path: Path, database_url: str
) -> AsyncIterator[Callable[..., Any]]:
    running: list[RunningBot] = []

    async def _start(*, webhook: bool = False, **overrides: Any) -> RunningBot:
        """The bot, long polling; or with webhook=True serving a webhook on 127.0.0.1 (the
        fake Bot API posts every update there)."""
        overrides.setdefault("database_url", database_url)
        if webhook:
            listener, hook = webhook_listener()
            app = build_app(make_settings(tg, tmp_path, **{**hook, **overrides}))
            running.append(await _start_webhook(app, listener, tg))
            return running[-1]
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
