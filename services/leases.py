"""Leases: work that only one bot process may do at a time, when several run on one database.

A lease is a row of the `leases` table: a name (a scheduler job, a broadcast), its holder and
when it expires. `Leases.acquire()` takes it in one write transaction: insert it if absent,
else one conditional `UPDATE ... WHERE name = :name AND (holder = :me OR expires_at < :now)`, so
of several processes exactly one holds it, the holder renews it by acquiring again, and another
process takes it over once it has run out (its holder died). `release()` deletes it, so a
process that stops cleanly hands it over at once. `run()` wraps a job: it runs only where the
lease is held, renewed in the background while the job runs (`heartbeat()`).

Times are the processes' own clocks (UTC): hosts sharing a database must agree on the time to
well within a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, update
from sqlalchemy.exc import SQLAlchemyError

from db.engine import Database
from db.models import Lease, utcnow
from db.upsert import insert_ignore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def new_holder() -> str:
    """Who holds a lease or a claim: host, process id and a random part (two workers in one
    process are two holders), at most 64 characters."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@contextlib.asynccontextmanager
async def heartbeat(
    renew: Callable[[], Awaitable[bool]], every_s: float, what: str
) -> AsyncIterator[None]:
    """Call `renew` every `every_s` seconds while the body runs. A renewal that fails is logged
    and tried again; one that answers False (the lease or claim was taken over) ends it."""

    stop = asyncio.Event()

    async def beat() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
                return
            try:
                if not await renew():
                    log.warning("lease lost while working", extra={"lease": what})
                    return
            except (SQLAlchemyError, OSError) as exc:
                log.warning("lease renewal failed", extra={"lease": what, "error": str(exc)})

    # Stopped by an event, never cancelled: a renewal in flight is a database write, and
    # cutting one short leaves its connection to be torn down by the pool (an error logged).
    task = asyncio.create_task(beat(), name=f"heartbeat-{what}")
    try:
        yield
    finally:
        stop.set()
        await asyncio.shield(task)


class Leases:
    """One process's leases (one holder), in the `leases` table."""

    def __init__(self, db: Database, *, holder: str | None = None, clock: Clock = utcnow) -> None:
        self.db = db
        self.holder = holder or new_holder()
        self.clock = clock
        self._closed = False

    async def acquire(self, name: str, lease_s: float) -> bool:
        """Take or renew `name` for `lease_s` seconds; False while another process holds it."""
        if self._closed:
            return False
        now = self.clock()
        until = now + timedelta(seconds=lease_s)
        async with self.db.write() as session:
            values = {"name": name, "holder": self.holder, "expires_at": until}
            if await insert_ignore(session, Lease, values, keys=["name"]):
                return True
            result = await session.execute(
                update(Lease)
                .where(
                    Lease.name == name, or_(Lease.holder == self.holder, Lease.expires_at < now)
                )
                .values(holder=self.holder, expires_at=until)
            )
            return cast("CursorResult[Any]", result).rowcount == 1

    async def release(self, name: str) -> None:
        """Give `name` up (if this process holds it): another process may take it at once."""
        async with self.db.write() as session:
            await session.execute(
                delete(Lease).where(Lease.name == name, Lease.holder == self.holder)
            )

    async def close(self) -> None:
        """Clean shutdown: every lease this process holds is released and none is taken again
        (a job still finishing cannot renew its lease)."""
        self._closed = True
        async with self.db.write() as session:
            await session.execute(delete(Lease).where(Lease.holder == self.holder))

    async def holder_of(self, name: str) -> str | None:
        """Who holds `name` now (None: nobody, or the lease ran out)."""
        async with self.db.read() as session:
            lease = await session.get(Lease, name)
        if lease is None or lease.expires_at < self.clock():
            return None
        return lease.holder

    async def run(self, name: str, lease_s: float, job: Callable[[], Awaitable[object]]) -> bool:
        """Run `job` if this process holds (takes or renews) the lease `name`, renewing it every
        third of `lease_s` while the job runs. False, and nothing run, when another holds it."""
        if self._closed or not await self.acquire(name, lease_s):
            return False
        async with heartbeat(lambda: self.acquire(name, lease_s), lease_s / 3, name):
            await job()
        return True
