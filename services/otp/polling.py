"""OTP activations: the poller (one list request per provider where the protocol has one)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select

from db.models import Activation
from services.orders.errors import (
    TryLater,
)
from services.otp.common import (
    ACTIVE,
    EXPIRED,
    FINISHED,
    REASON_TIMEOUT,
    RECEIVED,
    WAITING,
    OtpBase,
    _new_code,
)
from services.providers.base import (
    OtpProvider,
    OtpState,
    OtpStatus,
)
from services.providers.errors import (
    InvalidState,
    OrderNotFound,
    ProviderError,
)

log = logging.getLogger(__name__)


class Polling(OtpBase):
    """The scheduler's rounds: codes, deadlines and the cards' time left."""

    async def poll(self) -> None:
        """One round over every active activation; runs never overlap."""
        if self._busy(self._poll_lock):
            return
        async with self._poll_lock:
            async with self.db.read() as session:
                rows = await session.execute(
                    select(Activation)
                    .where(Activation.status.in_(ACTIVE))
                    .order_by(Activation.created_at.desc())
                )
                activations = list(rows.scalars())
            by_provider: dict[str, list[Activation]] = defaultdict(list)
            for activation in activations:
                by_provider[activation.provider or ""].append(activation)
            await asyncio.gather(
                *(self._poll_provider(name, group) for name, group in by_provider.items())
            )

    def _poll_budget(self, provider: str) -> int | None:
        per_minute = self.rules.rate_limits.get(provider)
        if not per_minute:
            return None
        return max(1, int(per_minute * self.rules.poll_interval_s / 60))

    async def _poll_provider(self, name: str, activations: list[Activation]) -> None:
        provider = self.providers.get(name)
        if provider is None:
            log.error("activation of an unconfigured provider", extra={"provider": name})
            return
        now = self.clock()
        due = [a for a in activations if a.expires_at is not None and now >= a.expires_at]
        live = [a for a in activations if a not in due]
        listed = await self._listed_statuses(provider) if live else {}
        from_list = [a for a in live if a.provider_order_id in listed]
        single = [a for a in live if a.provider_order_id not in listed]
        budget = self._poll_budget(name)
        if budget is not None:
            # Youngest first: they are the ones waiting for a code.
            single = single[: max(0, budget - (1 if provider.supports_order_list else 0))]
        semaphore = asyncio.Semaphore(16)

        async def one(activation: Activation) -> None:
            async with semaphore:
                await self._poll_one(provider, activation)

        await asyncio.gather(
            *(self._expire(a) for a in due),
            *(
                self.apply_status(a, listed[a.provider_order_id or ""], polled=True)
                for a in from_list
            ),
            *(one(a) for a in single),
        )
        # Only what is still waiting after this round: a card that just showed its code must
        # not be re-rendered from the row loaded before the code arrived.
        await self._refresh_stale_cards(await self._still_waiting([a.id for a in live]))

    async def _still_waiting(self, ids: list[int]) -> list[Activation]:
        if not ids:
            return []
        async with self.db.read() as session:
            rows = await session.execute(
                select(Activation).where(Activation.id.in_(ids), Activation.status == WAITING)
            )
            return list(rows.scalars())

    async def _listed_statuses(self, provider: OtpProvider) -> dict[str, OtpStatus]:
        """One list call instead of one status call per order, where the protocol has a list.
        Orders missing from it (ended, or beyond its pages) are asked one by one."""
        if not provider.supports_order_list:
            return {}
        try:
            orders = await provider.active_orders()
        except ProviderError as exc:
            log.info("order list failed", extra={"provider": provider.name, "error": str(exc)})
            return {}
        return {o.order_id: o.status for o in orders if o.status is not None}

    async def _poll_one(self, provider: OtpProvider, activation: Activation) -> None:
        try:
            status = await provider.status(activation.provider_order_id or "")
        except OrderNotFound:
            status = OtpStatus(state=OtpState.EXPIRED)
        except ProviderError as exc:
            log.info(
                "status check failed",
                extra={"activation_id": activation.id, "error": type(exc).__name__},
            )
            return
        await self.apply_status(activation, status, polled=True)

    async def _expire(self, activation: Activation) -> None:
        """Past its deadline: a received activation is finished; a waiting one is cancelled
        upstream and refunded, unless the upstream shows a code after all (whatever its state
        word says: a code we have not shown is a delivered code)."""
        provider = self.providers.get(activation.provider or "")
        if provider is None:
            return
        if activation.status == WAITING:
            try:
                activation = await self._last_look(activation, provider)
            except TryLater:
                return
            if activation.status == WAITING:
                await self._cancel_expired(activation, provider)
                return
        if activation.status == RECEIVED:
            with contextlib.suppress(TryLater):
                await self._finish_upstream(activation)
                await self._close(activation.id, (RECEIVED,), FINISHED, refund=False, notify=False)

    async def _cancel_expired(self, activation: Activation, provider: OtpProvider) -> None:
        try:
            await provider.cancel(activation.provider_order_id or "")
        except (InvalidState, OrderNotFound):
            try:
                status = await provider.status(activation.provider_order_id or "")
            except OrderNotFound:
                status = OtpStatus(state=OtpState.EXPIRED)
            except ProviderError:
                return
            if _new_code(activation, status):
                await self.apply_status(activation, status)
                return
        except ProviderError as exc:
            log.info(
                "timeout cancel failed, retrying next round",
                extra={"activation_id": activation.id, "error": type(exc).__name__},
            )
            return
        await self._close(activation.id, (WAITING,), EXPIRED, refund=True, reason=REASON_TIMEOUT)

    async def _refresh_stale_cards(self, activations: Iterable[Activation]) -> None:
        """The card's "time left", at most every `card_refresh_s`."""
        now = self.clock()
        limit = timedelta(seconds=self.rules.card_refresh_s)
        stale = [
            a
            for a in activations
            if a.card_message_id is not None
            and (a.card_updated_at is None or now - a.card_updated_at >= limit)
        ]
        for activation in stale[:20]:  # a few per round: Telegram limits edits too
            await self._refresh_card(activation, None)
