"""SMM orders: placing an order, and what a customer does with it."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update

from db.models import SmmOrder, utcnow
from services.orders import core
from services.orders.errors import (
    PriceChanged,
    TryLater,
    WrongState,
)
from services.providers.base import (
    SmmServiceType,
)
from services.providers.errors import (
    AuthError,
    BadRequest,
    InvalidState,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
)
from services.smm.common import (
    LIVE,
    PENDING,
    PLACING,
    REASON_PROVIDER_ERROR,
    REFILLABLE,
    UNKNOWN,
    NotOffered,
    RefillInProgress,
    Refused,
    ServiceGone,
    SmmBase,
    _extra,
    _reason,
    _refill_done,
    _request,
)
from services.smm.drafts import (
    BadInput,
    SmmDraft,
    SmmQuote,
    check_answer,
    check_comments,
    check_interval,
    check_link,
    check_quantity,
    check_runs,
    check_usernames,
    price_of,
)

log = logging.getLogger(__name__)


class Placing(SmmBase):
    """Quote, confirm, place (the `add` is sent exactly once), refill and cancel."""

    def quote(self, draft: SmmDraft) -> SmmQuote:
        """Check every field of the draft against the service; the price the user confirms."""
        item = self.catalog.item(draft.service)
        if item is None:
            raise ServiceGone()
        link = check_link(draft.link)
        runs = 1
        match item.type:
            case SmmServiceType.PACKAGE:
                quantity = 1
            case SmmServiceType.CUSTOM_COMMENTS:
                quantity = len(check_comments(draft.comments, item))
            case _:
                quantity = check_quantity(draft.quantity, item)
        if item.type is SmmServiceType.POLL:
            check_answer(draft.answer_number)
        if item.type is SmmServiceType.MENTIONS:
            check_usernames(draft.usernames)
        if draft.runs is not None or draft.interval is not None:
            if not item.dripfeed:
                raise BadInput("dripfeed_off")
            runs = check_runs(draft.runs)
            check_interval(draft.interval)
        if link != draft.link:
            draft = replace(draft, link=link)
        return SmmQuote(item, draft, quantity, runs, price_of(item, quantity, runs))

    async def create(
        self, user_id: int, draft: SmmDraft, confirmed_price: int, token: str
    ) -> SmmOrder:
        """Debit the confirmed price and write the 'placing' row, in one transaction."""
        quote = self.quote(draft)
        if quote.total != confirmed_price:
            raise PriceChanged(quote.total)
        return await self.open(user_id, quote, f"{user_id}:{token}")

    async def open(
        self,
        user_id: int,
        quote: SmmQuote,
        confirm_key: str,
        *,
        charge_key: str | None = None,
        quiet: bool = False,
    ) -> SmmOrder:
        """The 'placing' row and its debit of `quote.total`, in one transaction (the Confirm
        press, or a reseller API `add`: services/api/smm.py, with its own keys and `quiet`
        when nothing may reach the chat). The same `confirm_key` twice is AlreadyConfirmed."""
        item, draft, now = quote.item, quote.draft, self.clock()
        order = SmmOrder(
            user_id=user_id,
            confirm_key=confirm_key,
            status=PLACING,
            provider=item.provider,
            service_id=item.service_id,
            service_name=item.name[:256],
            category=item.category[:256],
            type=item.type.value,
            link=quote.draft.link,
            quantity=quote.quantity,
            runs=draft.runs,
            interval=draft.interval,
            extra=_extra(item, quote.draft),
            rate_per_1000=item.rate_per_1000,
            upstream_rate=str(item.upstream_rate),
            upstream_currency=item.currency[:3],
            rate=str(item.rate),
            markup_percent=str(item.markup_percent),
            price=quote.total,
            refunded=0,
            can_refill=item.refill,
            can_cancel=item.cancel,
            created_at=now,
            updated_at=now,
            claimed_until=utcnow() + timedelta(seconds=self.rules.request_lease_s),
            quiet=quiet,
        )
        return await core.open_order(self.db, "smm", order, charge_key=charge_key)

    async def execute(self, order_id: int) -> SmmOrder:
        """Send the `add`, exactly once: a refusal refunds at once, a lost answer is 'unknown'."""
        try:
            return await self._execute(order_id)
        finally:
            await core.release(self.db, "smm", order_id)

    async def _execute(self, order_id: int) -> SmmOrder:
        order = await self.get(order_id)
        if order.status != PLACING:
            return order
        provider = self.providers.get(order.provider)
        if provider is None:
            log.error("smm order of an unconfigured provider", extra={"provider": order.provider})
            return await self._fail(order_id, REASON_PROVIDER_ERROR)
        try:
            request = _request(order)
        except ValueError as exc:
            log.error(
                "smm order cannot be sent", extra={"smm_order_id": order_id, "error": str(exc)}
            )
            return await self._fail(order_id, REASON_PROVIDER_ERROR)
        if not await self._mark_submitted(order_id):
            return await self.get(order_id)
        try:
            upstream_id = await provider.add(request, client_ref=str(order_id))
        except OutcomeUnknown as exc:
            unknown = await self._mark_unknown(order_id, str(exc))
            await self._observe(order.provider, exc)
            return unknown
        except ProviderError as exc:
            await self._observe(order.provider, exc)  # NO_BALANCE switches the panel off
            level = (
                logging.ERROR
                if isinstance(exc, ProviderBalanceLow | AuthError)
                else logging.WARNING
            )
            log.log(
                level,
                "smm order refused by provider",
                extra={
                    "smm_order_id": order_id,
                    "provider": order.provider,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            return await self._fail(order_id, _reason(exc))
        placed = await self._placed(order_id, upstream_id)
        await self._observe(order.provider, None)
        return placed

    async def _mark_submitted(self, order_id: int) -> bool:
        """Written *before* the `add` leaves: a crash after this cannot tell whether the panel
        has the order, a crash before it can (nothing was sent: refund)."""
        async with self.db.write() as session:
            result = await session.execute(
                update(SmmOrder)
                .where(
                    SmmOrder.id == order_id,
                    SmmOrder.status == PLACING,
                    SmmOrder.submitted_at.is_(None),
                )
                .values(submitted_at=self.clock(), updated_at=self.clock())
                .returning(SmmOrder.id)
            )
            return result.first() is not None

    async def adopt(self, order_id: int, upstream_id: str) -> SmmOrder:
        """An admin found the lost order on the panel: poll it from now on."""
        order = await self.get(order_id)
        if order.status != UNKNOWN:
            raise WrongState()
        if order.provider_order_id is None:  # the `add` answer was lost: announced now
            return await self._placed(order_id, upstream_id)
        # Placed and announced before; the panel stopped showing it: follow it again.
        async with self.db.write() as session:
            await core.move(
                session,
                "smm",
                order_id,
                (UNKNOWN,),
                PENDING,
                now=self.clock(),
                values={
                    "provider_order_id": upstream_id,
                    "trouble_since": None,
                    "trouble": None,
                    "alerted_at": None,
                },
            )
        log.info("smm order followed again", extra={"smm_order_id": order_id})
        return await self.get(order_id)

    async def refill(self, user_id: int, order_id: int) -> SmmOrder:
        order = await self.get_own(user_id, order_id)
        provider = self.providers.get(order.provider)
        if not order.can_refill or provider is None or not provider.supports_refill:
            raise NotOffered()
        if order.status not in REFILLABLE:
            raise WrongState()
        if order.refill_id is not None and not _refill_done(order.refill_status):
            raise RefillInProgress()
        lease = self.rules.request_lease_s
        if not await core.claim(self.db, "smm", order_id, "acting_until", lease):
            raise RefillInProgress()  # another press (in any process) is asking right now
        try:
            refill_id = await provider.refill(order.provider_order_id or "")
            async with self.db.write() as session:
                await session.execute(
                    update(SmmOrder)
                    .where(SmmOrder.id == order_id)
                    .values(refill_id=refill_id, refill_status="pending", updated_at=self.clock())
                )
        except (InvalidState, BadRequest, OrderNotFound, NotSupported) as exc:
            log.info("refill refused", extra={"smm_order_id": order_id, "error": str(exc)})
            raise Refused() from None
        except ProviderError as exc:
            log.warning("refill failed", extra={"smm_order_id": order_id, "error": str(exc)})
            raise TryLater() from None
        finally:
            await core.release(self.db, "smm", order_id, "acting_until")
        log.info("refill requested", extra={"smm_order_id": order_id, "refill_id": refill_id})
        return await self.get(order_id)

    async def cancel(self, user_id: int, order_id: int) -> SmmOrder:
        """Ask the panel to cancel. The refund comes from the status poll (Canceled or Partial),
        never from this answer: `cancel: 1` only means the request was accepted."""
        order = await self.get_own(user_id, order_id)
        provider = self.providers.get(order.provider)
        if not order.can_cancel or provider is None or not provider.supports_cancel:
            raise NotOffered()
        if order.status not in LIVE or order.cancel_requested_at is not None:
            raise WrongState()
        upstream_id = order.provider_order_id or ""
        lease = self.rules.request_lease_s
        if not await core.claim(self.db, "smm", order_id, "acting_until", lease):
            raise TryLater()  # another press (in any process) is asking right now
        try:
            answer = (await provider.cancel([upstream_id])).get(upstream_id)
        except NotSupported:
            await core.release(self.db, "smm", order_id, "acting_until")
            raise NotOffered() from None
        except ProviderError as exc:
            answer = exc
        if answer is True:
            async with self.db.write() as session:
                await session.execute(
                    update(SmmOrder)
                    .where(SmmOrder.id == order_id, SmmOrder.status.in_(LIVE))
                    .values(cancel_requested_at=self.clock(), updated_at=self.clock())
                )
        await core.release(self.db, "smm", order_id, "acting_until")
        if isinstance(answer, Unavailable):
            raise TryLater()
        if answer is not True:
            log.info("cancel refused", extra={"smm_order_id": order_id, "answer": str(answer)})
            raise Refused()
        log.info("cancel requested", extra={"smm_order_id": order_id})
        return await self.get(order_id)
