"""The catalogs' snapshots in the database: a restarted bot sells at once, before its first
refresh has reached every provider."""

from __future__ import annotations

import logging
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


async def save_snapshot(db: Database, catalog: Snapshotable, kind: str = OTP) -> None:
    data = catalog.to_json()
    async with db.write() as session:
        await upsert(
            session,
            CatalogSnapshot,
            {"kind": kind, "data": data, "updated_at": utcnow()},
            keys=["kind"],
            update=["data", "updated_at"],
        )


async def load_snapshot(db: Database, catalog: Snapshotable, kind: str = OTP) -> None:
    async with db.read() as session:
        data = await session.scalar(
            select(CatalogSnapshot.data).where(CatalogSnapshot.kind == kind)
        )
    if data:
        loaded = await catalog.load_json(data)
        log.info("catalog snapshot loaded", extra={"kind": kind, "providers": loaded})
