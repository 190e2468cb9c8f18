"""Broadcasts: an admin's message to every user who has not blocked the bot.

At most once per user, also across a crash: the recipients are fixed when the broadcast is
created (one `pending` row each), and a row becomes `sending` in its own committed transaction
before the message goes out. A row found still `sending` at start-up (the bot died with the
message in flight) becomes `unknown` and is never sent again. A 429 is the one answer that
proves a message was not delivered, so only a flood limit sends the same row again.

With several bot processes on one database, a broadcast is sent by one process at a time: the
holder of its lease (`broadcast:<id>`, services/leases.py), renewed while it runs and released
when it stops. `resume()` (at start-up, then every `lease_s / 2` from the scheduler) takes over
the running broadcasts nobody holds: only then are rows left `sending` known to be orphans.

The pace is one message every 1/rate seconds over a few concurrent senders (Telegram allows
about 30 messages a second in all; the default 25 leaves room for the bot's other replies).
Customers come first: while the outbox holds a message that is due (a code, a card, a notice;
`yield_to`, checked at most every YIELD_CHECK_S, through the database so whichever process
sends them), the broadcast sends nothing, so the two never add up past Telegram's limit.
Progress goes to one message through an injected `progress` callable, at most every
`progress_every_s` and once at the end. Like the outbox worker, the service knows nothing of
Telegram: the bot layer gives it the `send` and `progress` functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from sqlalchemy import CursorResult, Update, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import repositories as repo
from db.engine import Database
from db.models import Broadcast, BroadcastDelivery, User, utcnow
from services.ids import is_id
from services.leases import Leases, heartbeat
from services.outbox import Sender, SendResult, SendStatus

log = logging.getLogger(__name__)

# Broadcast states
RUNNING = "running"
CANCELLED = "cancelled"
DONE = "done"

# Delivery states
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
BLOCKED = "blocked"
FAILED = "failed"
UNKNOWN = "unknown"  # was `sending` when the bot stopped: maybe delivered, never resent

MAX_FLOOD_WAITS = 10
# How long a broadcast stays with a process that stopped renewing its lease (died).
LEASE_S = 10.0
# How often a broadcast asks whether customers' messages are due (and waits between asks).
YIELD_CHECK_S = 0.5


@dataclass(frozen=True, slots=True)
class BroadcastView:
    id: int
    status: str
    total: int
    sent: int
    blocked: int
    failed: int
    chat_id: int | None
    message_id: int | None
    language: str | None  # the admin's, for the progress message

    @property
    def done(self) -> int:
        return self.sent + self.blocked + self.failed

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else self.done * 100 // self.total


Progress = Callable[[BroadcastView], Awaitable[None]]


class BroadcastBusy(Exception):
    """Another broadcast is still running (one at a time keeps within Telegram's limits)."""

    def __init__(self, broadcast_id: int) -> None:
        super().__init__(f"broadcast {broadcast_id} is running")
        self.broadcast_id = broadcast_id


@dataclass
class _Run:
    broadcast_id: int
    text: str
    halt: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


async def _no_progress(view: BroadcastView) -> None:
    return None


class BroadcastService:
    def __init__(
        self,
        db: Database,
        send: Sender,
        *,
        rate_per_s: float = 25.0,
        progress: Progress | None = None,
        progress_every_s: float = 2.0,
        concurrency: int | None = None,
        leases: Leases | None = None,
        lease_s: float = LEASE_S,
        yield_to: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.db = db
        self.leases = leases or Leases(db)
        self.lease_s = lease_s
        self._resuming = asyncio.Lock()
        self.send = send
        self.progress: Progress = progress or _no_progress
        self.interval_s = 1.0 / rate_per_s
        self.progress_every_s = progress_every_s
        # Enough senders in flight to keep the pace with ~200 ms per Telegram call.
        self.concurrency = concurrency or min(16, max(1, math.ceil(rate_per_s / 5)))
        self._runs: dict[int, _Run] = {}
        self._next_slot = 0.0
        self._pause_until = 0.0
        self._stopping = False
        self.yield_to = yield_to  # True while customers' messages are due: wait
        self._busy = False
        self._busy_checked_at = -math.inf
        self._busy_lock = asyncio.Lock()

    # --- commands ------------------------------------------------------------------------

    async def create(self, admin_id: int, text: str) -> BroadcastView:
        """Record a broadcast and its recipients (every user who has not blocked the bot).
        Raises BroadcastBusy while another one runs. Call start() next."""
        async with self.db.write() as session:
            running = await session.scalar(
                select(Broadcast.id).where(Broadcast.status == RUNNING).limit(1)
            )
            if running is not None:
                raise BroadcastBusy(running)
            broadcast = Broadcast(
                text=text,
                admin_id=admin_id,
                status=RUNNING,
                total=0,
                sent=0,
                blocked=0,
                failed=0,
                created_at=utcnow(),
            )
            session.add(broadcast)
            await session.flush()
            recipients = select(literal(broadcast.id), User.id, literal(PENDING)).where(
                User.blocked_bot.is_(False)
            )
            await session.execute(
                insert(BroadcastDelivery).from_select(
                    ["broadcast_id", "user_id", "status"], recipients
                )
            )
            total = await session.scalar(
                select(func.count()).where(BroadcastDelivery.broadcast_id == broadcast.id)
            )
            broadcast.total = total or 0
            broadcast_id = broadcast.id
        # Ours until start() runs it: another process's resume() leaves it alone.
        await self.leases.acquire(_lease(broadcast_id), self.lease_s)
        log.info("broadcast created", extra={"broadcast_id": broadcast_id, "total": total})
        view = await self.view(broadcast_id)
        if view is None:  # committed above: only a concurrent delete could do this
            raise RuntimeError(f"broadcast {broadcast_id} vanished right after it was created")
        return view

    async def start(
        self, broadcast_id: int, chat_id: int | None = None, message_id: int | None = None
    ) -> None:
        """Remember where progress is shown, then send in the background."""
        if chat_id is not None and message_id is not None:
            async with self.db.write() as session:
                await session.execute(
                    update(Broadcast)
                    .where(Broadcast.id == broadcast_id)
                    .values(progress_chat_id=chat_id, progress_message_id=message_id)
                )
        self._launch(broadcast_id)

    async def cancel(self, broadcast_id: int | None = None) -> BroadcastView | None:
        """Stop a running broadcast (the newest running one when no id is given). Returns its
        view, or None when there was nothing running to cancel."""
        if broadcast_id is not None and not is_id(broadcast_id):
            return None  # a forged huge id would overflow the query
        async with self.db.write() as session:
            query = select(Broadcast.id).where(Broadcast.status == RUNNING)
            if broadcast_id is not None:
                query = query.where(Broadcast.id == broadcast_id)
            target = await session.scalar(query.order_by(Broadcast.id.desc()).limit(1))
            if target is None:
                return None
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == target)
                .values(status=CANCELLED, finished_at=utcnow())
            )
        log.info("broadcast cancelled", extra={"broadcast_id": target})
        run = self._runs.get(target)
        if run is not None:
            run.halt.set()  # its task shows the final progress
        else:
            await self._show(target)
        return await self.view(target)

    async def resume(self) -> list[int]:
        """Continue every running broadcast that no process is sending (at start-up, and
        periodically to take over from a process that died); returns their ids. A row left
        `sending` may have been delivered just before its process died: it becomes `unknown`,
        never resent."""
        async with self._resuming:
            async with self.db.read() as session:
                running = list(
                    await session.scalars(
                        select(Broadcast.id)
                        .where(Broadcast.status == RUNNING)
                        .order_by(Broadcast.id)
                    )
                )
            ids = []
            for broadcast_id in running:
                if broadcast_id in self._runs or self._stopping:
                    continue
                if await self.leases.acquire(_lease(broadcast_id), self.lease_s):
                    await self._mark_in_doubt(broadcast_id)
                    log.info("broadcast resumed", extra={"broadcast_id": broadcast_id})
                    self._launch(broadcast_id)
                    ids.append(broadcast_id)
            return ids

    async def _mark_in_doubt(self, broadcast_id: int) -> None:
        async with self.db.write() as session:
            in_doubt = await _updated(
                session,
                update(BroadcastDelivery)
                .where(
                    BroadcastDelivery.broadcast_id == broadcast_id,
                    BroadcastDelivery.status == SENDING,
                )
                .values(status=UNKNOWN, detail="in flight when the bot stopped"),
            )
            if in_doubt:
                await session.execute(
                    update(Broadcast)
                    .where(Broadcast.id == broadcast_id)
                    .values(failed=Broadcast.failed + in_doubt)
                )

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Shutdown: messages in flight finish and are recorded; the rest waits for resume()."""
        self._stopping = True
        runs = list(self._runs.values())
        for run in runs:
            run.halt.set()
        tasks = [run.task for run in runs if run.task is not None]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout_s)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait(self, broadcast_id: int) -> None:
        run = self._runs.get(broadcast_id)
        if run is not None and run.task is not None:
            await asyncio.shield(run.task)

    async def view(self, broadcast_id: int) -> BroadcastView | None:
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(Broadcast, User.language)
                    .outerjoin(User, User.id == Broadcast.admin_id)
                    .where(Broadcast.id == broadcast_id)
                )
            ).first()
        if row is None:
            return None
        broadcast, language = row
        return BroadcastView(
            id=broadcast.id,
            status=broadcast.status,
            total=broadcast.total,
            sent=broadcast.sent,
            blocked=broadcast.blocked,
            failed=broadcast.failed,
            chat_id=broadcast.progress_chat_id,
            message_id=broadcast.progress_message_id,
            language=language,
        )

    # --- the sending loop ----------------------------------------------------------------

    def _launch(self, broadcast_id: int) -> None:
        if broadcast_id in self._runs or self._stopping:
            return
        run = _Run(broadcast_id, "")
        run.task = asyncio.create_task(self._run(run), name=f"broadcast-{broadcast_id}")
        self._runs[broadcast_id] = run

    async def _run(self, run: _Run) -> None:
        """Send the broadcast while this process holds its lease (renewed meanwhile)."""
        name = _lease(run.broadcast_id)
        try:
            if not await self.leases.acquire(name, self.lease_s):
                log.info("broadcast runs elsewhere", extra={"broadcast_id": run.broadcast_id})
                return
            try:
                renew = partial(self.leases.acquire, name, self.lease_s)
                async with heartbeat(renew, self.lease_s / 3, name):
                    await self._send_all(run)
            finally:
                await self.leases.release(name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("broadcast failed", extra={"broadcast_id": run.broadcast_id})
        finally:
            self._runs.pop(run.broadcast_id, None)

    async def _send_all(self, run: _Run) -> None:
        async with self.db.read() as session:
            run.text = (
                await session.scalar(
                    select(Broadcast.text).where(Broadcast.id == run.broadcast_id)
                )
                or ""
            )
        workers = [
            asyncio.create_task(self._worker(run), name=f"broadcast-{run.broadcast_id}-{n}")
            for n in range(self.concurrency)
        ]
        ticker = asyncio.create_task(self._tick(run))
        try:
            await asyncio.gather(*workers)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            for worker in workers:
                worker.cancel()
        if not self._stopping:
            await self._finish(run.broadcast_id)
        await self._show(run.broadcast_id)

    async def _worker(self, run: _Run) -> None:
        while not run.halt.is_set():
            if not await self._pace(run):
                return
            user_id = await self._claim(run)
            if user_id is None:
                return
            result = await self._deliver(run, user_id)
            await self._record(run.broadcast_id, user_id, result)

    async def _pace(self, run: _Run) -> bool:
        """Wait for this sender's slot; False when the run was halted meanwhile."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next_slot, self._pause_until)
        self._next_slot = slot + self.interval_s
        if slot > now:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.halt.wait(), slot - now)
        await self._after_customers(run)
        return not run.halt.is_set()

    async def _after_customers(self, run: _Run) -> None:
        """Wait while `yield_to` says customers' messages are due (one check for all the
        senders at most every YIELD_CHECK_S)."""
        if self.yield_to is None:
            return
        loop = asyncio.get_running_loop()
        while not run.halt.is_set():
            async with self._busy_lock:  # the other senders wait for this check's answer
                if loop.time() >= self._busy_checked_at + YIELD_CHECK_S:
                    self._busy = await self.yield_to()
                    self._busy_checked_at = loop.time()
            if not self._busy:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.halt.wait(), YIELD_CHECK_S)

    async def _claim(self, run: _Run) -> int | None:
        """The next pending recipient, marked `sending` and committed before any send."""
        async with self.db.write() as session:
            status = await session.scalar(
                select(Broadcast.status).where(Broadcast.id == run.broadcast_id)
            )
            if status != RUNNING:  # cancelled, maybe by another replica
                run.halt.set()
                return None
            while True:
                user_id = await session.scalar(
                    select(BroadcastDelivery.user_id)
                    .where(
                        BroadcastDelivery.broadcast_id == run.broadcast_id,
                        BroadcastDelivery.status == PENDING,
                    )
                    .order_by(BroadcastDelivery.user_id)
                    .limit(1)
                )
                if user_id is None:
                    return None
                claimed = await _updated(
                    session,
                    update(BroadcastDelivery)
                    .where(
                        BroadcastDelivery.broadcast_id == run.broadcast_id,
                        BroadcastDelivery.user_id == user_id,
                        BroadcastDelivery.status == PENDING,
                    )
                    .values(status=SENDING),
                )
                if claimed == 1:
                    return user_id

    async def _deliver(self, run: _Run, user_id: int) -> SendResult:
        """Send once; only a flood limit (proof of non-delivery) is waited out and repeated."""
        loop = asyncio.get_running_loop()
        for _ in range(MAX_FLOOD_WAITS):
            result = await self.send(user_id, run.text)
            if result.status is not SendStatus.RETRY_AFTER:
                return result
            wait_s = max(result.retry_after_s, 0.1)
            self._pause_until = max(self._pause_until, loop.time() + wait_s)
            log.warning(
                "broadcast flood limit",
                extra={"broadcast_id": run.broadcast_id, "retry_after": wait_s},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.halt.wait(), wait_s)
            if run.halt.is_set():
                return result  # not delivered: back to pending
        return SendResult(SendStatus.FAILED, detail="flood limit did not end")

    async def _record(self, broadcast_id: int, user_id: int, result: SendResult) -> None:
        delivery = (BroadcastDelivery.broadcast_id == broadcast_id) & (
            BroadcastDelivery.user_id == user_id
        )
        async with self.db.write() as session:
            match result.status:
                case SendStatus.SENT:
                    status, counter = SENT, {"sent": Broadcast.sent + 1}
                case SendStatus.BLOCKED:
                    status, counter = BLOCKED, {"blocked": Broadcast.blocked + 1}
                    await repo.set_blocked(session, user_id)
                case SendStatus.RETRY_AFTER:
                    status, counter = PENDING, {}
                case _:
                    status, counter = FAILED, {"failed": Broadcast.failed + 1}
            # Only a row still `sending`: one a process taking over already counted as
            # `unknown` keeps that (and is not counted twice).
            recorded = await _updated(
                session,
                update(BroadcastDelivery)
                .where(delivery, BroadcastDelivery.status == SENDING)
                .values(status=status, detail=result.detail[:256] or None),
            )
            if counter and recorded:
                await session.execute(
                    update(Broadcast).where(Broadcast.id == broadcast_id).values(**counter)
                )

    async def _finish(self, broadcast_id: int) -> None:
        async with self.db.write() as session:
            left = await session.scalar(
                select(func.count()).where(
                    BroadcastDelivery.broadcast_id == broadcast_id,
                    BroadcastDelivery.status.in_((PENDING, SENDING)),
                )
            )
            if left:
                return  # cancelled, or another replica still has messages in flight
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status == RUNNING)
                .values(status=DONE, finished_at=utcnow())
            )
        log.info("broadcast finished", extra={"broadcast_id": broadcast_id})

    async def _tick(self, run: _Run) -> None:
        """Progress at most every `progress_every_s`, only when something changed."""
        shown: tuple[int, int, int] | None = None
        while True:
            await asyncio.sleep(self.progress_every_s)
            view = await self.view(run.broadcast_id)
            if view is None:
                return
            if view.status != RUNNING:
                run.halt.set()
            counts = (view.sent, view.blocked, view.failed)
            if counts != shown:
                shown = counts
                await self._call_progress(view)

    async def _show(self, broadcast_id: int) -> None:
        view = await self.view(broadcast_id)
        if view is not None:
            await self._call_progress(view)

    async def _call_progress(self, view: BroadcastView) -> None:
        if view.chat_id is None or view.message_id is None:
            return
        try:
            await self.progress(view)
        except Exception:
            log.exception("broadcast progress failed", extra={"broadcast_id": view.id})


def _lease(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}"


async def _updated(session: AsyncSession, statement: Update) -> int:
    """Run an UPDATE; how many rows it changed. `execute()` is typed to return a plain Result,
    but an UPDATE without RETURNING gives a CursorResult, which has the count."""
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount
