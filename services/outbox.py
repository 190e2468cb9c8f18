"""Messages that must reach a chat after a commit: written to the outbox table inside the
transaction that caused them, sent afterwards by this worker (at least once: a crash between
sending and marking means one resend, never a loss).

The worker knows nothing of Telegram: the bot layer gives it a `send` function that reports
each attempt as a SendResult.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import repositories as repo
from db.engine import Database, after_commit
from db.models import OutboxMessage, utcnow
from services.worker import BackgroundWorker

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
OUTBOX = "outbox"  # the after-commit topic that wakes the worker


class SendStatus(StrEnum):
    SENT = "sent"
    BLOCKED = "blocked"  # the user blocked the bot / chat gone: stop trying
    RETRY_AFTER = "retry_after"  # flood limit: try again after `retry_after_s`
    REJECTED = "rejected"  # the message itself is refused (bad request): give up
    FAILED = "failed"  # network trouble: try again later


@dataclass(frozen=True, slots=True)
class SendResult:
    status: SendStatus
    retry_after_s: float = 0.0
    detail: str = ""


Sender = Callable[[int, str], Awaitable[SendResult]]


class OutboxWorker(BackgroundWorker):
    name = "outbox-worker"

    def __init__(self, db: Database, send: Sender, *, interval_s: float = 1.0, batch: int = 50):
        super().__init__(interval_s)
        self.db = db
        self.send = send
        self.batch = batch
        db.subscribe(OUTBOX, self.kick)

    async def round(self) -> int:
        return await self.drain()

    async def drain(self) -> int:
        """Send everything due; returns how many were sent."""
        sent = 0
        while True:
            async with self.db.read() as session:
                now = utcnow()
                rows = (
                    await session.execute(
                        select(OutboxMessage.id, OutboxMessage.chat_id, OutboxMessage.text)
                        .where(
                            OutboxMessage.sent_at.is_(None),
                            OutboxMessage.failed.is_(None),
                            or_(
                                OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now
                            ),
                        )
                        .order_by(OutboxMessage.id)
                        .limit(self.batch)
                    )
                ).all()
            if not rows:
                return sent
            for message_id, chat_id, text in rows:
                result = await self.send(chat_id, text)
                await self._record(message_id, chat_id, result)
                sent += result.status is SendStatus.SENT
                if result.status is SendStatus.RETRY_AFTER:
                    return sent  # the whole bot is rate limited: stop this round
            if len(rows) < self.batch:
                return sent

    async def _record(self, message_id: int, chat_id: int, result: SendResult) -> None:
        now = utcnow()
        values: dict[str, object]
        async with self.db.write() as session:
            attempts = await session.scalar(
                select(OutboxMessage.attempts).where(OutboxMessage.id == message_id)
            )
            attempts = (attempts or 0) + 1
            match result.status:
                case SendStatus.SENT:
                    values = {"sent_at": now, "attempts": attempts}
                case SendStatus.BLOCKED:
                    values = {"failed": "blocked", "attempts": attempts}
                    await repo.set_blocked(session, chat_id)
                case SendStatus.REJECTED:
                    values = {"failed": f"rejected: {result.detail}"[:256], "attempts": attempts}
                case SendStatus.RETRY_AFTER | SendStatus.FAILED:
                    delay = result.retry_after_s or min(60.0, 2.0**attempts)
                    values = {"attempts": attempts, "not_before": now + timedelta(seconds=delay)}
                    if attempts >= MAX_ATTEMPTS:
                        values["failed"] = f"gave up: {result.detail}"[:256]
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
            )
        if result.status is not SendStatus.SENT:
            log.info(
                "outbox message not sent",
                extra={"outbox_id": message_id, "status": result.status, "detail": result.detail},
            )


async def enqueue(session: AsyncSession, chat_id: int, text: str, kind: str) -> None:
    """Inside the caller's transaction; the worker is woken after the commit."""
    await repo.add_outbox(session, chat_id, text, kind)
    after_commit(session, OUTBOX)
