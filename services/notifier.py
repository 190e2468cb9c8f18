"""The shop's notification group: purchases, refunds, top-ups, provider trouble.

Events are written to the `notifications` table inside the transaction that caused them (so a
rolled-back purchase never announces itself), then a worker sends them to NOTIFY_CHAT_ID within
Telegram's group limit: every round takes everything pending and merges it into as few messages
as fit (4,096 characters each), so a burst becomes a few messages and nothing is dropped. An
unreachable group never blocks or slows a purchase: the worker is the only one waiting on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiolimiter import AsyncLimiter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models import Notification, utcnow
from services.outbox import SendResult, SendStatus
from services.worker import BackgroundWorker

log = logging.getLogger(__name__)

MAX_TEXT = 4096
SEPARATOR = "\n\n"
Render = Callable[[str, dict[str, Any]], str]
GroupSender = Callable[[str], Awaitable[SendResult]]


class Notifier:
    """What services call: `await notifier.emit(session, "purchase", price=...)`."""

    def __init__(self, render: Render | None = None, *, enabled: bool = False) -> None:
        self.render = render
        self.enabled = enabled
        self.wake: Callable[[], None] = lambda: None

    async def emit(self, session: AsyncSession, event: str, **fields: Any) -> None:
        if not self.enabled or self.render is None:
            return
        text = self.render(event, fields)
        session.add(Notification(kind=event, text=text[:MAX_TEXT], created_at=utcnow()))

    async def emit_now(self, db: Database, event: str, **fields: Any) -> None:
        """An event with no transaction of its own (provider trouble, scheduler findings)."""
        if not self.enabled:
            return
        async with db.write() as session:
            await self.emit(session, event, **fields)
        self.wake()


def first_message(texts: list[tuple[int, str]]) -> tuple[list[int], str]:
    """As many pending texts, in order, as fit in one message; returns their ids and the text."""
    ids: list[int] = []
    parts: list[str] = []
    size = 0
    for row_id, text in texts:
        text = text[:MAX_TEXT]
        extra = len(text) + (len(SEPARATOR) if parts else 0)
        if parts and size + extra > MAX_TEXT:
            break
        ids.append(row_id)
        parts.append(text)
        size += extra
    return ids, SEPARATOR.join(parts)


class NotificationWorker(BackgroundWorker):
    name = "notification-worker"

    def __init__(
        self,
        db: Database,
        send: GroupSender,
        *,
        per_minute: int = 20,
        interval_s: float = 1.0,
        batch: int = 500,
    ) -> None:
        super().__init__(interval_s)
        self.db = db
        self.send = send
        self.batch = batch
        # Telegram allows a group about 20 messages a minute: never more in any 60 s window.
        burst = max(1, per_minute // 4)
        self.limiter = AsyncLimiter(burst, 60 * burst / max(1, per_minute - burst))
        self.sent_messages = 0

    async def round(self) -> int:
        return await self.drain_once()

    async def drain_once(self) -> int:
        """Send one merged message of what is pending (waiting for the rate limit first)."""
        async with self.db.read() as session:
            pending = (
                await session.execute(
                    select(Notification.id, Notification.text)
                    .where(Notification.sent_at.is_(None))
                    .order_by(Notification.id)
                    .limit(self.batch)
                )
            ).all()
        if not pending:
            return 0
        await self.limiter.acquire()
        # Re-read after the wait: everything that arrived meanwhile joins this message.
        async with self.db.read() as session:
            pending = (
                await session.execute(
                    select(Notification.id, Notification.text)
                    .where(Notification.sent_at.is_(None))
                    .order_by(Notification.id)
                    .limit(self.batch)
                )
            ).all()
        ids, first = first_message([(row_id, text) for row_id, text in pending])
        result = await self.send(first)
        if result.status is SendStatus.SENT:
            self.sent_messages += 1
            async with self.db.write() as session:
                await session.execute(
                    update(Notification).where(Notification.id.in_(ids)).values(sent_at=utcnow())
                )
            return len(ids)
        log.warning(
            "notification group unreachable",
            extra={"status": result.status, "detail": result.detail},
        )
        if result.status is SendStatus.RETRY_AFTER:
            await asyncio.sleep(min(result.retry_after_s, 60))
        return 0
