"""The customer's record as the bot keeps it between updates (bot/middlewares.py UserCache): a
new name, a ban, a language and a balance each show on the very next update."""

from __future__ import annotations

from db import repositories as repo
from tests.conftest import ADMIN_ID

ALICE = 1001


async def test_a_renamed_customer_is_greeted_by_the_new_name(bot, tg) -> None:
    alice = tg.user(ALICE, "Alice", username="alice")
    assert "Hello, Alice!" in (await alice.send("/start")).text
    alice.first_name, alice.username = "Alicia", "alicia"
    assert "Hello, Alicia!" in (await alice.send("/start")).text
    async with bot.db.read() as session:
        row = await repo.get_user(session, ALICE)
    assert (row.first_name, row.username) == ("Alicia", "alicia")


async def test_the_menu_shows_the_balance_of_now(bot, tg) -> None:
    alice = tg.user(ALICE, "Alice")
    admin = tg.user(ADMIN_ID, "Owner")
    assert "Balance: $0.00" in (await alice.send("/start")).text
    await admin.send(f"/topup {ALICE} 3")
    assert "Balance: $3.00" in (await alice.send("/start")).text
    await alice.press("💰 Balance")
    await alice.press("« Main menu")
    assert "$3.00" in alice.last().text


async def test_a_ban_and_an_unban_apply_to_the_next_press(bot, tg) -> None:
    alice = tg.user(ALICE, "Alice")
    admin = tg.user(ADMIN_ID, "Owner")
    await alice.send("/start")
    await alice.press("📱 Buy a number")  # the record is fresh in the bot's cache now
    await alice.press("« Main menu")
    assert "is banned" in (await admin.send(f"/ban {ALICE}")).text
    answer = await alice.press("📱 Buy a number")
    assert answer.text.startswith("⛔ Your account is restricted.")
    assert "is unbanned" in (await admin.send(f"/unban {ALICE}")).text
    await alice.press("📱 Buy a number")
    assert "Choose a country" in alice.last().text
