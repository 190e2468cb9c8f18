"""SMM orders: the poller and reconciliation."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import SmmOrder, utcnow
from services.orders import core
from services.providers.base import (
    SmmOrderState,
    SmmOrderStatus,
    SmmProvider,
)
from services.providers.errors import (
    OrderNotFound,
    ProviderError,
)
from services.smm.common import (
    CANCELLED,
    LIVE,
    PLACING,
    REASON_LOST,
    REASON_NOT_SENT,
    REFILL_RUNNING_WORDS,
    UNKNOWN,
    SmmBase,
    _clock_time,
    _progress,
    _trouble,
    refill_state,
)

log = logging.getLogger(__name__)


@dataclass
class _Round:
    """What one status round found, settled after its bookkeeping transaction."""

    finished: list[tuple[SmmOrder, SmmOrderStatus]] = field(default_factory=list)
    lost: list[SmmOrder] = field(default_factory=list)
    given_up: list[tuple[SmmOrder, str, str]] = field(default_factory=list)


class Polling(SmmBase):
    """The scheduler's rounds: statuses in batches, refills, orders left 'placing'."""

    async def poll(self) -> None:
        """One round over every live order, batched per provider; rounds never overlap."""
        if self._busy(self._poll_lock):
            return
        async with self._poll_lock:
            async with self.db.read() as session:
                rows = await session.execute(
                    select(SmmOrder)
                    .where(SmmOrder.status.in_(LIVE), SmmOrder.provider_order_id.is_not(None))
                    .order_by(SmmOrder.checked_at.is_not(None), SmmOrder.checked_at, SmmOrder.id)
                )
                orders = list(rows.scalars())
            by_provider: dict[str, list[SmmOrder]] = defaultdict(list)
            for order in orders:
                by_provider[order.provider].append(order)
            await asyncio.gather(
                *(self._poll_provider(name, group) for name, group in by_provider.items())
            )
            await self._poll_refills()

    def _poll_budget(self, provider: SmmProvider) -> int | None:
        """Ids per round for a rate-limited provider (Toolvico: one id per request)."""
        per_minute = self.rules.rate_limits.get(provider.name)
        if not per_minute:
            return None
        calls = max(1, int(per_minute * self.rules.poll_interval_s / 60))
        return calls * max(1, provider.max_batch)

    async def _poll_provider(self, name: str, orders: list[SmmOrder]) -> None:
        provider = self.providers.get(name)
        if provider is None:
            log.error("smm order of an unconfigured provider", extra={"provider": name})
            return
        budget = self._poll_budget(provider)
        if budget is not None:
            orders = orders[:budget]  # least recently checked first
        by_upstream = {order.provider_order_id or "": order for order in orders}
        try:
            results = await provider.statuses(list(by_upstream))
        except ProviderError as exc:
            log.info("smm status failed", extra={"provider": name, "error": str(exc)})
            return
        round_ = _Round()
        now = self.clock()
        async with self.db.write() as session:
            # One transaction for the round's bookkeeping and progress (start count, remains,
            # pending -> in progress); each final state gets its own, with its refund.
            await session.execute(
                update(SmmOrder)
                .where(SmmOrder.id.in_([o.id for o in orders]))
                .values(checked_at=now)
            )
            for upstream_id, order in by_upstream.items():
                result = results.get(upstream_id)
                await self._sort(session, provider, order, result, round_, now)
        for order, status in round_.finished:
            await self._finish(order, status)
        for order in round_.lost:
            # The demo forgets its orders on a restart: nothing will ever be delivered.
            await self._settle(order.id, LIVE, CANCELLED, refund=None, reason=REASON_LOST)
        for order, detail, word in round_.given_up:
            await self._give_up(order, detail, word)

    async def _sort(
        self,
        session: AsyncSession,
        provider: SmmProvider,
        order: SmmOrder,
        result: SmmOrderStatus | ProviderError | None,
        round_: _Round,
        now: datetime,
    ) -> None:
        """One order's answer: progress written now; a final state, a lost demo order or an
        order given up on kept for its own transaction after the round's."""
        trouble = _trouble(result)
        if trouble is not None:
            if isinstance(result, OrderNotFound) and provider.is_demo:
                round_.lost.append(order)
            elif await self._note_trouble(session, order, trouble, now):
                round_.given_up.append((order, *trouble))
            return
        if not isinstance(result, SmmOrderStatus):
            log.info(
                "smm status of one order failed",
                extra={"smm_order_id": order.id, "error": type(result).__name__},
            )
            return
        if order.trouble_since is not None:
            await self._write_progress(session, order.id, {"trouble_since": None, "trouble": None})
        if result.state not in (SmmOrderState.PENDING, SmmOrderState.IN_PROGRESS):
            round_.finished.append((order, result))
        elif (changes := _progress(order, result)) is not None:
            await self._write_progress(session, order.id, changes)

    async def _note_trouble(
        self, session: Any, order: SmmOrder, trouble: tuple[str, str], now: datetime
    ) -> bool:
        """The panel cannot show this order properly. True once the grace period is over."""
        if order.trouble_since is None:
            log.warning(
                "smm order unreadable upstream",
                extra={"smm_order_id": order.id, "trouble": trouble[0], "word": trouble[1]},
            )
            await self._write_progress(
                session, order.id, {"trouble_since": now, "trouble": ":".join(trouble)[:128]}
            )
            return False
        return (now - order.trouble_since).total_seconds() >= self.rules.trouble_grace_s

    async def _give_up(self, order: SmmOrder, detail: str, word: str) -> None:
        """Still unreadable after the grace period: 'unknown', and the admins are told once;
        an admin resolves it (/refund, or /adopt to follow it again)."""
        async with self.db.write() as session:
            moved = await core.move(
                session,
                "smm",
                order.id,
                LIVE,
                UNKNOWN,
                now=self.clock(),
                values={"alerted_at": self.clock()},
                where=[SmmOrder.alerted_at.is_(None)],
            )
            if moved is None:
                return
            await self.notifier.emit(
                session,
                "unknown-order",
                order=f"smm:{order.id}",
                provider=order.provider,
                tried="smm-trouble",
                since=_clock_time(order.trouble_since),
                detail=detail,
                word=word,
            )
        log.error(
            "smm order unreadable upstream past the grace period: an admin must resolve it",
            extra={"smm_order_id": order.id, "trouble": detail, "word": word},
        )

    async def _poll_refills(self) -> None:
        async with self.db.read() as session:
            rows = await session.execute(
                select(SmmOrder)
                .where(SmmOrder.refill_id.is_not(None))
                .where(
                    SmmOrder.refill_status.is_(None)
                    | SmmOrder.refill_status.in_(REFILL_RUNNING_WORDS)
                )
                .order_by(SmmOrder.updated_at)
                .limit(self.rules.refill_checks_per_round)
            )
            orders = list(rows.scalars())
        for order in orders:
            provider = self.providers.get(order.provider)
            if provider is None or not provider.supports_refill:
                continue
            try:
                word = await provider.refill_status(order.refill_id or "")
            except OrderNotFound:
                word = "not found"
            except ProviderError as exc:
                log.info(
                    "refill status failed", extra={"smm_order_id": order.id, "error": str(exc)}
                )
                continue
            word = " ".join(word.lower().replace("_", " ").split())[:32]
            async with self.db.write() as session:
                result = await session.execute(
                    update(SmmOrder)
                    .where(SmmOrder.id == order.id, SmmOrder.refill_id == order.refill_id)
                    .values(refill_status=word, updated_at=self.clock())
                    .returning(SmmOrder.id)
                )
                if result.first() is not None and refill_state(word) == "other":
                    await self.notifier.emit(
                        session,
                        "refill-unknown",
                        order=f"smm:{order.id}",
                        provider=order.provider,
                        word=word,
                    )
            if refill_state(word) == "other":
                log.warning(
                    "refill status word not known: taken as final",
                    extra={"smm_order_id": order.id, "word": word},
                )

    async def reconcile(self) -> None:
        """Orders left 'placing' (a crash): never sent -> refunded; maybe sent -> 'unknown'."""
        if self._busy(self._reconcile_lock):
            return
        async with self._reconcile_lock:
            await self._reconcile()

    async def _reconcile(self) -> None:
        horizon = self.clock() - timedelta(seconds=self.rules.reconcile_grace_s)
        async with self.db.read() as session:
            rows = await session.execute(
                select(SmmOrder).where(
                    SmmOrder.status == PLACING,
                    SmmOrder.updated_at <= horizon,
                    core.unclaimed(SmmOrder, utcnow()),  # not an `add` in flight anywhere
                )
            )
            stale = list(rows.scalars())
        for order in stale:
            if order.submitted_at is None:
                await self._fail(order.id, REASON_NOT_SENT, notify=True)
            else:
                await self._mark_unknown(order.id, "the bot stopped while the order was sent")
