"""Several bot processes on one database: every outbox message and group line is sent once,
a claim or lease left by a process that died is taken over once it runs out, and a job or a
broadcast runs in one process at a time.

Each "process" here is its own Database (its own engine and connections) with its own workers
on the test's one database (SQLite and PostgreSQL); sends go to the fake Bot API and are counted
there. Lease expiry is driven by a fake clock or by writing the claim itself, never by sleeping.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.build import make_bot
from bot.group import make_group_sender
from bot.telegram import make_sender
from db.engine import Database
from db.models import BroadcastDelivery, Lease, Notification, OutboxMessage, utcnow
from services.broadcast import BroadcastService
from services.catalog_store import SnapshotSync
from services.leases import Leases
from services.notifier import NotificationWorker
from services.outbox import OutboxWorker, SendResult, SendStatus, enqueue
from tests.conftest import eventually, make_settings
from tests.fakes.telegram import FakeTelegram

GROUP = -100_555
FIRST_CHAT = 700_001


@pytest.fixture
async def senders(tg: FakeTelegram, tmp_path: Path):
    """Each process's Bot on the fake Bot API, as the bot builds it."""
    bots = [make_bot(make_settings(tg, tmp_path)) for _ in range(2)]
    yield bots
    for bot in bots:
        await bot.session.close()


def sent_texts(tg: FakeTelegram, chat_id: int | None = None) -> Counter[str]:
    """Every sendMessage the fake Bot API accepted, by text (of one chat if given)."""
    return Counter(
        call.params["text"]
        for call in tg.calls_of("sendMessage")
        if call.error is None and (chat_id is None or int(call.params["chat_id"]) == chat_id)
    )


async def add_outbox(db: Database, count: int, prefix: str = "message") -> list[str]:
    texts = [f"{prefix} {n}" for n in range(count)]
    async with db.write() as session:
        for n, text in enumerate(texts):
            await enqueue(session, FIRST_CHAT + n % 5, text, "test")
    return texts


async def count(db: Database, *where) -> int:
    async with db.read() as session:
        return await session.scalar(select(func.count()).where(*where)) or 0


# --- the outbox --------------------------------------------------------------------------------


async def test_twenty_outbox_messages_with_two_workers_are_each_sent_once(
    two, senders, tg
) -> None:
    first, second = two
    texts = await add_outbox(first, 20)
    workers = [
        OutboxWorker(db, make_sender(bot), batch=4) for db, bot in zip(two, senders, strict=True)
    ]
    sent = await asyncio.gather(*(worker.drain() for worker in workers))

    assert sent_texts(tg) == Counter(texts)  # every message once, none twice
    assert sum(sent) == 20
    assert await count(second, OutboxMessage.sent_at.is_(None)) == 0
    assert await count(second, OutboxMessage.claimed_by.is_not(None)) == 0  # claims cleared


async def test_two_started_outbox_workers_send_each_message_once(two, senders, tg) -> None:
    """The workers as the bot runs them: woken every interval, and at once by their own
    process's commits, while the other process sends too."""
    workers = [
        OutboxWorker(db, make_sender(bot), interval_s=0.05, batch=3)
        for db, bot in zip(two, senders, strict=True)
    ]
    for worker in workers:
        worker.start()
    try:
        texts = await add_outbox(two[0], 12, "first")
        texts += await add_outbox(two[1], 12, "second")
        await eventually(lambda: sum(sent_texts(tg).values()) >= 24)
        await eventually(lambda: _none_pending(two[0]))
    finally:
        for worker in workers:
            await worker.stop()
    assert sent_texts(tg) == Counter(texts)


async def _none_pending(db: Database) -> bool:
    return await count(db, OutboxMessage.sent_at.is_(None)) == 0


async def _claim_as_dead(db: Database, model, until: datetime, *ids: int) -> None:
    async with db.write() as session:
        await session.execute(
            update(model)
            .where(model.id.in_(ids))
            .values(claimed_by="dead-host:4242:deadbeef", claimed_until=until)
        )


async def test_a_dead_workers_outbox_claim_is_taken_over_once_it_runs_out(
    two, senders, tg
) -> None:
    first, second = two
    await add_outbox(first, 2, "orphan")
    # A process claimed both and died before sending: one claim has run out, one has not.
    await _claim_as_dead(first, OutboxMessage, utcnow() - timedelta(seconds=1), 1)
    await _claim_as_dead(first, OutboxMessage, utcnow() + timedelta(hours=1), 2)
    worker = OutboxWorker(second, make_sender(senders[1]))

    assert await worker.drain() == 1
    assert sent_texts(tg) == Counter({"orphan 0": 1})  # the live claim is left alone

    await _claim_as_dead(first, OutboxMessage, utcnow() - timedelta(seconds=1), 2)  # ran out
    assert await worker.drain() == 1
    assert await worker.drain() == 0
    assert sent_texts(tg) == Counter({"orphan 0": 1, "orphan 1": 1})


