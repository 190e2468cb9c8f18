"""OTP activations: quoting, buying, and what a customer does with a number."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Activation, OtpQuote, utcnow
from services.catalog import Offer
from services.orders import core
from services.orders.errors import (
    AlreadyConfirmed,
    PriceChanged,
    TryLater,
    WrongState,
)
from services.otp.common import (
    BUYING,
    CANCELLED,
    FAILED,
    FINISHED,
    OPEN,
    QUOTE_TTL,
    REASON_NO_NUMBERS,
    REASON_PROVIDER_ERROR,
    REASON_USER_CANCEL,
    RECEIVED,
    WAITING,
    ConfirmAgain,
    OtpBase,
    OutOfStock,
    Quote,
    TooEarly,
    TooManyActive,
    TooManyCancels,
    new_token,
)
from services.providers.base import (
    OtpProvider,
    OtpState,
    OtpStatus,
)
from services.providers.errors import (
    EarlyCancel,
    InvalidState,
    NoNumbers,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    PriceTooHigh,
    ProviderError,
)

log = logging.getLogger(__name__)
CANCEL_WINDOW = timedelta(days=1)  # MAX_CANCELS_PER_DAY's day


class Buying(OtpBase):
    """Quote, confirm, buy (cheapest provider first), and the customer's own actions."""

    def quote(self, country: str, service: str) -> Quote | None:
        offers = self._sellable(country, service)
        if not offers or offers[0].user_price_micro <= 0:  # never a Buy button for nothing
            return None
        return Quote(country, service, offers[0].user_price_micro, sum(o.stock for o in offers))

    async def remember_quote(self, user_id: int, quote: Quote) -> str:
        """Keep the quote a confirmation screen shows, under a fresh token for its Buy button:
        the press is charged this price (create). In the database, so that any bot process can
        take the press; quotes older than QUOTE_TTL are deleted here."""
        token, now = new_token(), self.clock()
        async with self.db.write() as session:
            await session.execute(delete(OtpQuote).where(OtpQuote.created_at < now - QUOTE_TTL))
            session.add(
                OtpQuote(
                    user_id=user_id,
                    token=token,
                    country=quote.country,
                    service=quote.service,
                    price=quote.price,
                    created_at=now,
                )
            )
        return token

    async def _quoted(self, user_id: int, token: str) -> OtpQuote | None:
        async with self.db.read() as session:
            return await session.get(OtpQuote, (user_id, token))

    def _sellable(self, country: str, service: str) -> list[Offer]:
        return [
            offer
            for offer in self.catalog.offers(country, service)
            if offer.provider in self.providers
        ]

    async def create(
        self, user_id: int, country: str, service: str, confirmed_price: int, token: str
    ) -> Activation:
        """Debit the quoted price and write the 'buying' row, in one transaction.

        The price charged is the one remember_quote() kept under `token` for this user; the
        price in the callback data (`confirmed_price`) is only compared with it, since anyone
        can send any callback data: a mismatch is ConfirmAgain, with nothing charged."""
        quoted = await self._quoted(user_id, token)
        if quoted is None:
            existing = await self._by_confirm_key(f"{user_id}:{token}")
            if existing is not None:  # pressed again after its quote expired
                raise AlreadyConfirmed(existing)
            raise ConfirmAgain()
        if (quoted.country, quoted.service, quoted.price) != (country, service, confirmed_price):
            raise ConfirmAgain()
        confirmed_price = quoted.price
        quote = self.quote(country, service)
        if quote is None or confirmed_price <= 0:
            raise OutOfStock()
        if quote.price > confirmed_price:
            raise PriceChanged(quote.price)
        return await self.open(user_id, country, service, confirmed_price, f"{user_id}:{token}")

    async def open(
        self,
        user_id: int,
        country: str,
        service: str,
        price: int,
        confirm_key: str,
        *,
        charge_key: str | None = None,
        quiet: bool = False,
    ) -> Activation:
        """The 'buying' row and its debit, in one transaction (the Buy press, or a reseller
        API request: services/api/shop.py, with its own keys and `quiet` when no code may
        reach the chat). The same `confirm_key` twice is AlreadyConfirmed."""
        now = self.clock()

        async def below_the_limit(session: AsyncSession) -> None:
            active = await session.scalar(
                select(func.count())
                .select_from(Activation)
                .where(Activation.user_id == user_id, Activation.status.in_(OPEN))
            )
            if (active or 0) >= self.rules.max_active:
                raise TooManyActive(self.rules.max_active)
            await self._below_the_cancel_limit(session, user_id, now)

        activation = Activation(
            user_id=user_id,
            confirm_key=confirm_key,
            status=BUYING,
            country=country,
            service=service,
            price=price,
            codes=0,
            quiet=quiet,
            created_at=now,
            updated_at=now,
            claimed_until=utcnow() + timedelta(seconds=self.rules.buy_lease_s),
        )
        return await core.open_order(
            self.db, "otp", activation, check=below_the_limit, charge_key=charge_key
        )

    async def _below_the_cancel_limit(
        self, session: AsyncSession, user_id: int, now: datetime
    ) -> None:
        """MAX_CANCELS_PER_DAY: every cancel without a code costs the shop standing with its
        provider (5sim lowers the account's rating, and blocks buying at zero), so past the
        limit a user waits until the oldest counted cancel is a day old. Timeouts don't count."""
        limit = self.rules.max_cancels_per_day
        if limit <= 0:
            return
        recent = (
            await session.scalars(
                select(Activation.closed_at)
                .where(
                    Activation.user_id == user_id,
                    Activation.fail_reason == REASON_USER_CANCEL,
                    Activation.closed_at >= now - CANCEL_WINDOW,
                )
                .order_by(Activation.closed_at.desc())
                .limit(limit)
            )
        ).all()
        if len(recent) >= limit and recent[-1] is not None:
            raise TooManyCancels(limit, recent[-1] + CANCEL_WINDOW)

    async def execute(self, activation_id: int) -> Activation:
        """Ask the providers, cheapest first, never above the confirmed price. A buy is never
        retried: a lost answer leaves the activation 'unknown' for reconciliation."""
        try:
            return await self._execute(activation_id)
        finally:
            await core.release(self.db, "otp", activation_id)

    async def _execute(self, activation_id: int) -> Activation:
        activation = await self.get(activation_id)
        reason = REASON_NO_NUMBERS
        for offer in self._sellable(activation.country, activation.service):
            if offer.user_price_micro > activation.price:
                break
            provider = self.providers[offer.provider]
            if not await self._set_provider(activation_id, offer):
                return await self.get(activation_id)
            max_price = self.catalog.max_upstream_price(
                activation.country, activation.service, activation.price, offer
            )
            try:
                purchase = await provider.buy(
                    activation.country,
                    activation.service,
                    max_price=max_price,
                    client_ref=str(activation_id),
                )
            except ProviderError as exc:
                if isinstance(exc, OutcomeUnknown):
                    log.warning(
                        "buy outcome unknown, will reconcile",
                        extra={
                            "activation_id": activation_id,
                            "provider": offer.provider,
                            "error": str(exc),
                        },
                    )
                    unknown = await self._mark_unknown(activation_id)
                    await self._observe(offer.provider, exc)
                    return unknown
                await self._observe(offer.provider, exc)  # NO_BALANCE: off, and the next one
                if isinstance(exc, NoNumbers | PriceTooHigh):
                    log.info(
                        "provider has no number, trying the next",
                        extra={
                            "activation_id": activation_id,
                            "provider": offer.provider,
                            "error": type(exc).__name__,
                        },
                    )
                    continue
                reason = REASON_PROVIDER_ERROR
                log.warning(
                    "buy refused by provider",
                    extra={
                        "activation_id": activation_id,
                        "provider": offer.provider,
                        "error": f"{type(exc).__name__}: {exc}",
                    },
                )
                continue
            bought = await self._bought(activation_id, offer, purchase)
            await self._observe(offer.provider, None)
            return bought
        return await self._close(
            activation_id, (BUYING,), FAILED, refund=True, reason=reason, notify=False
        )

    async def _set_provider(self, activation_id: int, offer: Offer) -> bool:
        """Record which provider is being asked *before* asking (for reconciliation)."""
        async with self.db.write() as session:
            result = await session.execute(
                update(Activation)
                .where(Activation.id == activation_id, Activation.status == BUYING)
                .values(
                    provider=offer.provider,
                    upstream_price=str(offer.upstream_price),
                    upstream_currency=self.providers[offer.provider].currency[:3],
                    rate=str(offer.rate),
                    markup_percent=str(offer.markup_percent),
                    updated_at=self.clock(),
                )
                .returning(Activation.id)
            )
            return result.first() is not None

    async def cancel(self, user_id: int, activation_id: int) -> Activation:
        activation = await self.get_own(user_id, activation_id)
        if activation.status != WAITING:
            raise WrongState()
        now = self.clock()
        if activation.cancel_after is not None and now < activation.cancel_after:
            raise TooEarly(math.ceil((activation.cancel_after - now).total_seconds()))
        provider = self.providers.get(activation.provider or "")
        if provider is None:
            raise TryLater()
        # While the Cancel is on its way, the poller leaves the order alone (see apply_status).
        lease = self.rules.buy_lease_s
        if not await core.claim(self.db, "otp", activation_id, "claimed_until", lease):
            raise TryLater()
        try:
            return await self._cancel(activation, provider)
        finally:
            await core.release(self.db, "otp", activation_id)

    async def _cancel(self, activation: Activation, provider: OtpProvider) -> Activation:
        activation_id = activation.id
        try:
            await provider.cancel(activation.provider_order_id or "")
        except EarlyCancel as exc:
            delay = exc.retry_after_s or self.rules.cancel_delay(activation.provider or "")
            raise TooEarly(int(delay)) from None
        except (InvalidState, OrderNotFound):
            # Ended upstream, or a code just arrived: the upstream's status decides.
            return await self._settle_with_status(activation, provider)
        except ProviderError as exc:
            log.warning("cancel failed", extra={"activation_id": activation_id, "error": str(exc)})
            raise TryLater() from None
        closed = await self._close(
            activation_id,
            (WAITING,),
            CANCELLED,
            refund=True,
            reason=REASON_USER_CANCEL,
            notify=False,
        )
        if closed.status == WAITING:
            raise TryLater()
        return closed

    async def _settle_with_status(
        self, activation: Activation, provider: OtpProvider
    ) -> Activation:
        try:
            status = await provider.status(activation.provider_order_id or "")
        except OrderNotFound:
            status = OtpStatus(state=OtpState.CANCELLED)
        except ProviderError:
            raise TryLater() from None
        updated = await self.apply_status(activation, status)
        if updated.status == WAITING:
            raise TryLater()
        return updated

    async def finish(self, user_id: int, activation_id: int) -> Activation:
        activation = await self.get_own(user_id, activation_id)
        if activation.status != RECEIVED:
            raise WrongState()
        await self._finish_upstream(activation)
        return await self._close(activation_id, (RECEIVED,), FINISHED, refund=False, notify=False)

    async def another_sms(self, user_id: int, activation_id: int) -> Activation:
        activation = await self.get_own(user_id, activation_id)
        if activation.status != RECEIVED or not self.supports(activation, "another_sms"):
            raise WrongState()
        provider = self.providers[activation.provider or ""]
        await self._last_look(activation, provider)  # a code not shown yet is not skipped
        try:
            await provider.request_another_sms(activation.provider_order_id or "")
        except (NotSupported, InvalidState, OrderNotFound):
            raise WrongState() from None
        except ProviderError:
            raise TryLater() from None
        return await self.get(activation_id)
