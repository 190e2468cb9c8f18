"""A customer switches the bot's language, and it stays switched."""

from __future__ import annotations

from db import repositories as repo


async def test_language_switch_persists(bot, tg) -> None:
    alice = tg.user(1001, "Alice", language_code="en")
    await alice.send("/start")
    await alice.press("🌐 Language")
    assert "Choose your language" in alice.last().text
    await alice.press("🇷🇺 Русский")
    assert "Язык: русский" in alice.last().text
    assert "💰 Баланс" in alice.last().button_texts

    reply = await alice.send("/start")
    assert "Здравствуйте, Alice!" in reply.text
    async with bot.db.read() as session:
        assert (await repo.get_user(session, 1001)).language == "ru"

    await alice.press("🌐 Язык")
    await alice.press("🇬🇧 English")
    reply = await alice.send("/start")
    assert "Hello, Alice!" in reply.text


async def test_language_survives_a_restart(start_bot, tg) -> None:
    first = await start_bot()
    boris = tg.user(1002, "Boris", language_code="en")
    await boris.send("/start")
    await boris.press("🌐 Language")
    await boris.press("🇷🇺 Русский")
    await first.stop()

    await start_bot()
    reply = await boris.send("/start")
    assert "Здравствуйте, Boris!" in reply.text


async def test_help_and_the_smm_section_open(bot, tg) -> None:
    alice = tg.user(1001, "Alice")
    await alice.send("/start")
    await alice.press("📈 SMM services")
    assert "SMM services: choose a category" in alice.last().text
    await alice.press("« Main menu")
    await alice.press("❓ Help")
    assert "How it works" in alice.last().text
    await alice.press("« Main menu")
    assert alice.last().text.startswith("Main menu")
