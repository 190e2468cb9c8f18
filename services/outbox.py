"""Messages that must reach a chat after a commit: written to the outbox table inside the
transaction that caused them, sent afterwards by this worker (at least once: a crash between
sending and marking means one resend, never a loss; with several bot processes, each row is
sent by one of them).

The worker knows nothing of Telegram: the bot layer gives it a `send` function that reports
each attempt as a SendResult.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import claims
from db import repositories as repo
from db.engine import Database, after_commit
from db.models import OutboxMessage, utcnow
from services.leases import heartbeat, new_holder
from services.worker import BackgroundWorker

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MIN_CLAIM_LEASE_S = 5.0
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
    """Sends what is due, oldest first, in batches. With several bot processes on one database
    each row is sent by one of them: a batch is claimed (db/claims.py) before it is sent, the
    claim is renewed while the batch is being sent, and an attempt is recorded only while the
    claim is still this worker's. A batch claimed by a process that died is taken over once its
    claim runs out (`lease_s`)."""

    name = "outbox-worker"

    def __init__(
        self,
        db: Database,
        send: Sender,
        *,
        interval_s: float = 1.0,
        batch: int = 50,
        lease_s: float | None = None,
        holder: str | None = None,
    ):
        super().__init__(interval_s)
        self.db = db
        self.send = send
        self.batch = batch
        self.lease_s = claim_lease_s(interval_s) if lease_s is None else lease_s
        self.holder = holder or new_holder()
        db.subscribe(OUTBOX, self.kick)

    async def round(self) -> int:
        return await self.drain()

    async def drain(self) -> int:
        """Send everything due; returns how many were sent (by this worker)."""
        if not await self._any_due():
            return 0  # a read: an idle shop takes no write lock every round
        sent = 0
        while not self.stopping:  # shutdown: the batch being sent is finished, no other begun
            rows = await self._claim()
            if not rows:
                return sent
            ids = [row.id for row in rows]
            async with heartbeat(partial(self._renew, ids), self.lease_s / 3, self.name):
                done, flooded = await self._send_batch(rows)
            sent += done
            if flooded or len(rows) < self.batch:
                return sent
        return sent

    async def _any_due(self) -> bool:
        now = utcnow()
        async with self.db.read() as session:
            found = await session.scalar(
                select(OutboxMessage.id)
                .where(*_due(now), claims.claimable(OutboxMessage, now))
                .limit(1)
            )
        return found is not None

    async def _claim(self) -> list[OutboxMessage]:
        now = utcnow()
        async with self.db.write() as session:
            return await claims.claim(
                session,
                OutboxMessage,
                where=_due(now),
                holder=self.holder,
                now=now,
                until=now + timedelta(seconds=self.lease_s),
                limit=self.batch,
            )

    async def _renew(self, ids: list[int]) -> bool:
        until = utcnow() + timedelta(seconds=self.lease_s)
        async with self.db.write() as session:
            await claims.renew(session, OutboxMessage, ids, holder=self.holder, until=until)
        return True  # rows already recorded are simply not renewed

    async def _send_batch(self, rows: list[OutboxMessage]) -> tuple[int, bool]:
        """(sent, whether a flood limit stopped the batch: the rest is released for later)."""
        sent = 0
        for index, row in enumerate(rows):
            result = await self.send(row.chat_id, row.text)
            await self._record(row, result)
            sent += result.status is SendStatus.SENT
            if result.status is SendStatus.RETRY_AFTER:
                rest = [later.id for later in rows[index + 1 :]]
                async with self.db.write() as session:
                    await claims.finish(session, OutboxMessage, rest, holder=self.holder)
                return sent, True  # the whole bot is rate limited: stop this round
        return sent, False

    async def _record(self, row: OutboxMessage, result: SendResult) -> None:
        now = utcnow()
        attempts = row.attempts + 1
        values: dict[str, object] = {"attempts": attempts}
        match result.status:
            case SendStatus.SENT:
                values["sent_at"] = now
            case SendStatus.BLOCKED:
                values["failed"] = "blocked"
            case SendStatus.REJECTED:
                values["failed"] = f"rejected: {result.detail}"[:256]
            case SendStatus.RETRY_AFTER | SendStatus.FAILED:
                delay = result.retry_after_s or min(60.0, 2.0**attempts)
                values["not_before"] = now + timedelta(seconds=delay)
                if attempts >= MAX_ATTEMPTS:
                    values["failed"] = f"gave up: {result.detail}"[:256]
        async with self.db.write() as session:
            recorded = await claims.finish(
                session, OutboxMessage, [row.id], holder=self.holder, values=values
            )
            if result.status is SendStatus.BLOCKED:
                await repo.set_blocked(session, row.chat_id)
        if not recorded:  # our claim ran out and another worker took the row over
            log.warning(
                "outbox claim lost before the attempt was recorded",
                extra={"outbox_id": row.id, "status": result.status},
            )
        elif result.status is not SendStatus.SENT:
            log.info(
                "outbox message not sent",
                extra={"outbox_id": row.id, "status": result.status, "detail": result.detail},
            )


def _due(now: datetime) -> list[ColumnElement[bool]]:
    """Rows still to be sent whose time has come."""
    return [
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed.is_(None),
        or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
    ]


def claim_lease_s(interval_s: float) -> float:
    """How long a worker's claim on a batch lasts: three rounds, and never under
    MIN_CLAIM_LEASE_S (renewed every third of it while the batch is being sent, so only a
    process that died, or an event loop stuck for that long, loses its claim)."""
    return max(3 * interval_s, MIN_CLAIM_LEASE_S)


async def enqueue(session: AsyncSession, chat_id: int, text: str, kind: str) -> None:
    """Inside the caller's transaction; the worker is woken after the commit."""
    await repo.add_outbox(session, chat_id, text, kind)
    after_commit(session, OUTBOX)
