"""The shop owner runs the business from Telegram: users, stats, providers, markups, bans,
refunds, and a notification group that hears about everything."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from db.models import User
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_otp_journey import FAST, FUNDS, TG_RU, buy_telegram_in_russia, sa_entry
from tests.fakes.smsactivate import FakeSmsActivate

ALICE = 1001
GROUP = -100555
UNKNOWN = "🤷 Unknown command. Send /start to open the menu."


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


@pytest.fixture
async def shop(start_bot, tg, sa):
    bot = await start_bot(providers=[sa_entry(sa)], notify_chat_id=GROUP, **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice", username="alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    admin = tg.user(ADMIN_ID, "Owner")
    return bot, alice, admin


def group_text(tg) -> str:
    return "\n".join(m.text for m in tg.chats[GROUP])


@pytest.mark.parametrize(
    "command",
    [
        "/user 1001",
        "/stats",
        "/providers",
        "/provider hero off",
        "/markup global 50",
        "/ban 1001",
        "/unban 1001",
        "/refund otp:1",
    ],
)
async def test_a_customer_gets_the_unknown_command_answer(shop, tg, sa, command) -> None:
    bot, alice, _ = shop
    reply = await alice.send(command)
    assert reply.text == UNKNOWN
    assert await bot.balance(ALICE) == FUNDS


async def test_user_card(shop, tg, sa) -> None:
    _bot, alice, admin = shop
    await buy_telegram_in_russia(alice)
    reply = await admin.send("/user @alice")
    assert "1001" in reply.text and "@alice" in reply.text
    assert "Balance: $9.82" in reply.text
    phone = "+" + next(iter(sa.activations.values())).phone
    assert f"otp:1 · telegram · RU · {phone} · $0.18 · waiting" in reply.text
    assert (await admin.send("/user @nobody")).text.startswith("User @nobody not found")


async def test_user_card_shows_the_comment_of_a_topup(shop, tg, sa) -> None:
    _bot, _alice, admin = shop
    await admin.send("/topup 1001 2.5 paid by <card> & cash")
    reply = await admin.send("/user 1001")
    assert "$2.50 · top-up · by admin 900001 · 💬 paid by <card> & cash" in reply.text


async def test_ban_blocks_buying_and_unban_restores_it(shop, tg, sa) -> None:
    _bot, alice, admin = shop
    assert "is banned" in (await admin.send("/ban @alice")).text
    await alice.send("/start")
    answer = await alice.press("📱 Buy a number")
    assert answer.text.startswith("⛔ Your account is restricted.")
    assert "is unbanned" in (await admin.send("/unban 1001")).text
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    assert "Choose a country" in alice.last().text


@pytest.mark.parametrize("command", ["user", "ban", "unban"])
async def test_an_ambiguous_username_is_refused_with_the_ids(shop, tg, sa, command) -> None:
    bot, _alice, admin = shop
    await tg.user(1002, "Alicia", username="ALICE").send("/start")
    was_banned = command == "unban"
    if was_banned:
        for user_id in (1001, 1002):
            assert "is banned" in (await admin.send(f"/ban {user_id}")).text
    reply = await admin.send(f"/{command} @Alice")
    assert reply.text == "@Alice matches several users: 1001, 1002 — use the id."
    async with bot.db.read() as session:
        banned = await session.scalars(
            select(User.banned).where(User.id.in_((1001, 1002))).order_by(User.id)
        )
        assert list(banned) == [was_banned, was_banned]  # nobody changed


@pytest.mark.parametrize("command", ["user", "ban", "unban"])
@pytest.mark.parametrize("target", ["²", "-²", "--1001", "١٠٠١", "99999999999999999999"])
async def test_a_non_ascii_or_oversized_id_is_not_found(shop, tg, sa, command, target) -> None:
    _, _, admin = shop
    reply = await admin.send(f"/{command} {target}")
    assert reply.text.startswith(f"User {target} not found"), reply.text


async def test_refund_twice_refunds_once(shop, tg, sa) -> None:
    bot, alice, admin = shop
    await buy_telegram_in_russia(alice)
    reply = await admin.send("/refund otp:1 number never worked")
    assert "Refunded $0.18 for otp:1 to user 1001" in reply.text
    reply = await admin.send("/refund otp:1")
    assert "was already refunded" in reply.text
    assert await bot.balance(ALICE) == FUNDS
    refunds = [e for e in await bot.ledger(ALICE) if e.reason == "refund"]
    assert [(e.admin_id, e.comment) for e in refunds] == [(ADMIN_ID, "number never worked")]
    notice = await eventually(lambda: [m for m in alice.messages if "The shop refunded" in m.text])
    assert "$0.18" in notice[0].text
    # The automatic refund can no longer happen twice either: the activation is closed.
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "cancelled"
    assert (await admin.send("/refund smm:99")).text == "Order smm:99 not found."
    assert (await admin.send("/refund nonsense")).text.startswith("Usage: /refund")
    await bot.assert_ledger_invariant()


async def test_stats(shop, tg, sa) -> None:
    _bot, alice, admin = shop
    await buy_telegram_in_russia(alice)
    sa.deliver_sms(next(iter(sa.activations)), "100200")
    await eventually(lambda: any("100200" in m.text for m in alice.messages))
    reply = await admin.send("/stats 7d")
    assert "Stats, 7d" in reply.text
    assert "received 1" in reply.text
    # Revenue $0.18, upstream cost 0.1453 -> $0.145300, profit $0.0347.
    assert "Revenue $0.18 · upstream cost $0.1453 · profit $0.0347" in reply.text
    assert "New users: 2" in reply.text or "New users: 1" in reply.text
    assert "hero: 1 order ·" in reply.text
    assert (await admin.send("/stats forever")).text.startswith("Usage: /stats")


async def test_providers_and_switching_one_off(shop, tg, sa) -> None:
    _bot, alice, admin = shop
    reply = await admin.send("/providers")
    assert "hero (smsactivate) · on · balance 92.20 USD" in reply.text
    reply = await admin.send("/provider hero off")
    assert "Provider hero is now off" in reply.text
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    assert "Nothing is on sale right now" in alice.last().text
    assert "· off ·" in (await admin.send("/providers")).text
    await admin.send("/provider hero on")
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    assert "Russia" in " ".join(alice.last().button_texts)
    assert (await admin.send("/provider nope on")).text.startswith("Usage: /provider")


async def test_providers_show_a_foreign_balance_in_the_store_currency_too(start_bot, tg) -> None:
    from decimal import Decimal

    async with FakeSmsActivate(balance=Decimal("1000")) as rub:
        bot = await start_bot(providers=[sa_entry(rub, currency="RUB", rate="0.011")])
        admin = tg.user(ADMIN_ID, "Owner")
        reply = await admin.send("/providers")
        assert "hero (smsactivate) · on · balance 1,000.00 RUB ≈ $11.00 ·" in reply.text
        await bot.stop()


async def test_markups_change_the_prices_shown(shop, tg, sa) -> None:
    _bot, alice, admin = shop
    reply = await admin.send("/markup")
    assert "default 20% (.env 20%)" in reply.text
    await admin.send("/markup global 100")  # 0.1453 x 2 = 0.2906 -> $0.30
    await alice.send("/start")
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    assert any(b.startswith("Telegram · $0.30") for b in alice.last().button_texts)
    await admin.send("/markup otp RU telegram 0")  # this item only: $0.15
    await alice.press("« Back")
    await alice.press("Russia")
    assert any(b.startswith("Telegram · $0.15") for b in alice.last().button_texts)
    assert any(b.startswith("WhatsApp · $0.04") for b in alice.last().button_texts)
    await admin.send("/markup otp RU telegram reset")
    await admin.send("/markup global reset")
    await alice.press("« Back")
    await alice.press("Russia")
    assert any(b.startswith("Telegram · $0.18") for b in alice.last().button_texts)
    for bad in ("/markup global lots", "/markup global 1e3", "/markup provider nope 5"):
        assert "Set:" in (await admin.send(bad)).text


@pytest.mark.parametrize("value", ["²", "1.2.3", "--5", "٣٠"])
async def test_a_malformed_markup_is_refused_and_changes_nothing(shop, tg, sa, value) -> None:
    _bot, _alice, admin = shop
    reply = await admin.send(f"/markup global {value}")
    assert reply.text.startswith("Set: /markup global 25"), reply.text
    assert "default 20% (.env 20%)" in (await admin.send("/markup")).text


def group_html(tg) -> str:
    return "\n".join(m.html for m in tg.chats[GROUP])


async def test_the_notification_group_hears_about_the_shop(shop, tg, sa) -> None:
    bot, alice, admin = shop
    await buy_telegram_in_russia(alice)
    await alice.press("❌ Cancel")
    await admin.send("/topup 1001 1")
    text = await eventually(
        lambda: "Refund" in group_text(tg) and "top-up" in group_text(tg) and group_text(tg)
    )
    # People as the shop knows them (a mention with the id), goods as the customer saw them,
    # reasons and directions in words: no internal codes.
    alice_tag = '<a href="tg://user?id=1001">Alice</a> (1001)'
    assert f"👤 New customer: {alice_tag} @alice" in group_html(tg)
    assert (
        "🛒 Alice (1001) bought a 📱 Telegram number (🇷🇺 Russia): "
        "price $0.18 · cost $0.1453 · profit $0.0347 · provider hero"
    ) in text
    assert "↩️ Refund $0.18 to Alice (1001) for otp:1: cancelled by the customer" in text
    assert "💰 Balance top-up: $1.00, customer Alice (1001), by Owner (900001)" in text
    assert f"customer {alice_tag}, by " in group_html(tg)
    for internal in ("user_cancel", "telegram RU", " topup "):
        assert internal not in text
    assert await bot.balance(ALICE) == FUNDS + 1_000_000


async def test_markup_in_a_refund_reason_never_silences_the_group(shop, tg, sa) -> None:
    _bot, alice, admin = shop
    await buy_telegram_in_russia(alice)
    reply = await admin.send("/refund otp:1 <b>oops & <script>")
    assert "Refunded $0.18 for otp:1" in reply.text
    await eventually(
        lambda: "refunded by an admin: <b>oops & <script>" in group_text(tg), timeout=5
    )
    # The group keeps hearing about the shop afterwards.
    await admin.send("/topup 1001 1")
    await eventually(lambda: "Balance top-up: $1.00" in group_text(tg), timeout=5)


async def test_a_burst_of_100_events_is_merged_within_the_group_limit(shop, tg, sa) -> None:
    bot, _, _ = shop
    await eventually(lambda: "New customer" in group_text(tg))
    before = len(tg.chats[GROUP])
    for n in range(100):
        await bot.app.notifier.emit_now(bot.db, "new-user", user=50_000 + n, username=f"u{n}")
    text = await eventually(lambda: "50099" in group_text(tg) and group_text(tg), 20)
    sent = len(tg.chats[GROUP]) - before
    assert 1 <= sent <= 20
    for n in range(100):
        assert f"New customer: {50_000 + n} u{n}" in text
    assert all(len(m.text) <= 4096 for m in tg.chats[GROUP])


async def test_an_unreachable_group_never_blocks_a_purchase(shop, tg, sa) -> None:
    bot, alice, _ = shop
    tg.block(GROUP)
    await buy_telegram_in_russia(alice)
    assert "Waiting for the SMS" in alice.last().text
    assert await bot.balance(ALICE) == FUNDS - TG_RU


async def test_low_provider_balance_is_alerted_once_per_crossing(start_bot, tg, sa) -> None:
    from decimal import Decimal

    from bot.jobs import watch_balances

    bot = await start_bot(
        providers=[sa_entry(sa)], notify_chat_id=GROUP, provider_low_balance="100", **FAST
    )  # 92.20 < 100
    low = "Provider hero balance is low: $92.20 (alert below $100.00)"
    await eventually(lambda: low in group_text(tg))
    await watch_balances(bot.app)
    await tg.settle(0.5)
    assert group_text(tg).count("balance is low") == 1
    sa.balance = Decimal("150")
    await watch_balances(bot.app)
    sa.balance = Decimal("40")
    await watch_balances(bot.app)
    await eventually(lambda: group_text(tg).count("balance is low") == 2)


async def test_a_burst_of_provider_errors_is_alerted_once(start_bot, tg, sa) -> None:
    from bot.jobs import watch_errors

    # Health is kept per provider name for the whole process: a name of its own.
    entry = sa_entry(sa, name="bursty")
    bot = await start_bot(providers=[entry], notify_chat_id=GROUP, **FAST)
    await bot.wait_catalog()
    sa.inject("500", times=30)
    for _ in range(4):
        await bot.app.catalog.refresh()
    await watch_errors(bot.app)
    await watch_errors(bot.app)
    text = await eventually(lambda: "Provider bursty:" in group_text(tg) and group_text(tg))
    assert text.count("errors in") == 1  # the second check stays quiet
