"""The catalog's snapshot in the database: a restarted bot sells at once, before its first
refresh has reached every provider."""

from __future__ import annotations

import logging

from sqlalchemy import select

from db.engine import Database
from db.models import CatalogSnapshot, utcnow
from services.catalog import OtpCatalog

log = logging.getLogger(__name__)
OTP = "otp"


async def save_snapshot(db: Database, catalog: OtpCatalog) -> None:
    data = catalog.to_json()
    async with db.write() as session:
        row = await session.get(CatalogSnapshot, OTP)
        if row is None:
            session.add(CatalogSnapshot(kind=OTP, data=data, updated_at=utcnow()))
        else:
            row.data, row.updated_at = data, utcnow()


async def load_snapshot(db: Database, catalog: OtpCatalog) -> None:
    async with db.read() as session:
        data = await session.scalar(
            select(CatalogSnapshot.data).where(CatalogSnapshot.kind == OTP)
        )
    if data:
        loaded = await catalog.load_json(data)
        log.info("catalog snapshot loaded", extra={"providers": loaded})
