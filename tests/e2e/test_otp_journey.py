"""A customer buys a number, gets the code pushed into the chat, and never loses money for a
number that gave no code. The real bot, a fake Bot API and fake upstreams, all over HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.conftest import eventually
from tests.fakes.fivesim import FakeFiveSim
from tests.fakes.smsactivate import FakeSmsActivate

ALICE = 1001
FUNDS = 10_000_000  # $10.00
TG_RU = 180_000  # 0.1453 x 1.2 = 0.17436 -> $0.18


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


def sa_entry(fake: FakeSmsActivate, **extra) -> dict:
    return {
        "name": "hero",
        "kind": "smsactivate",
        "base_url": fake.url,
        "api_key": fake.api_key,
        "currency": "USD",
        "rate": "1",
        "timeout_s": 1,
        **extra,
    }


FAST = {
    "poll_interval_s": 0.2,
    "min_cancel_delay_s": 0,
    "outbox_interval_s": 0.1,
    "reconcile_grace_s": 0.5,
}


@pytest.fixture
async def shop(start_bot, sa, tg):
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    return bot, alice


async def buy_telegram_in_russia(alice) -> None:
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    assert any(b.startswith("Telegram · $0.18 · ") for b in alice.last().button_texts)
    await alice.press("Telegram · $0.18")
    confirm = alice.last()
    assert "Price: $0.18" in confirm.text
    assert "$10.00 → after purchase: $9.82" in confirm.text
    await alice.press("✅ Buy for $0.18")
    await bought(alice)


async def bought(alice) -> None:
    """The Buy press is answered at once; the card follows when the upstream has answered."""
    await eventually(lambda: "Buying your number" not in alice.last().text)


def only_activation(fake: FakeSmsActivate):
    (activation,) = fake.activations.values()
    return activation


async def code_message(alice, code: str):
    return await eventually(
        lambda: [m for m in alice.messages if "code for" in m.text and code in m.text]
    )


async def test_buy_code_finish(shop, sa, tg) -> None:
    bot, alice = shop
    await buy_telegram_in_russia(alice)
    card = alice.last()
    upstream = only_activation(sa)
    assert f"+{upstream.phone}" in card.text
    assert "Telegram · 🇷🇺 Russia · $0.18" in card.text
    assert "Waiting for the SMS" in card.text
    assert card.button_texts[:2] == ["❌ Cancel", "🔄 Refresh"]
    assert await bot.balance(ALICE) == FUNDS - TG_RU

    sa.deliver_sms(upstream.id, "123456", "Telegram code 123456. Do not give it to anyone")
    (pushed,) = await code_message(alice, "123456")
    assert pushed.message_id != card.message_id  # a new message, so the user is notified
    card = await eventually(lambda: "Code: 123456" in alice.messages[0].text and alice.messages[0])
    assert "📨 Another SMS" in card.button_texts and "✔️ Finish" in card.button_texts

    # The text comes from getActiveActivations, which the poller reads instead of N getStatus.
    answer = await alice.press("📄 Show full SMS", message=card)
    assert answer.text == "📄 Telegram code 123456. Do not give it to anyone"
    assert sa.requests["getStatus"] == 0
    await alice.press("✔️ Finish", message=card)
    assert "Finished." in alice.messages[0].text
    assert upstream.state == "finished"
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "finished"
    assert await bot.balance(ALICE) == FUNDS - TG_RU  # a delivered code is not refunded
    await bot.assert_ledger_invariant()


async def test_another_sms_delivers_a_second_code(shop, sa, tg) -> None:
    bot, alice = shop
    await buy_telegram_in_russia(alice)
    upstream = only_activation(sa)
    sa.deliver_sms(upstream.id, "111111")
    await code_message(alice, "111111")
    card = await eventually(
        lambda: "📨 Another SMS" in alice.messages[0].button_texts and alice.messages[0]
    )
    answer = await alice.press("📨 Another SMS", message=card)
    assert answer.text == "📨 Another SMS requested. The new code will appear here."
    assert "3" in upstream.set_statuses
    sa.deliver_sms(upstream.id, "222222")
    await code_message(alice, "222222")
    (activation,) = await bot.activations(ALICE)
    assert (activation.code, activation.codes) == ("222222", 2)
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    await bot.assert_ledger_invariant()


async def test_cancel_after_the_delay_refunds_once(shop, sa, tg) -> None:
    bot, alice = shop
    await buy_telegram_in_russia(alice)
    card = alice.last()
    cancel_data = alice.find_button("❌ Cancel", card)[1]["callback_data"]
    await alice.press("❌ Cancel", message=card)
    assert "Cancelled. $0.18 was returned to your balance." in alice.messages[0].text
    assert only_activation(sa).state == "cancelled"
    assert await bot.balance(ALICE) == FUNDS
    # Pressing the stale Cancel button again changes nothing.
    answer = await alice.press_data(cancel_data, message=card)
    assert answer.text == "This number can no longer do that."
    assert await bot.balance(ALICE) == FUNDS
    refunds = [e for e in await bot.ledger(ALICE) if e.reason == "refund"]
    assert [e.idempotency_key for e in refunds] == ["refund:otp:1"]
    await bot.assert_ledger_invariant()


async def test_early_cancel_is_explained_and_changes_nothing(start_bot, sa, tg) -> None:
    bot = await start_bot(
        providers=[sa_entry(sa)], **{**FAST, "min_cancel_delay_s": 120, "card_refresh_s": 1}
    )
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    card = alice.last()
    # The card and the answer to an early Cancel say it the same way: a countdown in m:ss.
    assert re.search(r"Cancel is available in (2:00|1:5\d)\.", alice.last().text)
    answer = await alice.press("❌ Cancel")
    assert re.fullmatch(r"Cancel is available in (2:00|1:5\d)\. .*", answer.text)
    # The countdown goes on as the card is refreshed.
    await eventually(lambda: re.search(r"Cancel is available in 1:5[0-7]\.", card.text), 8)
    assert only_activation(sa).state == "waiting"
    assert sa.requests["setStatus"] == 0
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "waiting"


async def test_upstream_early_cancel_refusal_is_explained(start_bot, tg) -> None:
    async with FakeSmsActivate(early_cancel_s=60) as fake:
        bot = await start_bot(providers=[sa_entry(fake)], **FAST)
        await bot.wait_catalog()
        alice = tg.user(ALICE, "Alice")
        await alice.send("/start")
        await bot.fund(ALICE, FUNDS)
        await buy_telegram_in_russia(alice)
        answer = await alice.press("❌ Cancel")
        assert re.match(r"Cancel is available in \d+:\d\d\. ", answer.text)
        assert await bot.balance(ALICE) == FUNDS - TG_RU
        await bot.stop()


async def test_no_code_before_the_timeout_cancels_upstream_and_refunds(start_bot, sa, tg) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **{**FAST, "activation_timeout_s": 10})
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    notice = await eventually(
        lambda: [m for m in alice.messages if "No SMS arrived for Telegram" in m.text], 20
    )
    assert "$0.18 was returned to your balance" in notice[0].text
    assert only_activation(sa).state == "cancelled"
    # the card too (its edit goes through the outbox, after the notice)
    await eventually(lambda: "No SMS arrived in time" in alice.messages[0].text)
    assert await bot.balance(ALICE) == FUNDS
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "expired"
    await bot.assert_ledger_invariant()


async def test_upstream_ending_the_order_on_its_own_refunds(shop, sa, tg) -> None:
    bot, alice = shop
    await buy_telegram_in_russia(alice)
    sa.expire(only_activation(sa).id)
    notice = await eventually(
        lambda: [m for m in alice.messages if "was cancelled by the provider" in m.text]
    )
    assert "$0.18 was returned to your balance" in notice[0].text
    assert await bot.balance(ALICE) == FUNDS
    await bot.assert_ledger_invariant()


async def test_no_numbers_falls_back_to_the_second_provider(start_bot, sa, tg) -> None:
    async with FakeFiveSim() as five:
        # The same user price ($0.18) as the first provider: a fallback may cost no more.
        five.set_prices(
            {"russia": {"telegram": {"virtual4": {"cost": "0.15", "count": 50, "rate": 99}}}}
        )
        entries = [
            sa_entry(sa),
            {
                "name": "five",
                "kind": "fivesim",
                "base_url": five.url,
                "api_key": "jwt-5sim",
                "currency": "USD",
                "rate": "1",
            },
        ]
        bot = await start_bot(providers=entries, **FAST)
        await eventually(lambda: len(bot.app.catalog.offers("RU", "telegram")) == 2)
        alice = tg.user(ALICE, "Alice")
        await alice.send("/start")
        await bot.fund(ALICE, FUNDS)
        sa.reply("getNumberV2", "NO_NUMBERS")
        await buy_telegram_in_russia(alice)
        card = alice.last()
        (order,) = five.orders.values()
        assert order.phone in card.text
        (activation,) = await bot.activations(ALICE)
        assert (activation.provider, activation.status) == ("five", "waiting")
        assert await bot.balance(ALICE) == FUNDS - TG_RU  # the confirmed price, not 5sim's
        # The max price passed to 5sim keeps it within what the user confirmed.
        buy = next(r for r in five.seen if "/buy/" in r.path)
        assert Decimal(buy.query["maxPrice"]) == Decimal("0.15")
        await bot.stop()


async def test_all_providers_empty_refunds_with_a_message(shop, sa, tg) -> None:
    bot, alice = shop
    sa.reply("getNumberV2", "NO_NUMBERS")
    await buy_telegram_in_russia(alice)
    assert "The purchase failed: no numbers are available right now." in alice.last().text
    assert "$0.18 was returned to your balance" in alice.last().text
    assert await bot.balance(ALICE) == FUNDS
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "failed"
    await bot.assert_ledger_invariant()


async def test_provider_balance_low_refunds(shop, sa, tg) -> None:
    bot, alice = shop
    sa.reply("getNumberV2", "NO_BALANCE")
    await buy_telegram_in_russia(alice)
    assert "the provider refused the order" in alice.last().text
    assert await bot.balance(ALICE) == FUNDS


async def test_timeout_on_buy_when_upstream_made_the_order_is_adopted(shop, sa, tg) -> None:
    bot, alice = shop
    sa.inject("hang", action="getNumberV2")  # the number is bought, the answer lost
    await buy_telegram_in_russia(alice)
    await eventually(lambda: "The provider did not answer in time" in alice.last().text)
    assert sa.requests["getNumberV2"] == 1  # never re-sent
    upstream = only_activation(sa)
    card = await eventually(lambda: f"+{upstream.phone}" in alice.messages[0].text, 20)
    assert card
    (activation,) = await bot.activations(ALICE)
    assert (activation.status, activation.provider_order_id) == ("waiting", upstream.id)
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    sa.deliver_sms(upstream.id, "777000")
    await code_message(alice, "777000")
    assert sa.requests["getNumberV2"] + sa.requests["getNumber"] == 1
    await bot.assert_ledger_invariant()


async def test_timeout_on_buy_when_upstream_made_nothing_is_refunded(shop, sa, tg) -> None:
    bot, alice = shop
    sa.reply("getNumberV2", "<html>502 Bad Gateway</html>", status=502)
    await buy_telegram_in_russia(alice)
    assert "The provider did not answer in time" in alice.last().text
    notice = await eventually(
        lambda: [m for m in alice.messages if "the provider issued no number" in m.text], 20
    )
    assert notice
    assert sa.activations == {}
    assert await bot.balance(ALICE) == FUNDS
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "failed"
    await bot.assert_ledger_invariant()


async def test_restart_while_waiting_still_delivers_the_code(start_bot, sa, tg) -> None:
    first = await start_bot(providers=[sa_entry(sa)], **FAST)
    await first.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await first.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    await first.stop()
    upstream = only_activation(sa)
    sa.deliver_sms(upstream.id, "424242")  # arrives while the bot is down

    second = await start_bot(providers=[sa_entry(sa)], **FAST)
    await code_message(alice, "424242")
    assert await second.balance(ALICE) == FUNDS - TG_RU
    await second.assert_ledger_invariant()


async def test_forged_callbacks_are_refused_and_change_nothing(shop, sa, tg) -> None:
    bot, alice = shop
    await buy_telegram_in_russia(alice)
    mallory = tg.user(2002, "Mallory")
    await mallory.send("/start")
    for data in ("oa:cancel:1", "oa:finish:1", "oa:refresh:1", "oa:sms:1", "oa:again:1"):
        answer = await mallory.press_data(data)
        assert answer.text == "This order was not found."
    for data in ("oa:cancel:x", "oa:nuke:1", "ob:RU:telegram:1:zz", "on:zz", "ob:~deadbeef:x:1:t"):
        answer = await mallory.press_data(data)
        assert answer.text
    await mallory.press_data("oh:-5")  # a page number out of range shows the first page
    assert "You have no numbers yet" in mallory.last().text
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "waiting"
    assert only_activation(sa).state == "waiting"
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    assert await bot.balance(2002) == 0
    assert not bot.app.errors


async def test_a_double_click_on_buy_buys_once(shop, sa, tg) -> None:
    bot, alice = shop
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    confirm = alice.last()
    data = alice.find_button("✅ Buy for $0.18")[1]["callback_data"]
    import asyncio

    answers = await asyncio.gather(
        alice.press_data(data, message=confirm), alice.press_data(data, message=confirm)
    )
    assert len(sa.activations) == 1
    assert len(await bot.activations(ALICE)) == 1
    assert await bot.balance(ALICE) == FUNDS - TG_RU
    assert any(a.text == "This purchase was already made." for a in answers)
    await bot.assert_ledger_invariant()


async def test_too_little_balance_says_how_much_is_missing(start_bot, sa, tg) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, 100_000)
    await alice.press("📱 Buy a number")
    await alice.press("Russia")
    await alice.press("Telegram · $0.18")
    assert "You need $0.08 more" in alice.last().text
    assert not any("Buy for" in b for b in alice.last().button_texts)
    assert sa.activations == {}


async def test_a_user_who_blocked_the_bot_is_still_refunded(start_bot, sa, tg) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **{**FAST, "activation_timeout_s": 10})
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_telegram_in_russia(alice)
    tg.block(ALICE)
    await eventually(lambda: only_activation(sa).state == "cancelled", 20)
    await eventually(lambda: bot.balance(ALICE), 5)
    assert await eventually(lambda: _balance_is(bot, FUNDS), 10)
    (activation,) = await bot.activations(ALICE)
    assert activation.status == "expired"
    await bot.assert_ledger_invariant()


async def _balance_is(bot, amount: int) -> bool:
    return await bot.balance(ALICE) == amount


async def test_history_lists_the_numbers(shop, sa, tg) -> None:
    _bot, alice = shop
    await buy_telegram_in_russia(alice)
    upstream = only_activation(sa)
    sa.deliver_sms(upstream.id, "555000")
    await code_message(alice, "555000")
    await alice.send("/start")
    await alice.press("🧾 History")
    text = alice.last().text
    assert "#1" in text and f"+{upstream.phone}" in text and "code 555000" in text
    assert "$0.18" in text and "code received" in text


async def test_fivesim_journey_with_the_full_sms_text(start_bot, tg) -> None:
    async with FakeFiveSim() as five:
        five.set_prices(
            {"russia": {"telegram": {"virtual4": {"cost": "0.20", "count": 9, "rate": 99}}}}
        )
        entry = {
            "name": "five",
            "kind": "fivesim",
            "base_url": five.url,
            "api_key": "jwt",
            "currency": "USD",
            "rate": "1",
        }
        bot = await start_bot(providers=[entry], **FAST)
        await bot.wait_catalog()
        alice = tg.user(ALICE, "Alice")
        await alice.send("/start")
        await bot.fund(ALICE, FUNDS)
        await alice.press("📱 Buy a number")
        await alice.press("Russia")
        await alice.press("Telegram · $0.24 · 9")
        await alice.press("✅ Buy for $0.24")
        await bought(alice)
        (order,) = five.orders.values()
        five.deliver_sms(order.id, "98765", "Telegram code: 98765 <do not share>")
        await code_message(alice, "98765")
        card = await eventually(
            lambda: "📄 Show full SMS" in alice.messages[0].button_texts and alice.messages[0]
        )
        assert "📨 Another SMS" not in card.button_texts  # 5sim has no "another SMS"
        answer = await alice.press("📄 Show full SMS", message=card)
        assert answer.text == "📄 Telegram code: 98765 <do not share>"
        await alice.press("✔️ Finish", message=card)
        assert five.order(order.id).status == "FINISHED"
        assert await bot.balance(ALICE) == FUNDS - 240_000
        await bot.assert_ledger_invariant()
        await bot.stop()


async def test_a_stale_card_is_not_reverted_in_the_round_its_code_arrives(shop, sa, tg) -> None:
    """Found by bench/poller.py: the "time left" refresh re-rendered a card from the row loaded
    before the code arrived, so the card went back to "Waiting" after showing the code."""
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from db.models import Activation, OutboxMessage, utcnow

    bot, alice = shop
    await buy_telegram_in_russia(alice)
    bot.app.scheduler.pause_job("otp-poll")
    await bot.app.otp.stop()  # let a running round finish; then poll by hand
    bot.app.otp._stopped = False
    async with bot.db.write() as session:  # the card is due for its "time left" refresh
        await session.execute(
            update(Activation).values(card_updated_at=utcnow() - timedelta(hours=1))
        )
    sa.deliver_sms(only_activation(sa).id, "909090")
    await bot.app.otp.poll()
    # The card's edit is in the outbox, after the code (a second later in the same chat).
    await eventually(lambda: "Code: 909090" in alice.messages[0].text, 20)  # slow when loaded

    async def outbox_empty() -> bool:
        async with bot.db.read() as session:
            unsent = select(func.count()).where(OutboxMessage.sent_at.is_(None))
            return await session.scalar(unsent) == 0

    await eventually(outbox_empty)
    assert "Waiting for the SMS" not in alice.messages[0].text
