"""The notification group's queue: a line Telegram refuses never blocks the lines after it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from db.engine import Database
from db.migrate import upgrade
from db.models import Notification, utcnow
from services.notifier import NotificationWorker
from services.outbox import SendResult, SendStatus
from tests.fakes.telegram import TelegramError, check_html, visible_text


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.dispose()


class StrictGroup:
    """Refuses what Telegram would refuse (invalid HTML) with 400, like the real group."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.received: list[str] = []

    async def __call__(self, text: str) -> SendResult:
        self.calls.append(text)
        try:
            check_html(text)
        except TelegramError as exc:
            return SendResult(SendStatus.REJECTED, detail=exc.description)
        self.received.append(text)
        return SendResult(SendStatus.SENT)


async def _add(db: Database, *texts: str) -> None:
    async with db.write() as session:
        for text in texts:
            session.add(Notification(kind="test", text=text, created_at=utcnow()))


async def _pending(db: Database) -> list[str]:
    async with db.read() as session:
        rows = await session.execute(
            select(Notification.text).where(Notification.sent_at.is_(None))
        )
        return [text for (text,) in rows]


async def test_a_rejected_batch_is_sent_line_by_line_and_the_bad_line_dropped(db) -> None:
    group = StrictGroup()
    worker = NotificationWorker(db, group, per_minute=600)
    await _add(db, "first <b>ok</b>", "broken <script> line", "third &amp; fine")
    await worker.drain_once()
    # The merged message was refused; the good lines went one by one, the bad one was dropped.
    assert group.calls[0] == "first <b>ok</b>\n\nbroken <script> line\n\nthird &amp; fine"
    assert group.received == ["first <b>ok</b>", "third &amp; fine"]
    assert await _pending(db) == []
    # The queue moves on: later lines arrive, the dropped one is never tried again.
    await _add(db, "later news")
    await worker.drain_once()
    assert group.received[-1] == "later news"
    assert sum("broken" in call for call in group.calls) == 2
    assert await worker.drain_once() == 0


@pytest.mark.parametrize("status", [SendStatus.FAILED, SendStatus.BLOCKED])
async def test_a_line_that_cannot_be_sent_for_now_stays_queued(db, status) -> None:
    """Only a refusal of the text itself drops a line; an unreachable group keeps it."""
    calls: list[str] = []

    async def down(text: str) -> SendResult:
        calls.append(text)
        return SendResult(status, detail="unreachable")

    worker = NotificationWorker(db, down, per_minute=600)
    await _add(db, "one", "two")
    assert await worker.drain_once() == 0
    assert sorted(await _pending(db)) == ["one", "two"]


async def _render(language: str):
    from bot.group import make_notifier
    from bot.i18n import make_middleware
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,
        bot_token="123456:TEST-token-for-notifier",
        notify_chat_id=-100,
        default_language=language,
    )
    i18n = make_middleware(language)
    await i18n.core.startup()
    return make_notifier(settings, i18n).render


async def test_every_value_in_a_group_line_is_escaped() -> None:
    render = await _render("en")
    hostile = "HTTP 500: <html> & <b>co"
    text = render(
        "provider-errors", {"provider": "p<1>", "errors": 5, "requests": 6, "last": hostile}
    )
    check_html(text)
    assert "p<1>" in visible_text(text, "HTML") and hostile in visible_text(text, "HTML")
    text = render("new-user", {"user": 7, "username": "@a&b<i>"})
    check_html(text)
    assert "@a&b<i>" in visible_text(text, "HTML")


async def test_group_lines_count_in_words_of_the_shops_language() -> None:
    render = await _render("ru")
    one = render("provider-errors", {"provider": "x", "errors": 1, "requests": 3, "last": "—"})
    assert "1 ошибка на 3 запроса" in one
    many = render("provider-errors", {"provider": "x", "errors": 5, "requests": 21, "last": "—"})
    assert "5 ошибок на 21 запрос" in many


async def test_people_goods_and_reasons_are_written_for_people() -> None:
    from services.notifier import Person, SmmGoods

    render = await _render("en")
    text = render(
        "refund",
        {
            "user": Person(1001, "A<l>ice"),
            "amount": 180_000,
            "order": "otp:1",
            "reason": "admin",
            "note": "<b>oops & <script>",
        },
    )
    check_html(text)
    assert '<a href="tg://user?id=1001">A&lt;l&gt;ice</a> (1001)' in text
    assert visible_text(text, "HTML") == (
        "↩️ Refund $0.18 to A<l>ice (1001) for otp:1: refunded by an admin: <b>oops & <script>"
    )
    text = render(
        "purchase",
        {
            "what": SmmGoods("Likes <fast> & cheap", 1000),
            "user": Person(7),
            "price": 1_100_400,
            "cost": 1,
            "profit": 1,
            "provider": "panel",
        },
    )
    check_html(text)
    assert "bought 📈 Likes <fast> & cheap × 1,000: price $1.1004" in visible_text(text, "HTML")
    text = render("refund", {"user": Person(7), "amount": 1, "order": "x", "reason": "brand_new"})
    assert text.endswith(": brand_new")  # a code with no words yet is shown as it is
