"""The chaos run's bot processes (tests/chaos.py): `python -m bot` as an operator starts it, one
long-polling process, or several replicas serving one webhook.

Replicas (`replicas` > 1): each process has a WEBHOOK_LISTEN of its own on 127.0.0.1, the same
WEBHOOK_SECRET, the same PostgreSQL database and the same Redis (conversation state), and
WEBHOOK_URL is a round-robin forwarder in front of them (tests/fakes/forwarder.py), so a user's
consecutive updates land on different processes. A kill SIGKILLs one replica (the others go on
serving) and starts it again on the same port; the forwarder skips it until it serves again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from db.engine import Database
from services.catalog_store import OTP, SMM, snapshot_time
from tests.e2e.test_process import BotProcess, start_process
from tests.fakes.forwarder import RoundRobinForwarder
from tests.fakes.telegram import FakeTelegram

START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 60
WEBHOOK_SECRET = "chaos-webhook-secret_0123456789"
SERVING = '"msg": "serving the webhook"'


@dataclass
class Replica:
    index: int
    env: dict[str, str]
    port: int = 0  # webhook mode: its WEBHOOK_LISTEN port
    process: BotProcess | None = None
    starts: int = 0


@dataclass
class BotFleet:
    """Starts, kills, restarts and stops the bot's processes; `logs` are all of their logs,
    `kill_times` when each SIGKILL was sent (time.monotonic(), the fakes' clock)."""

    tg: FakeTelegram
    workdir: Path
    env: dict[str, str]  # every process's (the webhook settings are added per replica)
    replicas: int = 1
    logs: list[Path] = field(default_factory=list)
    kill_times: list[float] = field(default_factory=list)
    forwarder: RoundRobinForwarder | None = None
    members: list[Replica] = field(default_factory=list)

    @property
    def webhook(self) -> bool:
        return self.replicas > 1

    async def start(self, first_ready: Callable[[], Awaitable[None]] | None = None) -> None:
        """Every process, serving. Replicas: the first one alone, then `first_ready()` (the
        catalogs it fetched are in the database for the others to load), then the rest."""
        if not self.webhook:
            self.members = [Replica(0, self.env)]
            await self._start(self.members[0])
            return
        self.forwarder = await RoundRobinForwarder().start()
        for index in range(self.replicas):
            port = _free_port()
            self.forwarder.add(f"http://127.0.0.1:{port}")
            env = dict(
                self.env,
                WEBHOOK_URL=self.forwarder.url,
                WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                WEBHOOK_SECRET=WEBHOOK_SECRET,
            )
            self.members.append(Replica(index, env, port))
        await self._start(self.members[0])
        if first_ready is not None:
            await first_ready()
        await asyncio.gather(*(self._start(member) for member in self.members[1:]))

    async def kill(self, rng: random.Random) -> int:
        """SIGKILL one process (replicas: one drawn by `rng`); its index."""
        member = self.members[rng.randrange(len(self.members)) if self.webhook else 0]
        process = member.process
        assert process is not None and process.returncode is None, "killing a dead process"
        self.kill_times.append(time.monotonic())
        process.send_signal(signal.SIGKILL)
        await process.communicate()
        if self.forwarder is not None:
            self.forwarder.down(member.index)
        return member.index

    async def restart(self, index: int) -> None:
        await self._start(self.members[index])

    async def stop(self) -> list[str]:
        """SIGTERM every process at once; what went wrong (each must exit 0). The forwarder
        closes last."""
        try:
            results = await asyncio.gather(*(_terminate(m) for m in self.members))
        finally:
            if self.forwarder is not None:
                await self.forwarder.close()
        return [problem for problem in results if problem]

    def handled(self) -> dict[int, int]:
        """Replicas: the updates each one took (a 2xx answer through the forwarder)."""
        if self.forwarder is None:
            return {}
        return {m.index: self.forwarder.answered[m.index] for m in self.members}

    # --- one process ------------------------------------------------------------------------

    async def _start(self, member: Replica) -> None:
        before = self.tg.get_updates_calls
        hooks = len(self._set_webhooks())
        process = await start_process(member.env, self.workdir)
        member.process = process
        member.starts += 1
        self.logs.append(process.log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not await self._serving(member, before, hooks):
            if process.returncode is not None or time.monotonic() > deadline:
                tail = process.log_path.read_text(errors="replace")[-3000:]
                name = f"replica {member.index}" if self.webhook else "the bot"
                raise RuntimeError(f"{name} did not start (rc {process.returncode}):\n{tail}")
            await asyncio.sleep(0.05)
        if self.forwarder is not None:
            self.forwarder.up(member.index)

    async def _serving(self, member: Replica, get_updates_before: int, hooks_before: int) -> bool:
        """Polling: it asked for updates. Webhook: it logged that it serves, its port takes a
        connection, and Telegram saw a setWebhook since it started."""
        if not self.webhook:
            return self.tg.get_updates_calls > get_updates_before
        assert member.process is not None
        if SERVING not in member.process.log_path.read_text(errors="replace"):
            return False
        if len(self._set_webhooks()) <= hooks_before:
            return False
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", member.port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def _set_webhooks(self) -> list[object]:
        return [call for call in self.tg.calls_of("setWebhook") if call.error is None]


async def _terminate(member: Replica) -> str | None:
    process = member.process
    if process is None or process.returncode is not None:
        return None
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.communicate(), STOP_TIMEOUT_S)
    except TimeoutError:
        process.send_signal(signal.SIGKILL)
        await process.communicate()
    if process.returncode != 0:
        return f"process {member.index} did not stop cleanly: rc {process.returncode}"
    return None


async def catalogs_saved(database_url: str) -> None:
    """Replicas: the first one has fetched both catalogs and saved their snapshots, which the
    others load as they start (later they follow them every CATALOG_REFRESH_S)."""
    db = Database(database_url)
    try:
        deadline = time.monotonic() + 60
        while not (await snapshot_time(db, OTP) and await snapshot_time(db, SMM)):
            if time.monotonic() > deadline:
                raise RuntimeError("the first replica never saved its catalogs")
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Logged:
    handler_errors: list[str] = field(default_factory=list)  # the catch-all handler's
    errors: list[str] = field(default_factory=list)  # every other error, unless expected
    alerts: Counter[str] = field(default_factory=Counter)  # the expected ones, by kind


def _expected(record: dict) -> str | None:
    """An error the faults call for: what kind, or None. The admins are told of an SMM order
    whose outcome is unknown (panels have no order list), and of an OTP purchase still unknown
    after RECONCILE_GRACE_S when the order list read failed (an injected fault): the bot tells
    them once, and goes on reconciling it."""
    msg = str(record.get("msg"))
    if msg.startswith("smm order outcome unknown"):
        return "smm order unknown"
    if msg.startswith("purchase outcome unknown") and record.get("tried") == "list-unavailable":
        return "otp order unknown, order list unavailable"
    return None


def read_logs(paths: list[Path]) -> Logged:
    """What these bot logs hold at ERROR and above."""
    logged = Logged()
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                logged.errors.append(line[:200])  # printed around the logging
                continue
            exc = (record.get("exc") or "").strip()
            last = exc.splitlines()[-1][:200] if exc else ""
            if record.get("msg") == "unhandled error in a handler":
                logged.handler_errors.append(last)
            elif record.get("level") not in ("ERROR", "CRITICAL"):
                continue
            elif kind := _expected(record):
                logged.alerts[kind] += 1
            else:
                logged.errors.append(f"{record.get('msg')} {last}"[:200])
    return logged


async def delete_redis_keys(url: str, bot_id: int) -> int:
    """Remove the run's conversation state (`fsm:<bot id>:*`); how many keys there were."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        found = [key async for key in client.scan_iter(match=f"fsm:{bot_id}:*")]
        if found:
            await client.delete(*found)
        return len(found)
    finally:
        await client.aclose()
