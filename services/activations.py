"""OTP activations: buy, deliver codes, cancel, finish, expire, reconcile.

Every state change is one conditional UPDATE (`... WHERE status IN (...)`), and a refund is
written in the same transaction with the key `refund:otp:<id>`: whoever moves an activation out
of 'waiting' first (the user's cancel, the poller's timeout, a restart's reconciliation) refunds
it, and nobody can refund it twice. No upstream call and no Telegram call happens inside a
transaction; what the user must hear after a commit goes through the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from db.engine import Database
from db.models import Activation, OtpQuote, User, utcnow
from services import outbox, pricing, wallet
from services.catalog import Offer, OtpCatalog
from services.ids import is_id
from services.money import ceil_micro
from services.notifier import Notifier, OtpGoods
from services.providers.base import (
    OtpActiveOrder,
    OtpProvider,
    OtpPurchase,
    OtpState,
    OtpStatus,
)
from services.providers.errors import (
    BadRequest,
    EarlyCancel,
    InvalidState,
    NoNumbers,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    PriceTooHigh,
    ProviderBalanceLow,
    ProviderError,
)

log = logging.getLogger(__name__)

BUYING, UNKNOWN, WAITING, RECEIVED = "buying", "unknown", "waiting", "received"
FINISHED, CANCELLED, EXPIRED, FAILED = "finished", "cancelled", "expired", "failed"
OPEN = (BUYING, UNKNOWN, WAITING, RECEIVED)
ACTIVE = (WAITING, RECEIVED)
CLOSED = (FINISHED, CANCELLED, EXPIRED, FAILED)


# --- what the service tells its callers ------------------------------------------------------


class ActivationError(Exception):
    """A user-facing refusal; the handler renders it. Nothing changed."""


class NotFound(ActivationError):
    """No such activation for this user (another user's id looks exactly the same)."""


class Banned(ActivationError):
    pass


class TooManyActive(ActivationError):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class OutOfStock(ActivationError):
    pass


class PriceChanged(ActivationError):
    def __init__(self, price: int) -> None:
        super().__init__(price)
        self.price = price


class NotEnoughMoney(ActivationError):
    def __init__(self, missing: int, balance: int) -> None:
        super().__init__(missing)
        self.missing = missing
        self.balance = balance


class ConfirmAgain(ActivationError):
    """The Buy press does not match a confirmation this user was shown (a forged or changed
    price, another item, an unknown or expired token): nothing was charged."""


class AlreadyConfirmed(ActivationError):
    """The same confirmation was pressed twice: the first press is the purchase."""

    def __init__(self, activation_id: int) -> None:
        super().__init__(activation_id)
        self.activation_id = activation_id


class TooEarly(ActivationError):
    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = max(1, seconds)


class WrongState(ActivationError):
    """The action does not fit the activation's state (already closed, no code yet...)."""


class TryLater(ActivationError):
    """The upstream did not answer; nothing changed."""


class Presenter(Protocol):
    """The bot layer: texts in the user's language, and the activation card in the chat."""

    def code_text(self, activation: Activation, language: str) -> str: ...

    def closed_text(self, activation: Activation, language: str) -> str: ...

    async def refresh_card(self, activation: Activation, language: str) -> None: ...


@dataclass(frozen=True)
class OtpRules:
    activation_timeout_s: int = 1200
    min_cancel_delay_s: int = 120
    provider_cancel_delay_s: dict[str, int] = field(default_factory=dict)
    max_active: int = 10
    reconcile_grace_s: float = 30.0
    card_refresh_s: float = 30.0
    poll_interval_s: float = 5.0
    rate_limits: dict[str, int] = field(default_factory=dict)  # provider -> requests/min
    disabled: frozenset[str] = frozenset()

    def cancel_delay(self, provider: str) -> int:
        return max(self.min_cancel_delay_s, self.provider_cancel_delay_s.get(provider, 0))


@dataclass(frozen=True, slots=True)
class Quote:
    country: str
    service: str
    price: int
    stock: int


# Reasons kept in `fail_reason` (rendered by the bot from locales).
QUOTE_TTL = timedelta(days=1)  # a confirmation screen older than this is shown again

REASON_NO_NUMBERS = "no_numbers"
REASON_PROVIDER_ERROR = "provider_error"
REASON_NO_UPSTREAM_ORDER = "no_upstream_order"
REASON_TIMEOUT = "timeout"
REASON_UPSTREAM_CANCELLED = "upstream_cancelled"
REASON_USER_CANCEL = "user_cancel"


class ActivationService:
    def __init__(
        self,
        db: Database,
        catalog: OtpCatalog,
        providers: dict[str, OtpProvider],
        rules: OtpRules,
        *,
        kick_outbox: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.providers = providers
        self.rules = rules
        self.kick_outbox = kick_outbox
        self.clock = clock
        self.presenter: Presenter | None = None
        self.notifier = Notifier()  # the bot layer replaces it when NOTIFY_CHAT_ID is set
        self._in_flight: set[int] = set()  # buys this process is making right now
        self._asking: set[int] = set()  # buys whose upstream answer is not recorded yet
        self._poll_lock = asyncio.Lock()
        self._reconcile_lock = asyncio.Lock()
        self._stopped = False
        self.popular: dict[str, int] = {}  # country -> purchases, for "most bought first"

    # --- buying --------------------------------------------------------------------------

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
            if offer.provider in self.providers and offer.provider not in self.rules.disabled
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
        now = self.clock()
        claimed: int | None = None
        try:
            async with self.db.write() as session:
                user = await session.get(User, user_id)
                if user is None or user.banned:
                    raise Banned()
                active = await session.scalar(
                    select(func.count())
                    .select_from(Activation)
                    .where(Activation.user_id == user_id, Activation.status.in_(OPEN))
                )
                if (active or 0) >= self.rules.max_active:
                    raise TooManyActive(self.rules.max_active)
                activation = Activation(
                    user_id=user_id,
                    confirm_key=f"{user_id}:{token}",
                    status=BUYING,
                    country=country,
                    service=service,
                    price=confirmed_price,
                    codes=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(activation)
                await session.flush()
                # Claimed before the commit, so reconciliation never mistakes it for a crash.
                self._in_flight.add(activation.id)
                claimed = activation.id
                await wallet.debit(
                    session,
                    user_id,
                    confirmed_price,
                    reason="purchase",
                    key=f"charge:otp:{activation.id}",
                    ref=f"otp:{activation.id}",
                )
        except wallet.InsufficientFunds as exc:
            self._in_flight.discard(claimed or 0)
            raise NotEnoughMoney(exc.missing, exc.balance) from None
        except IntegrityError:
            self._in_flight.discard(claimed or 0)
            existing = await self._by_confirm_key(f"{user_id}:{token}")
            if existing is None:
                raise
            raise AlreadyConfirmed(existing) from None
        except BaseException:
            self._in_flight.discard(claimed or 0)
            raise
        return activation

    async def _by_confirm_key(self, key: str) -> int | None:
        async with self.db.read() as session:
            return await session.scalar(select(Activation.id).where(Activation.confirm_key == key))

    async def execute(self, activation_id: int) -> Activation:
        """Ask the providers, cheapest first, never above the confirmed price. A buy is never
        retried: a lost answer leaves the activation 'unknown' for reconciliation."""
        try:
            return await self._execute(activation_id)
        finally:
            self._in_flight.discard(activation_id)
            self._asking.discard(activation_id)

    async def _execute(self, activation_id: int) -> Activation:
        activation = await self.get(activation_id)
        reason = REASON_NO_NUMBERS
        for offer in self._sellable(activation.country, activation.service):
            if offer.user_price_micro > activation.price:
                break
            provider = self.providers[offer.provider]
            if not await self._set_provider(activation_id, offer):
                return await self.get(activation_id)
            max_price = pricing.max_upstream_price(
                activation.price, offer.rate, offer.markup_percent
            )
            self._asking.add(activation_id)
            try:
                purchase = await provider.buy(
                    activation.country,
                    activation.service,
                    max_price=max_price,
                    client_ref=str(activation_id),
                )
            except OutcomeUnknown as exc:
                log.warning(
                    "buy outcome unknown, will reconcile",
                    extra={
                        "activation_id": activation_id,
                        "provider": offer.provider,
                        "error": str(exc),
                    },
                )
                return await self._mark_unknown(activation_id)
            except (NoNumbers, PriceTooHigh) as exc:
                log.info(
                    "provider has no number, trying the next",
                    extra={
                        "activation_id": activation_id,
                        "provider": offer.provider,
                        "error": type(exc).__name__,
                    },
                )
                continue
            except (ProviderBalanceLow, BadRequest, ProviderError) as exc:
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
            return await self._bought(activation_id, offer, purchase)
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

    async def _mark_unknown(self, activation_id: int) -> Activation:
        """The buy's answer was lost. The admins hear of it only if reconciliation gives up."""
        async with self.db.write() as session:
            await session.execute(
                update(Activation)
                .where(Activation.id == activation_id, Activation.status == BUYING)
                .values(status=UNKNOWN, updated_at=self.clock())
            )
        return await self.get(activation_id)

    async def _alert_unknown(self, activation: Activation, tried: str) -> None:
        """Reconciliation has given up (the grace period passed, the order is still unknown):
        the group is told once, with what the bot tried."""
        age = (self.clock() - activation.updated_at).total_seconds()
        if age < self.rules.reconcile_grace_s:
            return
        async with self.db.write() as session:
            result = await session.execute(
                update(Activation)
                .where(
                    Activation.id == activation.id,
                    Activation.status == UNKNOWN,
                    Activation.alerted_at.is_(None),
                )
                .values(alerted_at=self.clock())
                .returning(Activation.provider)
            )
            row = result.first()
            if row is None:
                return
            await self.notifier.emit(
                session,
                "unknown-order",
                order=f"otp:{activation.id}",
                provider=row[0] or "?",
                tried=tried,
                since="",
                detail="",
                word="",
            )
        self.notifier.wake()
        log.error(
            "purchase outcome unknown: an admin must resolve it",
            extra={"activation_id": activation.id, "provider": row[0], "tried": tried},
        )

    async def _bought(self, activation_id: int, offer: Offer, purchase: OtpPurchase) -> Activation:
        now = self.clock()
        expires_at = now + timedelta(seconds=self.rules.activation_timeout_s)
        if purchase.expires_at is not None:
            expires_at = min(expires_at, purchase.expires_at)
        values = {
            "status": WAITING,
            "provider": offer.provider,
            "provider_order_id": purchase.order_id,
            "phone": purchase.phone,
            "cancel_after": now + timedelta(seconds=self.rules.cancel_delay(offer.provider)),
            "expires_at": expires_at,
            "updated_at": now,
        }
        if purchase.price is not None:
            values["upstream_price"] = str(purchase.price)
        async with self.db.write() as session:
            result = await session.execute(
                update(Activation)
                .where(Activation.id == activation_id, Activation.status.in_((BUYING, UNKNOWN)))
                .values(**values)
                .returning(
                    Activation.user_id,
                    Activation.price,
                    Activation.service,
                    Activation.country,
                    Activation.upstream_price,
                    Activation.rate,
                )
            )
            row = result.first()
            if row is not None:
                user_id, price, service, country, upstream, rate = row
                cost = _cost(upstream, rate)
                await self.notifier.emit(
                    session,
                    "purchase",
                    what=OtpGoods(service, country),
                    user=user_id,
                    price=price,
                    cost=cost,
                    profit=price - cost,
                    provider=offer.provider,
                )
        self.notifier.wake()
        activation = await self.get(activation_id)
        self.popular[activation.country] = self.popular.get(activation.country, 0) + 1
        log.info(
            "number bought",
            extra={
                "activation_id": activation_id,
                "provider": offer.provider,
                "country": activation.country,
                "service": activation.service,
                "price": activation.price,
            },
        )
        return activation

    # --- reading -------------------------------------------------------------------------

    async def get(self, activation_id: int) -> Activation:
        if not is_id(activation_id):  # a forged huge id would overflow the query
            raise NotFound()
        async with self.db.read() as session:
            activation = await session.get(Activation, activation_id)
        if activation is None:
            raise NotFound()
        return activation

    async def get_own(self, user_id: int, activation_id: int) -> Activation:
        activation = await self.get(activation_id)
        if activation.user_id != user_id:
            raise NotFound()
        return activation

    async def history(self, user_id: int, offset: int, limit: int) -> tuple[list[Activation], int]:
        async with self.db.read() as session:
            total = await session.scalar(
                select(func.count()).select_from(Activation).where(Activation.user_id == user_id)
            )
            rows = await session.execute(
                select(Activation)
                .where(Activation.user_id == user_id)
                .order_by(Activation.id.desc())
                .offset(offset)
                .limit(limit)
            )
            return list(rows.scalars()), int(total or 0)

    async def load_popularity(self) -> None:
        async with self.db.read() as session:
            rows = await session.execute(
                select(Activation.country, func.count())
                .where(Activation.status.in_((WAITING, RECEIVED, FINISHED)))
                .group_by(Activation.country)
            )
            self.popular = {country: int(count) for country, count in rows}

    async def attach_card(self, activation_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(Activation)
                .where(Activation.id == activation_id)
                .values(
                    card_chat_id=chat_id, card_message_id=message_id, card_updated_at=self.clock()
                )
            )

    def supports(self, activation: Activation, feature: str) -> bool:
        provider = self.providers.get(activation.provider or "")
        return bool(provider is not None and getattr(provider, f"supports_{feature}", False))

    # --- user actions --------------------------------------------------------------------

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

    async def _finish_upstream(self, activation: Activation) -> None:
        provider = self.providers.get(activation.provider or "")
        if provider is None:
            return
        await self._last_look(activation, provider)
        if not provider.supports_finish:
            return
        try:
            await provider.finish(activation.provider_order_id or "")
        except (NotSupported, InvalidState, OrderNotFound):
            pass  # ended upstream already: nothing to finish
        except ProviderError as exc:
            raise TryLater() from exc

    async def _last_look(self, activation: Activation, provider: OtpProvider) -> Activation:
        """Before a number is finished, cancelled at its deadline or asked for another SMS, a
        code that reached the upstream since the last poll is pushed: afterwards the upstream
        no longer shows it."""
        try:
            status = await provider.status(activation.provider_order_id or "")
        except OrderNotFound:
            return activation
        except ProviderError as exc:
            raise TryLater() from exc
        if _new_code(activation, status):
            return await self.apply_status(activation, status)
        return activation

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

    # --- state changes -------------------------------------------------------------------

    async def _close(
        self,
        activation_id: int,
        from_states: Sequence[str],
        to_state: str,
        *,
        refund: bool,
        reason: str | None = None,
        notify: bool = True,
    ) -> Activation:
        """Move to a final state; refund in the same transaction when goods were not delivered."""
        now = self.clock()
        language = None
        async with self.db.write() as session:
            result = await session.execute(
                update(Activation)
                .where(Activation.id == activation_id, Activation.status.in_(from_states))
                .values(status=to_state, fail_reason=reason, closed_at=now, updated_at=now)
                .returning(Activation.user_id, Activation.price)
            )
            row = result.first()
            if row is not None:
                user_id, price = row
                if refund:
                    done = await wallet.refund(
                        session,
                        user_id,
                        price,
                        key=f"refund:otp:{activation_id}",
                        ref=f"otp:{activation_id}",
                    )
                    if done.applied:
                        await self.notifier.emit(
                            session,
                            "refund",
                            user=user_id,
                            amount=price,
                            order=f"otp:{activation_id}",
                            reason=reason or to_state,
                        )
                language = await session.scalar(select(User.language).where(User.id == user_id))
                if notify and self.presenter is not None:
                    activation = await session.get(Activation, activation_id)
                    assert activation is not None
                    text = self.presenter.closed_text(activation, language or "en")
                    await outbox.enqueue(session, user_id, text, f"otp:{to_state}")
        self.notifier.wake()
        activation = await self.get(activation_id)
        if row is not None:
            log.info(
                "activation closed",
                extra={
                    "activation_id": activation_id,
                    "status": to_state,
                    "refund": refund,
                    "reason": reason,
                },
            )
            if notify:  # a scheduler's change; a user's own action is rendered by its handler
                self.kick_outbox()
                await self._refresh_card(activation, language)
        return activation

    async def apply_status(self, activation: Activation, status: OtpStatus) -> Activation:
        """What the upstream says about an order we know. A status that carries a code we have
        not shown is a delivered code, whatever its state word: the code is pushed, and an
        order the upstream has already ended is then finished (no refund)."""
        if _new_code(activation, status):
            updated = await self._code_arrived(activation, status)
            if status.state in (OtpState.CODE, OtpState.WAITING):
                return updated
            return await self._close(
                activation.id, (RECEIVED,), FINISHED, refund=False, notify=False
            )
        match status.state:
            case OtpState.CODE | OtpState.WAITING:
                return activation
            case OtpState.FINISHED | OtpState.CANCELLED | OtpState.EXPIRED if (
                activation.status == RECEIVED
            ):
                return await self._close(
                    activation.id, (RECEIVED,), FINISHED, refund=False, notify=False
                )
            case OtpState.CANCELLED:
                return await self._close(
                    activation.id,
                    (WAITING,),
                    CANCELLED,
                    refund=True,
                    reason=REASON_UPSTREAM_CANCELLED,
                )
            case _:
                return await self._close(
                    activation.id, (WAITING,), EXPIRED, refund=True, reason=REASON_TIMEOUT
                )

    async def _code_arrived(self, activation: Activation, status: OtpStatus) -> Activation:
        now = self.clock()
        language = None
        async with self.db.write() as session:
            result = await session.execute(
                update(Activation)
                .where(
                    Activation.id == activation.id,
                    Activation.status.in_(ACTIVE),
                    or_(Activation.code.is_(None), Activation.code != status.code),
                )
                .values(
                    status=RECEIVED,
                    code=status.code,
                    sms_text=status.text,
                    codes=Activation.codes + 1,
                    updated_at=now,
                )
                .returning(Activation.user_id)
            )
            row = result.first()
            if row is not None and self.presenter is not None:
                fresh = await session.get(Activation, activation.id)
                assert fresh is not None
                language = await session.scalar(select(User.language).where(User.id == row[0]))
                text = self.presenter.code_text(fresh, language or "en")
                await outbox.enqueue(session, row[0], text, "otp:code")
                await self.notifier.emit(
                    session,
                    "code",
                    order=f"otp:{activation.id}",
                    provider=activation.provider or "?",
                )
        updated = await self.get(activation.id)
        if row is not None:
            log.info("code received", extra={"activation_id": activation.id})
            self.kick_outbox()
            await self._refresh_card(updated, language)
        return updated

    async def _refresh_card(self, activation: Activation, language: str | None) -> None:
        if self.presenter is None or activation.card_message_id is None:
            return
        if language is None:
            async with self.db.read() as session:
                language = await session.scalar(
                    select(User.language).where(User.id == activation.user_id)
                )
        try:
            await self.presenter.refresh_card(activation, language or "en")
        except Exception:  # a card is cosmetic; money and codes never depend on it
            log.exception("card refresh failed", extra={"activation_id": activation.id})
            return
        async with self.db.write() as session:
            await session.execute(
                update(Activation)
                .where(Activation.id == activation.id)
                .values(card_updated_at=self.clock())
            )

    # --- the scheduler's side ------------------------------------------------------------

    async def stop(self) -> None:
        """Shutdown: no new rounds, and let a running one finish."""
        self._stopped = True
        async with self._poll_lock, self._reconcile_lock:
            pass

    async def poll(self) -> None:
        """One round over every active activation; runs never overlap."""
        if self._poll_lock.locked() or self._stopped:
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
            *(self.apply_status(a, listed[a.provider_order_id or ""]) for a in from_list),
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
        await self.apply_status(activation, status)

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

    async def reconcile(self) -> None:
        """Activations left 'buying' or 'unknown' (a crash, a lost answer): find the order
        upstream and adopt it, or refund when the provider has no such order."""
        if self._stopped or self._reconcile_lock.locked():
            return
        async with self._reconcile_lock:
            async with self.db.read() as session:
                rows = await session.execute(
                    select(Activation).where(Activation.status.in_((BUYING, UNKNOWN)))
                )
                pending = [a for a in rows.scalars() if a.id not in self._in_flight]
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
            if not await self._answers_recorded(set(self._asking)):
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

    async def _answers_recorded(self, buys: set[int], timeout_s: float = 60.0) -> bool:
        """Wait until these buys (in flight when the order list was read) have recorded their
        answers: until then an order of theirs in the list looks exactly like a lost one, and
        matching would hand one number to two activations."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while buys & self._asking:
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


def _new_code(activation: Activation, status: OtpStatus) -> bool:
    return bool(status.code) and status.code != activation.code


def _cost(upstream: str | None, rate: str | None) -> int:
    """The upstream price in store micro-units (rounded up), for reports."""
    if not upstream or not rate:
        return 0
    return ceil_micro(Decimal(upstream) * Decimal(rate))


def new_token() -> str:
    """A confirmation's idempotency token (in the Buy button's callback data)."""
    return secrets.token_urlsafe(6)
