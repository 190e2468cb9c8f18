"""Watching the upstreams for the notification group: low balances (once per crossing) and
bursts of errors (at most once per half hour per provider)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

from sqlalchemy import update

from db.engine import Database
from db.models import ProviderSetting, utcnow
from db.upsert import insert_ignore
from services.auto_switch import AutoSwitch
from services.health import ProviderHealth
from services.money import ceil_micro
from services.notifier import Notifier
from services.providers.base import ProviderBase
from services.providers.errors import ProviderError

log = logging.getLogger(__name__)

BURST_WINDOW_S = 300.0
BURST_MIN_ERRORS = 5
BURST_MIN_RATE = 0.5
BURST_QUIET_S = 1800.0


def in_store_currency(balance: Decimal, rate: Decimal) -> int:
    """A provider's balance (its own currency) in store micro-units."""
    return ceil_micro(balance * rate)


async def check_balances(
    db: Database,
    notifier: Notifier,
    providers: Mapping[str, ProviderBase],
    rates: Mapping[str, Decimal],
    threshold: int,
    switch: AutoSwitch | None = None,
) -> list[str]:
    """Alert when a provider's balance (in store micro-units) is below `threshold`, once per
    crossing: the flag is stored, and cleared when the balance is back above. Each answer also
    goes to automatic switching: a provider it switched off comes back when this succeeds
    (after "no balance": with a balance above zero and not low)."""
    alerted: list[str] = []
    for name, provider in providers.items():
        if getattr(provider, "is_demo", False):
            continue
        try:
            balance = await asyncio.wait_for(provider.balance(), 30)  # type: ignore[attr-defined]
        except (ProviderError, TimeoutError) as exc:
            log.info("balance check failed", extra={"provider": name, "error": str(exc)})
            if switch is not None:
                await switch.balance_failed(name, exc)
            continue
        value = in_store_currency(balance, rates.get(name, Decimal(1)))
        low = value < threshold
        if switch is not None:
            await switch.balance_read(name, enough=value > 0 and not low)
        async with db.write() as session:
            await insert_ignore(
                session,
                ProviderSetting,
                {"name": name, "enabled": True, "balance_low": False, "updated_at": utcnow()},
                keys=["name"],
            )
            # One conditional UPDATE: of two processes seeing the same crossing, one alerts.
            crossed = await session.scalar(
                update(ProviderSetting)
                .where(ProviderSetting.name == name, ProviderSetting.balance_low != low)
                .values(balance_low=low, updated_at=utcnow())
                .returning(ProviderSetting.name)
            )
            if low and crossed is not None:
                await notifier.emit(
                    session, "provider-balance", provider=name, balance=value, threshold=threshold
                )
                alerted.append(name)
    return alerted


class ErrorBurstWatch:
    def __init__(
        self, health: ProviderHealth, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.health = health
        self.clock = clock
        self._last_alert: dict[str, float] = {}

    async def check(self, db: Database, notifier: Notifier, names: list[str]) -> list[str]:
        alerted = []
        now = self.clock()
        for name in names:
            snap = self.health.snapshot(name, BURST_WINDOW_S)
            if snap.errors < BURST_MIN_ERRORS or snap.error_rate < BURST_MIN_RATE:
                continue
            if now - self._last_alert.get(name, -BURST_QUIET_S) < BURST_QUIET_S:
                continue
            self._last_alert[name] = now
            await notifier.emit_now(
                db,
                "provider-errors",
                provider=name,
                errors=snap.errors,
                requests=snap.requests,
                last=snap.last_error or "—",
            )
            alerted.append(name)
        return alerted
