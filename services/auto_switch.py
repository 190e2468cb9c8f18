"""Automatic provider switching: a provider that answers "no balance" to a buy (each protocol's
word for it becomes services.providers.errors.ProviderBalanceLow), or that fails `failures` of
its last `window` calls (buys, price lists, balance checks, as this process saw them), stops
selling; the notification group is told why. It comes back by itself when a balance check finds
money again (after "no balance": at least the low-balance threshold) or, after failures, when a
balance check or a price list succeeds (a probe); that is announced too.

The switch is a row (`provider_settings.auto_off_reason`, next to the admin's `enabled`), so
every process agrees: a provider sells only when the admin's switch is on and no automatic
reason is set. An admin's `/provider x off` is never undone here (a comeback only clears the
reason), and `/provider x on` clears an automatic off (services/admin.py). Of several processes
seeing the same trouble, one conditional UPDATE decides who switches it and announces it.
After a commit that changed a switch, SWITCHES wakes this process's console (services/console.py)
so its catalogs stop (or start) selling at once; the other processes see it at their next sync.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping

from sqlalchemy import select, update

from db.engine import Database, after_commit
from db.models import ProviderSetting, utcnow
from db.upsert import insert_ignore
from services.notifier import Notifier
from services.providers.errors import (
    AuthError,
    BadResponse,
    OutcomeUnknown,
    ProviderBalanceLow,
    Unavailable,
)

log = logging.getLogger(__name__)

NO_BALANCE = "no-balance"
FAILURES = "failures"
SWITCHES = "provider-switches"  # the after-commit topic: a provider's automatic switch moved
# What counts as the provider failing (a refusal such as "no numbers" or a bad request is an
# answer, not a failure). Anything else a price-list fetch raises counts too (see probe()).
FAILING = (Unavailable, BadResponse, OutcomeUnknown, AuthError, TimeoutError)


def is_failure(exc: BaseException) -> bool:
    return isinstance(exc, FAILING)


class AutoSwitch:
    def __init__(
        self,
        db: Database,
        notifier: Notifier | None = None,
        *,
        failures: int = 0,
        window: int = 0,
    ) -> None:
        self.db = db
        self.notifier = notifier or Notifier()
        # 0 in either, or more failures than calls: the count never switches anything off.
        self.failures = failures if 0 < failures <= window else 0
        self.window = window
        self._calls: defaultdict[str, deque[bool]] = defaultdict(
            lambda: deque(maxlen=max(1, window))
        )
        self.switched: list[tuple[str, str]] = []  # (provider, reason) this process switched

    # --- what the services report ----------------------------------------------------------

    async def observe(self, name: str, error: BaseException | None) -> None:
        """One call's outcome (a buy, an SMM order): None = answered."""
        if isinstance(error, ProviderBalanceLow):
            await self.switch_off(name, NO_BALANCE, f"{type(error).__name__}: {error}")
            return
        await self._count(name, error if error is not None and is_failure(error) else None)

    async def probe(self, name: str, error: str | None) -> None:
        """A price-list fetch (`error`: why it failed, None = it answered): a success brings
        back a provider switched off for failures; any failure of it counts as one."""
        if error is None:
            self._calls[name].append(False)
            await self.switch_on(name, (FAILURES,))
            return
        await self._count(name, error)

    async def balance_read(self, name: str, enough: bool) -> None:
        """A balance check answered: it brings back a provider switched off for failures, and
        one switched off for its balance when `enough` (above zero and not low)."""
        self._calls[name].append(False)
        await self.switch_on(name, (FAILURES, NO_BALANCE) if enough else (FAILURES,))

    async def balance_failed(self, name: str, error: BaseException) -> None:
        await self._count(name, error if is_failure(error) else None)

    async def _count(self, name: str, failure: BaseException | str | None) -> None:
        calls = self._calls[name]
        calls.append(failure is not None)
        if failure is None or not self.failures:
            return
        failed = sum(calls)
        if failed >= self.failures:
            what = failure if isinstance(failure, str) else f"{type(failure).__name__}: {failure}"
            await self.switch_off(name, FAILURES, f"{failed}/{len(calls)}, last: {what}")

    # --- the row ----------------------------------------------------------------------------

    async def switch_off(self, name: str, reason: str, detail: str = "") -> bool:
        """Stop selling from `name` unless an admin switched it off already or it is off for
        another reason; True when this call switched it (and told the group)."""
        now = utcnow()
        async with self.db.write() as session:
            await insert_ignore(
                session,
                ProviderSetting,
                {"name": name, "enabled": True, "balance_low": False, "updated_at": now},
                keys=["name"],
            )
            switched = await session.scalar(
                update(ProviderSetting)
                .where(
                    ProviderSetting.name == name,
                    ProviderSetting.enabled.is_(True),
                    ProviderSetting.auto_off_reason.is_(None),
                )
                .values(
                    auto_off_reason=reason,
                    auto_off_at=now,
                    auto_off_detail=detail[:200] or None,
                    updated_at=now,
                )
                .returning(ProviderSetting.name)
            )
            if switched is None:
                return False
            await self.notifier.emit(
                session, "provider-auto-off", provider=name, why=reason, detail=detail[:200]
            )
            after_commit(session, SWITCHES)
        self._calls[name].clear()
        self.switched.append((name, reason))
        log.warning(
            "provider switched off automatically",
            extra={"provider": name, "reason": reason, "detail": detail},
        )
        return True

    async def switch_on(self, name: str, reasons: Iterable[str]) -> bool:
        """Clear an automatic off whose reason is among `reasons`; announced when the
        provider sells again (an admin's own off stays). True when this call cleared it."""
        reasons = tuple(reasons)
        async with self.db.read() as session:
            seen = await session.scalar(
                select(ProviderSetting.auto_off_reason).where(ProviderSetting.name == name)
            )
        if seen is None or seen not in reasons:
            return False  # the usual case: nothing to do, and no write
        async with self.db.write() as session:
            enabled = await session.scalar(
                update(ProviderSetting)
                .where(ProviderSetting.name == name, ProviderSetting.auto_off_reason == seen)
                .values(auto_off_reason=None, auto_off_at=None, auto_off_detail=None)
                .returning(ProviderSetting.enabled)
            )
            if enabled is None:
                return False  # another process was first
            if enabled:
                await self.notifier.emit(session, "provider-auto-on", provider=name, why=seen)
            after_commit(session, SWITCHES)
        self._calls[name].clear()
        log.info("provider back automatically", extra={"provider": name, "reason": seen})
        return True

    async def auto_off(self) -> dict[str, str]:
        """Every provider switched off automatically now, with its reason."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(ProviderSetting.name, ProviderSetting.auto_off_reason).where(
                    ProviderSetting.auto_off_reason.is_not(None)
                )
            )
            return {name: reason or "" for name, reason in rows}


async def probe_all(
    switch: AutoSwitch | None, ok: Iterable[str], failed: Mapping[str, str]
) -> None:
    """A catalog refresh's per-provider outcomes, as probes. Never fails the refresh."""
    if switch is None:
        return
    outcomes = [(name, None) for name in ok] + list(failed.items())
    for name, error in outcomes:
        try:
            await switch.probe(name, error)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("automatic switch failed", extra={"provider": name})
