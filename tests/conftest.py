from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app, run
from bot.settings import Settings
from services import wallet
from tests.fakes.telegram import FakeTelegram

ADMIN_ID = 900_001


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
    """The real bot (real aiogram Bot and Dispatcher, real SQLite file) in this event loop."""

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
async def start_bot(tg: FakeTelegram, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    running: list[RunningBot] = []

    async def _start(**overrides: Any) -> RunningBot:
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
