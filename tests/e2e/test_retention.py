"""Privacy retention: RETENTION_DAYS erases exactly the numbers, SMS texts and codes of orders
that ended long enough ago, and nothing else; /forget does it at once for one customer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from bot.jobs import erase_old_orders
from db.models import Activation, LedgerEntry, OutboxMessage
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_otp_journey import FAST, FUNDS, TG_RU, bought, code_message, sa_entry
from tests.fakes.smsactivate import FakeSmsActivate

ALICE, BOB = 1001, 1002
DAY = timedelta(days=1)


@pytest.fixture
async def sa() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate() as fake:
        yield fake


async def buy(user) -> None:
    await user.send("/start")
    await user.press("📱 Buy a number")
    await user.press("Russia")
    await user.press("Telegram · $0.18")
    await user.press("✅ Buy for $0.18")
    await bought(user)


async def buy_with_code(user, sa, code: str) -> int:
    await buy(user)
    activation = max(sa.activations.values(), key=lambda a: int(a.id))
    sa.deliver_sms(activation.id, code, f"Your code {code}")
    await code_message(user, code)
    return int(activation.id)


async def rows(bot) -> dict[int, Activation]:
    async with bot.db.read() as session:
        found = await session.scalars(select(Activation).order_by(Activation.id))
        return {a.id: a for a in found}


async def ledger_sum(bot) -> int:
    async with bot.db.read() as session:
        return int(await session.scalar(select(func.sum(LedgerEntry.delta))) or 0)


async def age(bot, activation_id: int, days: float) -> None:
    """The order ended `days` ago."""
    async with bot.db.write() as session:
        await session.execute(
            update(Activation)
            .where(Activation.id == activation_id)
            .values(closed_at=datetime.now(UTC) - timedelta(days=days))
        )


async def finish_all(bot) -> None:
    for activation in (await rows(bot)).values():
        if activation.status == "received":
            await bot.app.otp.finish(activation.user_id, activation.id)


async def test_retention_erases_exactly_the_old_ended_orders(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], retention_days=30, **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice", username="alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_with_code(alice, sa, "111111")  # 1: ended 31 days ago -> erased
    await buy_with_code(alice, sa, "222222")  # 2: ended 29 days ago -> kept
    await finish_all(bot)
    await buy(alice)  # 3: still open (no code) -> kept whatever its age
    await age(bot, 1, 31)
    await age(bot, 2, 29)
    async with bot.db.write() as session:  # an old sent message with the code in it
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.text.contains("111111"))
            .values(sent_at=datetime.now(UTC) - 31 * DAY)
        )
    money_before = await ledger_sum(bot)
    before = await rows(bot)

    await erase_old_orders(bot.app)

    after = await rows(bot)
    old = after[1]
    assert (old.phone, old.code, old.sms_text) == (None, None, None)
    assert old.erased_at is not None
    assert (old.price, old.status, old.service, old.country, old.created_at) == (
        TG_RU,
        before[1].status,
        before[1].service,
        before[1].country,
        before[1].created_at,
    )
    for kept in (2, 3):
        assert after[kept].erased_at is None and after[kept].phone == before[kept].phone
    assert after[2].code == "222222"
    assert await ledger_sum(bot) == money_before
    async with bot.db.read() as session:
        texts = (await session.scalars(select(OutboxMessage.text))).all()
    assert not any("111111" in text for text in texts)
    assert any("222222" in text for text in texts)

    await alice.send("/history")
    history = alice.last().text
    assert "#1 · " in history and "erased" in history.split("#1 · ")[1].split("\n")[0]
    assert "222222" in history
    report = (await tg.user(ADMIN_ID, "Owner").send("/user 1001")).text
    assert "otp:1 · telegram · RU · erased" in report
    await bot.assert_ledger_invariant()


async def test_without_retention_days_nothing_is_erased(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice = tg.user(ALICE, "Alice")
    await alice.send("/start")
    await bot.fund(ALICE, FUNDS)
    await buy_with_code(alice, sa, "333333")
    await finish_all(bot)
    await age(bot, 1, 3650)
    await erase_old_orders(bot.app)
    assert (await rows(bot))[1].code == "333333"


async def test_forget_erases_the_customers_own_ended_orders_only(start_bot, tg, sa) -> None:
    bot = await start_bot(providers=[sa_entry(sa)], **FAST)
    await bot.wait_catalog()
    alice, bob = tg.user(ALICE, "Alice"), tg.user(BOB, "Bob")
    for user in (alice, bob):
        await user.send("/start")
        await bot.fund(user.id, FUNDS)
    await buy_with_code(alice, sa, "444444")  # 1
    await buy_with_code(bob, sa, "555555")  # 2
    await finish_all(bot)
    await buy(alice)  # 3: open
    reply = await alice.send("/forget")
    assert "cannot be undone" in reply.text
    assert (await rows(bot))[1].erased_at is None  # only asked so far
    await alice.press("🗑 Erase them")
    assert "1 order was erased" in alice.last().text
    after = await rows(bot)
    assert after[1].erased_at is not None and after[1].code is None
    assert after[2].code == "555555" and after[2].erased_at is None  # Bob's
    assert after[3].erased_at is None and after[3].phone is not None  # open
    await alice.send("/forget")
    await alice.press("🗑 Erase them")
    await eventually(lambda: "0 orders were erased" in alice.last().text)
    assert await bot.balance(ALICE) == FUNDS - 2 * TG_RU
    await bot.assert_ledger_invariant()
