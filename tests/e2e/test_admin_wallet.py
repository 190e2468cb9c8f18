"""The shop owner tops up and corrects wallets from Telegram."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_ID

CUSTOMER = 2001


@pytest.fixture
async def people(bot, tg):
    admin = tg.user(ADMIN_ID, "Owner", username="owner")
    customer = tg.user(CUSTOMER, "Carol", username="carol", language_code="ru")
    await customer.send("/start")
    return admin, customer


async def test_admin_tops_up_by_id_and_the_customer_is_told_in_their_language(
    bot, tg, people
) -> None:
    admin, customer = people
    reply = await admin.send(f"/topup {CUSTOMER} 12.5 welcome bonus")
    assert "Topped up @carol (2001) by $12.50. New balance: $12.50" in reply.text

    notice = await tg.wait_for(
        lambda: [m for m in customer.messages if "пополнен" in m.text], timeout=5
    )
    assert "Ваш кошелёк пополнен на $12.50. Баланс: $12.50" in notice[-1].text

    assert await bot.balance(CUSTOMER) == 12_500_000
    (entry,) = await bot.ledger(CUSTOMER)
    assert (entry.delta, entry.reason, entry.admin_id, entry.comment) == (
        12_500_000,
        "topup",
        ADMIN_ID,
        "welcome bonus",
    )
    await bot.assert_ledger_invariant()


async def test_admin_deducts_by_username(bot, tg, people) -> None:
    admin, _ = people
    await admin.send(f"/topup {CUSTOMER} 10")
    reply = await admin.send("/deduct @Carol 2.25 correction")
    assert "Deducted $2.25 from @carol (2001). New balance: $7.75" in reply.text
    assert await bot.balance(CUSTOMER) == 7_750_000
    entries = await bot.ledger(CUSTOMER)
    assert [(e.delta, e.reason, e.admin_id) for e in entries] == [
        (10_000_000, "topup", ADMIN_ID),
        (-2_250_000, "deduct", ADMIN_ID),
    ]
    await bot.assert_ledger_invariant()


async def test_deduct_never_goes_below_zero(bot, tg, people) -> None:
    admin, _ = people
    await admin.send(f"/topup {CUSTOMER} 1")
    reply = await admin.send(f"/deduct {CUSTOMER} 1.000001")
    assert "has only $1.00: nothing was deducted" in reply.text
    assert await bot.balance(CUSTOMER) == 1_000_000
    assert len(await bot.ledger(CUSTOMER)) == 1


async def test_unknown_user_is_reported(bot, tg, people) -> None:
    admin, _ = people
    reply = await admin.send("/topup @nobody_here 5")
    assert "User @nobody_here not found" in reply.text
    reply = await admin.send("/topup <b>x</b> 5")
    assert "User <b>x</b> not found" in reply.text  # escaped, shown as typed


@pytest.mark.parametrize(
    "amount",
    [
        "1e3",
        "-5",
        "0",
        "0.00",
        "NaN",
        "inf",
        "1,000",
        "1.0000001",
        "abc",
        "$5",
        "5$",
        "0x10",
        "١٠",
    ],
)
async def test_malformed_amounts_are_refused_and_change_nothing(bot, tg, people, amount) -> None:
    admin, _ = people
    reply = await admin.send(f"/topup {CUSTOMER} {amount}")
    assert reply.text.startswith("Usage: /topup")
    reply = await admin.send(f"/deduct {CUSTOMER} {amount}")
    assert reply.text.startswith("Usage: /deduct")
    assert await bot.balance(CUSTOMER) == 0
    assert await bot.ledger(CUSTOMER) == []


async def test_missing_arguments_show_usage(bot, tg, people) -> None:
    admin, _ = people
    assert (await admin.send("/topup")).text.startswith("Usage: /topup")
    assert (await admin.send(f"/topup {CUSTOMER}")).text.startswith("Usage: /topup")


async def test_a_customer_cannot_use_admin_commands(bot, tg, people) -> None:
    mallory = tg.user(2002, "Mallory", language_code="en")
    await mallory.send("/start")
    for command in (f"/topup {2002} 100", f"/deduct {CUSTOMER} 1", "/audit"):
        reply = await mallory.send(command)
        assert reply.text == "🤷 Unknown command. Send /start to open the menu."
    assert (await mallory.send("/nonsense")).text == reply.text  # same answer as any unknown
    assert await bot.balance(2002) == 0
    assert await bot.balance(CUSTOMER) == 0


async def test_audit_reports_clean_books(bot, tg, people) -> None:
    admin, _ = people
    await admin.send(f"/topup {CUSTOMER} 3")
    reply = await admin.send("/audit")
    assert "Audit: 2 users checked, every balance equals its ledger." in reply.text


async def test_audit_finds_a_tampered_balance(bot, tg, people) -> None:
    from sqlalchemy import update

    from db.models import User

    admin, _ = people
    await admin.send(f"/topup {CUSTOMER} 3")
    async with bot.db.write() as session:
        await session.execute(update(User).where(User.id == CUSTOMER).values(balance=5_000_000))
    reply = await admin.send("/audit")
    assert "Audit: 2 users checked, 1 mismatch:" in reply.text
    assert "user 2001: balance $5.00, ledger $3.00" in reply.text


async def test_a_redelivered_topup_update_credits_once(bot, tg, people) -> None:
    """Telegram may deliver the same update twice (e.g. after a crash before the offset moved)."""
    admin, _ = people
    message = {
        "message_id": 42,
        "from": admin.as_api(),
        "chat": admin.chat,
        "date": 0,
        "text": f"/topup {CUSTOMER} 5",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    await tg.push_update({"message": message})
    await tg.wait_for(lambda: any("Topped up" in m.text for m in admin.messages))
    await tg.push_update({"message": message})
    await tg.wait_for(lambda: any("already carried out" in m.text for m in admin.messages))
    assert await bot.balance(CUSTOMER) == 5_000_000


async def test_an_ambiguous_username_is_refused_with_the_ids(bot, tg, people) -> None:
    """@carol renamed herself; 2003 took the name. The stale row still says carol: refuse."""
    admin, _ = people
    await tg.user(2003, "Carla", username="Carol").send("/start")
    for command, typed in (("/topup", "@carol"), ("/deduct", "@CAROL"), ("/topup", "carol")):
        reply = await admin.send(f"{command} {typed} 1")
        assert reply.text == f"{typed} matches several users: 2001, 2003 — use the id."
    assert await bot.balance(CUSTOMER) == 0
    assert await bot.balance(2003) == 0
    assert await bot.ledger(CUSTOMER) == [] and await bot.ledger(2003) == []
    reply = await admin.send("/topup 2003 5")
    assert "Topped up @Carol (2003) by $5.00" in reply.text


@pytest.mark.parametrize("target", ["²", "-²", "--5", "٣", "99999999999999999999"])
async def test_a_non_ascii_or_oversized_id_is_not_found(bot, tg, people, target) -> None:
    admin, _ = people
    for command in ("topup", "deduct"):
        reply = await admin.send(f"/{command} {target} 5")
        assert reply.text.startswith(f"User {target} not found"), reply.text
    assert await bot.balance(CUSTOMER) == 0
