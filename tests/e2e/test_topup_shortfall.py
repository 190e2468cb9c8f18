"""A "not enough balance" answer offers 💳 Top up with the missing amount, raised to the smallest
top-up; paying it lets the purchase go ahead. Without a method, no such button."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import eventually
from tests.e2e.test_otp_journey import FAST, sa_entry
from tests.e2e.test_smm_journey import FORM, Upstream, followers
from tests.e2e.test_smm_journey import open_shop as open_smm_shop
from tests.fakes.smmpanel import FakeSmmPanel
from tests.fakes.smsactivate import FakeSmsActivate

ALICE = 1001
STARS = {"stars_enabled": True, "stars_rate": "0.02"}


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


@pytest.fixture
async def form() -> AsyncIterator[Upstream]:
    async with FakeSmmPanel(hang_s=5) as fake:
        yield Upstream(FORM, fake)


async def _otp_shortfall(start_bot, sa, tg, **settings):
    bot = await start_bot(providers=[sa_entry(sa)], **FAST, **settings)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, 100_000)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    assert "You need $0.08 more" in alice.last().text
    return bot, alice


async def test_otp_shortfall_offers_the_missing_amount_then_buys(start_bot, sa, tg) -> None:
    bot, alice = await _otp_shortfall(start_bot, sa, tg, topup_min="0.01", **STARS)
    assert "💳 Top up $0.08" in alice.last().button_texts
    await alice.press("💳 Top up $0.08")
    assert "Top up by <b>$0.08</b>" in alice.last().html
    await alice.press("⭐ Telegram Stars · 4 ⭐")  # $0.08 at $0.02 a Star
    invoice = await tg.wait_invoice(alice, 1)
    assert (invoice.currency, invoice.amount) == ("XTR", 4)
    paid = await tg.pay(alice, invoice)
    assert paid.ok
    await eventually(lambda: _balance_is(bot, 180_000))
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    await alice.press("✅ Buy for $0.18")
    await eventually(lambda: len(sa.activations) == 1)
    assert await bot.balance(ALICE) == 0
    await bot.assert_ledger_invariant()


async def test_a_shortfall_below_the_smallest_top_up_asks_for_that(start_bot, sa, tg) -> None:
    bot, alice = await _otp_shortfall(start_bot, sa, tg, **STARS)  # TOPUP_MIN is $1.00
    await alice.press("💳 Top up $0.08")
    assert "Top up by <b>$1.00</b>" in alice.last().html
    assert "⭐ Telegram Stars · 50 ⭐" in alice.last().button_texts
    assert await bot.balance(ALICE) == 100_000


async def test_no_method_no_top_up_button(start_bot, sa, tg) -> None:
    _, alice = await _otp_shortfall(start_bot, sa, tg)
    assert not any(b.startswith("💳") for b in alice.last().button_texts)


async def test_smm_shortfall_offers_the_missing_amount(start_bot, tg, form) -> None:
    form.offer_followers()
    bot, alice = await open_smm_shop(start_bot, tg, form, funds=500_000, **STARS)
    await alice.press_data(f"sn:o:{followers(bot).key}:0")
    await alice.send("https://instagram.com/someone")
    confirm = await alice.send("777")
    assert "You need $0.355011 more." in confirm.text
    assert "💳 Top up $0.355011" in confirm.button_texts
    await alice.press("💳 Top up $0.355011", message=confirm)
    assert "Top up by <b>$1.00</b>" in alice.last().html
    assert form.adds == 0 and await bot.balance(ALICE) == 500_000


async def _balance_is(bot, amount: int) -> bool:
    return await bot.balance(ALICE) == amount
