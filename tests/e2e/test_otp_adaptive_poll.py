"""Adaptive polling: while orders wait at a provider whose protocol lists every active order in
one request, its list is read more often than POLL_INTERVAL_S, within POLL_RATE_SHARE of its
rate limit; with nothing waiting, every POLL_INTERVAL_S again. Requests are counted at the fake
upstream over a window of the test's settings (behaviour, not timing: the bounds are wide)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import eventually
from tests.e2e.test_otp_journey import (
    ALICE,
    FUNDS,
    TG_RU,
    buy_telegram_in_russia,
    code_message,
    only_activation,
    sa_entry,
)
from tests.fakes.smsactivate import FakeSmsActivate

INTERVAL_S = 2.0
RATE_PER_MIN = 240  # share 0.5: 120 a minute, one list reading every 0.5 s
WINDOW_S = 4.0
ADAPTIVE = {
    "poll_interval_s": INTERVAL_S,
    "poll_rate_share": 0.5,
    "min_cancel_delay_s": 0,
    "outbox_interval_s": 0.1,
}


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


def list_reads(sa: FakeSmsActivate) -> int:
    return sum(1 for action, _ in sa.calls if action == "getActiveActivations")


async def reads_in_window(sa: FakeSmsActivate, seconds: float = WINDOW_S) -> int:
    before = list_reads(sa)
    await asyncio.sleep(seconds)
    return list_reads(sa) - before


async def shop_with(start_bot, sa, tg, **settings):
    entry = sa_entry(sa, rate_limit_per_min=RATE_PER_MIN)
    bot = await start_bot(providers=[entry], **{**ADAPTIVE, **settings})
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    return bot, alice


async def test_a_list_provider_is_read_often_while_an_order_waits_then_at_the_interval(
    start_bot, sa, tg
) -> None:
    bot, alice = await shop_with(start_bot, sa, tg)
    await buy_telegram_in_russia(alice)
    await asyncio.sleep(INTERVAL_S)  # a round has seen the order waiting

    waiting = await reads_in_window(sa)
    at_interval = WINDOW_S / INTERVAL_S  # 2 readings
    within_share = RATE_PER_MIN * 0.5 * WINDOW_S / 60  # 8 readings
    assert at_interval + 2 <= waiting <= within_share + 2, waiting

    sa.deliver_sms(only_activation(sa).id, "424242")
    await code_message(alice, "424242")
    await eventually(lambda: "Code: 424242" in alice.messages[0].text)
    await asyncio.sleep(INTERVAL_S)  # the round that follows sees nothing waiting

    received = await reads_in_window(sa)  # still active (another SMS may come), not waiting
    assert received <= at_interval + 1, received
    assert len([m for m in alice.messages if "424242" in m.text and "code for" in m.text]) == 1
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.code, activation.codes) == ("received", "424242", 1)
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    await bot.assert_ledger_invariant()


async def test_share_zero_reads_the_list_only_at_the_interval(start_bot, sa, tg) -> None:
    _, alice = await shop_with(start_bot, sa, tg, poll_rate_share=0)
    await buy_telegram_in_russia(alice)
    await asyncio.sleep(INTERVAL_S)
    assert await reads_in_window(sa) <= WINDOW_S / INTERVAL_S + 1


async def test_a_provider_without_a_rate_limit_counts_as_60_a_minute(start_bot, sa, tg) -> None:
    interval = 4.0  # 60 a minute at share 0.5: one reading every 2 s
    bot = await start_bot(providers=[sa_entry(sa)], **{**ADAPTIVE, "poll_interval_s": interval})
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    await asyncio.sleep(interval)
    window = 2 * interval
    reads = await reads_in_window(sa, window)
    assert window / interval + 1 <= reads <= 60 * 0.5 * window / 60 + 2, reads
