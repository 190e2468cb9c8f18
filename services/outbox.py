"""Messages that must reach a chat after a commit: written to the outbox table inside the
transaction that caused them, sent afterwards by this worker (at least once: a crash between
sending and marking means one resend, never a loss; with several bot processes, each row is
sent by one of them).

A row may also be an edit of a message already in the chat (kind EDIT: the activation card's
text and buttons, `enqueue_edit()`): edits share the messages' pace and queue, after the codes
and before everything else, and only the latest state of a message waits to be sent (a newer
edit replaces an older one not yet sent, in its row).

Sending keeps within Telegram's limits (about 30 messages a second overall, one a second per
chat) and those limits belong to the bot, not to a process: with several processes on one
database only one sends at a time, the holder of the `outbox-sender` lease (services/leases.py),
and another takes over when it dies. The per-row claims (db/claims.py) still guard the
takeover: a row is sent by one worker, and marked sent only while its claim is that worker's.

The worker knows nothing of Telegram: the bot layer gives it a `send` function (and an `edit`
function for edits) that reports each attempt as a SendResult.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, cast

from aiolimiter import AsyncLimiter
from sqlalchemy import ColumnElement, CursorResult, case, delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from db import claims
from db import repositories as repo
from db.engine import Database, after_commit
from db.models import OutboxMessage, utcnow
from services import metrics
from services.leases import Leases, heartbeat, new_holder
from services.worker import BackgroundWorker

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MIN_CLAIM_LEASE_S = 5.0
OUTBOX = "outbox"  # the after-commit topic that wakes the worker
SENDER_LEASE = "outbox-sender"  # the one process that sends, when several share the database
RATE_PER_S = 30  # Telegram: about 30 messages a second from one bot (OUTBOX_RATE_PER_S)
CHAT_INTERVAL_S = 1.0  # Telegram: about one message a second in one chat
EDIT = "edit"  # a row that edits message `message_id` (an activation card) instead of sending
# What is sent first when several rows are due: a code is what the customer is waiting for;
# then the cards' edits (cosmetic, but they show the code and the buttons that go with it);
# closing notices, refunds and top-ups come after them. Kinds not listed are OTHER.
CODE = "otp:code"  # a code for the customer: sent first, its delivery time measured
PRIORITY = {CODE: 0, EDIT: 1}
OTHER = 2
CANDIDATES_PER_ROW = 4  # rows looked at per row claimed, to spread a batch over many chats


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
# (chat, message, text, reply markup as Bot API JSON or None): an edit of a message's text.
Editor = Callable[[int, int, str, str | None], Awaitable[SendResult]]


async def _no_editor(chat_id: int, message_id: int, text: str, markup: str | None) -> SendResult:
    return SendResult(SendStatus.REJECTED, detail="this worker sends no edits")


def window_limiter(count: int, period_s: float) -> AsyncLimiter:
    """Never more than `count` acquisitions in any `period_s` window: a burst of a quarter of
    them, the rest spread evenly (a plain AsyncLimiter(count, period_s) allows up to twice
    `count` in a window: a full bucket, then its refill)."""
    count = max(1, count)
    burst = max(1, count // 4)
    return AsyncLimiter(burst, period_s * burst / max(1, count - burst))


class SlidingWindow:
    """At most `count` acquisitions in any `period_s` window, and `count` per period when
    sustained: time the event loop lost (a busy poll round) is made up, up to the window's
    count. (A leaky bucket small enough never to exceed the window, aiolimiter's with room
    for one, loses that time for good: at 10,000 active the outbox sent about half its rate.)
    One caller at a time: the outbox's dispatcher."""

    def __init__(self, count: int, period_s: float = 1.0) -> None:
        self.count = max(1, count)
        self.period_s = period_s
        self._starts: deque[float] = deque(maxlen=self.count)  # the last `count`, monotonic

    async def acquire(self) -> None:
        while len(self._starts) == self.count:
            wait = self._starts[0] + self.period_s - time.monotonic()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._starts.append(time.monotonic())


