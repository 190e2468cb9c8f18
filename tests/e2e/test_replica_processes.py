"""Two whole bots on one database: two Apps' schedulers in this process, and two `python -m bot`
processes. Each scheduled job runs in one of them, a bot that stops cleanly hands its jobs over,
and every outbox message and group line is sent once."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select

from bot.app import App, build_app, on_shutdown, schedule_jobs, stop_background
from db.engine import Database
from db.migrate import upgrade
from db.models import Lease, Notification, OutboxMessage, utcnow
from services.outbox import enqueue
from tests.conftest import PG_ONLY, eventually, make_settings
from tests.e2e.test_process import BotProcess, bot_env, start_process
from tests.fakes.telegram import FakeTelegram

GROUP = -100_777
JOBS = ("catalog", "otp-poll", "otp-reconcile", "smm-poll", "smm-reconcile")


def _count_runs(app: App, runs: dict[str, Counter[int]], index: int) -> None:
    """Wrap what each job calls (before schedule_jobs picks it up), counting runs per bot."""

    def counted(job: str, call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            runs[job][index] += 1
            return await call()

        return run

    app.catalog.refresh = counted("catalog", app.catalog.refresh)
    app.otp.poll = counted("otp-poll", app.otp.poll)
    app.otp.reconcile = counted("otp-reconcile", app.otp.reconcile)
    app.smm.poll = counted("smm-poll", app.smm.poll)
    app.smm.reconcile = counted("smm-reconcile", app.smm.reconcile)


async def _stop(app: App) -> None:
    await stop_background(app)
    await on_shutdown(app)
    await app.bot.session.close()


async def test_two_schedulers_run_each_job_in_one_bot_and_hand_over_at_shutdown(
    tg, tmp_path, database_url
) -> None:
    settings = make_settings(tg, tmp_path, database_url=database_url, poll_interval_s=1.0)
    apps = [build_app(settings), build_app(settings)]
    await upgrade(apps[0].db)
    runs: dict[str, Counter[int]] = {job: Counter() for job in JOBS}
    stopped: list[App] = []
    try:
        for index, app in enumerate(apps):
            _count_runs(app, runs, index)
            schedule_jobs(app)
            app.scheduler.start()
        await eventually(lambda: all(sum(runs[job].values()) for job in JOBS), 30)
        await eventually(lambda: sum(runs["otp-poll"].values()) >= 4, 30)
        for job in JOBS:
            assert len(runs[job]) == 1, (job, runs[job])  # one bot ran it, the other never

        (holder,) = runs["otp-poll"]
        other = 1 - holder
        stopped.append(apps[holder])
        await _stop(apps[holder])  # releases its leases
        await eventually(lambda: runs["otp-poll"][other] > 0, 10)
        assert await apps[other].leases.holder_of("otp-poll") == apps[other].leases.holder
    finally:
        for app in apps:
            if app not in stopped:
                await _stop(app)


# --- two real processes ------------------------------------------------------------------------


async def _started(process: BotProcess) -> bool:
    return '"msg": "bot started"' in process.log_path.read_text(errors="replace")


async def _pid_holding(db: Database, name: str) -> int | None:
    async with db.read() as session:
        lease = await session.get(Lease, name)
    if lease is None or lease.expires_at < utcnow():
        return None
    return int(lease.holder.split(":")[-2])


async def _pending(db: Database) -> int:
    async with db.read() as session:
        outbox = await session.scalar(select(func.count()).where(OutboxMessage.sent_at.is_(None)))
        lines = await session.scalar(select(func.count()).where(Notification.sent_at.is_(None)))
    return (outbox or 0) + (lines or 0)


def _accepted(tg: FakeTelegram) -> list[tuple[int, str]]:
    return [
        (int(call.params["chat_id"]), call.params["text"])
        for call in tg.calls_of("sendMessage")
        if call.error is None
    ]


async def _enqueue(db: Database) -> tuple[list[str], list[str]]:
    texts = [f"replica message {n}" for n in range(20)]
    lines = [f"replica line {n}" for n in range(6)]
    async with db.write() as session:
        for n, text in enumerate(texts):
            await enqueue(session, 800_001 + n % 4, text, "test")
        for line in lines:
            session.add(Notification(kind="test", text=line, created_at=utcnow()))
    return texts, lines


# Several processes are a PostgreSQL deployment (docs/deployment.md); two on one SQLite file
# fight over its write lock.
@PG_ONLY
async def test_two_bot_processes_send_everything_once_and_hand_jobs_over(
    tg, tmp_path, database_url
) -> None:
    env = bot_env(
        tg,
        tmp_path,
        database_url,
        NOTIFY_CHAT_ID=str(GROUP),
        OUTBOX_INTERVAL_S="0.2",
        POLL_INTERVAL_S="0.5",
    )
    processes = [await start_process(env, tmp_path) for _ in range(2)]
    pids = {process.process.pid: process for process in processes}
    db = Database(env["DATABASE_URL"])
    logs: list[str] = []
    try:
        for process in processes:
            await eventually(lambda process=process: _started(process), 60)
        texts, lines = await _enqueue(db)
        await eventually(lambda: _is_zero(_pending(db)), 30)
        await tg.settle()
        sent = Counter(_accepted(tg))
        assert Counter(text for (chat, text) in sent.elements() if text in texts) == Counter(texts)
        group = "\n\n".join(text for (chat, text) in sent.elements() if chat == GROUP)
        assert Counter(part for part in group.split("\n\n") if part in lines) == Counter(lines)

        holder = await eventually(lambda: _pid_holding(db, "otp-poll"), 10)
        assert holder in pids
        first = pids.pop(holder)
        first.send_signal(signal.SIGTERM)
        logs.append((await asyncio.wait_for(first.communicate(), 30))[1].decode())
        assert first.returncode == 0, logs[-1][-2000:]
        (other,) = pids  # released at shutdown: the other bot takes it at its next run
        await eventually(lambda: _is(_pid_holding(db, "otp-poll"), other), 10)
    finally:
        for process in pids.values():
            process.send_signal(signal.SIGTERM)
            logs.append((await asyncio.wait_for(process.communicate(), 30))[1].decode())
        await db.dispose()
    for log in logs:
        assert "Traceback" not in log, log[-2000:]
        assert '"msg": "bot stopped"' in log


async def _is_zero(value: Awaitable[int]) -> bool:
    return await value == 0


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected
