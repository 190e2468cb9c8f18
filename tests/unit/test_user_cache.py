"""The user middleware's cache of user records (bot/middlewares.py), against a real database
(SQLite and PostgreSQL): a change made in this process shows at once, another process's change
within the cache's lifetime (one poll interval), and a read is saved while nothing changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram.types import User as TgUser
from sqlalchemy import update

from bot.middlewares import UserCache, UserMiddleware
from db import repositories as repo
from db.engine import Database
from db.migrate import upgrade
from db.models import User
from services.accounts import Accounts
from services.admin import Backoffice

ALICE = 1001
BOB = TgUser(id=1002, is_bot=False, first_name="Bob")
TTL_S = 5.0


async def _noop(event: Any, data: dict[str, Any]) -> None:
    return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.dispose()


class Users:
    """The middleware as the Dispatcher runs it, counting the database reads it makes."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.clock = Clock()
        self.middleware = UserMiddleware(db, "en", cache_ttl_s=TTL_S, clock=self.clock)
        self.reads = 0
        real_read = db.read

        def counting_read() -> Any:
            self.reads += 1
            return real_read()

        self.middleware.db = _Reads(db, counting_read)

    async def update_from(
        self, first_name: str = "Alice", username: str | None = "alice", language: str = "en"
    ) -> tuple[User, dict[str, Any]]:
        sender = TgUser(
            id=ALICE,
            is_bot=False,
            first_name=first_name,
            username=username,
            language_code=language,
        )
        data: dict[str, Any] = {"event_from_user": sender}

        async def handler(event: Any, data: dict[str, Any]) -> User:
            return data["user"]

        user = await self.middleware(handler, object(), data)  # type: ignore[arg-type]
        return user, data

    async def row(self) -> User:
        async with self.db.read() as session:
            user = await repo.get_user(session, ALICE)
        assert user is not None
        return user


class _Reads:
    """The database with its read() counted (writes untouched)."""

    def __init__(self, db: Database, read: Any) -> None:
        self._db, self.read = db, read

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@pytest.fixture
async def users(db: Database) -> Users:
    return Users(db)


async def test_a_new_user_is_registered_then_served_without_a_read(users: Users) -> None:
    user, data = await users.update_from()
    assert data.get("new_user") is True
    assert (user.id, user.first_name, user.username) == (ALICE, "Alice", "alice")
    reads = users.reads
    again, data = await users.update_from()
    assert again.id == ALICE and "new_user" not in data
    assert users.reads == reads  # from the cache


async def test_a_ban_in_this_process_is_refused_at_once(db: Database, users: Users) -> None:
    await users.update_from()
    await Backoffice(db).set_banned(str(ALICE), True)
    user, _ = await users.update_from()
    assert user.banned
    await Backoffice(db).set_banned(str(ALICE), False)
    user, _ = await users.update_from()
    assert not user.banned


async def test_a_language_choice_applies_at_once(db: Database, users: Users) -> None:
    user, _ = await users.update_from()
    assert user.language == "en"
    await Accounts(db).set_language(ALICE, "ru")
    user, _ = await users.update_from()
    assert user.language == "ru"


async def test_a_renamed_user_is_updated(users: Users) -> None:
    await users.update_from()
    user, data = await users.update_from(first_name="Alicia", username="alicia")
    assert (user.first_name, user.username) == ("Alicia", "alicia")
    assert "new_user" not in data
    row = await users.row()
    assert (row.first_name, row.username) == ("Alicia", "alicia")
    user, _ = await users.update_from(first_name="Alicia", username=None)
    assert user.username is None and (await users.row()).username is None


async def test_a_user_back_after_blocking_the_bot_is_unmarked(db: Database, users: Users) -> None:
    await users.update_from()
    async with db.write() as session:  # what the outbox does when Telegram says "blocked"
        await repo.set_blocked(session, ALICE)
    user, _ = await users.update_from()
    assert not user.blocked_bot
    assert not (await users.row()).blocked_bot


async def test_another_process_change_shows_once_the_record_expires(
    db: Database, users: Users
) -> None:
    await users.update_from()
    async with db.write() as session:  # another process: no commit hook runs here
        await session.execute(update(User).where(User.id == ALICE).values(banned=True))
    user, _ = await users.update_from()
    assert not user.banned  # still the record read a moment ago
    users.clock.now += TTL_S - 0.1
    user, _ = await users.update_from()
    assert not user.banned
    users.clock.now += 0.2  # one poll interval after it was read
    user, _ = await users.update_from()
    assert user.banned


async def test_a_read_overtaken_by_a_change_is_not_kept() -> None:
    clock = Clock()
    cache = UserCache(TTL_S, timer=clock)
    since = cache.generation
    stale = User(id=ALICE, username="alice", first_name="Alice", language="en", banned=False)
    cache.clear()  # a ban committed while the record was being read
    cache.put(stale, since, clock())
    assert cache.get(ALICE) is None
    cache.put(stale, cache.generation, clock())
    assert cache.get(ALICE) is stale


async def test_active_users_are_read_again_together_before_they_expire(
    db: Database, users: Users
) -> None:
    """Bob's first message reads Alice's record again too (she is active, her record past half
    its lifetime): her next update, past her first read's lifetime, costs no read and shows
    what the second one found (another process's ban)."""
    await users.update_from()
    users.clock.now += TTL_S * 0.6
    await users.update_from()  # a hit: Alice is active
    async with db.write() as session:  # another process bans her
        await session.execute(update(User).where(User.id == ALICE).values(banned=True))
    reads = users.reads
    await users.middleware(_noop, object(), {"event_from_user": BOB})  # type: ignore[arg-type]
    assert users.reads == reads + 1  # Bob's read, Alice's with it
    users.clock.now += TTL_S * 0.6  # past her first read's lifetime, not the second's
    user, _ = await users.update_from()
    assert user.banned and users.reads == reads + 1
    assert len(users.middleware.cache) == 2


async def test_no_lifetime_means_no_cache(db: Database) -> None:
    middleware = UserMiddleware(db, "en")  # cache_ttl_s=0
    sender = TgUser(id=ALICE, is_bot=False, first_name="Alice")

    async def handler(event: Any, data: dict[str, Any]) -> None:
        return None

    await middleware(handler, object(), {"event_from_user": sender})  # type: ignore[arg-type]
    assert len(middleware.cache) == 0