async def test_an_attempt_is_not_recorded_over_a_claim_another_worker_took(two) -> None:
    """A worker whose claim ran out (stuck past its lease) and was taken over does not write
    its outcome over the new holder's."""
    first, second = two
    await add_outbox(first, 1)
    taken = asyncio.Event()

    async def slow_send(chat_id: int, text: str) -> SendResult:
        await _claim_as_dead(second, OutboxMessage, utcnow() + timedelta(hours=1), 1)
        taken.set()
        return SendResult(SendStatus.FAILED, detail="timeout")

    worker = OutboxWorker(first, slow_send)
    await worker.drain()
    assert taken.is_set()
    async with second.read() as session:
        row = await session.get(OutboxMessage, 1)
    assert (row.claimed_by, row.attempts, row.not_before) == ("dead-host:4242:deadbeef", 0, None)


# --- the notification group ---------------------------------------------------------------------


async def _add_lines(db: Database, count: int) -> list[str]:
    lines = [f"line {n} " + "x" * 1500 for n in range(count)]  # two fit in one message
    async with db.write() as session:
        for line in lines:
            session.add(Notification(kind="test", text=line, created_at=utcnow()))
    return lines


async def _drain(worker: NotificationWorker) -> None:
    sent = 1
    while sent:
        sent = await worker.drain_once()


async def test_group_lines_with_two_workers_are_each_sent_once(two, senders, tg) -> None:
    lines = await _add_lines(two[0], 10)
    workers = [
        NotificationWorker(db, make_group_sender(bot, GROUP, None), per_minute=6000)
        for db, bot in zip(two, senders, strict=True)
    ]
    await asyncio.gather(*(_drain(worker) for worker in workers))
    await asyncio.gather(*(_drain(worker) for worker in workers))  # whatever a race left

    messages = list(sent_texts(tg, GROUP).elements())
    seen = Counter(line for message in messages for line in message.split("\n\n"))
    assert seen == Counter(lines)
    assert sum(worker.sent_messages for worker in workers) == len(messages) == 5
    assert await count(two[1], Notification.sent_at.is_(None)) == 0


async def test_a_dead_workers_group_claim_is_taken_over_once_it_runs_out(two, senders, tg) -> None:
    first, second = two
    (line,) = await _add_lines(first, 1)
    await _claim_as_dead(first, Notification, utcnow() + timedelta(hours=1), 1)
    worker = NotificationWorker(second, make_group_sender(senders[1], GROUP, None))
    assert await worker.drain_once() == 0  # claimed by a live process

    await _claim_as_dead(first, Notification, utcnow() - timedelta(seconds=1), 1)
    assert await worker.drain_once() == 1
    assert await worker.drain_once() == 0
    assert sent_texts(tg, GROUP) == Counter({line: 1})


# --- leases: jobs one process runs at a time ----------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def test_a_job_runs_in_one_process_and_the_other_takes_over_after_expiry(two) -> None:
    """Two schedulers run `otp-poll` every second (the lease: 3 s). Only the holder runs it;
    when the holder stops renewing (it died), the other runs it within one interval of the
    lease running out."""
    clock = FakeClock()
    interval, lease = 1.0, 3.0
    runs: Counter[str] = Counter()
    processes = {
        name: Leases(db, clock=clock) for name, db in zip(("first", "second"), two, strict=True)
    }

    async def tick(name: str) -> None:
        async def job() -> None:
            runs[name] += 1

        await processes[name].run("otp-poll", lease, job)

    for _ in range(10):
        await tick("first")
        await tick("second")
        clock.advance(interval)
    assert runs == {"first": 10}

    died_at = clock.now  # "first" renewed for the last time one interval ago
    for _ in range(10):
        await tick("second")
        if runs["second"]:
            break
        clock.advance(interval)
    assert runs["second"] == 1
    assert clock.now - died_at <= timedelta(seconds=lease)  # lease run out + at most 1 interval
    assert await processes["first"].acquire("otp-poll", lease) is False
    assert await processes["first"].holder_of("otp-poll") == processes["second"].holder


