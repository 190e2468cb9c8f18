"""Customers top up with Crypto Pay (@CryptoBot): credited exactly once per invoice, whether the
poller, the webhook, a replayed webhook or both at once find it paid; a forged webhook changes
nothing; an expired invoice is closed."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from db.models import Payment
from tests.conftest import ADMIN_ID, eventually
from tests.fakes.cryptopay import TOKEN, FakeCryptoPay
from tests.fakes.telegram import FakeTelegram, FakeUser

GROUP = -100778
ALICE = 1001


def crypto_settings(fake: FakeCryptoPay, **more):
    return {
        "cryptopay_token": TOKEN,
        "cryptopay_api_url": fake.url,
        "cryptopay_assets": "USDT,TON",
        "notify_chat_id": GROUP,
        **more,
    }


async def payments(bot) -> list[Payment]:
    async with bot.db.read() as session:
        return list((await session.scalars(select(Payment).order_by(Payment.id))).all())


def paid_notices(alice: FakeUser) -> list[str]:
    return [m.text for m in alice.messages if "Payment received" in m.text]


async def crypto_invoice(fake: FakeCryptoPay, alice: FakeUser, amount_button: str) -> int:
    """Main menu -> 💳 Top up -> an amount -> 💎 Crypto: the invoice's id at Crypto Pay."""
    before = set(fake.invoices)
    await alice.send("/start")
    await alice.press("💳 Top up")
    await alice.press(amount_button)
    await alice.press("💎 Crypto")
    (new,) = set(fake.invoices) - before
    return new


def group_text(tg: FakeTelegram) -> str:
    return "\n".join(m.text for m in tg.chats[GROUP])


async def test_a_paid_invoice_is_found_by_polling_and_credited_once(start_bot, tg) -> None:
    async with FakeCryptoPay() as fake:
        bot = await start_bot(**crypto_settings(fake, poll_interval_s=0.3))
        alice = tg.user(ALICE, "Alice")
        invoice_id = await crypto_invoice(fake, alice, "$5.00")
        invoice = fake.invoices[invoice_id]
        assert (invoice.currency_type, invoice.fiat, invoice.amount) == ("fiat", "USD", "5")
        assert invoice.accepted_assets == ["USDT", "TON"]
        assert invoice.expires_in == 3600
        shown = alice.last()
        assert "invoice for $5.00 is ready" in shown.text
        assert shown.buttons[0][0]["url"] == invoice.as_api()["bot_invoice_url"]
        (row,) = await payments(bot)
        assert (row.status, row.external_id, row.amount) == ("pending", str(invoice_id), 5_000_000)

        fake.pay(invoice_id)
        await tg.wait_for(lambda: paid_notices(alice))
        await asyncio.sleep(1)  # a few more polls: still once
        assert await bot.balance(ALICE) == 5_000_000
        (entry,) = await bot.ledger(ALICE)
        assert (entry.delta, entry.idempotency_key) == (5_000_000, f"topup:cryptopay:{invoice_id}")
        (row,) = await payments(bot)
        assert (row.status, row.credited) == ("paid", 5_000_000)
        assert len(paid_notices(alice)) == 1
        await eventually(lambda: "topped up $5.00 with Crypto Pay" in group_text(tg))
        await bot.assert_ledger_invariant()


async def test_an_expired_invoice_is_closed(start_bot, tg) -> None:
    async with FakeCryptoPay() as fake:
        bot = await start_bot(**crypto_settings(fake, poll_interval_s=0.3))
        alice = tg.user(ALICE, "Alice")
        invoice_id = await crypto_invoice(fake, alice, "$10.00")
        fake.expire(invoice_id)

        async def closed() -> bool:
            return [p.status for p in await payments(bot)] == ["expired"]

        await eventually(closed)
        assert await bot.balance(ALICE) == 0


async def test_webhook_credits_once_replayed_or_racing_the_poller(start_bot, tg) -> None:
    async with FakeCryptoPay() as fake:
        # polling once at start-up, then not for ten minutes: the webhook does the work
        bot = await start_bot(webhook=True, **crypto_settings(fake, poll_interval_s=600))
        url = bot.app.settings.webhook_url + "/cryptopay"
        alice = tg.user(ALICE, "Alice")
        invoice_id = await crypto_invoice(fake, alice, "$5.00")
        fake.pay(invoice_id)
        body = fake.webhook_body(invoice_id)
        assert await fake.send_webhook(url, invoice_id, body=body) == 200
        assert await bot.balance(ALICE) == 5_000_000
        assert await fake.send_webhook(url, invoice_id, body=body) == 200  # replayed
        assert await fake.send_webhook(url, invoice_id) == 200  # a new delivery of it

        second = await crypto_invoice(fake, alice, "$10.00")
        fake.pay(second)
        answers = await asyncio.gather(
            fake.send_webhook(url, second),
            bot.app.cryptopay.poll(),
            fake.send_webhook(url, second),
            bot.app.cryptopay.poll(),
        )
        assert answers[0] == answers[2] == 200
        assert sum(answers[1::2]) <= 1  # the poller credited it, or a webhook did: once
        await tg.wait_for(lambda: len(paid_notices(alice)) == 2)
        assert await bot.balance(ALICE) == 15_000_000
        keys = [e.idempotency_key for e in await bot.ledger(ALICE)]
        assert keys == [f"topup:cryptopay:{invoice_id}", f"topup:cryptopay:{second}"]
        await tg.settle(0.3)
        assert len(paid_notices(alice)) == 2
        await bot.assert_ledger_invariant()