class Pace:
    """Telegram's limits for one sender: `rate_per_s` messages in any second overall, and one
    message every `chat_interval_s` per chat (counted from when each send began)."""

    def __init__(
        self, rate_per_s: int = RATE_PER_S, chat_interval_s: float = CHAT_INTERVAL_S
    ) -> None:
        self.overall = SlidingWindow(rate_per_s, 1.0)
        self.chat_interval_s = chat_interval_s
        self._last: dict[int, float] = {}  # chat -> when the last send to it began (monotonic)

    def ready_at(self, chat_id: int) -> float:
        last = self._last.get(chat_id)
        return 0.0 if last is None else last + self.chat_interval_s

    def sending(self, chat_id: int) -> None:
        now = time.monotonic()
        if len(self._last) > 10_000:  # forget chats whose interval is long over
            self._last = {
                chat: at for chat, at in self._last.items() if at + self.chat_interval_s > now
            }
        self._last[chat_id] = now


class OutboxWorker(BackgroundWorker):
    """Sends what is due, codes first, then oldest first, in batches sent concurrently within
    Telegram's limits (`Pace`). Only the holder of the SENDER_LEASE sends; a batch is claimed
    (db/claims.py) before it is sent, the claims and the lease are renewed while it is being
    sent, and an attempt is recorded only while the claim is still this worker's. Every attempt
    of a batch is recorded before the next batch is claimed. A flood limit (429) stops sending
    for as long as Telegram asks. A batch claimed by a process that died is taken over once its
    claim runs out (`lease_s`)."""

    name = "outbox-worker"

    def __init__(
        self,
        db: Database,
        send: Sender,
        *,
        edit: Editor = _no_editor,
        interval_s: float = 1.0,
        batch: int = 50,
        lease_s: float | None = None,
        holder: str | None = None,
        pace: Pace | None = None,
        leases: Leases | None = None,
    ):
        super().__init__(interval_s)
        self.db = db
        self.send = send
        self.edit = edit
        self.batch = batch
        self.lease_s = claim_lease_s(interval_s) if lease_s is None else lease_s
        self.holder = holder or new_holder()
        self.pace = pace or Pace()
        self.leases = leases or Leases(db, holder=self.holder)
        self._paused_until = 0.0  # monotonic: a flood limit's end
        self._lease_lost = False
        self._unrecorded: list[tuple[OutboxMessage, SendResult]] = []  # ended, not yet written
        self._recording = asyncio.Lock()
        db.subscribe(OUTBOX, self.kick)

    async def round(self) -> int:
        return await self.drain()

    async def stop(self, timeout_s: float = 30.0) -> None:
        await super().stop(timeout_s)
        with contextlib.suppress(SQLAlchemyError, OSError):
            await self.leases.release(SENDER_LEASE)  # another process may send at once

    async def drain(self) -> int:
        """Send everything due, if this worker is the sender; how many it sent."""
        if self._flooded() or not await self._any_due():
            return 0  # a read: an idle shop takes no write lock every round
        self._lease_lost = False
        sent = 0
        while not self.stopping and not self._halted():
            # shutdown: the batch being sent is finished, no other begun
            if not await self.leases.acquire(SENDER_LEASE, self.lease_s):
                return sent  # another process sends (renewed before every batch)
            self._wake.clear()  # what was enqueued until now, this claim sees
            rows, more = await self._claim()
            if not rows:
                return sent
            ids = [row.id for row in rows]
            async with heartbeat(partial(self._renew, ids), self.lease_s / 3, self.name):
                batch_sent, cut_short = await self._send_batch(rows)
            sent += batch_sent
            if not more and not cut_short:
                return sent
        return sent

    def _flooded(self) -> bool:
        return time.monotonic() < self._paused_until

    def _halted(self) -> bool:
        """Send nothing more now: Telegram asked us to wait, or another process sends."""
        return self._flooded() or self._lease_lost

    async def _any_due(self) -> bool:
        now = utcnow()
        async with self.db.read() as session:
            found = await session.scalar(
                select(OutboxMessage.id)
                .where(*_due(now), claims.claimable(OutboxMessage, now))
                .limit(1)
            )
        return found is not None

    async def _claim(self) -> tuple[list[OutboxMessage], bool]:
        """Up to `batch` due rows, the first of each chat among the most urgent, claimed; and
        whether more may be due (a chat's next message waits for the next batch, so that one
        busy chat never holds up the others)."""
        now = utcnow()
        limit = self.batch * CANDIDATES_PER_ROW
        async with self.db.write() as session:
            candidates = await claims.claimable_rows(
                session, OutboxMessage, where=_due(now), now=now, limit=limit, first=[_priority()]
            )
            rows = _one_per_chat(candidates, self.batch)
            until = now + timedelta(seconds=self.lease_s)
            ids = [row.id for row in rows]
            await claims.take(session, OutboxMessage, ids, holder=self.holder, until=until)
        return rows, len(rows) < len(candidates) or len(candidates) == limit

    async def _renew(self, ids: list[int]) -> bool:
        """The batch's claims and the sender's lease; False (sending stops) once another
        process holds the lease."""
        until = utcnow() + timedelta(seconds=self.lease_s)
        async with self.db.write() as session:
            await claims.renew(session, OutboxMessage, ids, holder=self.holder, until=until)
        if not await self.leases.acquire(SENDER_LEASE, self.lease_s):
            self._lease_lost = True
            return False
        return True  # rows already recorded are simply not renewed

    async def _send_batch(self, rows: list[OutboxMessage]) -> tuple[int, bool]:
        """Start each send, most urgent first, as soon as its chat and the overall rate allow;
        every attempt is recorded when it ends. What a flood limit or a lost lease left unsent
        is released for later, and so is the rest of the batch once new rows were put in the
        outbox (`_preempted`). How many were sent, and whether the batch was cut short so."""
        waiting = list(rows)
        sending: list[asyncio.Task[bool]] = []
        cut_short = False
        while waiting and not self._halted():
            row = await self._next_ready(waiting, started=len(sending))
            if row is None:
                cut_short = True
                break
            await self.pace.overall.acquire()
            if self._halted():
                break
            waiting.remove(row)
            self.pace.sending(row.chat_id)
            sending.append(asyncio.create_task(self._send_one(row)))
        outcomes = await asyncio.gather(*sending, return_exceptions=True)
        if waiting:
            async with self.db.write() as session:
                ids = [row.id for row in waiting]
                await claims.finish(session, OutboxMessage, ids, holder=self.holder)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(outcome is True for outcome in outcomes), cut_short

    async def _next_ready(
        self, waiting: Sequence[OutboxMessage], *, started: int
    ) -> OutboxMessage | None:
        """The first row (they are in order of urgency) whose chat may hear from us now; None
        when the batch gives way to rows put in the outbox since it was claimed (`_preempted`):
        between two sends, or while every row left waits for its chat."""
        while True:
            if started and self._preempted():
                return None
            now = time.monotonic()
            ready_at = [self.pace.ready_at(row.chat_id) for row in waiting]
            for row, at in zip(waiting, ready_at, strict=True):
                if at <= now:
                    return row
            if self._preempted():
                return None
            wait = min(ready_at) - now
            if self.stopping:
                await asyncio.sleep(wait)
                continue
            with contextlib.suppress(TimeoutError):  # woken early by a kick
                await asyncio.wait_for(self._wake.wait(), wait)

    def _preempted(self) -> bool:
        """Rows were put in the outbox (a kick) since this batch was claimed: the rest of the
        batch goes back and the next claim takes the most urgent first, so a code never waits
        behind a batch of card edits and notices (for their chats' turn, or the overall rate).
        Never at shutdown (the batch being sent is finished)."""
        if self._wake.is_set() and not self.stopping:
            self._wake.clear()
            return True
        return False

    async def _send_one(self, row: OutboxMessage) -> bool:
        if row.kind == EDIT and row.message_id is not None:
            result = await self.edit(row.chat_id, row.message_id, row.text, row.markup)
        else:
            result = await self.send(row.chat_id, row.text)
        if result.status is SendStatus.SENT and row.kind == CODE and row.created_at is not None:
            # The row was written when the poller found the code upstream.
            metrics.observe_code_delivery((utcnow() - row.created_at).total_seconds())
        if result.status is SendStatus.RETRY_AFTER:
            # The whole bot is rate limited: nothing more is sent for as long as Telegram asks.
            wait = max(result.retry_after_s, 1.0)
            self._paused_until = max(self._paused_until, time.monotonic() + wait)
        await self._record(row, result)
        return result.status is SendStatus.SENT

    async def _record(self, row: OutboxMessage, result: SendResult) -> None:
        """Record this attempt, with any others that ended meanwhile: sends that end while a
        record is being written are written together next (one transaction for many under
        load, one per send when quiet). Returns once this attempt is on record."""
        self._unrecorded.append((row, result))
        async with self._recording:
            attempts, self._unrecorded = self._unrecorded, []
            if attempts:
                await self._record_all(attempts)

    async def _record_all(self, attempts: list[tuple[OutboxMessage, SendResult]]) -> None:
        now = utcnow()
        recorded: list[int] = []
        async with self.db.write() as session:
            for row, result in attempts:
                values = _outcome(row, result, now)
                recorded.append(
                    await claims.finish(
                        session, OutboxMessage, [row.id], holder=self.holder, values=values
                    )
                )
                if result.status is SendStatus.BLOCKED:
                    await repo.set_blocked(session, row.chat_id)
        for (row, result), done in zip(attempts, recorded, strict=True):
            if not done:  # our claim ran out and another worker took the row over
                log.warning(
                    "outbox claim lost before the attempt was recorded",
                    extra={"outbox_id": row.id, "status": result.status},
                )
            elif result.status is not SendStatus.SENT:
                log.info(
                    "outbox message not sent",
                    extra={"outbox_id": row.id, "status": result.status, "detail": result.detail},
                )


