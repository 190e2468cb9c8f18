"""More of the buying journey: Toolvico, the demo shop, search, service first, stale buttons,
limits and bans."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from db import repositories as repo
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_otp_journey import (
    FAST,
    FUNDS,
    TG_RU,
    bought,
    buy_telegram_in_russia,
    sa_entry,
)
from tests.fakes.smsactivate import FakeSmsActivate
from tests.fakes.toolvico import FakeToolvico

ALICE = 1001


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


async def customer(bot, tg, funds: int = FUNDS):
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, funds)
    return alice


# --- Toolvico -----------------------------------------------------------------------------------


@pytest.fixture
async def toolvico() -> AsyncIterator[FakeToolvico]:
    async with FakeToolvico() as fake:
        yield fake


def toolvico_entry(fake: FakeToolvico) -> dict:
    return {
        "name": "tv",
        "kind": "toolvico",
        "base_url": fake.url,
        "api_key": fake.api_key,
        "currency": "USD",
        "rate": "1",
        "timeout_s": 1,
    }


async def buy_discord_in_pakistan(alice) -> None:
    await alice.press("📱 Buy a number")
    await alice.press("Pakistan")
    await alice.press("Discord · $0.05")  # 0.04 x 1.2 = 0.048 -> $0.05
    await alice.press("✅ Buy for $0.05")
    await bought(alice)


async def test_toolvico_code_arrives_and_unsupported_buttons_are_absent(
    start_bot, tg, toolvico
) -> None:
    bot = await start_bot(providers=[toolvico_entry(toolvico)], **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await buy_discord_in_pakistan(alice)
    (order_id,) = toolvico.otp_orders
    toolvico.deliver_code(order_id, "654321")
    await eventually(
        lambda: [m for m in alice.messages if "654321" in m.text and "code for" in m.text]
    )
    card = await eventually(lambda: "Code: 654321" in alice.messages[0].text and alice.messages[0])
    assert "📨 Another SMS" not in card.button_texts  # Toolvico has neither
    assert "✔️ Finish" not in card.button_texts
    assert await bot.balance(ALICE) == FUNDS - 50_000
    await bot.assert_ledger_invariant()


async def test_toolvico_cancel_refunds(start_bot, tg, toolvico) -> None:
    bot = await start_bot(providers=[toolvico_entry(toolvico)], **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await buy_discord_in_pakistan(alice)
    await alice.press("❌ Cancel")
    assert "Cancelled. $0.05 was returned" in alice.last().text
    assert await bot.balance(ALICE) == FUNDS
    await bot.assert_ledger_invariant()


async def test_toolvico_lost_buy_stays_unknown_for_an_admin(start_bot, tg, toolvico) -> None:
    """Toolvico has no order list: a lost answer cannot be reconciled automatically."""
    bot = await start_bot(providers=[toolvico_entry(toolvico)], **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    toolvico.add_fault("hang", action="buy_number", after=True)
    await buy_discord_in_pakistan(alice)
    await eventually(lambda: "The provider did not answer in time" in alice.last().text)
    await tg.settle(1.0)
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "unknown"
    assert toolvico.calls["otp:buy_number"] == 1
    assert await bot.balance(ALICE) == FUNDS - 50_000  # held until an admin resolves it

    # The admin finds the order in Toolvico's dashboard and takes it over.
    (order_id,) = toolvico.otp_orders
    admin = tg.user(ADMIN_ID, "Owner")
    reply = await admin.send(f"/adopt otp:{activation.id} {order_id} +923001234567")
    assert f"now follows the provider's order {order_id}" in reply.text
    assert "is not waiting" in (await admin.send(f"/adopt otp:{activation.id} {order_id}")).text
    toolvico.deliver_code(order_id, "112233")
    await eventually(
        lambda: [m for m in alice.messages if "112233" in m.text and "code for" in m.text]
    )
    assert await bot.balance(ALICE) == FUNDS - 50_000
    await bot.assert_ledger_invariant()


# --- the demo shop ------------------------------------------------------------------------------


async def test_the_demo_shop_works_with_no_providers_configured(start_bot, tg) -> None:
    bot = await start_bot(**{**FAST, "demo_code_delay_s": 0.5})
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await alice.press("📱 Buy a number")
    assert "DEMO" in alice.last().text
    country = alice.last().button_texts[0]
    await alice.press(country)
    await alice.press(alice.last().button_texts[0])
    buy = next(b for b in alice.last().button_texts if b.startswith("✅ Buy for"))
    await alice.press(buy)
    await bought(alice)
    assert "Waiting for the SMS" in alice.last().text
    pushed = await eventually(lambda: [m for m in alice.messages if "code for" in m.text])
    (activation,) = await bot.activations(ALICE)
    assert activation.code and activation.code in pushed[0].text
    assert await bot.balance(ALICE) == FUNDS - activation.price
    await bot.assert_ledger_invariant()


# --- finding a number -----------------------------------------------------------------------


async def test_search_finds_a_country_typed_in_russian(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await alice.press("📱 Buy a number")
    await alice.press("🔎 Search")
    assert "Type part of a country's name" in alice.last().text
    reply = await alice.send("росс")
    assert "Countries matching “росс”" in reply.text
    await alice.press("Russia")
    assert "Russia: choose a service" in alice.last().text
    reply = await alice.send("/start")
    assert "Hello" in reply.text  # the search state ended


async def test_service_first_then_the_cheapest_country(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await alice.press("📱 Buy a number")
    await alice.press("🔤 Choose by service")
    await alice.press("Telegram")
    buttons = alice.last().button_texts
    # Russia $0.18 before the USA $0.30 (0.25 x 1.2): best price first.
    assert buttons.index("🇷🇺 Russia · $0.18 · 120") < buttons.index("🇺🇸 USA · $0.30 · 40")
    await alice.press("🇷🇺 Russia · $0.18")
    assert "Price: $0.18" in alice.last().text


async def test_a_stale_price_is_rechecked_and_explained(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    sa.set_price("0", "tg", "0.20", 120)  # the upstream raises its price
    await bot.app.catalog.refresh()
    answer = await alice.press("✅ Buy for $0.18")
    assert answer.text == "The price has changed to $0.24. Please check and confirm again."
    assert "Price: $0.24" in alice.last().text
    assert sa.activations == {}
    assert await bot.balance(ALICE) == FUNDS


async def test_stock_gone_is_explained(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    sa.set_stock("0", "tg", 0)
    await bot.app.catalog.refresh()
    answer = await alice.press("✅ Buy for $0.18")
    assert answer.text == "😔 This number is no longer available. Please choose another."
    assert await bot.balance(ALICE) == FUNDS


async def test_countries_are_paged_and_most_bought_come_first(start_bot, tg, sa) -> None:
    for country_id in range(20, 45):
        sa.set_price(str(country_id), "tg", "0.50", 5)
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await alice.press("📱 Buy a number")
    first_page = [b for b in alice.last().button_texts if "· from" in b]
    assert len(first_page) == 10
    assert "1/3" in alice.last().button_texts
    assert not any("Russia" in b for b in first_page)  # alphabetical, nobody bought yet
    await alice.press("▶")
    assert "2/3" in alice.last().button_texts
    bot.app.otp.popular["RU"] = 5
    await alice.press("« Main menu")
    await alice.press("📱 Buy a number")
    assert "Russia" in alice.last().button_texts[0]


# --- limits and bans ------------------------------------------------------------------------


async def test_at_most_max_active_activations(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **{**FAST, "max_active_activations": 1})
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await buy_telegram_in_russia(alice)
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    answer = await alice.press("✅ Buy for $0.18")
    assert answer.text == "You already have 1 open number. Finish or cancel one first."
    assert len(sa.activations) == 1
    assert await bot.balance(ALICE) == FUNDS - TG_RU


async def test_a_banned_user_cannot_buy_but_can_still_cancel(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = await customer(bot, tg)
    await buy_telegram_in_russia(alice)
    card = alice.last()
    async with bot.db.write() as session:
        await repo.set_banned(session, ALICE, True)  # as /ban does: this process sees it at once
    await alice.send("/start")
    answer = await alice.press("📱 Buy a number")
    assert answer.text.startswith("⛔ Your account is restricted.")
    await alice.press("❌ Cancel", message=card)
    assert "Cancelled. $0.18 was returned" in card.text
    assert await bot.balance(ALICE) == FUNDS
    await bot.assert_ledger_invariant()
