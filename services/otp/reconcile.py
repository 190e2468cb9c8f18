"""OTP activations: reconciliation of buys left 'buying' or 'unknown'."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from db.models import Activation, utcnow
from services.catalog import Offer
from services.orders import core
from services.orders.errors import (
    WrongState,
)
from services.otp.common import (
    BUYING,
    FAILED,
    REASON_NO_UPSTREAM_ORDER,
    UNKNOWN,
    OtpBase,
)
from services.providers.base import (
    OtpActiveOrder,
    OtpPurchase,
)
from services.providers.errors import (
    ProviderError,
)

log = logging.getLogger(__name__)


class Reconciling(OtpBase):
    """Buys whose answer was lost: found upstream, adopted, or refunded."""

    async def reconcile(self) -> None:
        """Activations left 'buying' or 'unknown' (a crash, a lost answer): find the order
        upstream and adopt it, or refund when the provider has no such order."""
        if self._busy(self._reconcile_lock):
            return
        async with self._reconcile_lock:
            async with self.db.read() as session:
                rows = await session.execute(
                    select(Activation).where(
                        Activation.status.in_((BUYING, UNKNOWN)),
                        core.unclaimed(Activation, utcnow()),  # not a buy in flight anywhere
                    )
                )
                pending = list(rows.scalars())
            lists: dict[str, list[OtpActiveOrder] | None] = {}
            for activation in pending:
                await self._reconcile_one(activation, lists)

    async def _reconcile_one(
        self, activation: Activation, lists: dict[str, list[OtpActiveOrder] | None]
    ) -> None:
        name = activation.provider
        if name is None:
            # Crashed before any provider was asked: no number can exist.
            await self._close(
                activation.id, (BUYING,), FAILED, refund=True, reason=REASON_NO_UPSTREAM_ORDER
            )
            return
        provider = self.providers.get(name)
        if provider is None or not provider.supports_order_list:
            if activation.status == BUYING:
                activation = await self._mark_unknown(activation.id)
            await self._alert_unknown(activation, "no-list")
            return
        if name not in lists:
            try:
                lists[name] = await provider.active_orders()
            except ProviderError as exc:
                log.info("order list unavailable", extra={"provider": name, "error": str(exc)})
                lists[name] = None
            if not await self._answers_recorded(await self._buying_from(name)):
                lists[name] = None  # the next round matches, once every buy is on record
        orders = lists[name]
        if orders is None:
            if activation.status == BUYING:
                activation = await self._mark_unknown(activation.id)
            await self._alert_unknown(activation, "list-unavailable")
            return
        match = await self._match(activation, orders)
        if match is not None:
            await self._adopt(activation, match)
            return
        age = (self.clock() - activation.updated_at).total_seconds()
        if age >= self.rules.reconcile_grace_s:
            await self._close(
                activation.id,
                (BUYING, UNKNOWN),
                FAILED,
                refund=True,
                reason=REASON_NO_UPSTREAM_ORDER,
            )

    async def _buying_from(self, provider: str) -> set[int]:
        """Buys in flight (in any process) that may be asking this provider right now."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(Activation.id).where(
                    Activation.status == BUYING,
                    Activation.provider == provider,
                    Activation.claimed_until > utcnow(),
                )
            )
            return set(rows.scalars())

    async def _answers_recorded(self, buys: set[int], timeout_s: float = 60.0) -> bool:
        """Wait until these buys (in flight when the order list was read) have recorded their
        answers: until then an order of theirs in the list looks exactly like a lost one, and
        matching would hand one number to two activations."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while buys:
            async with self.db.read() as session:
                rows = await session.execute(
                    select(Activation.id).where(
                        Activation.id.in_(buys),
                        Activation.status == BUYING,
                        Activation.claimed_until > utcnow(),
                    )
                )
                buys = set(rows.scalars())
            if not buys:
                break
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _match(
        self, activation: Activation, orders: list[OtpActiveOrder]
    ) -> OtpActiveOrder | None:
        async with self.db.read() as session:
            known = set(
                (
                    await session.execute(
                        select(Activation.provider_order_id).where(
                            Activation.provider == activation.provider,
                            Activation.provider_order_id.is_not(None),
                        )
                    )
                ).scalars()
            )
        candidates = [o for o in orders if o.order_id not in known]
        for order in candidates:
            if order.client_ref == str(activation.id):
                return order
        window_start = activation.created_at - timedelta(seconds=60)
        window_end = activation.updated_at + timedelta(seconds=120)
        similar = [
            o
            for o in candidates
            if o.client_ref is None
            and (o.service in (None, activation.service))
            and (o.country in (None, activation.country))
            and (o.created_at is None or window_start <= o.created_at <= window_end)
        ]
        similar.sort(key=lambda o: o.created_at or activation.created_at)
        return similar[0] if similar else None

    async def adopt(self, activation_id: int, order_id: str, phone: str | None) -> Activation:
        """An admin found the lost order upstream (a provider without an order list)."""
        activation = await self.get(activation_id)
        if activation.status != UNKNOWN:
            raise WrongState()
        await self._adopt(activation, OtpActiveOrder(order_id=order_id, phone=phone or "—"))
        return await self.get(activation_id)

    async def _adopt(self, activation: Activation, order: OtpActiveOrder) -> None:
        purchase = OtpPurchase(order_id=order.order_id, phone=order.phone)
        offer = Offer(
            provider=activation.provider or "",
            user_price_micro=activation.price,
            upstream_price=Decimal(activation.upstream_price or "0"),
            stock=0,
            rate=Decimal(activation.rate or "1"),
            markup_percent=Decimal(activation.markup_percent or "0"),
            native_country=activation.country,
            native_service=activation.service,
        )
        adopted = await self._bought(activation.id, offer, purchase)
        await self._refresh_card(adopted, None)
        log.info(
            "unknown purchase found upstream and adopted",
            extra={"activation_id": activation.id, "order_id": order.order_id},
        )
        if order.status is not None:
            await self.apply_status(adopted, order.status)