async def test_a_forged_webhook_is_refused_and_changes_nothing(start_bot, tg) -> None:
    async with FakeCryptoPay() as fake:
        bot = await start_bot(webhook=True, **crypto_settings(fake, poll_interval_s=600))
        url = bot.app.settings.webhook_url + "/cryptopay"
        alice = tg.user(ALICE, "Alice")
        invoice_id = await crypto_invoice(fake, alice, "$5.00")
        fake.pay(invoice_id)
        body = fake.webhook_body(invoice_id)
        forged = FakeCryptoPay(token="999:someone-elses-token").sign(body)
        assert await fake.send_webhook(url, invoice_id, body=body, signature=forged) == 401
        assert await fake.send_webhook(url, invoice_id, body=body, signature="") == 401
        tampered = body.replace(b'"amount": "5"', b'"amount": "500"')
        assert tampered != body
        sig = fake.sign(body)  # the signature of the original, on another body
        assert await fake.send_webhook(url, invoice_id, body=tampered, signature=sig) == 401
        assert await bot.balance(ALICE) == 0
        assert await bot.ledger(ALICE) == []
        assert [p.status for p in await payments(bot)] == ["pending"]


async def test_without_a_token_there_is_no_crypto_button(start_bot, tg) -> None:
    await start_bot(stars_enabled=True, stars_rate="0.02")
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await alice.press("💳 Top up")
    await alice.press("$5.00")
    assert alice.last().button_texts == ["⭐ Telegram Stars · 250 ⭐", "« Back"]


async def test_admin_lists_payments_and_checks_one_now(start_bot, tg) -> None:
    async with FakeCryptoPay() as fake:
        # polled once at start-up only: the admin's "Check now" finds the payment
        bot = await start_bot(**crypto_settings(fake, poll_interval_s=600))
        alice = tg.user(ALICE, "Alice", username="alice")
        invoice_id = await crypto_invoice(fake, alice, "$5.00")
        fake.pay(invoice_id)
        admin = tg.user(ADMIN_ID, "Owner")
        listing = await admin.send("/payments @alice")
        assert (
            "#1 · " in listing.text and "Crypto Pay · $5.00 · waiting for payment" in listing.text
        )
        assert str(invoice_id) in listing.text
        answer = await admin.press("🔄 Check #1")
        assert answer.text == "Top-up #1: paid"
        assert await bot.balance(ALICE) == 5_000_000
        await admin.press("🔄 Check #1", message=listing)  # again: nothing more
        assert await bot.balance(ALICE) == 5_000_000
        assert len(await bot.ledger(ALICE)) == 1
        again = await admin.send("/payments")
        assert "Crypto Pay · $5.00 · paid" in again.text and not again.buttons
        assert "not found" in (await admin.send("/payments @nobody")).text


async def test_a_customer_cannot_check_payments(start_bot, tg) -> None:
    async with FakeCryptoPay() as fake:
        bot = await start_bot(**crypto_settings(fake, poll_interval_s=600))
        alice = tg.user(ALICE, "Alice")
        invoice_id = await crypto_invoice(fake, alice, "$5.00")
        fake.pay(invoice_id)
        answer = await alice.press_data("pchk:1")
        assert answer.text == "This button is outdated. Send /start to open the menu."
        reply = await alice.send("/payments")
        assert reply.text == "🤷 Unknown command. Send /start to open the menu."
        assert await bot.balance(ALICE) == 0


async def _lost_invoice(fake: FakeCryptoPay, alice: FakeUser) -> int:
    """💎 Crypto pressed; Crypto Pay made the invoice but its answer never came back."""
    fake.drop_create_answers = 1
    await alice.send("/start")
    await alice.press("💳 Top up")
    await alice.press("$5.00")
    answer = await alice.press("💎 Crypto")
    assert "not available right now" in answer.text
    (invoice_id,) = fake.invoices
    return invoice_id


async def test_an_invoice_whose_answer_was_lost_is_found_and_credited_once(start_bot, tg) -> None:
    """The row never learnt its invoice id: the poller finds the invoice by its payload."""
    async with FakeCryptoPay() as fake:
        bot = await start_bot(**crypto_settings(fake, poll_interval_s=0.3))
        alice = tg.user(ALICE, "Alice")
        invoice_id = await _lost_invoice(fake, alice)

        async def adopted() -> bool:
            return [p.external_id for p in await payments(bot)] == [str(invoice_id)]

        await eventually(adopted)  # still payable: the row learns its id and pay link
        fake.pay(invoice_id)  # the customer had paid through the link anyway
        await tg.wait_for(lambda: paid_notices(alice))
        await asyncio.sleep(1)
        assert await bot.balance(ALICE) == 5_000_000
        (entry,) = await bot.ledger(ALICE)
        assert entry.idempotency_key == f"topup:cryptopay:{invoice_id}"
        assert [p.status for p in await payments(bot)] == ["paid"]
        await bot.assert_ledger_invariant()


async def test_a_lost_answer_paid_invoice_credited_by_webhook_once(start_bot, tg) -> None:
    async with FakeCryptoPay() as fake:
        bot = await start_bot(webhook=True, **crypto_settings(fake, poll_interval_s=600))
        url = bot.app.settings.webhook_url + "/cryptopay"
        alice = tg.user(ALICE, "Alice")
        invoice_id = await _lost_invoice(fake, alice)
        fake.pay(invoice_id)
        assert await fake.send_webhook(url, invoice_id) == 200
        assert await fake.send_webhook(url, invoice_id) == 200
        await bot.app.cryptopay.poll()
        assert await bot.balance(ALICE) == 5_000_000
        assert len(await bot.ledger(ALICE)) == 1
        (row,) = await payments(bot)
        assert (row.status, row.external_id) == ("paid", str(invoice_id))
        await bot.assert_ledger_invariant()
