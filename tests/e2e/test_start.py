"""A new customer opens the bot."""

from __future__ import annotations


async def test_start_shows_the_menu_in_english(bot, tg) -> None:
    alice = tg.user(1001, "Alice", language_code="en")
    reply = await alice.send("/start")
    assert "Hello, Alice!" in reply.text
    assert "Balance: $0.00" in reply.text
    assert reply.button_texts == [
        "📱 Buy a number",
        "📈 SMM services",
        "💰 Balance",
        "🧾 History",
        "🌐 Language",
        "❓ Help",
    ]


async def test_start_speaks_russian_to_a_russian_telegram(bot, tg) -> None:
    boris = tg.user(1002, "Борис", language_code="ru")
    reply = await boris.send("/start")
    assert "Здравствуйте, Борис!" in reply.text
    assert "📱 Купить номер" in reply.button_texts


async def test_unknown_language_falls_back_to_default(bot, tg) -> None:
    pierre = tg.user(1003, "Pierre", language_code="fr")
    reply = await pierre.send("/start")
    assert "Hello, Pierre!" in reply.text
