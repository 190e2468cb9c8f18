"""`python -m bot restore <file>`: put a backup in place of the SQLite database, after it has
passed every check, and never while the bot runs.

The file is copied next to the database and checked there: SQLite's integrity check, the
migrations (an older backup is brought up to this version; one from a newer version is refused),
and the ledger audit. Only then is the current database kept aside (a consistent copy, WAL
included: `<db>.before-restore-<time>`) and replaced. Nothing is touched when a check fails."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic.util.exc import CommandError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from db.backup import backup, integrity, sqlite_path
from db.engine import Database
from db.migrate import upgrade
from db.models import Lease
from services.wallet import audit


class RestoreRefused(Exception):
    """Not restored, nothing changed: the reason is the message."""


class BotRunning(RestoreRefused):
    """A bot process holds a lease on the database."""


@dataclass(frozen=True, slots=True)
class Restored:
    database: Path
    kept: Path | None  # the database as it was, if there was one
    users: int  # balances the audit checked


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _running(database: Path, now: datetime) -> str | None:
    """A lease still held: a bot process runs (or was killed less than a lease ago)."""
    db = Database(_url(database))
    try:
        async with db.read() as session:
            held = await session.scalar(
                select(Lease.name).where(Lease.expires_at > now).limit(1)
            )
    except OperationalError:  # no leases table yet: an old or empty database, no bot ran on it
        return None
    finally:
        await db.dispose()
    return held


async def _check(staging: Path) -> int:
    """Migrations, then the audit, on the staged copy: the number of balances checked."""
    db = Database(_url(staging))
    try:
        try:
            await upgrade(db)
        except (CommandError, SQLAlchemyError) as exc:
            raise RestoreRefused(
                f"the backup's migrations cannot be brought to this version ({exc})"
            ) from None
        async with db.read() as session:
            report = await audit(session)
    finally:
        await db.dispose()
    if not report.ok:
        user_id, balance, ledger = report.mismatches[0]
        raise RestoreRefused(
            f"the audit found {len(report.mismatches)} balance(s) that differ from their ledger"
            f" (user {user_id}: balance {balance}, ledger {ledger})"
        )
    return report.users_checked


def _discard(path: Path) -> None:
    for extra in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + extra).unlink(missing_ok=True)


async def restore(database_url: str, source: Path, now: datetime | None = None) -> Restored:
    now = now or datetime.now(UTC)
    try:
        database = sqlite_path(database_url)
    except ValueError as exc:
        raise RestoreRefused(str(exc)) from None
    problem = await asyncio.to_thread(integrity, source)
    if problem is not None:
        raise RestoreRefused(f"{source}: {problem}")
    if database.exists():
        held = await _running(database, now)
        if held is not None:
            raise BotRunning(
                f"the bot is running (it holds the '{held}' lease): stop every bot process"
                " first, then restore"
            )
    staging = database.with_name(database.name + ".restoring")
    await asyncio.to_thread(_discard, staging)
    try:
        await asyncio.to_thread(backup, _url(source), staging)
        users = await _check(staging)
        kept = None
        if database.exists():
            kept = database.with_name(f"{database.name}.before-restore-{now:%Y%m%dT%H%M%SZ}")
            await asyncio.to_thread(backup, database_url, kept)
            await asyncio.to_thread(_discard, database)
        await asyncio.to_thread(staging.replace, database)
    finally:
        await asyncio.to_thread(_discard, staging)
    return Restored(database, kept, users)
