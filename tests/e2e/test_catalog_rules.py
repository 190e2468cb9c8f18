"""The shop owner's catalog controls, end to end through the fake Bot API: hide and show, a fixed
price, a minimum profit, a customer-facing name, /catalog, and exchange rates at run time
(/rate); every command refused to a customer; a second process on the same database applying
an admin's rule within one poll interval.

OTP prices here: the fake SMS-Activate's RU Telegram costs 0.1453 USD (20 % -> $0.18), RU
WhatsApp 0.0165 ($0.02), US Telegram 0.11 ($0.14)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.app import build_app, run
from bot.settings import Settings
from db.models import CatalogRule, ProviderSetting
from services.catalog_store import snapshot_time
from tests.conftest import ADMIN_ID, RunningBot, eventually, make_settings
from tests.e2e.test_otp_journey import FAST, FUNDS, bought, sa_entry
from tests.e2e.test_smm_journey import (
    LINK,
    Upstream,
    _fake,
    followers,
    open_shop,
    smm_rows,
)
from tests.fakes.smsactivate import FakeSmsActivate
from tests.fakes.telegram import FakeTelegram

ALICE = 1001
UNKNOWN = "🤷 Unknown command. Send /start to open the menu."
OUT_OF_STOCK = "😔 This number is no longer available. Please choose another."
GONE = "😔 This service is no longer available. Please choose another."


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


@pytest.fixture
async def shop(start_bot, tg, sa):
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice", username="alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    admin = tg.user(ADMIN_ID, "Owner")
    return bot, alice, admin


async def russia(alice) -> list[str]:
    """Menu -> Buy a number -> Russia: the service buttons."""
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    return alice.last().button_texts


async def countries(alice) -> list[str]:
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    return alice.last().button_texts


def shows(buttons: list[str], start: str) -> bool:
    return any(b.startswith(start) for b in buttons)


async def rules_and_rates(bot) -> tuple[list, list]:
    async with bot.db.read() as session:
        rules = list((await session.execute(select(CatalogRule.rule))).scalars())
        rates = list((await session.execute(select(ProviderSetting.rate))).scalars())
    return rules, [rate for rate in rates if rate is not None]


# --- a customer cannot use any of it ---------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "/catalog",
        "/hide country RU",
        "/show country RU",
        "/hide otp RU telegram",
        "/price otp RU telegram 0.01",
        "/minprofit otp 1",
        "/rename service telegram Free numbers",
        "/rate hero 0.5",
        "/rate hero",
    ],
)
async def test_a_customer_gets_the_unknown_command_answer(shop, tg, sa, command) -> None:
    bot, alice, _ = shop
    reply = await alice.send(command)
    assert reply.text == UNKNOWN
    assert await rules_and_rates(bot) == ([], [])
    assert bot.app.console.rules.current.rows == ()
    assert bot.app.console.rate_overrides == {}
    assert shows(await russia(alice), "Telegram · $0.18")
    assert await bot.balance(ALICE) == FUNDS


# --- hide and show ----------------------------------------------------------------------------


async def test_hiding_a_country_a_service_and_one_item(shop, tg, sa) -> None:
    _bot, alice, admin = shop
    reply = await admin.send("/hide country ru")
    assert reply.text == "🙈 Hidden: country RU. Customers no longer see or buy it."
    assert not shows(await countries(alice), "🇷🇺 Russia")
    assert shows(alice.last().button_texts, "🇺🇸")
    assert (await admin.send("/show country RU")).text == "👁 Shown again: country RU."
    assert shows(await russia(alice), "Telegram · $0.18")

    await admin.send("/hide service Telegram")
    buttons = await russia(alice)
    assert not shows(buttons, "Telegram") and shows(buttons, "WhatsApp · $0.02")
    assert not shows(await countries(alice), "🇺🇸")  # only Telegram was on sale there
    await admin.send("/show service telegram")

    await admin.send("/hide otp RU telegram")
    buttons = await russia(alice)
    assert not shows(buttons, "Telegram") and shows(buttons, "WhatsApp · $0.02")
    assert shows(await countries(alice), "🇺🇸")  # Telegram elsewhere is still sold
    catalog = (await admin.send("/catalog")).text
    assert "🙈 Hidden:\n· otp RU telegram" in catalog
    await admin.send("/show otp RU telegram")
    assert shows(await russia(alice), "Telegram · $0.18")
    assert "Nothing is hidden, priced by hand or renamed." in (await admin.send("/catalog")).text

    for bad in ("/hide", "/hide planet X", "/hide otp RU", "/hide smm nope 1", "/show country"):
        assert (await admin.send(bad)).text.startswith("Usage: /hide country"), bad


UNLISTED = "⚠️ No provider lists this now: the rule is kept and applies when one does."


async def test_a_rule_about_something_no_provider_lists_is_kept_with_a_warning(
    shop, tg, sa
) -> None:
    """A typo (`telegarm`) or an item not on sale yet: the rule is stored, the admin is told."""
    _bot, alice, admin = shop
    reply = await admin.send("/hide service telegarm")
    assert reply.text.startswith("🙈 Hidden: service telegarm.") and UNLISTED in reply.text
    assert "· service telegarm" in (await admin.send("/catalog")).text
    assert shows(await russia(alice), "Telegram · $0.18")  # the real one is still sold
    reply = await admin.send("/price otp RU telegarm 1")
    assert (
        reply.text.startswith("✅ Fixed price otp RU telegarm: $1.00.") and UNLISTED in reply.text
    )
    assert UNLISTED in (await admin.send("/hide country ZZ")).text
    assert UNLISTED in (await admin.send("/rename service telegarm Telegram")).text
    # What a provider lists gets no warning, hidden or not, and undoing a rule gets none.
    for command in (
        "/hide country RU",
        "/hide otp RU telegram",
        "/price otp RU telegram 1",
        "/rename service telegram TG",
        "/show service telegarm",
        "/price otp RU telegarm reset",
    ):
        assert UNLISTED not in (await admin.send(command)).text, command


async def test_a_stale_buy_button_and_a_forged_callback_of_a_hidden_item_charge_nothing(
    shop, tg, sa
) -> None:
    bot, alice, admin = shop
    await russia(alice)
    _, telegram = alice.find_button("Telegram · $0.18")
    confirm_data = telegram["callback_data"]
    await alice.press("Telegram · $0.18")
    assert "Price: $0.18" in alice.last().text
    _, buy = alice.find_button("✅ Buy for $0.18")

    await admin.send("/hide otp RU telegram")
    answer = await alice.press("✅ Buy for $0.18")  # the confirmation shown before
    assert answer.text == OUT_OF_STOCK and answer.show_alert
    answer = await alice.press_data(confirm_data)  # the service list's button, again
    assert answer.text == OUT_OF_STOCK
    forged = buy["callback_data"].rsplit(":", 1)[0] + ":forged1"  # a token never issued
    answer = await alice.press_data(forged)
    assert answer.text == OUT_OF_STOCK

    await asyncio.sleep(0.3)
    assert await bot.balance(ALICE) == FUNDS
    assert await bot.activations(ALICE) == []
    assert sa.requests["getNumberV2"] + sa.requests["getNumber"] == 0
    await bot.assert_ledger_invariant()


# --- fixed price and minimum profit -------------------------------------------------------------


async def test_a_fixed_price_is_shown_and_charged_exactly(shop, tg, sa) -> None:
    bot, alice, admin = shop
    reply = await admin.send("/price otp RU telegram 0.503")  # rounded up to the cent
    assert reply.text == "✅ Fixed price otp RU telegram: $0.51. Prices are updated."
    buttons = await russia(alice)
    assert shows(buttons, "Telegram · $0.51") and shows(buttons, "WhatsApp · $0.02")
    await alice.press("Telegram · $0.51")
    assert "$10.00 → after purchase: $9.49" in alice.last().text
    await alice.press("✅ Buy for $0.51")
    await bought(alice)
    assert await bot.balance(ALICE) == FUNDS - 510_000
    (activation,) = await bot.activations(ALICE)
    assert (activation.price, activation.upstream_price) == (510_000, "0.1453")
    # the provider may charge at most what the customer paid (no minimum profit set)
    (params,) = [p for action, p in sa.calls if action.startswith("getNumber")]
    assert params.get("maxPrice") == "0.5100"
    assert "🏷 Fixed prices:\n· otp RU telegram: $0.51" in (await admin.send("/catalog")).text
    await admin.send("/price otp RU telegram reset")
    assert shows(await russia(alice), "Telegram · $0.18")
    for bad in ("/price otp RU telegram", "/price otp RU telegram -1", "/price smm nope 1 2"):
        assert (await admin.send(bad)).text.startswith("Usage: /price otp"), bad
    await bot.assert_ledger_invariant()


async def test_a_minimum_profit_floors_every_rule_and_is_charged_exactly(shop, tg, sa) -> None:
    bot, alice, admin = shop
    reply = await admin.send("/minprofit otp 0.10")
    assert reply.text == "✅ Minimum profit otp: $0.10. Prices are updated."
    # Telegram 0.1453 + 0.10 -> $0.25 (over $0.18); WhatsApp 0.0165 + 0.10 -> $0.12
    buttons = await russia(alice)
    assert shows(buttons, "Telegram · $0.25") and shows(buttons, "WhatsApp · $0.12")
    # a fixed price below cost + minimum is raised to it; above it, it stands
    await admin.send("/price otp RU whatsapp 0.05")
    assert shows(await russia(alice), "WhatsApp · $0.12")
    await admin.send("/price otp RU whatsapp 0.30")
    assert shows(await russia(alice), "WhatsApp · $0.30")
    await alice.press("Telegram · $0.25")
    await alice.press("✅ Buy for $0.25")
    await bought(alice)
    assert await bot.balance(ALICE) == FUNDS - 250_000
    (params,) = [p for action, p in sa.calls if action.startswith("getNumber")]
    assert params.get("maxPrice") == "0.1500"  # 0.25 / 1.2 = 0.2083 and 0.25 - 0.10 = 0.15
    text = (await admin.send("/minprofit")).text
    assert "otp: $0.10" in text and "smm: —" in text
    await admin.send("/minprofit otp reset")
    await admin.send("/price otp RU whatsapp reset")
    buttons = await russia(alice)
    assert shows(buttons, "Telegram · $0.18") and shows(buttons, "WhatsApp · $0.02")
    for bad in ("/minprofit otp", "/minprofit otp -1", "/minprofit vip 1", "/minprofit otp 1e3"):
        assert (await admin.send(bad)).text.startswith("Usage: /minprofit otp"), bad
    await bot.assert_ledger_invariant()


# --- names ----------------------------------------------------------------------------------


async def test_a_renamed_service_is_what_customers_see(shop, tg, sa) -> None:
    _bot, alice, admin = shop
    reply = await admin.send("/rename service telegram   Telegram  Premium ")
    assert reply.text == "✅ service telegram is now shown as: Telegram Premium."
    assert shows(await russia(alice), "Telegram Premium · $0.18")
    await alice.press("Telegram Premium · $0.18")
    assert "Telegram Premium" in alice.last().text
    assert "✏️ Names:\n· service telegram → Telegram Premium" in (await admin.send("/catalog")).text
    await admin.send("/rename service telegram reset")
    buttons = await russia(alice)
    assert shows(buttons, "Telegram · $0.18") and not shows(buttons, "Telegram Premium")
    too_long = "x" * 65
    for bad in ("/rename service telegram", f"/rename service telegram {too_long}", "/rename"):
        assert (await admin.send(bad)).text.startswith("Usage: /rename service"), bad


# --- rates --------------------------------------------------------------------------------------


async def test_rate_reprices_at_once_and_a_confirmed_price_is_kept(shop, tg, sa) -> None:
    """A confirmation shown before a rate change: when the price went down meanwhile, the
    customer is charged the confirmed price (services/otp/buying.py `create()`); when it went
    up, nothing is charged and the new price is shown for confirmation."""
    bot, alice, admin = shop
    assert (await admin.send("/rate hero")).text == "💱 hero: 1 USD = 1 USD (from .env)"
    await russia(alice)
    await alice.press("Telegram · $0.18")
    confirmation = alice.last()

    reply = await admin.send("/rate hero 0.5")  # 0.1453 x 0.5 x 1.2 = 0.08718 -> $0.09
    assert reply.text.startswith("✅ Rate of hero: 1 USD = 0.5 USD. Prices are updated;")
    assert bot.app.catalog.best_offer("RU", "telegram").user_price_micro == 90_000
    await alice.press("✅ Buy for $0.18", message=confirmation)
    await bought(alice)
    assert await bot.balance(ALICE) == FUNDS - 180_000  # as confirmed
    (activation,) = await bot.activations(ALICE)
    assert (activation.price, activation.rate) == (180_000, "0.5")
    shown = await russia(alice)
    assert shows(shown, "Telegram · $0.09")

    await alice.press("Telegram · $0.09")
    confirmation = alice.last()
    await admin.send("/rate hero 2")  # 0.1453 x 2 x 1.2 = 0.34872 -> $0.35
    answer = await alice.press("✅ Buy for $0.09", message=confirmation)
    assert answer.text == "The price has changed to $0.35. Please check and confirm again."
    assert "Price: $0.35" in alice.last().text
    assert len(await bot.activations(ALICE)) == 1  # nothing more bought, nothing charged
    assert await bot.balance(ALICE) == FUNDS - 180_000

    text = (await admin.send("/rate hero")).text
    assert text == "💱 hero: 1 USD = 2 USD (set by an admin; .env 1)"
    assert "💱 Rates set by an admin:\n· hero: 2 (.env 1)" in (await admin.send("/catalog")).text
    reply = await admin.send("/rate hero reset")
    assert reply.text.startswith("✅ Rate of hero is back to .env: 1 USD = 1 USD.")
    assert shows(await russia(alice), "Telegram · $0.18")
    assert await rules_and_rates(bot) == ([], [])
    for bad in ("/rate", "/rate nope 1", "/rate hero 0", "/rate hero -1", "/rate hero 1e3"):
        assert (await admin.send(bad)).text.startswith("Usage: /rate"), bad
    await bot.assert_ledger_invariant()


# --- SMM ----------------------------------------------------------------------------------------


@pytest.fixture
async def form() -> AsyncIterator[Upstream]:
    async with _fake("smmpanel") as fake:
        yield Upstream("smmpanel", fake)


async def order(alice, item_key: str, quantity: str, total: str) -> None:
    await alice.press_data(f"sn:o:{item_key}:0")
    await alice.send(LINK)
    confirm = await alice.send(quantity)
    assert f"Price: {total}" in confirm.text, confirm.text
    await alice.press(f"✅ Order for {total}")
    await eventually(lambda: "⏳ Placing" not in alice.last().text)


async def test_smm_hide_fix_floor_and_rename(start_bot, tg, form) -> None:
    form.offer_followers()
    bot, alice = await open_shop(start_bot, tg, form)
    admin = tg.user(ADMIN_ID, "Owner")
    key = followers(bot).key
    for command in ("/hide smm panel 1", "/rename smm panel 1 Boost", "/minprofit smm 1"):
        assert (await alice.send(command)).text == UNKNOWN

    assert (await admin.send("/hide smm panel 1")).text.startswith("🙈 Hidden: smm panel 1.")
    assert UNLISTED not in (await admin.send("/hide smm panel 1")).text  # listed: no warning
    assert UNLISTED in (await admin.send("/hide smm panel 999")).text
    assert UNLISTED in (await admin.send("/hide category tiktok")).text
    assert UNLISTED not in (await admin.send("/hide category instagram")).text
    await admin.send("/show smm panel 999")
    await admin.send("/show category tiktok")
    await admin.send("/show category instagram")
    await alice.send("/start")
    await alice.press("📈 SMM services")
    assert not shows(alice.last().button_texts, "Instagram")
    answer = await alice.press_data(f"sn:o:{key}:0")  # a stale or forged Order button
    assert GONE in (answer.text or "") + alice.last().text
    await admin.send("/show smm panel 1")
    await admin.send("/hide category  INSTAGRAM ")
    await alice.send("/start")
    await alice.press("📈 SMM services")
    assert not shows(alice.last().button_texts, "Instagram")
    assert "· category INSTAGRAM" in (await admin.send("/catalog")).text
    await admin.send("/show category instagram")

    await admin.send("/rename category Instagram = IG growth")
    await admin.send("/rename smm panel 1 Fast followers")
    await alice.send("/start")
    await alice.press("📈 SMM services")
    await alice.press("IG growth · 1")
    assert shows(alice.last().button_texts, "Fast followers · $1.1004 / 1000")

    reply = await admin.send("/price smm panel 1 2")
    assert reply.text == "✅ Fixed price smm panel 1: $2.00. Prices are updated."
    await order(alice, key, "777", "$1.554")  # 2.00 x 777 / 1000
    assert await bot.balance(ALICE) == FUNDS - 1_554_000
    await admin.send("/minprofit smm 1")  # per order: 0.917 x 10 / 1000 + 1 = 1.00917
    await order(alice, key, "10", "$1.00917")
    assert await bot.balance(ALICE) == FUNDS - 1_554_000 - 1_009_170
    rows = await smm_rows(bot)
    assert [(r.price, r.service_name, r.category) for r in rows] == [
        (1_554_000, "Fast followers", "IG growth"),
        (1_009_170, "Fast followers", "IG growth"),
    ]
    await bot.assert_ledger_invariant()


# --- two processes --------------------------------------------------------------------------


async def test_another_process_applies_a_rule_within_one_poll_interval(
    start_bot, tg, sa, database_url, tmp_path
) -> None:
    """Two bot processes on one database, each with its own fake Bot API (so each update goes
    to the process the test means): the admin's /hide and /rate in the first show in the
    second's catalog within its poll interval, with no restart."""
    interval = 1.0
    settings = {**FAST, "poll_interval_s": interval}
    first = await start_bot(providers=[sa_entry(sa)], **settings)
    await first.wait_catalog()
    await eventually(lambda: snapshot_time(first.db))  # the second starts from it
    async with FakeTelegram(token="654321:OTHER-TOKEN-abcdefghijklmnop") as tg2:
        values = {**settings, "database_url": database_url, "providers": [sa_entry(sa)]}
        second = await _start_on(tg2, make_settings(tg2, tmp_path / "second", **values))
        await second.wait_catalog()
        alice = tg2.user(ALICE, "Alice")
        await alice.send("/start")
        assert shows(await russia(alice), "Telegram · $0.18")
        admin = tg.user(ADMIN_ID, "Owner")

        await admin.send("/hide otp RU telegram")
        started = asyncio.get_running_loop().time()
        await eventually(
            lambda: second.app.catalog.best_offer("RU", "telegram") is None, interval + 1.0
        )
        assert asyncio.get_running_loop().time() - started <= interval + 1.0
        assert not shows(await russia(alice), "Telegram")

        await admin.send("/rate hero 2")
        await eventually(
            lambda: second.app.catalog.best_offer("RU", "whatsapp").user_price_micro == 40_000,
            interval + 1.0,
        )  # 0.0165 x 2 x 1.2 = 0.0396 -> $0.04
        assert shows(await russia(alice), "WhatsApp · $0.04")
        await second.stop()


async def _start_on(tg2: FakeTelegram, settings: Settings) -> RunningBot:
    """What the conftest's start_bot does, on another fake Bot API."""
    app = build_app(settings)
    calls_before = tg2.get_updates_calls
    task = asyncio.create_task(run(app, handle_signals=False, polling_timeout=1))
    await tg2.wait_for(lambda: task.done() or tg2.get_updates_calls > calls_before, 15)
    if task.done():
        task.result()
    return RunningBot(app, task, tg2)
