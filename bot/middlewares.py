"""Update middlewares, outermost first: updates in flight, user record, (i18n), throttling;
then, around the handlers, maintenance mode."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.types import CallbackQuery, Message, TelegramObject, Update
from aiogram.types import User as TgUser
from aiolimiter import AsyncLimiter
from cachetools import TTLCache

from bot.i18n import pick_language
from db import repositories as repo
from db.engine import Database
from db.models import User
from handlers.common import PURCHASE
from services import metrics
from services.notifier import Notifier
from services.shop_state import ShopState
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


@dataclass(slots=True)
class _Kept:
    user: User
    read_at: float
    used: bool = False  # asked for since it was read


class UserCache:
    """User records read in the last `ttl_s` seconds, so that the next update of someone active
    costs no database read.

    In this process a change shows at once: every unit of work that changes a user (a ban, a
    language, a chat that blocked the bot) asks for `repo.USERS_CHANGED` after its commit,
    which empties the cache (`clear()`); the user middleware replaces what it writes itself (a
    new user, a new name). Another process's change shows when the record expires: `ttl_s` is
    one poll interval (DESIGN.md: nothing cached in a process outlives that). A record's
    `balance` is whatever it was when read: screens read the balance from `Accounts`.

    Records in use are read again together before they expire (`due()`): the middleware adds
    them to the one read a missing record costs anyway, at most once per half lifetime, so
    active users do not each cost a read per lifetime.

    `generation` guards the race of a read that started before a commit and ends after it:
    the record is kept only if nothing was cleared since the read began (`put(user, since)`).
    """

    def __init__(
        self, ttl_s: float, maxsize: int = 10_000, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.maxsize = maxsize
        self.timer = timer
        self.generation = 0
        self._records: OrderedDict[int, _Kept] = OrderedDict()
        self._due_at = timer() + ttl_s / 2

    def get(self, user_id: int) -> User | None:
        kept = self._records.get(user_id)
        if kept is None or self.timer() - kept.read_at >= self.ttl_s:
            return None
        kept.used = True
        return kept.user

    def put(self, user: User, since: int, read_at: float) -> None:
        """Keep `user` as read at `read_at`, unless the cache was cleared after `since`."""
        if self.ttl_s <= 0 or since != self.generation:
            return
        self._records[user.id] = _Kept(user, read_at)
        self._records.move_to_end(user.id)
        if len(self._records) > self.maxsize:
            self._records.popitem(last=False)

    def due(self, limit: int = 500) -> list[int]:
        """Ids of the records in use past half their lifetime (expired ones are dropped); none
        until half a lifetime after the last call that found some to do."""
        now = self.timer()
        if self.ttl_s <= 0 or now < self._due_at:
            return []
        self._due_at = now + self.ttl_s / 2
        half, ids = self.ttl_s / 2, list[int]()
        for user_id, kept in list(self._records.items()):
            age = now - kept.read_at
            if age >= self.ttl_s:
                del self._records[user_id]
            elif kept.used and age >= half and len(ids) < limit:
                ids.append(user_id)
        return ids

    def clear(self) -> None:
        self.generation += 1
        self._records.clear()

    def __len__(self) -> int:
        return len(self._records)


class UserMiddleware(BaseMiddleware):
    """Loads (or registers) the sender's record into `data["user"]`.

    From the cache when it was read lately and Telegram still shows the same name; else reads
    it, and only a new user or a changed name costs a write transaction.
    """

    def __init__(
        self,
        db: Database,
        default_language: str,
        notifier: Notifier | None = None,
        *,
        cache_ttl_s: float = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.default_language = default_language
        self.notifier = notifier
        self.cache = UserCache(cache_ttl_s, timer=clock)
        db.subscribe(repo.USERS_CHANGED, self.cache.clear)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        if tg_user is None or tg_user.is_bot:
            data["user"] = None
            return await handler(event, data)
        user = self.cache.get(tg_user.id)
        if user is None or _stale(user, tg_user):
            user = await self._load(tg_user, data)
        data["user"] = user
        return await handler(event, data)

    async def _load(self, tg_user: TgUser, data: dict[str, Any]) -> User:
        """The sender's record from the database (and, in the same read, the records of
        active users about to expire); written first if new or renamed."""
        since, read_at = self.cache.generation, self.cache.timer()
        others = [user_id for user_id in self.cache.due() if user_id != tg_user.id]
        async with self.db.read() as session:
            found = await repo.get_users(session, [tg_user.id, *others])
        user = None
        for record in found:
            self.cache.put(record, since, read_at)
            if record.id == tg_user.id:
                user = record
        if user is None or _stale(user, tg_user):
            user = await self._register(tg_user, data)
            self.cache.put(user, since, read_at)
        return user

    async def _register(self, tg_user: TgUser, data: dict[str, Any]) -> User:
        """A new user's row, or the new name of a known one (and no longer blocked)."""
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
                return user
            await repo.update_profile(
                session,
                tg_user.id,
                username=tg_user.username,
                first_name=tg_user.first_name,
            )
            renamed = await repo.get_user(session, tg_user.id)
            if renamed is None:  # cannot happen: the row exists, register_user saw it
                raise LookupError(tg_user.id)
            return renamed


def _stale(user: User, tg_user: TgUser) -> bool:
    """The record needs writing: Telegram shows another name, or the chat was marked blocked
    and the user is back."""
    return (
        user.username != tg_user.username
        or user.first_name != tg_user.first_name
        or user.blocked_bot
    )


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


class MaintenanceMiddleware(BaseMiddleware):
    """While maintenance is on, a customer's press or message whose handler is flagged
    `purchase` gets the maintenance text instead; admins and everything else go on (open orders
    are cancelled, finished and delivered as usual)."""

    def __init__(self, state: ShopState, admin_ids: frozenset[int]) -> None:
        self.state = state
        self.admin_ids = admin_ids

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not get_flag(data, PURCHASE):
            return await handler(event, data)
        user: TgUser | None = data.get("event_from_user")
        if user is not None and user.id in self.admin_ids:
            return await handler(event, data)
        text = await self.state.maintenance()
        if text is None:
            return await handler(event, data)
        i18n = data.get("i18n")
        notice = text or (i18n.get("maintenance-default") if i18n is not None else "")
        if isinstance(event, CallbackQuery):
            await event.answer(notice[:200], show_alert=True)
        elif isinstance(event, Message):
            await event.answer(notice, parse_mode=None)
        return None


class MetricsMiddleware(BaseMiddleware):
    """METRICS_LISTEN: each handled update counted, and its handler's time, by handler."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        found = data.get("handler")
        name = metrics.handler_name(found.callback) if found is not None else "?"
        started = time.perf_counter()
        try:
            return await handler(event, data)
        finally:
            metrics.observe_update(name, time.perf_counter() - started)
