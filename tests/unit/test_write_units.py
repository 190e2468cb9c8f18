"""Write units of work (db/engine.py) under concurrency: each is all or nothing, a failing one
rolls back alone while the others commit, and a process SIGKILLed amid 50 tasks of debits leaves
every acknowledged debit in place and no half of one."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db import repositories as repo
from db.engine import Database
from db.migrate import upgrade
from db.models import LedgerEntry, User
from services import wallet


class Boom(Exception):
    pass


async def _migrated(url: str) -> Database:
    database = Database(url)
    await upgrade(database)
    return database


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await _migrated(database_url)
    yield database
    await database.dispose()


async def _add_user(db: Database, user_id: int, *, fail: bool = False) -> None:
    async with db.write() as session:
        await repo.create_user(session, user_id, username=None, first_name=None, language="en")
        await wallet.credit(session, user_id, 5_000_000, reason="topup", key=f"seed:{user_id}")
        if fail:
            raise Boom()


async def _user_ids(db: Database) -> set[int]:
    async with db.read() as session:
        return set((await session.scalars(select(User.id))).all())


async def test_a_failing_unit_among_concurrent_ones_rolls_back_alone(db: Database) -> None:
    results = await asyncio.gather(
        *(_add_user(db, user_id, fail=user_id % 3 == 0) for user_id in range(1, 31)),
        return_exceptions=True,
    )
    failed = {
        user_id
        for user_id, result in zip(range(1, 31), results, strict=True)
        if result is not None
    }
    assert failed == {user_id for user_id in range(1, 31) if user_id % 3 == 0}
    assert all(isinstance(results[user_id - 1], Boom) for user_id in failed)
    assert await _user_ids(db) == set(range(1, 31)) - failed
    async with db.read() as session:
        assert (await wallet.audit(session)).ok
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == 20


ROOT = Path(__file__).resolve().parents[2]
KILLED_WRITER = """
import asyncio, sys
from db.engine import Database
from services import wallet

async def main(url):
    db = Database(url)
    counter = iter(range(10**9))

    async def worker():
        for n in counter:
            async with db.write() as session:
                await wallet.debit(session, 1, 100, reason="purchase", key=f"k{n}")
            print(n, flush=True)  # acknowledged: committed

    await asyncio.gather(*(worker() for _ in range(50)))

asyncio.run(main(sys.argv[1]))
"""


async def test_a_process_killed_amid_concurrent_debits_leaves_only_whole_ones(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    database = await _migrated(url)
    await _add_user(database, 1)
    await database.dispose()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED_WRITER,
        url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    acknowledged: set[str] = set()
    while len(acknowledged) < 300:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, "the writer died on its own"
        acknowledged.add(f"k{int(line)}")
    process.kill()  # SIGKILL, amid debits being written and committed
    await process.wait()

    database = Database(url)
    try:
        async with database.read() as session:
            keys = set(
                (
                    await session.scalars(
                        select(LedgerEntry.idempotency_key).where(LedgerEntry.reason == "purchase")
                    )
                ).all()
            )
            assert (await wallet.audit(session)).ok  # every debit whole: balance = ledger
            assert await wallet.balance(session, 1) == 5_000_000 - 100 * len(keys)
        assert acknowledged <= keys  # what a caller was told is done, is there
    finally:
        await database.dispose()
