"""Update middlewares, outermost first: updates in flight, user record, (i18n), throttling."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from aiogram.types import User as TgUser
from aiolimiter import AsyncLimiter
from cachetools import TTLCache

from bot.i18n import pick_language
from db import repositories as repo
from db.engine import Database
from services.notifier import Notifier
from services.worker import RunningTasks

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class InFlightMiddleware(BaseMiddleware):
    """Knows which updates are being handled right now, so that shutdown can let them finish
    (a buy waiting for its upstream) before anything they use is closed. Outermost, so it
    covers the whole handling of an update."""

    def __init__(self) -> None:
        self.running = RunningTasks()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        with self.running.track():
            return await handler(event, data)

    def __len__(self) -> int:
        return len(self.running)

    async def wait(self, timeout: float) -> None:
        """Until every update being handled now is done, or `timeout` seconds."""
        await self.running.wait(timeout)


class UserMiddleware(BaseMiddleware):
    """Loads (or registers) the sender's record into `data["user"]`.

    Reads first: only a new user or a changed username costs a write transaction.
    """

    def __init__(
        self, db: Database, default_language: str, notifier: Notifier | None = None
    ) -> None:
        self.db = db
        self.default_language = default_language
        self.notifier = notifier

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        if tg_user is None or tg_user.is_bot:
            data["user"] = None
            return await handler(event, data)
        async with self.db.read() as session:
            user = await repo.get_user(session, tg_user.id)
        stale = user is not None and (
            user.username != tg_user.username
            or user.first_name != tg_user.first_name
            or user.blocked_bot
        )
        if user is None or stale:
            async with self.db.write() as session:
                user, created = await repo.register_user(
                    session,
                    tg_user.id,
                    username=tg_user.username,
                    first_name=tg_user.first_name,
                    language=pick_language(tg_user.language_code, self.default_language),
                )
                if created:
                    data["new_user"] = True
                    if self.notifier is not None:
                        username = f"@{tg_user.username}" if tg_user.username else ""
                        await self.notifier.emit(
                            session, "new-user", user=tg_user.id, username=username
                        )
                    log.info("new user", extra={"user_id": tg_user.id})
                else:
                    await repo.update_profile(
                        session,
                        tg_user.id,
                        username=tg_user.username,
                        first_name=tg_user.first_name,
                    )
                    user = await repo.get_user(session, tg_user.id)
        data["user"] = user
        return await handler(event, data)


class ThrottlingMiddleware(BaseMiddleware):
    """Per-user leaky bucket: a user flooding the bot is dropped, everyone else goes on."""

    def __init__(self, rate_per_s: float, burst: int = 5) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(1, burst)
        self._limiters: TTLCache[int, AsyncLimiter] = TTLCache(maxsize=100_000, ttl=600)
        self._warned: TTLCache[int, bool] = TTLCache(maxsize=100_000, ttl=10)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        if self.rate_per_s <= 0 or tg_user is None:
            return await handler(event, data)
        limiter = self._limiters.get(tg_user.id)
        if limiter is None:
            limiter = AsyncLimiter(self.burst, self.burst / self.rate_per_s)
            self._limiters[tg_user.id] = limiter
        if limiter.has_capacity():
            await limiter.acquire()
            return await handler(event, data)
        await self._warn_once(tg_user.id, event, data)
        return None

    async def _warn_once(self, user_id: int, event: TelegramObject, data: dict[str, Any]) -> None:
        if user_id in self._warned:
            return
        self._warned[user_id] = True
        i18n = data.get("i18n")
        text = i18n.get("throttled-notice") if i18n is not None else "Too many requests"
        update = event if isinstance(event, Update) else None
        if update and update.callback_query:
            await update.callback_query.answer(text)
        elif update and update.message:
            await update.message.answer(text)
