"""The catalogs' snapshots in the database: a restarted bot sells at once, before its first
refresh has reached every provider; and with several bot processes on one database, the one
that refreshes a catalog shares it with the others through its snapshot (`SnapshotSync`)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy import select

from db.engine import Database
from db.models import CatalogSnapshot, utcnow
from db.upsert import upsert

log = logging.getLogger(__name__)
OTP = "otp"
SMM = "smm"


class Snapshotable(Protocol):
    def to_json(self) -> str: ...

    async def load_json(self, data: str | bytes) -> int: ...


async def save_snapshot(db: Database, catalog: Snapshotable, kind: str = OTP) -> datetime:
    """Write the catalog's snapshot; returns its time (`updated_at`)."""
    data = catalog.to_json()
    now = utcnow()
    async with db.write() as session:
        await upsert(
            session,
            CatalogSnapshot,
            {"kind": kind, "data": data, "updated_at": now},
            keys=["kind"],
            update=["data", "updated_at"],
        )
    return now


async def load_snapshot(db: Database, catalog: Snapshotable, kind: str = OTP) -> datetime | None:
    """Load the catalog's snapshot, if there is one; returns its time (`updated_at`)."""
    async with db.read() as session:
        row = (
            await session.execute(
                select(CatalogSnapshot.data, CatalogSnapshot.updated_at).where(
                    CatalogSnapshot.kind == kind
                )
            )
        ).first()
    if row is None:
        return None
    data, updated_at = row
    if data:
        loaded = await catalog.load_json(data)
        log.info("catalog snapshot loaded", extra={"kind": kind, "providers": loaded})
    return updated_at


async def snapshot_time(db: Database, kind: str = OTP) -> datetime | None:
    async with db.read() as session:
        return await session.scalar(
            select(CatalogSnapshot.updated_at).where(CatalogSnapshot.kind == kind)
        )


class SnapshotSync:
    """One catalog shared by several processes: the process holding the catalog's lease
    refreshes it from the upstreams and `save()`s the snapshot; every process `sync()`s, which
    loads the snapshot when another process saved a newer one than this process last saved or
    loaded (a cheap read of its time otherwise), so all of them sell at the same prices."""

    def __init__(self, db: Database, catalog: Snapshotable, kind: str = OTP) -> None:
        self.db = db
        self.catalog = catalog
        self.kind = kind
        self.seen: datetime | None = None  # the snapshot this process last saved or loaded

    async def save(self) -> None:
        self.seen = await save_snapshot(self.db, self.catalog, self.kind)

    async def sync(self) -> bool:
        """Load the snapshot if it is newer than the one seen; True when it was loaded."""
        updated_at = await snapshot_time(self.db, self.kind)
        if updated_at is None or (self.seen is not None and updated_at <= self.seen):
            return False
        self.seen = await load_snapshot(self.db, self.catalog, self.kind)
        return True
