"""Automatic provider switching (services/auto_switch.py): a provider answering NO_BALANCE, or
failing N of its last M calls, stops selling and the group is told; a good balance check brings
it back (announced). The admin's switch wins: their off is never undone, their on clears an
automatic off. The real bot, a fake Bot API and fake SMS-Activate hosts, all over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.jobs import watch_balances
from db.models import OutboxMessage, ProviderSetting
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_otp_journey import FAST, FUNDS, TG_RU, bought, sa_entry
from tests.fakes.smsactivate import FakeSmsActivate

ALICE, BOB = 1001, 1002
GROUP = -100555
TIGER_TG_RU = 200_000  # 0.16 x 1.2 = 0.192 -> $0.20
OFF_NO_BALANCE = "Provider hero stopped selling by itself: it says our balance there is too low"
BACK_NO_BALANCE = "Provider hero sells again: a balance check found money."


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


@pytest.fixture
async def tiger() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate(api_key="fake-tiger-key-0123456789ab") as fake:
        fake.set_price("0", "tg", "0.16", 50)
        yield fake


def group_text(tg) -> str:
    return "\n".join(m.text for m in tg.chats.get(GROUP, []))


async def open_shop(start_bot, tg, *entries, **settings):
    bot = await start_bot(providers=list(entries), notify_chat_id=GROUP, **{**FAST, **settings})
    await bot.wait_catalog()
    customers = []
    for user_id, name in ((ALICE, "Alice"), (BOB, "Bob")):
        customer = tg.user(user_id, name)
        await customer.send("/start")
        await bot.fund(user_id, FUNDS)
        customers.append(customer)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    return bot, customers[0], customers[1], admin


async def telegram_in_russia(customer) -> list[str]:
    """The Telegram buttons a customer is offered for Russia (none: not sold)."""
    await customer.send("/start")
    await customer.press("📱 Buy a number")
    if not any("Russia" in b for b in customer.last().button_texts):
        return []
    await customer.press("Russia")
    return [b for b in customer.last().button_texts if b.startswith("Telegram · ")]


async def buy(customer, price: str) -> None:
    (button,) = await telegram_in_russia(customer)
    assert button.startswith(f"Telegram · {price} · "), button
    await customer.press(f"Telegram · {price}")
    await customer.press(f"✅ Buy for {price}")
    await bought(customer)


async def _balance_is(bot, user_id: int, amount: int) -> bool:
    return await bot.balance(user_id) == amount


async def _outbox_sent(bot) -> bool:
    async with bot.db.read() as session:
        unsent = select(func.count()).where(
            OutboxMessage.sent_at.is_(None), OutboxMessage.failed.is_(None)
        )
        return await session.scalar(unsent) == 0


async def row(bot, name: str = "hero") -> ProviderSetting | None:
    async with bot.db.read() as session:
        return await session.get(ProviderSetting, name)


async def test_no_balance_switches_off_the_next_customer_buys_elsewhere_and_it_comes_back(
    start_bot, tg, sa, tiger
) -> None:
    bot, alice, bob, admin = await open_shop(
        start_bot, tg, sa_entry(sa), sa_entry(tiger, name="tiger")
    )
    sa.balance = Decimal(0)  # the buy is answered NO_BALANCE
    await buy(alice, "$0.18")
    assert "the provider refused the order" in alice.last().text
    assert await bot.balance(ALICE) == FUNDS  # refunded
    text = await eventually(lambda: OFF_NO_BALANCE in group_text(tg) and group_text(tg))
    assert text.count("stopped selling by itself") == 1
    assert (await row(bot)).auto_off_reason == "no-balance"
    asked = sa.requests["getNumberV2"] + sa.requests["getNumber"]
    await buy(bob, "$0.20")  # hero is not offered any more: tiger sells
    assert len(tiger.active()) == 1
    assert sa.requests["getNumberV2"] + sa.requests["getNumber"] == asked  # never asked
    assert await bot.balance(BOB) == FUNDS - TIGER_TG_RU
    reply = await admin.send("/providers")
    assert "hero (smsactivate) · ⛔ off by itself (no balance, since " in reply.text
    await watch_balances(bot.app)  # still no money: stays off, nothing said
    await tg.settle(0.3)
    assert BACK_NO_BALANCE not in group_text(tg)
    assert (await row(bot)).auto_off_reason == "no-balance"
    sa.balance = Decimal(50)  # the owner topped it up
    await watch_balances(bot.app)
    await eventually(lambda: BACK_NO_BALANCE in group_text(tg))
    assert (await row(bot)).auto_off_reason is None
    await eventually(lambda: bot.app.console.is_enabled("hero"))
    await buy(alice, "$0.18")  # hero sells again
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    await watch_balances(bot.app)
    await tg.settle(0.3)
    assert group_text(tg).count("sells again") == 1  # announced once
    assert "hero (smsactivate) · on" in (await admin.send("/providers")).text
    await bot.assert_ledger_invariant()


async def test_n_failures_of_the_last_m_calls_switch_it_off_and_a_good_check_brings_it_back(
    start_bot, tg, sa
) -> None:
    bot, alice, _bob, admin = await open_shop(
        start_bot, tg, sa_entry(sa), auto_off_failures=2, auto_off_window=3
    )
    sa.inject("500", action="getNumberV2", times=2)
    await buy(alice, "$0.18")
    assert (await row(bot)).auto_off_reason is None  # one failure is not enough
    await buy(alice, "$0.18")
    text = await eventually(
        lambda: "stopped selling by itself" in group_text(tg) and group_text(tg)
    )
    assert "Provider hero stopped selling by itself: too many of its recent calls failed" in text
    # how many of the calls seen (the start-up balance check answered), and the last error
    assert "(2/3, last: OutcomeUnknown: HTTP 500 on getNumberV2)" in text
    assert (await row(bot)).auto_off_reason == "failures"
    await eventually(lambda: _balance_is(bot, ALICE, FUNDS))  # reconciled: both refunded
    # Their refund notices reach the chat before the browsing below, not amid it.
    await eventually(lambda: _outbox_sent(bot))
    await eventually(lambda: not bot.app.console.is_enabled("hero"))
    assert await telegram_in_russia(alice) == []  # not sold
    assert "(failing, since" in (await admin.send("/providers")).text
    await watch_balances(bot.app)  # the balance check answers: it answers again
    await eventually(lambda: "Provider hero sells again: it answers again." in group_text(tg))
    await eventually(lambda: bot.app.console.is_enabled("hero"))
    await eventually(lambda: telegram_in_russia(alice))  # the catalog offers it again
    await buy(alice, "$0.18")
    assert await bot.balance(ALICE) == FUNDS - TG_RU


async def test_an_admins_off_is_never_undone_by_a_good_balance_check(start_bot, tg, sa) -> None:
    bot, alice, _bob, admin = await open_shop(start_bot, tg, sa_entry(sa))
    sa.balance = Decimal(0)
    await buy(alice, "$0.18")
    await eventually(lambda: OFF_NO_BALANCE in group_text(tg))
    assert (await admin.send("/provider hero off")).text == "Provider hero is now off."
    sa.balance = Decimal(50)
    await watch_balances(bot.app)
    await tg.settle(0.3)
    assert BACK_NO_BALANCE not in group_text(tg)  # nothing comes back: the admin said off
    setting = await row(bot)
    assert (setting.enabled, setting.auto_off_reason) == (False, None)
    assert not bot.app.console.is_enabled("hero")
    assert await telegram_in_russia(alice) == []
    assert "hero (smsactivate) · off" in (await admin.send("/providers")).text
    # An admin's off on a provider that is fine: a balance check never turns it on either.
    await watch_balances(bot.app)
    assert not bot.app.console.is_enabled("hero")


async def test_an_admins_on_clears_an_automatic_off(start_bot, tg, sa) -> None:
    bot, alice, _bob, admin = await open_shop(start_bot, tg, sa_entry(sa))
    sa.balance = Decimal(0)
    await buy(alice, "$0.18")
    await eventually(lambda: OFF_NO_BALANCE in group_text(tg))
    await eventually(lambda: not bot.app.console.is_enabled("hero"))
    await admin.send("/provider hero on")
    setting = await row(bot)
    assert (setting.enabled, setting.auto_off_reason) == (True, None)
    assert bot.app.console.is_enabled("hero")
    sa.balance = Decimal(50)
    await buy(alice, "$0.18")  # sold at once
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    sa.balance = Decimal(0)  # a new trigger switches it off again
    await buy(alice, "$0.18")
    await eventually(lambda: group_text(tg).count("stopped selling by itself") == 2)


async def test_two_processes_seeing_no_balance_announce_it_once(database_url) -> None:
    """One conditional UPDATE decides: of several switch_off() calls, one switches and tells."""
    import asyncio

    from db.engine import Database
    from db.migrate import upgrade
    from services.auto_switch import AutoSwitch
    from services.notifier import Notifier

    events: list[str] = []

    def render(event: str, fields: dict) -> str:
        events.append(event)
        return event

    first, second = Database(database_url), Database(database_url)
    await upgrade(first)
    try:
        switches = [
            AutoSwitch(db, Notifier(render, enabled=True), failures=2, window=3)
            for db in (first, second)
        ]
        done = await asyncio.gather(
            *(s.switch_off("hero", "no-balance", "NO_BALANCE") for s in switches * 3)
        )
        assert sum(done) == 1 and events == ["provider-auto-off"]
        back = await asyncio.gather(*(s.switch_on("hero", ["no-balance"]) for s in switches))
        assert sum(back) == 1 and events == ["provider-auto-off", "provider-auto-on"]
    finally:
        await first.dispose()
        await second.dispose()


async def test_an_smm_panel_out_of_funds_stops_selling_and_comes_back(start_bot, tg) -> None:
    from tests.e2e.test_review_smm import place
    from tests.e2e.test_smm_journey import FORM, Upstream, smm_rows
    from tests.e2e.test_smm_journey import FUNDS as SMM_FUNDS
    from tests.e2e.test_smm_journey import open_shop as open_smm_shop
    from tests.fakes.smmpanel import FakeSmmPanel

    async with FakeSmmPanel() as fake:
        form = Upstream(FORM, fake)
        form.offer_followers()
        bot, _alice = await open_smm_shop(start_bot, tg, form, notify_chat_id=GROUP)
        fake.balance = Decimal(0)  # "Not enough funds on balance"
        await place(bot, 1000)
        (order,) = await smm_rows(bot)
        assert order.status == "failed"
        assert await bot.balance(ALICE) == SMM_FUNDS
        await eventually(
            lambda: (
                "Provider panel stopped selling by itself: it says our balance there is too low"
                in group_text(tg)
            )
        )
        await eventually(lambda: "panel" in bot.app.smm_catalog.excluded)
        fake.balance = Decimal(100)
        await watch_balances(bot.app)
        await eventually(lambda: "Provider panel sells again" in group_text(tg))
        await eventually(lambda: "panel" not in bot.app.smm_catalog.excluded)