def _outcome(row: OutboxMessage, result: SendResult, now: datetime) -> dict[str, object]:
    """What an attempt writes on its row."""
    attempts = row.attempts + 1
    values: dict[str, object] = {"attempts": attempts}
    match result.status:
        case SendStatus.SENT:
            values["sent_at"] = now
        case SendStatus.BLOCKED:
            values["failed"] = "blocked"
        case SendStatus.REJECTED:
            values["failed"] = f"rejected: {result.detail}"[:256]
        case SendStatus.RETRY_AFTER:
            # Proof that nothing was delivered, and no fault of the message: never given up.
            values["not_before"] = now + timedelta(seconds=result.retry_after_s)
        case SendStatus.FAILED:
            delay = min(60.0, 2.0**attempts)
            values["not_before"] = now + timedelta(seconds=delay)
            if attempts >= MAX_ATTEMPTS:
                values["failed"] = f"gave up: {result.detail}"[:256]
    return values


async def customer_messages_due(db: Database) -> bool:
    """Whether any message of the outbox (a code, a card, a notice) is due now, being sent or
    not: a broadcast waits for them (services/broadcast.py), whichever process sends them."""
    async with db.read() as session:
        found = await session.scalar(select(OutboxMessage.id).where(*_due(utcnow())).limit(1))
    return found is not None


