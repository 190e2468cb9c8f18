"""Reseller API keys on both databases: shown once and kept as a hash, one per user, rolled and
deleted, and dead at once with a ban or the admin's /api off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from db import repositories as repo
from db.engine import Database
from db.migrate import upgrade
from db.models import ApiKey
from services.api.keys import ApiKeys, ApiOff, hash_key

ALICE, BOB = 1001, 1002


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database)
    async with database.write() as session:
        await repo.create_user(session, ALICE, username="alice", first_name="A", language="en")
        await repo.create_user(session, BOB, username="bob", first_name="B", language="en")
    yield database
    await database.dispose()


async def test_a_key_is_kept_only_as_its_hash_and_authenticates_its_owner(db) -> None:
    keys = ApiKeys(db)
    key = await keys.create(ALICE)
    async with db.read() as session:
        stored = list((await session.execute(select(ApiKey))).scalars())
    assert [(row.user_id, row.key_hash) for row in stored] == [(ALICE, hash_key(key))]
    assert key not in stored[0].key_hash
    client = await keys.authenticate(key)
    assert client is not None and (client.user_id, client.push_codes) == (ALICE, False)
    for wrong in (None, "", key[:-1], key + "x", "ключ", "x" * 500):
        assert await keys.authenticate(wrong) is None


async def test_one_key_per_user_rolling_replaces_it_and_keeps_its_id(db) -> None:
    keys = ApiKeys(db)
    first = await keys.create(ALICE)
    key_id = (await keys.info(ALICE)).id
    second = await keys.roll(ALICE)
    assert await keys.authenticate(first) is None
    assert (await keys.authenticate(second)).key_id == key_id
    assert (await keys.info(ALICE)).id == key_id
    await keys.create(BOB)
    assert await keys.delete(ALICE) is True
    assert await keys.authenticate(second) is None and await keys.info(ALICE) is None
    assert await keys.delete(ALICE) is False


async def test_a_ban_or_api_off_stops_the_key_at_once(db) -> None:
    keys = ApiKeys(db)
    key = await keys.create(ALICE)
    async with db.write() as session:
        await repo.set_banned(session, ALICE, True)
    assert await keys.authenticate(key) is None
    with pytest.raises(ApiOff):
        await keys.create(ALICE)
    async with db.write() as session:
        await repo.set_banned(session, ALICE, False)
    assert await keys.authenticate(key) is not None
    user = await keys.set_allowed("@alice", False)
    assert user.id == ALICE and not await keys.allowed(ALICE)
    assert await keys.authenticate(key) is None
    with pytest.raises(ApiOff):
        await keys.roll(ALICE)
    await keys.set_allowed(str(ALICE), True)
    assert await keys.authenticate(key) is not None
    with pytest.raises(LookupError):
        await keys.set_allowed("@nobody", True)


async def test_push_codes_and_last_used(db) -> None:
    now = [datetime(2026, 11, 26, 10, 0, tzinfo=UTC)]
    keys = ApiKeys(db, clock=lambda: now[0])
    key = await keys.create(ALICE)
    assert (await keys.info(ALICE)).last_used_at is None
    await keys.authenticate(key)
    assert (await keys.info(ALICE)).last_used_at == now[0]
    first_use = now[0]
    now[0] += timedelta(seconds=10)
    await keys.authenticate(key)  # within a minute: not written again
    assert (await keys.info(ALICE)).last_used_at == first_use
    info = await keys.set_push_codes(ALICE, True)
    assert info is not None and info.push_codes
    assert (await keys.authenticate(key)).push_codes is True
