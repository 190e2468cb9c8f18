"""Shop-wide switches an admin sets at run time, kept as rows (`shop_flags`) so every process
sees them: each process reads a flag at most once per `ttl_s` (one poll interval), and at once
after its own change.

`maintenance`: while on, customers get its text (or the default one, for an empty text)
instead of new purchases; open orders go on as usual."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import delete, select

from db.engine import Database
from db.models import ShopFlag, utcnow
from db.upsert import upsert

MAINTENANCE = "maintenance"
MAX_TEXT = 1000  # characters of a maintenance text


class ShopState:
    def __init__(
        self, db: Database, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.clock = clock
        self._flags: dict[str, str | None] = {}
        self._read_at: float | None = None

    async def _fresh(self) -> dict[str, str | None]:
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.ttl_s:
            async with self.db.read() as session:
                rows = (await session.execute(select(ShopFlag.name, ShopFlag.value))).all()
            self._flags = {name: value for name, value in rows}
            self._read_at = now
        return self._flags

    async def maintenance(self) -> str | None:
        """None when the shop is open; else the text for customers ("" = the default one)."""
        flags = await self._fresh()
        if MAINTENANCE not in flags:
            return None
        return flags[MAINTENANCE] or ""

    async def set_maintenance(self, text: str | None, admin_id: int) -> None:
        """On with `text` ("" for the default one), or off with None."""
        async with self.db.write() as session:
            if text is None:
                await session.execute(delete(ShopFlag).where(ShopFlag.name == MAINTENANCE))
            else:
                values = {
                    "name": MAINTENANCE,
                    "value": text[:MAX_TEXT],
                    "admin_id": admin_id,
                    "updated_at": utcnow(),
                }
                await upsert(
                    session,
                    ShopFlag,
                    values,
                    keys=["name"],
                    update=["value", "admin_id", "updated_at"],
                )
        self._read_at = None
