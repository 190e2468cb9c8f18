"""SIGTERM to the real process in the middle of work: it exits 0 within 10 s, and the next
start resumes what was parked (a poll round stuck on an upstream, a broadcast)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator

import pytest

from db.engine import Database
from services import wallet
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_broadcast import _is, add_users, copies, delivery_statuses, start_broadcast
from tests.e2e.test_broadcast import status as broadcast_status
from tests.e2e.test_otp_journey import sa_entry
from tests.e2e.test_process import BotProcess, bot_env, start_process
from tests.fakes.smsactivate import FakeSmsActivate

ALICE = 1001
EXIT_WITHIN_S = 10.0


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate(hang_s=60) as fake:
        yield fake


async def sigterm(process: BotProcess) -> tuple[float, str]:
    """SIGTERM, then the time to exit and the log."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, log = await asyncio.wait_for(process.communicate(), 30)
    return time.monotonic() - started, log.decode()


async def running(tg, env, tmp_path) -> BotProcess:
    calls = tg.get_updates_calls
    process = await start_process(env, tmp_path)
    await tg.wait_for(lambda: tg.get_updates_calls > calls, timeout=30)
    return process


async def test_sigterm_during_a_stuck_poll_round_exits_0_and_the_next_start_polls(
    tg, tmp_path, database_url, sa
) -> None:
    provider = sa_entry(sa, timeout_s=30)  # a request may hang for 30 s
    env = bot_env(
        tg, tmp_path, database_url, PROVIDERS=json.dumps([provider]), POLL_INTERVAL_S="1"
    )
    db = Database(env["DATABASE_URL"])
    process = await running(tg, env, tmp_path)
    try:
        alice = tg.user(ALICE, "Alice")
        await alice.send("/start")
        async with db.write() as session:
            await wallet.credit(session, ALICE, 10_000_000, reason="topup", key="t")
        await alice.press("📱 Buy a number")
        await alice.press("Russia")
        await alice.press("Telegram · $0.18")
        await alice.press("✅ Buy for $0.18")
        await eventually(lambda: len(sa.activations) == 1, timeout=20)
        asked = sa.requests["getActiveActivations"]
        sa.inject("hang", action="getActiveActivations", times=1000)
        await eventually(lambda: sa.requests["getActiveActivations"] > asked, timeout=20)
        await asyncio.sleep(0.5)  # the round is waiting for its answer
        took, log = await sigterm(process)  # a poll round is waiting for its answer
        assert took < EXIT_WITHIN_S, took
        assert process.returncode == 0, log[-3000:]
        assert "Traceback" not in log and '"msg": "bot stopped"' in log

        sa._faults.clear()  # the upstream answers again
        (upstream,) = sa.activations.values()
        sa.deliver_sms(upstream.id, "777111", "code 777111")
        process = await running(tg, env, tmp_path)
        await eventually(lambda: any("777111" in m.text for m in alice.messages), timeout=20)
    finally:
        if process.returncode is None:
            await sigterm(process)
        await db.dispose()


async def test_sigterm_during_a_broadcast_exits_0_and_the_next_start_finishes_it(
    tg, tmp_path, database_url
) -> None:
    admin = tg.user(ADMIN_ID, "Owner")
    env = bot_env(tg, tmp_path, database_url, ADMIN_IDS=str(ADMIN_ID), BROADCAST_RATE_PER_S="10")
    db = Database(env["DATABASE_URL"])
    process = await running(tg, env, tmp_path)
    try:
        await admin.send("/start")
        ids = await add_users(db, 99)
        await start_broadcast(admin, tg, "Term news", 1)
        await tg.wait_for(lambda: len(copies(tg, "Term news")) >= 10, timeout=20)
        took, log = await sigterm(process)
        assert took < EXIT_WITHIN_S, took
        assert process.returncode == 0, log[-3000:]
        assert "Traceback" not in log
        assert len(copies(tg, "Term news")) < 100
        assert await broadcast_status(db, 1) == "running"  # parked, not ended

        env["BROADCAST_RATE_PER_S"] = "500"
        process = await running(tg, env, tmp_path)
        await eventually(lambda: _is(broadcast_status(db, 1), "done"), timeout=30)
        rows = await delivery_statuses(db, 1)
    finally:
        if process.returncode is None:
            await sigterm(process)
        await db.dispose()
    sent = copies(tg, "Term news")
    assert set(sent.values()) == {1}, "somebody got a second copy"
    assert set(sent) == {ADMIN_ID, *ids}  # a clean stop leaves nobody in doubt
    assert set(rows.values()) == {"sent"}