def _due(now: datetime) -> list[ColumnElement[bool]]:
    """Rows still to be sent whose time has come."""
    return [
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed.is_(None),
        or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
    ]


def _priority() -> ColumnElement[Any]:
    """A row's place in the queue by its kind (PRIORITY): lower is sent first."""
    return case(
        *((OutboxMessage.kind == kind, rank) for kind, rank in PRIORITY.items()), else_=OTHER
    )


def _one_per_chat(rows: Sequence[OutboxMessage], limit: int) -> list[OutboxMessage]:
    """The first row of each chat, in the given order, at most `limit`."""
    chats: set[int] = set()
    kept: list[OutboxMessage] = []
    for row in rows:
        if row.chat_id not in chats and len(kept) < limit:
            chats.add(row.chat_id)
            kept.append(row)
    return kept


def claim_lease_s(interval_s: float) -> float:
    """How long a worker's claim on a batch lasts: three rounds, and never under
    MIN_CLAIM_LEASE_S (renewed every third of it while the batch is being sent, so only a
    process that died, or an event loop stuck for that long, loses its claim)."""
    return max(3 * interval_s, MIN_CLAIM_LEASE_S)


async def enqueue(session: AsyncSession, chat_id: int, text: str, kind: str) -> None:
    """Inside the caller's transaction; the worker is woken after the commit."""
    await repo.add_outbox(session, chat_id, text, kind)
    after_commit(session, OUTBOX)


