"""Switching a provider off and on (services/admin.py set_provider_enabled) from two processes
at once, on a provider that has no settings row yet: one statement each, so neither fails on the
other's insert, and the row ends as the last switch left it (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

from db.engine import Database
from db.migrate import upgrade
from db.models import ProviderSetting
from services.admin import set_provider_enabled


async def test_two_processes_switching_a_new_provider_at_once_never_collide(
    database_url: str,
) -> None:
    first, second = Database(database_url), Database(database_url)
    await upgrade(first)
    try:
        switches = [
            set_provider_enabled(db, f"hero{n % 3}", n % 2 == 0)
            for n in range(12)
            for db in (first, second)
        ]
        await asyncio.gather(*switches)
        await set_provider_enabled(second, "hero0", False)
        async with first.read() as session:
            row = await session.get(ProviderSetting, "hero0")
            assert row is not None and row.enabled is False and row.balance_low is False
            assert await session.get(ProviderSetting, "hero1") is not None
    finally:
        await first.dispose()
        await second.dispose()
