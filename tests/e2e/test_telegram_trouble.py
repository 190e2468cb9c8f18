"""Telegram misbehaves; the bot copes."""

from __future__ import annotations

import logging

from tests.conftest import ADMIN_ID


async def test_a_flood_limit_on_send_message_is_waited_out(bot, tg) -> None:
    alice = tg.user(1001, "Alice")
    tg.flood("sendMessage", retry_after=1)
    reply = await alice.send("/start")
    assert "Hello, Alice!" in reply.text
    sends = tg.calls_of("sendMessage")
    assert [call.error is not None for call in sends] == [True, False]
    assert sends[1].at - sends[0].at >= 0.9  # it waited as told


async def test_message_not_modified_is_not_an_error(bot, tg) -> None:
    alice = tg.user(1001, "Alice")
    await alice.send("/start")
    await alice.press("❓ Help")
    answer = await alice.press_data(alice.find_button("« Main menu")[1]["callback_data"])
    assert answer.text is None
    # Pressing Help on the help screen again: the edit is refused as "not modified".
    await alice.press("🌐 Language")
    await alice.press("« Back")
    menu = alice.last()
    answer = await alice.press_data("m:main", message=menu)
    assert answer.text is None
    assert any("not modified" in (c.error or "") for c in tg.calls_of("editMessageText"))
    assert not bot.app.errors


async def test_a_user_who_blocked_the_bot_is_marked_and_money_still_moves(bot, tg) -> None:
    admin = tg.user(ADMIN_ID, "Owner")
    carol = tg.user(2001, "Carol")
    await carol.send("/start")
    tg.block(2001)
    reply = await admin.send("/topup 2001 3")
    assert "Topped up" in reply.text
    assert await bot.balance(2001) == 3_000_000

    from db import repositories as repo

    async def blocked() -> bool:
        async with bot.db.read() as session:
            return (await repo.get_user(session, 2001)).blocked_bot

    for _ in range(50):
        if await blocked():
            break
        await tg.settle(0.1)
    assert await blocked()


async def test_an_unexpected_error_gets_an_apology_and_a_log_line(bot, tg, monkeypatch, caplog):
    import handlers.wallet

    async def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(handlers.wallet, "balance_text", broken)
    alice = tg.user(1001, "Alice")
    await alice.send("/start")
    with caplog.at_level(logging.ERROR):
        answer = await alice.press("💰 Balance")
    assert answer.text == "😔 Sorry, something went wrong. Please try again."
    assert answer.show_alert
    records = [r for r in caplog.records if r.getMessage() == "unhandled error in a handler"]
    assert records and records[0].update_id == bot.app.errors[0]
    bot.app.errors.clear()


async def test_forged_and_garbage_callbacks_get_a_clear_answer(bot, tg) -> None:
    alice = tg.user(1001, "Alice")
    await alice.send("/start")
    for data in ("m:nope", "lang:xx", "garbage", "x" * 64, "m:", ":::"):
        answer = await alice.press_data(data)
        assert answer.text == "This button is outdated. Send /start to open the menu."
    assert not bot.app.errors


async def test_a_flooding_user_is_slowed_and_others_are_not(start_bot, tg) -> None:
    await start_bot(throttle_rate_per_s=2)
    flooder = tg.user(3001, "Flood")
    calm = tg.user(3002, "Calm")
    for _ in range(20):
        await flooder.send("/help", wait=False)
    reply = await calm.send("/start")
    assert "Hello, Calm!" in reply.text
    await tg.settle(0.3)
    answers = [m.text for m in flooder.messages]
    helps = [t for t in answers if "How it works" in t]
    assert 1 <= len(helps) <= 6  # the burst allowance, not 20
    assert answers.count("⏳ Too many requests, please slow down.") == 1
