"""Actions from the notification group (handlers/group_actions.py, services/group_actions.py):
alerts that need a decision come alone with admin-only buttons; an admin's press does it and
the alert says who did what; anyone else's press changes nothing and says so; a later press says
what was done and by whom. The real bot, a fake Bot API and fake upstreams, over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.jobs import watch_errors
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_otp_journey import FAST, FUNDS, buy_telegram_in_russia, sa_entry
from tests.fakes.smsactivate import FakeSmsActivate

ALICE = 1001
MALLORY = 1003  # a member of the group, not an admin
SECOND_ADMIN = 900_002
GROUP = -100555
ADMINS_ONLY = "Only the shop's admins can do this. Nothing was changed."


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


def group_text(tg) -> str:
    return "\n".join(m.text for m in tg.chats.get(GROUP, []))


def alert_with(tg, words: str):
    """The group message containing `words` (None until it arrives)."""
    found = [m for m in tg.chats.get(GROUP, []) if words in m.text]
    return found[-1] if found else None


async def open_shop(start_bot, tg, *entries, **settings):
    bot = await start_bot(
        providers=list(entries),
        notify_chat_id=GROUP,
        admin_ids=[ADMIN_ID, SECOND_ADMIN],
        **{**FAST, **settings},
    )
    await bot.wait_catalog()
    people = {}
    for user_id, name in ((ALICE, "Alice"), (MALLORY, "Mallory")):
        people[user_id] = tg.user(user_id, name)
        await people[user_id].send("/start")
    await bot.fund(ALICE, FUNDS)
    owner, second = tg.user(ADMIN_ID, "Owner"), tg.user(SECOND_ADMIN, "Deputy")
    await owner.send("/start")
    await second.send("/start")
    return bot, people[ALICE], people[MALLORY], owner, second


def data_of(message, text: str) -> str:
    return next(b["callback_data"] for row in message.buttons for b in row if text in b["text"])


async def test_a_low_balance_alert_shows_the_providers_to_an_admin_only(start_bot, tg, sa) -> None:
    _bot, _alice, mallory, owner, _second = await open_shop(
        start_bot, tg, sa_entry(sa), provider_low_balance="100"
    )
    alert = await eventually(lambda: alert_with(tg, "balance is low"))
    assert alert.text == "🪫 Provider hero balance is low: $92.20 (alert below $100.00)"  # alone
    assert alert.button_texts == ["📊 Show providers"]
    answer = await mallory.press("📊 Show providers", message=alert)
    assert (answer.text, answer.show_alert) == (ADMINS_ONLY, True)
    await tg.settle(0.3)
    assert alert_with(tg, "🔌 Providers") is None  # nothing shown to the group
    await owner.press("📊 Show providers", message=alert)
    report = await eventually(lambda: alert_with(tg, "🔌 Providers"))
    assert "hero (smsactivate) · on · balance 92.20 USD" in report.text
    assert alert.button_texts == ["📊 Show providers"]  # it may be asked again


async def test_switch_off_from_an_error_burst_alert(start_bot, tg, sa) -> None:
    # Health is kept per provider name for the whole process: a name of its own.
    bot, _alice, mallory, owner, second = await open_shop(
        start_bot, tg, sa_entry(sa, name="bursty2"), auto_off_failures=0
    )
    sa.inject("500", times=30)
    for _ in range(4):
        await bot.app.catalog.refresh()
    await watch_errors(bot.app)
    alert = await eventually(lambda: alert_with(tg, "Provider bursty2:"))
    assert alert.text.startswith("⚠️ Provider bursty2:") and "New customer" not in alert.text
    assert alert.button_texts == ["⛔ Switch off"]
    data = data_of(alert, "Switch off")
    assert len(data.encode()) <= 64
    answer = await mallory.press("⛔ Switch off", message=alert)
    assert (answer.text, answer.show_alert) == (ADMINS_ONLY, True)
    assert bot.app.console.is_enabled("bursty2") and alert.buttons  # nothing changed
    answer = await owner.press("⛔ Switch off", message=alert)
    assert not answer.show_alert
    assert not bot.app.console.is_enabled("bursty2")
    assert alert.edited and not alert.buttons
    assert alert.text.startswith("⚠️ Provider bursty2:")  # the alert, then who did what
    assert "\n\n✅ bursty2 switched off — by Owner (900001), " in alert.text
    assert 'href="tg://user?id=900001"' in alert.html
    answer = await second.press_data(data, message=alert)  # a stale button, another admin
    assert answer.show_alert
    assert answer.text.startswith("Already done: bursty2 switched off — by Owner (900001), ")
    reply = await owner.send("/providers")
    assert "bursty2 (smsactivate) · off" in reply.text


async def lost_buy(bot, tg, sa, alice):
    """A buy whose answer is lost at a provider whose order list cannot be read: 'unknown',
    and after the grace period the group is asked to decide."""
    sa.inject("hang", action="getNumberV2")  # the number is bought, the answer lost
    sa.inject("500", action="getActiveActivations", times=10_000)
    await buy_telegram_in_russia(alice)
    await eventually(lambda: "The provider did not answer in time" in alice.last().text)
    return await eventually(lambda: alert_with(tg, "needs a human"), 15)


async def test_refund_from_an_unknown_order_alert_refunds_once_when_two_admins_press(
    start_bot, tg, sa
) -> None:
    bot, alice, mallory, owner, second = await open_shop(start_bot, tg, sa_entry(sa))
    alert = await lost_buy(bot, tg, sa, alice)
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "unknown"
    assert alert.text.startswith(f"❓ Order otp:{activation.id} at hero needs a human.")
    assert alert.button_texts == ["💸 Refund", "📥 Adopt"]
    paid = FUNDS - activation.price
    assert await bot.balance(ALICE) == paid
    answer = await mallory.press("💸 Refund", message=alert)
    assert (answer.text, answer.show_alert) == (ADMINS_ONLY, True)
    assert await bot.balance(ALICE) == paid and alert.buttons
    # Adopt needs the provider's order id, which was lost with the answer: nothing is done.
    answer = await owner.press("📥 Adopt", message=alert)
    assert answer.show_alert and f"/adopt otp:{activation.id} <order id>" in answer.text
    assert alert.buttons and not alert.edited
    refund = data_of(alert, "Refund")
    answers = await asyncio.gather(
        owner.press_data(refund, message=alert), second.press_data(refund, message=alert)
    )
    assert await bot.balance(ALICE) == FUNDS  # refunded exactly once
    refunds = [e.delta for e in await bot.ledger(ALICE) if e.reason == "refund"]
    assert refunds == [activation.price]
    popups = [a for a in answers if a.show_alert]
    assert len(popups) == 1  # the other press was told what was (being) done, and by whom
    assert popups[0].text.startswith(("Already done: refunded $0.18", "Already done: refunding"))
    await eventually(lambda: alert.edited and not alert.buttons)
    assert "✅ refunded $0.18 for otp:" in alert.text
    who = "Owner (900001)" if "Deputy" not in popups[0].text else "Deputy (900002)"
    assert f"— by {who}, " in alert.text
    # A later press, of either button: what was done and by whom; still refunded once.
    answer = await second.press_data(data_of_alert_adopt(refund), message=alert)
    assert answer.text.startswith(f"Already done: refunded $0.18 for otp:{activation.id} — by")
    assert await bot.balance(ALICE) == FUNDS
    await bot.assert_ledger_invariant()
    (activation,) = await bot.activations(ALICE)
    assert activation.status != "unknown"


def data_of_alert_adopt(refund_data: str) -> str:
    """The Adopt button's data of the same alert (`ga:r:<id>` -> `ga:a:<id>`)."""
    prefix, _verb, alert_id = refund_data.split(":")
    return f"{prefix}:a:{alert_id}"


