"""The bot process SIGKILLed between a Stars payment and its credit: credited exactly once after
the restart."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import Database
from services import wallet
from tests.e2e.test_process import bot_env, start_process
from tests.fakes.telegram import FakeTelegram, FakeUser

ALICE = 1001


@contextlib.asynccontextmanager
async def writes_blocked(database_url: str) -> AsyncIterator[None]:
    """Nobody else can write the ledger while this is open (reads go on)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(str(url.database), isolation_level=None, timeout=30)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.rollback()
            connection.close()
        return
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.execute(text("LOCK TABLE ledger IN ACCESS EXCLUSIVE MODE"))
            try:
                yield
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


async def _balance_and_keys(database_url: str) -> tuple[int, list[str]]:
    db = Database(database_url)
    try:
        async with db.read() as session:
            balance = await wallet.balance(session, ALICE)
            keys = [e.idempotency_key for e in await wallet.history(session, ALICE, limit=100)]
    finally:
        await db.dispose()
    return balance, keys


def _paid_notices(alice: FakeUser) -> list[str]:
    return [m.text for m in alice.messages if "Payment received" in m.text]


async def _stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    return stderr.decode()


async def test_sigkill_between_payment_and_credit_credits_once_after_restart(
    tg: FakeTelegram, tmp_path: Path, database_url: str
) -> None:
    env = bot_env(tg, tmp_path, database_url, STARS_ENABLED="true", STARS_RATE="0.02")
    process = await start_process(env, tmp_path)
    alice = tg.user(ALICE, "Alice")
    try:
        await tg.wait_for(lambda: tg.get_updates_calls > 0, timeout=30)
        await alice.send("/start")
        await alice.press("💳 Top up")
        await alice.press("$5.00")
        await alice.press("⭐ Telegram Stars")
        invoice = await tg.wait_invoice(alice)
        async with writes_blocked(database_url):
            paid = await tg.pay(alice, invoice, deliver=False)  # pre-checkout only reads
            assert paid.ok and paid.charge_id is not None
            update_id = await tg.deliver_payment(alice, invoice, paid.charge_id)
            # The bot has taken the update (Telegram will not send it again) and waits to write.
            await tg.wait_for(lambda: tg.confirmed_offset > update_id, 15)
            process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert await _balance_and_keys(database_url) == (0, [])
    assert not _paid_notices(alice)

    process = await start_process(env, tmp_path)
    try:
        await tg.wait_for(lambda: _paid_notices(alice), 30)
        await tg.deliver_payment(alice, invoice, paid.charge_id)  # and a late copy of it
        await tg.settle(0.5)
    finally:
        log = await _stop(process)
    assert process.returncode == 0, log[-2000:]
    assert await _balance_and_keys(database_url) == (
        5_000_000,
        [f"topup:stars:{paid.charge_id}"],
    )
    assert len(_paid_notices(alice)) == 1