async def test_a_lease_released_at_shutdown_is_taken_at_once(two) -> None:
    clock = FakeClock()
    first, second = (Leases(db, clock=clock) for db in two)
    assert await first.acquire("catalog", 1800)
    assert await first.acquire("otp-poll", 15)
    assert not await second.acquire("catalog", 1800)

    await first.close()  # a clean shutdown, at the same instant
    assert await second.acquire("catalog", 1800)
    assert await second.acquire("otp-poll", 15)
    assert not await first.acquire("otp-poll", 15)  # closed: never taken again
    async with two[0].read() as session:
        holders = set(await session.scalars(select(Lease.holder)))
    assert holders == {second.holder}


async def test_two_processes_racing_for_a_free_lease_get_one_holder(two) -> None:
    for round_ in range(5):
        contenders = [Leases(db) for db in two for _ in range(3)]
        won = await asyncio.gather(*(each.acquire(f"race-{round_}", 60) for each in contenders))
        assert sum(won) == 1, won


# --- catalogs: the holder refreshes, the others load its snapshot -------------------------------


class Catalog:
    def __init__(self, data: str = "{}") -> None:
        self.data = data
        self.loaded: list[str] = []

    def to_json(self) -> str:
        return self.data

    async def load_json(self, data: str | bytes) -> int:
        self.loaded.append(str(data))
        return 1


async def test_the_other_processes_load_the_snapshot_the_holder_saved(two) -> None:
    holder_catalog, other_catalog = Catalog('{"v": 1}'), Catalog()
    holder, other = SnapshotSync(two[0], holder_catalog), SnapshotSync(two[1], other_catalog)
    assert not await other.sync()  # no snapshot yet

    await holder.save()
    assert not await holder.sync()  # its own
    assert await other.sync()
    assert not await other.sync()  # nothing newer
    assert other_catalog.loaded == ['{"v": 1}']

    holder_catalog.data = '{"v": 2}'
    await holder.save()
    assert await other.sync()
    assert other_catalog.loaded == ['{"v": 1}', '{"v": 2}']
    assert holder_catalog.loaded == []


# --- broadcasts ---------------------------------------------------------------------------------


class GatedSender:
    """Counts attempts per chat; holds every send until `gate` opens."""

    def __init__(self) -> None:
        self.attempts: Counter[int] = Counter()
        self.gate = asyncio.Event()

    async def __call__(self, chat_id: int, text: str) -> SendResult:
        self.attempts[chat_id] += 1
        await self.gate.wait()
        return SendResult(SendStatus.SENT)


async def _users(db: Database, count: int) -> list[int]:
    from tests.e2e.test_broadcast import add_users

    return await add_users(db, count, first=1)


async def test_a_broadcast_runs_in_one_process_and_nobody_gets_two_copies(two) -> None:
    first, second = two
    users = await _users(first, 30)
    send = GatedSender()
    services = [BroadcastService(db, send, rate_per_s=1000, concurrency=3) for db in two]
    try:
        view = await services[0].create(admin_id=1, text="hi")
        await services[0].start(view.id)
        await eventually(lambda: sum(send.attempts.values()) >= 3)  # rows are `sending` now
        assert await services[1].resume() == []  # the first process holds it
        send.gate.set()
        await asyncio.wait_for(services[0].wait(view.id), 20)
        assert await services[1].resume() == []  # done: nothing to take over
    finally:
        for service in services:
            await service.stop()
    assert send.attempts == Counter(users)
    assert await count(second, BroadcastDelivery.status != "sent") == 0


async def test_a_dead_processs_broadcast_is_taken_over_and_its_in_flight_row_not_resent(
    two,
) -> None:
    first, second = two
    users = await _users(first, 8)
    send = GatedSender()
    send.gate.set()
    dead = BroadcastService(first, send, rate_per_s=1000, lease_s=60)
    view = await dead.create(admin_id=1, text="hi")  # created, its lease taken, then it died
    async with first.write() as session:  # ...with user 3's message in flight
        await session.execute(
            update(BroadcastDelivery)
            .where(BroadcastDelivery.user_id == 3)
            .values(status="sending")
        )
    other = BroadcastService(second, send, rate_per_s=1000)
    try:
        assert await other.resume() == []  # its lease is still running
        async with first.write() as session:  # ...until it runs out
            await session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
        assert await other.resume() == [view.id]
        await asyncio.wait_for(other.wait(view.id), 20)
    finally:
        await other.stop()
    assert send.attempts == Counter(uid for uid in users if uid != 3)
    final = await other.view(view.id)
    assert (final.status, final.sent, final.failed) == ("done", 7, 1)
