"""Customers top up with Telegram Stars: credited exactly once, whatever is delivered twice or
lost; refused at pre-checkout when it must be; refunded by an admin, once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import Payment
from tests.conftest import ADMIN_ID, eventually
from tests.fakes.telegram import FakeTelegram, FakeUser
from tests.fakes.telegram_stars import Invoice

GROUP = -100777
STARS = {"stars_enabled": True, "stars_rate": "0.02", "notify_chat_id": GROUP}
ALICE = 1001


async def payments(bot) -> list[Payment]:
    async with bot.db.read() as session:
        return list((await session.scalars(select(Payment).order_by(Payment.id))).all())


def group_text(tg: FakeTelegram) -> str:
    return "\n".join(m.text for m in tg.chats[GROUP])


def paid_notices(alice: FakeUser) -> list[str]:
    return [m.text for m in alice.messages if "Payment received" in m.text]


async def invoice_for(tg: FakeTelegram, alice: FakeUser, amount_button: str) -> Invoice:
    """Main menu -> 💳 Top up -> an amount -> ⭐ Telegram Stars: the invoice."""
    count = len([i for i in tg.invoices if i.chat_id == alice.id])
    await alice.send("/start")
    await alice.press("💳 Top up")
    await alice.press(amount_button)
    await alice.press("⭐ Telegram Stars")
    return await tg.wait_invoice(alice, count + 1)


async def test_pay_once_credited_once_user_and_group_told(start_bot, tg) -> None:
    bot = await start_bot(**STARS)
    alice = tg.user(ALICE, "Alice")
    invoice = await invoice_for(tg, alice, "$5.00")
    assert (invoice.currency, invoice.amount) == ("XTR", 250)  # $5.00 at $0.02 a Star
    assert invoice.payload.startswith("topup:")
    (call,) = tg.calls_of("sendInvoice")
    assert not call.params.get("provider_token")

    paid = await tg.pay(alice, invoice)
    assert paid.ok
    await tg.wait_for(lambda: paid_notices(alice))
    assert "$5.00 added to your wallet. Balance: $5.00" in paid_notices(alice)[0]

    assert await bot.balance(ALICE) == 5_000_000
    (entry,) = await bot.ledger(ALICE)
    assert (entry.delta, entry.reason, entry.idempotency_key) == (
        5_000_000,
        "topup",
        f"topup:stars:{paid.charge_id}",
    )
    (payment,) = await payments(bot)
    assert (payment.status, payment.external_id, payment.amount, payment.credited) == (
        "paid",
        paid.charge_id,
        5_000_000,
        5_000_000,
    )
    assert (payment.method, payment.price, payment.currency) == ("stars", "250", "XTR")
    await eventually(lambda: "topped up $5.00 with Telegram Stars" in group_text(tg))
    await bot.assert_ledger_invariant()


async def test_the_same_successful_payment_twice_is_credited_once(start_bot, tg) -> None:
    bot = await start_bot(**STARS)
    alice = tg.user(ALICE, "Alice")
    invoice = await invoice_for(tg, alice, "$10.00")
    paid = await tg.pay(alice, invoice)
    await tg.wait_for(lambda: paid_notices(alice))
    assert paid.charge_id is not None
    update_id = await tg.deliver_payment(alice, invoice, paid.charge_id)
    await tg.wait_for(lambda: tg.confirmed_offset > update_id)  # the bot took it
    await tg.settle(0.5)
    assert await bot.balance(ALICE) == 10_000_000
    assert len(await bot.ledger(ALICE)) == 1
    assert len(paid_notices(alice)) == 1
    assert [p.status for p in await payments(bot)] == ["paid"]
    await bot.assert_ledger_invariant()


async def test_a_lost_update_is_credited_after_restart_once(start_bot, tg) -> None:
    """The bot took the update and died before crediting it: at the next start it finds the
    payment among its Star transactions; the update arriving late changes nothing."""
    bot = await start_bot(**STARS)
    alice = tg.user(ALICE, "Alice")
    invoice = await invoice_for(tg, alice, "$5.00")
    paid = await tg.pay(alice, invoice, deliver=False)
    assert paid.ok and paid.charge_id is not None
    assert await bot.balance(ALICE) == 0
    await bot.stop()

    bot = await start_bot(**STARS)
    await tg.wait_for(lambda: paid_notices(alice), 15)
    assert await bot.balance(ALICE) == 5_000_000
    await tg.deliver_payment(alice, invoice, paid.charge_id)
    await tg.settle(0.5)
    assert await bot.balance(ALICE) == 5_000_000
    (entry,) = await bot.ledger(ALICE)
    assert entry.idempotency_key == f"topup:stars:{paid.charge_id}"
    assert [p.status for p in await payments(bot)] == ["paid"]
    assert tg.calls_of("getStarTransactions")
    await bot.assert_ledger_invariant()


async def test_no_pending_invoice_means_no_star_transactions_call(start_bot, tg) -> None:
    await start_bot(**STARS)
    await tg.user(ALICE, "Alice").send("/start")
    await tg.settle()
    assert not tg.calls_of("getStarTransactions")


async def test_a_custom_amount(start_bot, tg) -> None:
    bot = await start_bot(**STARS)
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await alice.press("💳 Top up")
    await alice.press("✏️ Other amount")
    assert "from $1.00 to $1000.00" in alice.last().text
    assert "must be from" in (await alice.send("5000")).text
    assert "not an amount" in (await alice.send("lots")).text
    reply = await alice.send("12.5")
    assert "Top up by $12.50" in reply.text
    await alice.press("⭐ Telegram Stars · 625 ⭐")
    invoice = await tg.wait_invoice(alice)
    assert invoice.amount == 625
    await tg.pay(alice, invoice)
    await tg.wait_for(lambda: paid_notices(alice))
    assert await bot.balance(ALICE) == 12_500_000


async def test_pre_checkout_for_a_disabled_method_is_refused(start_bot, tg) -> None:
    bot = await start_bot(**STARS)
    alice = tg.user(ALICE, "Alice")
    invoice = await invoice_for(tg, alice, "$5.00")
    await bot.stop()
    bot = await start_bot(notify_chat_id=GROUP)  # Stars turned off since the invoice was sent
    paid = await tg.pay(alice, invoice)
    assert not paid.ok
    assert paid.error_message is not None and "turned off" in paid.error_message
    await tg.settle()
    assert await bot.balance(ALICE) == 0
    assert await bot.ledger(ALICE) == []
    assert [p.status for p in await payments(bot)] == ["pending"]
    # ...and without a method the menu has no Top up, the balance screen says whom to ask
    await alice.send("/start")
    assert "💳 Top up" not in alice.last().button_texts


async def test_pre_checkout_refused_out_of_range_and_for_a_banned_user(start_bot, tg) -> None:
    bot = await start_bot(**STARS)
    alice = tg.user(ALICE, "Alice", username="alice")
    invoice = await invoice_for(tg, alice, "$50.00")
    await bot.stop()
    bot = await start_bot(**STARS, topup_max="20")
    refused = await tg.pay(alice, invoice)
    assert not refused.ok and refused.error_message is not None
    assert "outside the allowed range" in refused.error_message

    small = await invoice_for(tg, alice, "$5.00")
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/ban 1001")
    refused = await tg.pay(alice, small)
    assert not refused.ok and refused.error_message is not None
    assert "cannot make payments" in refused.error_message
    assert await bot.balance(ALICE) == 0
    assert not tg.star_transactions


async def _paid(start_bot, tg, amount_button: str = "$5.00"):
    bot = await start_bot(**STARS)
    alice = tg.user(ALICE, "Alice")
    invoice = await invoice_for(tg, alice, amount_button)
    paid = await tg.pay(alice, invoice)
    await tg.wait_for(lambda: paid_notices(alice))
    return bot, alice, paid.charge_id


async def test_refund_with_enough_balance(start_bot, tg) -> None:
    bot, _, charge = await _paid(start_bot, tg)
    admin = tg.user(ADMIN_ID, "Owner")
    reply = await admin.send(f"/refund_stars {charge}")
    assert "Refunded 250 ⭐ ($5.00) to 1001. Their balance: $0.00" in reply.text
    assert charge in tg.refunded_charges
    assert await bot.balance(ALICE) == 0
    assert [(e.delta, e.reason, e.idempotency_key) for e in await bot.ledger(ALICE)] == [
        (5_000_000, "topup", f"topup:stars:{charge}"),
        (-5_000_000, "stars_refund", f"refund:stars:{charge}"),
    ]
    assert [p.status for p in await payments(bot)] == ["refunded"]
    again = await admin.send(f"/refund_stars {charge}")
    assert "was refunded already" in again.text
    assert len(tg.calls_of("refundStarPayment")) == 1
    assert await bot.balance(ALICE) == 0
    await eventually(lambda: "Stars refund: 250 ⭐ ($5.00)" in group_text(tg))
    await bot.assert_ledger_invariant()


async def test_refund_without_enough_balance_is_refused(start_bot, tg) -> None:
    bot, _, charge = await _paid(start_bot, tg)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send(f"/deduct {ALICE} 1")
    reply = await admin.send(f"/refund_stars {charge}")
    assert "balance is only $4.00" in reply.text
    assert not tg.calls_of("refundStarPayment")
    assert await bot.balance(ALICE) == 4_000_000
    assert len(await bot.ledger(ALICE)) == 2
    assert [p.status for p in await payments(bot)] == ["paid"]
    await bot.assert_ledger_invariant()


async def test_a_refund_telegram_refuses_gives_the_money_back_and_can_be_retried(
    start_bot, tg
) -> None:
    bot, _, charge = await _paid(start_bot, tg)
    admin = tg.user(ADMIN_ID, "Owner")
    tg.fail("refundStarPayment", 400, "Bad Request: STARS_REFUND_FAILED")
    reply = await admin.send(f"/refund_stars {charge}")
    assert "Telegram refused the refund" in reply.text
    assert await bot.balance(ALICE) == 5_000_000
    assert [p.status for p in await payments(bot)] == ["paid"]

    reply = await admin.send(f"/refund_stars {charge}")
    assert "Refunded 250 ⭐" in reply.text
    assert await bot.balance(ALICE) == 0
    assert [(e.delta, e.idempotency_key) for e in await bot.ledger(ALICE)] == [
        (5_000_000, f"topup:stars:{charge}"),
        (-5_000_000, f"refund:stars:{charge}"),
        (5_000_000, f"refund:stars:{charge}:returned"),
        (-5_000_000, f"refund:stars:{charge}:2"),
    ]
    await bot.assert_ledger_invariant()


async def test_charge_already_refunded_keeps_the_debit_once(start_bot, tg) -> None:
    bot, _, charge = await _paid(start_bot, tg)
    tg.refunded_charges.add(charge)  # refunded at Telegram already (another process, by hand)
    admin = tg.user(ADMIN_ID, "Owner")
    reply = await admin.send(f"/refund_stars {charge}")
    assert "Refunded 250 ⭐" in reply.text
    assert tg.calls_of("refundStarPayment")[0].error == "Bad Request: CHARGE_ALREADY_REFUNDED"
    assert await bot.balance(ALICE) == 0
    assert len(await bot.ledger(ALICE)) == 2
    assert [p.status for p in await payments(bot)] == ["refunded"]


@pytest.mark.parametrize("args", ["", "nosuchcharge"])
async def test_refund_of_an_unknown_charge(start_bot, tg, args) -> None:
    await start_bot(**STARS)
    reply = await tg.user(ADMIN_ID, "Owner").send(f"/refund_stars {args}".strip())
    assert ("Usage" if not args else "No Stars payment") in reply.text


async def test_user_and_stats_show_top_ups_by_method(start_bot, tg) -> None:
    await start_bot(**STARS)
    alice = tg.user(ALICE, "Alice")
    paid = await tg.pay(alice, await invoice_for(tg, alice, "$5.00"))
    await tg.wait_for(lambda: paid_notices(alice))
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    await admin.send(f"/topup {ALICE} 2")
    report = (await admin.send(f"/user {ALICE}")).text
    payments_part = report.split("Top-ups paid in the bot")[1]
    assert "Telegram Stars · $5.00 · paid" in payments_part
    assert paid.charge_id in payments_part
    stats = (await admin.send("/stats")).text
    assert "Top-ups: by admins 1: $2.00 · Telegram Stars 1: $5.00" in stats