@dataclass(frozen=True, slots=True)
class Edit:
    """What a message in the chat should show now: its text and its reply markup (Bot API
    JSON, None for none)."""

    chat_id: int
    message_id: int
    text: str
    markup: str | None


async def enqueue_edit(session: AsyncSession, edit: Edit) -> None:
    """Inside the caller's transaction: the message is edited to show `edit`, in its turn (after
    the codes). Only the latest state waits: an edit of the same message not yet taken by a
    worker is replaced in its row (keeping its place in the queue); the message's edits already
    done are deleted (only the latest state of a card matters, and the table stays as small as
    the number of cards). One being sent meanwhile is followed by this one."""
    card = _card(edit.chat_id, edit.message_id)
    now = utcnow()
    await session.execute(
        delete(OutboxMessage)
        .where(*card, or_(OutboxMessage.sent_at.is_not(None), OutboxMessage.failed.is_not(None)))
        .execution_options(synchronize_session=False)
    )
    replaced = await session.execute(
        update(OutboxMessage)
        .where(*_waiting(edit.chat_id, edit.message_id))
        .values(text=edit.text, markup=edit.markup)
        .execution_options(synchronize_session=False)
    )
    if cast("CursorResult[Any]", replaced).rowcount == 0:
        session.add(
            OutboxMessage(
                chat_id=edit.chat_id,
                message_id=edit.message_id,
                text=edit.text,
                markup=edit.markup,
                kind=EDIT,
                attempts=0,
                created_at=now,
            )
        )
    after_commit(session, OUTBOX)


async def edits_waiting(session: AsyncSession, chat_id: int, message_id: int) -> bool:
    """Is an edit of this message still to be sent? (A read: `drop_edits()` only if so.)"""
    found = await session.scalar(select(OutboxMessage.id).where(*_waiting(chat_id, message_id)))
    return found is not None


async def drop_edits(session: AsyncSession, chat_id: int, message_id: int) -> None:
    """The message was just rendered by other means (a handler answering a button press):
    an edit still waiting, rendered before, must not show an older state over it."""
    await session.execute(
        delete(OutboxMessage)
        .where(*_waiting(chat_id, message_id))
        .execution_options(synchronize_session=False)
    )


def _waiting(chat_id: int, message_id: int) -> list[ColumnElement[bool]]:
    """The message's edits not yet sent nor taken by a worker."""
    return [
        *_card(chat_id, message_id),
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed.is_(None),
        claims.claimable(OutboxMessage, utcnow()),
    ]


def _card(chat_id: int, message_id: int) -> list[ColumnElement[bool]]:
    return [
        OutboxMessage.kind == EDIT,
        OutboxMessage.chat_id == chat_id,
        OutboxMessage.message_id == message_id,
    ]