async def test_a_command_refund_first_makes_the_button_say_already_refunded(
    start_bot, tg, sa
) -> None:
    bot, alice, _mallory, owner, _second = await open_shop(start_bot, tg, sa_entry(sa))
    alert = await lost_buy(bot, tg, sa, alice)
    (activation,) = await bot.activations(ALICE)
    reply = await owner.send(f"/refund otp:{activation.id}")
    assert "Refunded $0.18" in reply.text
    await owner.press("💸 Refund", message=alert)
    assert f"✅ otp:{activation.id} was already refunded — by Owner (900001)" in alert.text
    assert await bot.balance(ALICE) == FUNDS
    await bot.assert_ledger_invariant()


async def test_adopt_from_the_group_follows_an_smm_order_the_panel_stopped_showing(
    start_bot, tg
) -> None:
    from tests.e2e.test_review_smm import TROUBLE, grace_passes, place
    from tests.e2e.test_smm_journey import FORM, Upstream, smm_rows
    from tests.e2e.test_smm_journey import FUNDS as SMM_FUNDS
    from tests.e2e.test_smm_journey import open_shop as open_smm_shop
    from tests.fakes.smmpanel import FakeSmmPanel

    async with FakeSmmPanel() as fake:
        form = Upstream(FORM, fake)
        form.offer_followers()
        bot, _alice = await open_smm_shop(start_bot, tg, form, **TROUBLE)
        mallory, owner = tg.user(MALLORY, "Mallory"), tg.user(ADMIN_ID, "Owner")
        await owner.send("/start")
        order, price = await place(bot, 1000)
        (upstream,) = form.orders.values()
        upstream.status = "Fail"  # a word the bot does not know
        await grace_passes(bot)
        alert = await eventually(lambda: alert_with(tg, "needs a human"))
        assert alert.button_texts == ["💸 Refund", "📥 Adopt"]
        answer = await mallory.press("📥 Adopt", message=alert)
        assert answer.text == ADMINS_ONLY
        (row,) = await smm_rows(bot)
        assert row.status == "unknown"
        adopt = data_of(alert, "Adopt")
        await owner.press("📥 Adopt", message=alert)
        (row,) = await smm_rows(bot)
        assert row.status == "pending" and row.provider_order_id == upstream.order_id
        assert f"✅ smm:{order.id} adopted as provider order {upstream.order_id} — by Owner" in (
            alert.text
        )
        answer = await owner.press_data(adopt, message=alert)
        assert answer.text.startswith(f"Already done: smm:{order.id} adopted")
        assert await bot.balance(ALICE) == SMM_FUNDS - price  # nothing refunded
        await bot.assert_ledger_invariant()
