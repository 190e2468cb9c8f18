"""The shop's notification group: purchases, refunds, top-ups, provider trouble.

Events are written to the `notifications` table inside the transaction that caused them (so a
rolled-back purchase never announces itself), then a worker sends them to NOTIFY_CHAT_ID within
Telegram's group limit: every round takes everything pending and merges it into as few messages
as fit (4,096 characters each), so a burst becomes a few messages and nothing is dropped; an
alert that needs a decision (ACTIONS) is never merged: it goes alone, with its buttons. An
unreachable group never blocks or slows a purchase: the worker is the only one waiting on it.
A merged message Telegram refuses for its text is sent again line by line, and a line that is
still refused is logged and dropped, so one bad line never silences the group. With several bot
processes on one database, only one sends to the group at a time (the holder of the
`notifications-sender` lease, services/leases.py; another takes over when it dies), so the
group's limit is the shop's, not each process's; each line is still claimed by the worker
before it is sent (db/claims.py), which guards the takeover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from db import claims
from db.engine import Database, after_commit
from db.models import Notification, User, utcnow
from services.leases import Leases, heartbeat, new_holder
from services.outbox import SendResult, SendStatus, claim_lease_s, window_limiter
from services.text import escape
from services.worker import BackgroundWorker

log = logging.getLogger(__name__)

MAX_TEXT = 4096
SEPARATOR = "\n\n"
Render = Callable[[str, dict[str, Any]], str]
GroupSender = Callable[..., Awaitable[SendResult]]  # (text) or (text, GroupAlert)
# Fields that hold a Telegram user id: the group sees the person (name and id), not a number.
PEOPLE_FIELDS = ("user", "admin")
NOTIFICATIONS = "notifications"  # the after-commit topic that wakes the worker
SENDER_LEASE = "notifications-sender"  # the one process that posts to the group
# Alerts that need a decision carry buttons (services/group_actions.py): the event, the kind of
# decision, and the field that names what it is about. Such a line is sent alone.
ACTIONS = {
    "unknown-order": ("order", "order"),  # Refund / Adopt
    "provider-errors": ("provider", "provider"),  # Switch off
    "provider-balance": ("balance", "provider"),  # Show providers
}


@dataclass(frozen=True, slots=True)
class GroupAlert:
    """A line with buttons: the group sender adds the keyboard of its `action`."""

    notification_id: int
    action: str
    target: str


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    name: str | None = None  # first name, else @username; None when the shop never met them


@dataclass(frozen=True, slots=True)
class OtpGoods:
    """A number, by catalog keys: the renderer names them as the customer saw them."""

    service: str
    country: str


@dataclass(frozen=True, slots=True)
class SmmGoods:
    name: str  # the service's name as the panel gives it (data, never markup)
    quantity: int


class Notifier:
    """What services call: `await notifier.emit(session, "purchase", price=...)`.

    Fields are plain values; `user`/`admin` ids become Persons read in the same transaction.
    Rendering never fails an event's transaction: a text the renderer cannot build becomes a
    plain escaped line."""

    def __init__(
        self,
        render: Render | None = None,
        *,
        enabled: bool = False,
    ) -> None:
        self.render = render
        self.enabled = enabled

    async def emit(self, session: AsyncSession, event: str, **fields: Any) -> None:
        if not self.enabled or self.render is None:
            return
        for key in PEOPLE_FIELDS:
            value = fields.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                fields[key] = await _person(session, value)
        try:
            text = self.render(event, fields)
        except Exception:
            log.exception("notification text failed", extra={"event": event})
            text = plain_line(event, fields)
        action, field_name = ACTIONS.get(event, (None, ""))
        target = str(fields.get(field_name, ""))[:64] if action else None
        session.add(
            Notification(
                kind=event,
                text=text[:MAX_TEXT],
                created_at=utcnow(),
                action=action if target else None,
                target=target or None,
            )
        )
        after_commit(session, NOTIFICATIONS)

    async def emit_now(self, db: Database, event: str, **fields: Any) -> None:
        """An event with no transaction of its own (provider trouble, scheduler findings)."""
        if not self.enabled:
            return
        async with db.write() as session:
            await self.emit(session, event, **fields)


async def _person(session: AsyncSession, user_id: int) -> Person:
    row = (
        await session.execute(select(User.first_name, User.username).where(User.id == user_id))
    ).first()
    if row is None:
        return Person(user_id)
    first_name, username = row
    return Person(user_id, first_name or (f"@{username}" if username else None))


def plain_line(event: str, fields: dict[str, Any]) -> str:
    """The fallback: the event and its fields, every value escaped."""
    values = ", ".join(
        f"{escape(key)}={escape(value.id if isinstance(value, Person) else value)}"
        for key, value in fields.items()
    )
    return f"{escape(event)}: {values}"


def first_message(texts: list[tuple[int, str]]) -> tuple[list[int], str]:
    """As many pending texts, in order, as fit in one message; returns their ids and the text."""
    ids: list[int] = []
    parts: list[str] = []
    size = 0
    for row_id, pending in texts:
        text = pending[:MAX_TEXT]
        extra = len(text) + (len(SEPARATOR) if parts else 0)
        if parts and size + extra > MAX_TEXT:
            break
        ids.append(row_id)
        parts.append(text)
        size += extra
    return ids, SEPARATOR.join(parts)


class NotificationWorker(BackgroundWorker):
    """With several bot processes on one database, only the holder of SENDER_LEASE sends (so
    `per_minute` holds for the shop), and each line is sent by one worker: what goes into a
    message is claimed first (db/claims.py), as the outbox does, and marked sent only while the
    claim is still this worker's."""

    name = "notification-worker"

    def __init__(
        self,
        db: Database,
        send: GroupSender,
        *,
        per_minute: int = 20,
        interval_s: float = 1.0,
        batch: int = 500,
        lease_s: float | None = None,
        holder: str | None = None,
        leases: Leases | None = None,
    ) -> None:
        super().__init__(interval_s)
        self.db = db
        db.subscribe(NOTIFICATIONS, self.kick)
        self.send = send
        self.batch = batch
        self.lease_s = claim_lease_s(interval_s) if lease_s is None else lease_s
        self.holder = holder or new_holder()
        self.leases = leases or Leases(db, holder=self.holder)
        # Telegram allows a group about 20 messages a minute: never more in any 60 s window.
        self.limiter = window_limiter(per_minute, 60.0)
        self.sent_messages = 0

    async def round(self) -> int:
        return await self.drain_once()

    async def stop(self, timeout_s: float = 30.0) -> None:
        await super().stop(timeout_s)
        with contextlib.suppress(SQLAlchemyError, OSError):
            await self.leases.release(SENDER_LEASE)  # another process may send at once

    async def drain_once(self) -> int:
        """Send one merged message of what is pending (waiting for the rate limit first), if
        this worker is the group's sender."""
        if not await self._pending():
            return 0
        await self.limiter.acquire()
        if not await self._hold():  # taken after the wait, so it outlasts the send
            return 0
        # Claimed after the wait: everything that arrived meanwhile joins this message.
        rows, alert = await self._claim()
        if not rows:
            return 0  # another process took them
        ids = [row_id for row_id, _ in rows]
        async with heartbeat(partial(self._renew, ids), self.lease_s / 3, self.name):
            return await self._send(rows, alert)

    async def _send(self, rows: list[tuple[int, str]], alert: GroupAlert | None = None) -> int:
        ids, first = first_message(rows)
        result = await (self.send(first) if alert is None else self.send(first, alert))
        if result.status is SendStatus.SENT:
            self.sent_messages += 1
            await self._done(ids)
            return len(ids)
        if result.status is SendStatus.REJECTED and len(ids) > 1:
            # Telegram refused the text itself: one line in it is bad. Send them one by one so
            # the good ones get through and the bad one alone is dropped.
            return await self._one_by_one(rows)
        if result.status is SendStatus.REJECTED:
            self._drop(ids[0], result)
            await self._done(ids)
            return 0
        await self._release(ids)
        await self._wait_after(result)
        return 0

    async def _pending(self) -> bool:
        async with self.db.read() as session:
            found = await session.scalar(
                select(Notification.id)
                .where(Notification.sent_at.is_(None), claims.claimable(Notification, utcnow()))
                .limit(1)
            )
        return found is not None

    async def _claim(self) -> tuple[list[tuple[int, str]], GroupAlert | None]:
        """The pending lines that fit in one message, claimed by this worker; an alert with
        buttons goes alone (its keyboard is its own), so a merge stops before one."""
        now = utcnow()
        async with self.db.write() as session:
            pending = await claims.claimable_rows(
                session,
                Notification,
                where=[Notification.sent_at.is_(None)],
                now=now,
                limit=self.batch,
            )
            alert = None
            head = pending[0] if pending else None
            if head is not None and head.action and head.target:
                alert = GroupAlert(head.id, head.action, head.target)
                pending = pending[:1]
            else:
                plain = next((n for n, row in enumerate(pending) if row.action), len(pending))
                pending = pending[:plain]
            ids, _ = first_message([(row.id, row.text) for row in pending])
            until = now + timedelta(seconds=self.lease_s)
            await claims.take(session, Notification, ids, holder=self.holder, until=until)
        return [(row.id, row.text) for row in pending[: len(ids)]], alert

    async def _hold(self) -> bool:
        """Take or renew the sender's lease (False: another process posts to the group)."""
        return await self.leases.acquire(SENDER_LEASE, self.lease_s)

    async def _renew(self, ids: list[int]) -> bool:
        until = utcnow() + timedelta(seconds=self.lease_s)
        async with self.db.write() as session:
            await claims.renew(session, Notification, ids, holder=self.holder, until=until)
        return await self._hold()

    async def _one_by_one(self, rows: list[tuple[int, str]]) -> int:
        sent = 0
        for index, (row_id, text) in enumerate(rows):
            if index:
                await self.limiter.acquire()
            result = await self.send(text[:MAX_TEXT])
            if result.status is SendStatus.SENT:
                self.sent_messages += 1
                sent += 1
            elif result.status is SendStatus.REJECTED:
                self._drop(row_id, result)
            else:
                await self._release([later for later, _ in rows[index:]])
                await self._wait_after(result)  # the rest waits for the next round
                break
            await self._done([row_id])
        return sent

    async def _done(self, ids: list[int]) -> None:
        """Sent, or dropped because Telegram refuses it: either way never tried again."""
        async with self.db.write() as session:
            done = await claims.finish(
                session, Notification, ids, holder=self.holder, values={"sent_at": utcnow()}
            )
        if done < len(ids):
            log.warning(
                "notification claim lost before it was marked sent",
                extra={"notifications": len(ids) - done},
            )

    async def _release(self, ids: list[int]) -> None:
        """Not sent (the group is unreachable): claimable again at once, by any process."""
        async with self.db.write() as session:
            await claims.finish(session, Notification, ids, holder=self.holder)

    @staticmethod
    def _drop(row_id: int, result: SendResult) -> None:
        log.error(
            "notification refused by Telegram, dropped",
            extra={"notification_id": row_id, "detail": result.detail},
        )

    @staticmethod
    async def _wait_after(result: SendResult) -> None:
        log.warning(
            "notification group unreachable",
            extra={"status": result.status, "detail": result.detail},
        )
        if result.status is SendStatus.RETRY_AFTER:
            await asyncio.sleep(min(result.retry_after_s, 60))
