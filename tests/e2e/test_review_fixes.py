"""Defects found by review ([1 of 8]): money and delivery. Each test failed before its fix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from db.models import utcnow
from tests.conftest import eventually
from tests.e2e.test_otp_journey import (
    FAST,
    FUNDS,
    TG_RU,
    buy_telegram_in_russia,
    code_message,
    only_activation,
    sa_entry,
)
from tests.e2e.test_otp_more import buy_discord_in_pakistan, toolvico_entry
from tests.fakes.fivesim import FakeFiveSim
from tests.fakes.smsactivate import FakeSmsActivate
from tests.fakes.toolvico import FakeToolvico

ALICE = 1001
MANUAL_POLL = {**FAST, "poll_interval_s": 3600}  # one round at start-up, then only by hand
FIVESIM_PRICE = 240_000  # 0.20 x 1.2


@pytest.fixture
async def five() -> AsyncIterator[FakeFiveSim]:
    async with FakeFiveSim() as fake:
        fake.set_prices(
            {"russia": {"telegram": {"virtual4": {"cost": "0.20", "count": 9, "rate": 99}}}}
        )
        yield fake


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


@pytest.fixture
async def toolvico() -> AsyncIterator[FakeToolvico]:
    async with FakeToolvico() as fake:
        yield fake


def five_entry(fake: FakeFiveSim) -> dict:
    return {
        "name": "five",
        "kind": "fivesim",
        "base_url": fake.url,
        "api_key": "jwt",
        "currency": "USD",
        "rate": "1",
    }


async def customer(bot, tg):
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    return alice


async def buy_on_fivesim(start_bot, tg, five, **settings):
    bot = await start_bot(providers=[five_entry(five)], **{**FAST, **settings})
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.24 · 9")
    await alice.press("✅ Buy for $0.24")
    await eventually(lambda: "Buying your number" not in alice.last().text)
    (order,) = five.orders.values()
    return bot, alice, order


def no_sms_notice(alice) -> list:
    return [m for m in alice.messages if "No SMS arrived" in m.text]


# --- 1. a code the upstream already ended with is delivered, never refunded -----------------


async def test_fivesim_code_that_arrived_between_polls_with_the_order_finished_is_delivered(
    start_bot, tg, five
) -> None:
    bot, alice, order = await buy_on_fivesim(start_bot, tg, five, **MANUAL_POLL)
    five.deliver_sms(order.id, "445566")
    five.set_status(order.id, "FINISHED")  # ended upstream before our next poll
    await bot.app.otp.poll()
    await code_message(alice, "445566")
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.code) == ("finished", "445566")
    assert not no_sms_notice(alice)
    assert await bot.balance(ALICE) == FUNDS - FIVESIM_PRICE
    await bot.assert_ledger_invariant()


async def test_fivesim_code_found_at_our_deadline_is_delivered(start_bot, tg, five) -> None:
    bot, alice, order = await buy_on_fivesim(start_bot, tg, five, **MANUAL_POLL)
    five.deliver_sms(order.id, "778899")
    five.set_status(order.id, "FINISHED")
    bot.app.otp.clock = lambda: utcnow() + timedelta(hours=1)  # past our deadline
    await bot.app.otp.poll()
    await code_message(alice, "778899")
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.code) == ("finished", "778899")
    assert not no_sms_notice(alice)
    assert await bot.balance(ALICE) == FUNDS - FIVESIM_PRICE
    await bot.assert_ledger_invariant()


async def test_handler_api_status_ok_after_our_deadline_is_delivered(start_bot, sa, tg) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **MANUAL_POLL)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await buy_telegram_in_russia(alice)
    sa.deliver_sms(only_activation(sa).id, "121212")
    bot.app.otp.clock = lambda: utcnow() + timedelta(hours=1)
    await bot.app.otp.poll()
    await code_message(alice, "121212")
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.code) == ("finished", "121212")
    assert not no_sms_notice(alice)
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    await bot.assert_ledger_invariant()


async def test_toolvico_received_after_our_timeout_is_delivered(start_bot, tg, toolvico) -> None:
    bot = await start_bot(providers=[toolvico_entry(toolvico)], **MANUAL_POLL)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await buy_discord_in_pakistan(alice)
    (order_id,) = toolvico.otp_orders
    toolvico.deliver_code(order_id, "343434")
    bot.app.otp.clock = lambda: utcnow() + timedelta(hours=1)
    await bot.app.otp.poll()
    await eventually(lambda: [m for m in alice.messages if "343434" in m.text])
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.code) == ("finished", "343434")
    assert not no_sms_notice(alice)
    assert await bot.balance(ALICE) == FUNDS - 50_000
    await bot.assert_ledger_invariant()


# --- 11. "needs a human" only once reconciliation has given up ------------------------------

GROUP = -100555


def group_text(tg) -> str:
    return "\n".join(m.text for m in tg.chats.get(GROUP, []))


async def test_a_lost_buy_the_bot_finds_by_itself_never_alerts_the_group(
    start_bot, sa, tg
) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], notify_chat_id=GROUP, **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    sa.inject("hang", action="getNumberV2")  # the number is bought, the answer lost
    await buy_telegram_in_russia(alice)
    upstream = only_activation(sa)
    await eventually(lambda: f"+{upstream.phone}" in alice.messages[0].text, 20)
    await eventually(lambda: "🛒" in group_text(tg))  # the group hears of the purchase...
    await tg.settle(1.5)  # ...and, the grace period past, of nothing else
    assert "needs a human" not in group_text(tg)
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "waiting" and activation.alerted_at is None


async def test_a_lost_buy_without_an_order_list_alerts_once_after_the_grace_period(
    start_bot, tg, toolvico
) -> None:
    bot = await start_bot(
        providers=[toolvico_entry(toolvico)],
        notify_chat_id=GROUP,
        **{**FAST, "reconcile_grace_s": 1.0},
    )
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    toolvico.add_fault("hang", action="buy_number", after=True)
    await buy_discord_in_pakistan(alice)
    await eventually(lambda: "The provider did not answer in time" in alice.last().text)
    assert "needs a human" not in group_text(tg)  # not at once: the grace period first
    text = await eventually(lambda: "needs a human" in group_text(tg) and group_text(tg), 15)
    (activation,) = await bot.activations(ALICE)
    assert f"Order otp:{activation.id} at tv needs a human" in text
    assert "has no order list the bot could search" in text  # what the bot tried
    await tg.settle(1.5)  # more reconcile rounds: still one alert
    assert group_text(tg).count("needs a human") == 1
    assert activation.status == "unknown" and activation.alerted_at is not None


# --- 3. a manual refund goes through the order's lifecycle ---------------------------------


async def test_an_admin_refund_of_a_buy_in_flight_is_refused_and_the_number_is_kept(
    start_bot, sa, tg
) -> None:
    from tests.conftest import ADMIN_ID

    bot = await start_bot(providers=[sa_entry(sa)], **MANUAL_POLL)
    await bot.wait_catalog()
    await customer(bot, tg)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    otp = bot.app.otp
    quote = otp.quote("RU", "telegram")
    assert quote is not None and quote.price == TG_RU
    token = await otp.remember_quote(ALICE, quote)  # the confirmation screen, then Buy:
    activation = await otp.create(ALICE, "RU", "telegram", TG_RU, token)  # debited, 'buying'
    reply = await admin.send(f"/refund otp:{activation.id} stuck?")
    assert "is being bought from the provider right now: nothing was refunded" in reply.text
    assert (await otp.get(activation.id)).status == "buying"
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    done = await otp.execute(activation.id)  # the upstream's answer arrives: recorded
    assert (done.status, done.provider_order_id) == ("waiting", only_activation(sa).id)
    reply = await admin.send(f"/refund otp:{activation.id} stuck?")
    assert "Refunded $0.18" in reply.text
    assert (await otp.get(activation.id)).status == "cancelled"
    assert await bot.balance(ALICE) == FUNDS
    await bot.assert_ledger_invariant()
