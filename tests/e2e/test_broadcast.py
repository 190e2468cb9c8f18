"""/broadcast: every user who has not blocked the bot gets one copy, at most once, also after a
restart; progress in one edited message; cancellable; blocked users are marked and skipped."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter

from sqlalchemy import func, select, update

from db import repositories as repo
from db.engine import Database
from db.migrate import upgrade
from db.models import Broadcast, BroadcastDelivery, User
from services.broadcast import BroadcastService
from services.outbox import SendResult, SendStatus
from tests.conftest import ADMIN_ID, eventually
from tests.e2e.test_process import bot_env, start_process
from tests.fakes.telegram import FakeTelegram, FakeUser, Msg

UNKNOWN = "🤷 Unknown command. Send /start to open the menu."
FIRST_ID = 500_000


async def add_users(db: Database, count: int, first: int = FIRST_ID) -> list[int]:
    ids = list(range(first, first + count))
    async with db.write() as session:
        for user_id in ids:
            await repo.create_user(
                session, user_id, username=None, first_name=f"U{user_id}", language="en"
            )
    return ids


def copies(tg: FakeTelegram, html: str) -> Counter[int]:
    """sendMessage attempts with this text, per chat (refused ones included)."""
    return Counter(
        int(call.params["chat_id"])
        for call in tg.calls_of("sendMessage")
        if call.params.get("text") == html
    )


def delivered(tg: FakeTelegram, html: str) -> Counter[int]:
    return Counter(
        int(call.params["chat_id"])
        for call in tg.calls_of("sendMessage")
        if call.params.get("text") == html and call.error is None
    )


def progress_message(admin: FakeUser, broadcast_id: int) -> Msg:
    shape = re.compile(rf"^\S+ Broadcast #{broadcast_id}(:| finished| cancelled)")
    found = [m for m in admin.messages if shape.match(m.text)]
    assert len(found) == 1, [m.text for m in admin.messages]
    return found[0]


async def status(db: Database, broadcast_id: int) -> str | None:
    async with db.read() as session:
        return await session.scalar(select(Broadcast.status).where(Broadcast.id == broadcast_id))


async def delivery_statuses(db: Database, broadcast_id: int) -> dict[int, str]:
    async with db.read() as session:
        rows = await session.execute(
            select(BroadcastDelivery.user_id, BroadcastDelivery.status).where(
                BroadcastDelivery.broadcast_id == broadcast_id
            )
        )
        return dict(rows.all())


async def start_broadcast(admin: FakeUser, tg: FakeTelegram, text: str, broadcast_id: int) -> Msg:
    await admin.send(f"/broadcast {text}", wait=False)
    return await tg.wait_for(
        lambda: next((m for m in admin.messages if f"Broadcast #{broadcast_id}:" in m.text), None)
    )


async def test_a_customer_gets_the_unknown_command_answer_and_nothing_is_sent(
    start_bot, tg
) -> None:
    bot = await start_bot()
    await add_users(bot.db, 5)
    mallory = tg.user(2002, "Mallory")
    for command in ("/broadcast Free money!", "/broadcast_cancel", "/broadcast"):
        reply = await mallory.send(command)
        assert reply.text == UNKNOWN
    answer = await mallory.press_data("bc:c:1")  # a forged cancel button
    assert answer.show_alert
    assert copies(tg, "Free money!") == Counter()
    async with bot.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0


async def test_a_broadcast_to_1000_users_skips_and_marks_the_100_who_blocked_the_bot(
    start_bot, tg
) -> None:
    bot = await start_bot(broadcast_rate_per_s=1000)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    ids = await add_users(bot.db, 999)  # + the admin = 1,000 users
    blocked = ids[::10]
    assert len(blocked) == 100
    for user_id in blocked:
        tg.block(user_id)

    shown = await start_broadcast(admin, tg, "Sale: 2 < 3 & more", 1)
    assert shown.text.startswith("📣 Broadcast #1: 0/1,000 (0%)")
    assert shown.button_texts == ["⛔ Cancel the broadcast"]
    await eventually(lambda: _is(status(bot.db, 1), "done"), timeout=90)
    await tg.settle()

    html = "Sale: 2 &lt; 3 &amp; more"
    attempts, ok = copies(tg, html), delivered(tg, html)
    assert len(ok) == 900 and set(ok.values()) == {1}
    assert set(ok) == ({ADMIN_ID, *ids} - set(blocked))
    assert set(attempts) == {ADMIN_ID, *ids} and set(attempts.values()) == {1}
    assert [m.text for m in tg.bot_messages(ids[1]) if m.text.startswith("Sale")] == [
        "Sale: 2 < 3 & more"
    ]
    async with bot.db.read() as session:
        marked = set(await session.scalars(select(User.id).where(User.blocked_bot.is_(True))))
        row = await session.get(Broadcast, 1)
    assert marked == set(blocked)
    assert (row.total, row.sent, row.blocked, row.failed) == (1000, 900, 100, 0)
    assert row.finished_at is not None

    final = progress_message(admin, 1)
    assert (
        final.text
        == "✅ Broadcast #1 finished: 1,000/1,000 (100%)\n900 sent, 100 blocked, 0 failed"
    )
    assert final.buttons == []
    edits = [
        c
        for c in tg.calls_of("editMessageText")
        if str(c.params["message_id"]) == str(final.message_id)
    ]
    assert edits and all(c.params["chat_id"] in (ADMIN_ID, str(ADMIN_ID)) for c in edits)


async def _is(value, expected) -> bool:
    return (await value) == expected


async def test_a_second_broadcast_skips_the_users_marked_blocked(start_bot, tg) -> None:
    bot = await start_bot(broadcast_rate_per_s=1000)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    ids = await add_users(bot.db, 20)
    for user_id in ids[:5]:
        tg.block(user_id)

    await start_broadcast(admin, tg, "First news", 1)
    await eventually(lambda: _is(status(bot.db, 1), "done"))
    assert set(copies(tg, "First news")) == {ADMIN_ID, *ids}

    await start_broadcast(admin, tg, "Second news", 2)
    await eventually(lambda: _is(status(bot.db, 2), "done"))
    await tg.settle()
    assert set(copies(tg, "Second news")) == {ADMIN_ID, *ids[5:]}  # not even tried
    assert progress_message(admin, 2).text == (
        "✅ Broadcast #2 finished: 16/16 (100%)\n16 sent, 0 blocked, 0 failed"
    )

    # Someone who unblocks the bot and writes to it again is back on the list.
    tg.blocked.discard(ids[0])
    await tg.user(ids[0], "Back").send("/start")
    await start_broadcast(admin, tg, "Third news", 3)
    await eventually(lambda: _is(status(bot.db, 3), "done"))
    assert set(copies(tg, "Third news")) == {ADMIN_ID, ids[0], *ids[5:]}


async def test_a_broadcast_interrupted_by_a_restart_resumes_without_second_copies(
    start_bot, tg
) -> None:
    bot = await start_bot(broadcast_rate_per_s=20)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    ids = await add_users(bot.db, 79)
    for user_id in ids[-4:]:
        tg.block(user_id)
    shown = await start_broadcast(admin, tg, "Restart news", 1)

    await tg.wait_for(lambda: len(copies(tg, "Restart news")) >= 15)
    await bot.stop()
    before = copies(tg, "Restart news")
    assert 15 <= len(before) < 80
    assert await status(bot.db, 1) == "running"
    rows = await delivery_statuses(bot.db, 1)
    assert "sending" not in rows.values()  # a clean stop records what was in flight
    # As if the process had died with one message in flight (recorded, maybe sent):
    in_flight = next(uid for uid, state in sorted(rows.items()) if state == "pending")
    async with bot.db.write() as session:
        await session.execute(
            update(BroadcastDelivery)
            .where(BroadcastDelivery.broadcast_id == 1, BroadcastDelivery.user_id == in_flight)
            .values(status="sending")
        )
    await bot.db.dispose()  # the stopped bot's engine, reopened by the lines above

    bot = await start_bot(broadcast_rate_per_s=1000)
    await eventually(lambda: _is(status(bot.db, 1), "done"), timeout=90)
    await tg.settle()

    after = copies(tg, "Restart news")
    assert set(after.values()) == {1}, "somebody got a second copy"
    assert set(after) == {ADMIN_ID, *ids} - {in_flight}
    rows = await delivery_statuses(bot.db, 1)
    assert rows[in_flight] == "unknown"
    assert Counter(rows.values()) == {"sent": 75, "blocked": 4, "unknown": 1}
    final = progress_message(admin, 1)
    assert final.message_id == shown.message_id
    assert final.text == "✅ Broadcast #1 finished: 80/80 (100%)\n75 sent, 4 blocked, 1 failed"


async def test_the_cancel_button_and_broadcast_cancel_stop_sending(start_bot, tg) -> None:
    bot = await start_bot(broadcast_rate_per_s=10)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    ids = await add_users(bot.db, 60)

    shown = await start_broadcast(admin, tg, "Oops one", 1)
    await tg.wait_for(lambda: len(copies(tg, "Oops one")) >= 3)
    await admin.send("/broadcast Another one", wait=False)
    await tg.wait_for(lambda: any("still running" in m.text for m in admin.messages))
    answer = await admin.press("Cancel the broadcast", message=shown)
    assert answer.text == "⛔ Broadcast #1 cancelled."
    await tg.wait_for(lambda: progress_message(admin, 1).text.startswith("⛔ Broadcast #1"))
    sent = len(copies(tg, "Oops one"))
    await asyncio.sleep(0.5)
    assert len(copies(tg, "Oops one")) == sent < len(ids)
    assert await status(bot.db, 1) == "cancelled"
    final = progress_message(admin, 1)
    assert final.text.startswith(f"⛔ Broadcast #1 cancelled at {sent}/61 (")
    assert final.buttons == []
    assert copies(tg, "Another one") == Counter()  # refused while #1 was running

    await start_broadcast(admin, tg, "Oops two", 2)
    await tg.wait_for(lambda: len(copies(tg, "Oops two")) >= 2)
    reply = await admin.send("/broadcast_cancel")
    assert reply.text.startswith("⛔ Broadcast #2 cancelled at ")
    await asyncio.sleep(0.3)
    sent = len(copies(tg, "Oops two"))
    await asyncio.sleep(0.5)
    assert len(copies(tg, "Oops two")) == sent < len(ids)
    assert (await admin.send("/broadcast_cancel")).text == "No broadcast is running."


async def test_reply_to_a_message_with_broadcast_sends_that_message(start_bot, tg) -> None:
    bot = await start_bot(broadcast_rate_per_s=1000)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    ids = await add_users(bot.db, 3)
    usage = await admin.send("/broadcast")
    assert usage.text.startswith("Usage: /broadcast <text>, or reply to a text message")

    original = {
        "message_id": 4242,
        "from": admin.as_api(),
        "chat": admin.chat,
        "date": int(time.time()),
        "text": "Weekend <sale> & more",
        "entities": [{"type": "bold", "offset": 0, "length": 7}],
    }
    await tg.push_update(
        {
            "message": {
                "message_id": 4243,
                "from": admin.as_api(),
                "chat": admin.chat,
                "date": int(time.time()),
                "text": "/broadcast",
                "entities": [{"type": "bot_command", "offset": 0, "length": 10}],
                "reply_to_message": original,
            }
        }
    )
    await eventually(lambda: _is(status(bot.db, 1), "done"))
    await tg.settle()
    html = "<b>Weekend</b> &lt;sale&gt; &amp; more"
    assert delivered(tg, html) == Counter({ADMIN_ID: 1, **{i: 1 for i in ids}})
    assert tg.bot_messages(ids[0])[-1].text == "Weekend <sale> & more"


async def test_a_sigkilled_broadcast_never_sends_anyone_a_second_copy(
    tg, tmp_path, database_url
) -> None:
    """The real process, killed mid-broadcast: rows in flight become `unknown`, never resent."""
    admin = tg.user(ADMIN_ID, "Owner")
    env = bot_env(tg, tmp_path, database_url, ADMIN_IDS=str(ADMIN_ID), BROADCAST_RATE_PER_S="25")
    process = await start_process(env, tmp_path)
    db = Database(env["DATABASE_URL"])
    try:
        await tg.wait_for(lambda: tg.get_updates_calls > 0, timeout=30)
        await admin.send("/start")
        ids = await add_users(db, 99)
        await start_broadcast(admin, tg, "Kill news", 1)
        await tg.wait_for(lambda: len(copies(tg, "Kill news")) >= 30, timeout=20)
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.communicate(), 10)
        killed_at = len(copies(tg, "Kill news"))
        assert killed_at < 100

        env["BROADCAST_RATE_PER_S"] = "500"
        calls_before = tg.get_updates_calls
        process = await start_process(env, tmp_path)
        await tg.wait_for(lambda: tg.get_updates_calls > calls_before, timeout=30)
        await eventually(lambda: _is(status(db, 1), "done"), timeout=30)
        rows = await delivery_statuses(db, 1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = await asyncio.wait_for(process.communicate(), 20)
        await db.dispose()
    assert b"Traceback" not in log, log.decode()[-2000:]

    sent = copies(tg, "Kill news")
    assert set(sent.values()) == {1}, "somebody got a second copy"
    everyone = {ADMIN_ID, *ids}
    unknown = {uid for uid, state in rows.items() if state == "unknown"}
    assert set(rows) == everyone
    assert set(rows.values()) <= {"sent", "unknown"}
    assert everyone - set(sent) <= unknown  # whoever got nothing was in flight at the kill
    assert len(unknown) <= 5  # at most one per concurrent sender
    assert {uid for uid, state in rows.items() if state == "sent"} <= set(sent)


async def test_a_flood_limit_is_waited_out_and_everyone_still_gets_one_copy(start_bot, tg) -> None:
    bot = await start_bot(broadcast_rate_per_s=1000)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    ids = await add_users(bot.db, 10)
    tg.flood("sendMessage", retry_after=1, times=2)
    await start_broadcast(admin, tg, "Flood news", 1)
    await eventually(lambda: _is(status(bot.db, 1), "done"), timeout=20)
    assert delivered(tg, "Flood news") == Counter({i: 1 for i in (ADMIN_ID, *ids)})


# --- the service alone, with a scripted sender ----------------------------------------------


class ScriptedSender:
    """Answers from a per-chat script (then SENT); records every attempt."""

    def __init__(self, script: dict[int, list[SendResult]]) -> None:
        self.script = script
        self.attempts: list[int] = []

    async def __call__(self, chat_id: int, text: str) -> SendResult:
        self.attempts.append(chat_id)
        answers = self.script.get(chat_id)
        return answers.pop(0) if answers else SendResult(SendStatus.SENT)


async def service_db(database_url: str, users: int) -> Database:
    db = Database(database_url)
    await upgrade(db)
    await add_users(db, users, first=1)
    return db


async def test_only_a_flood_limit_is_retried_other_failures_never_are(database_url) -> None:
    db = await service_db(database_url, 4)
    flood = SendResult(SendStatus.RETRY_AFTER, retry_after_s=0.2)
    send = ScriptedSender(
        {
            1: [flood, flood],
            2: [SendResult(SendStatus.FAILED, detail="connection reset")],
            3: [SendResult(SendStatus.BLOCKED, detail="Forbidden: bot was blocked by the user")],
        }
    )
    service = BroadcastService(db, send, rate_per_s=1000, concurrency=1)
    try:
        view = await service.create(admin_id=1, text="hi")
        await service.start(view.id)
        await asyncio.wait_for(service.wait(view.id), 10)
        final = await service.view(view.id)
        rows = await delivery_statuses(db, view.id)
        async with db.read() as session:
            marked = list(await session.scalars(select(User.id).where(User.blocked_bot.is_(True))))
    finally:
        await db.dispose()
    assert Counter(send.attempts) == {1: 3, 2: 1, 3: 1, 4: 1}  # a lost answer is never resent
    assert rows == {1: "sent", 2: "failed", 3: "blocked", 4: "sent"}
    assert (final.status, final.total, final.sent, final.blocked, final.failed) == (
        "done",
        4,
        2,
        1,
        1,
    )
    assert marked == [3]


async def test_a_stop_during_a_flood_wait_leaves_the_message_for_the_resume(
    database_url,
) -> None:
    db = await service_db(database_url, 3)
    send = ScriptedSender({1: [SendResult(SendStatus.RETRY_AFTER, retry_after_s=30)]})
    first = BroadcastService(db, send, rate_per_s=1000, concurrency=1)
    try:
        view = await first.create(admin_id=1, text="hi")
        await first.start(view.id)
        await eventually(lambda: send.attempts == [1])
        await asyncio.wait_for(first.stop(), 5)  # does not sit out the 30 s
        assert await delivery_statuses(db, view.id) == {1: "pending", 2: "pending", 3: "pending"}

        second = BroadcastService(db, send, rate_per_s=1000, concurrency=1)
        assert await second.resume() == [view.id]
        await asyncio.wait_for(second.wait(view.id), 10)
        rows = await delivery_statuses(db, view.id)
    finally:
        await db.dispose()
    assert send.attempts == [1, 1, 2, 3]
    assert rows == {1: "sent", 2: "sent", 3: "sent"}


async def test_broadcast_cancel_with_a_bad_id_answers_and_cancels_nothing(start_bot, tg) -> None:
    bot = await start_bot(broadcast_rate_per_s=5)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    await add_users(bot.db, 30)
    await start_broadcast(admin, tg, "Keep going", 1)
    for bad in ("²", "#²", "١", "abc", "-1", "99999999999999999999999"):
        await answered(admin, f"/broadcast_cancel {bad}", "Usage: /broadcast_cancel")
        assert await status(bot.db, 1) == "running"
    await answered(admin, "/broadcast_cancel 7", "No broadcast is running.")
    assert await status(bot.db, 1) == "running"

    await answered(admin, "/broadcast_cancel #1", "⛔ Broadcast #1 cancelled at ")
    assert await status(bot.db, 1) == "cancelled"


async def answered(user, command: str, answer: str) -> None:
    """`command` gets a reply starting with `answer` (the admin is a recipient of the running
    broadcast too: its copy may arrive first)."""
    before = len(user.messages)
    await user.send(command, wait=False)
    await user.tg.wait_for(
        lambda: [m for m in user.messages[before:] if m.text.startswith(answer)], timeout=20
    )


async def test_a_broadcast_waits_while_customers_messages_are_due(start_bot, tg) -> None:
    """Codes, cards and notices come first: while the outbox holds a message that is due, the
    broadcast sends nothing (the two never add up past Telegram's 30 a second); once it is
    sent, the broadcast goes on."""
    from services.outbox import enqueue

    bot = await start_bot(broadcast_rate_per_s=50)
    admin = tg.user(ADMIN_ID, "Owner")
    await admin.send("/start")
    customer = tg.user(4242, "Carol")
    await customer.send("/start")
    ids = await add_users(bot.db, 20)
    await bot.app.outbox.stop()  # the sender is behind: the code below waits in the outbox
    async with bot.db.write() as session:
        await enqueue(session, customer.id, "Code: 123456", "otp:code")

    await start_broadcast(admin, tg, "Big news", 1)
    await asyncio.sleep(1.5)  # 50 a second: the whole broadcast, had it not waited
    assert copies(tg, "Big news") == Counter()
    assert not any(m.text == "Code: 123456" for m in customer.messages)

    bot.app.outbox.stopping = False
    bot.app.outbox.start()
    await tg.wait_for(lambda: any(m.text == "Code: 123456" for m in customer.messages))
    await tg.wait_for(lambda: progress_message(admin, 1).text.startswith("✅ Broadcast #1"))
    assert set(delivered(tg, "Big news")) == {*ids, ADMIN_ID, customer.id}
    assert max(delivered(tg, "Big news").values()) == 1
