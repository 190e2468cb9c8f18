"""Telegram Stars top-ups: an invoice in XTR, the pre-checkout check, the credit once per
`telegram_payment_charge_id`, reconciliation with the bot's Star transactions, and an admin's
refund.

Money moves only here, each in one transaction with the `payments` row: the ledger key
`topup:stars:<charge id>` makes the credit happen once whoever delivers the payment (the
`successful_payment` update, a second delivery of it, or `reconcile()` after a crash that lost
the update). A refund debits first (`refund:stars:<charge id>`), then asks Telegram, and gives
the money back if Telegram refuses. Telegram is never called inside a transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal, Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import repositories as repo
from db.engine import Database
from db.models import LedgerEntry, Payment, utcnow
from services import outbox, wallet
from services.money import MICRO
from services.notifier import Notifier

log = logging.getLogger(__name__)

STARS = "stars"
XTR = "XTR"
MAX_STARS = 10_000  # Telegram's largest invoice in Stars
PAYLOAD_PREFIX = "topup:"
# An invoice nobody paid within this is `expired`: reconcile() stops asking Telegram about it. A
# pre-checkout for it makes it `pending` again (it can still be paid, and credited).
PENDING_REVIEW = timedelta(hours=1)
# Telegram's answer when the charge was refunded already: the refund happened, keep the debit.
ALREADY_REFUNDED = "CHARGE_ALREADY_REFUNDED"

# (user's language, amount credited, new balance) -> the notice text in that language
TopupNotice = Callable[[str, int, int], str]
Refusal = Literal["disabled", "banned", "range", "unknown"]


class StarsError(Exception):
    pass


class OutOfRange(StarsError):
    pass


class StarsDisabled(StarsError):
    pass


class ChargeNotFound(StarsError):
    pass


class RefundRefused(StarsError):
    """Telegram refused the refund; the debit was given back."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class StarsApiError(Exception):
    """What the bot layer raises when a Telegram call fails (`description` is Telegram's)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True, slots=True)
class StarTransaction:
    """An incoming Star payment as getStarTransactions lists it (its id is the charge id)."""

    id: str
    amount: int
    user_id: int
    payload: str


class StarsApi(Protocol):
    """The Telegram calls Stars need, given by the bot layer (no aiogram here)."""

    async def refund(self, user_id: int, charge_id: str) -> None:
        """refundStarPayment; raises StarsApiError."""

    async def transactions(self, offset: int, limit: int) -> Sequence[StarTransaction]:
        """getStarTransactions; raises StarsApiError."""


@dataclass(frozen=True, slots=True)
class StarsRules:
    enabled: bool
    rate: Decimal | None  # store-currency value of one Star
    min_amount: int  # micro-units of the store currency
    max_amount: int


@dataclass(frozen=True, slots=True)
class Quote:
    amount: int  # micro-units asked
    stars: int
    credit: int  # micro-units the stars are worth (>= amount)


@dataclass(frozen=True, slots=True)
class Invoice:
    payment_id: int
    payload: str
    quote: Quote


@dataclass(frozen=True, slots=True)
class Credited:
    applied: bool  # False: this charge was credited before, nothing changed
    amount: int = 0
    balance: int | None = None


@dataclass(frozen=True, slots=True)
class Refunded:
    user_id: int
    amount: int
    stars: int
    balance: int


def quote(amount: int, rate: Decimal) -> Quote:
    """Stars for `amount` micro-units, rounded up (never less than asked), and what they are
    worth, rounded down to the micro-unit."""
    stars = int((Decimal(amount) / (rate * MICRO)).to_integral_value(rounding=ROUND_CEILING))
    return Quote(amount, max(1, stars), worth(max(1, stars), rate))


def worth(stars: int, rate: Decimal) -> int:
    return int((stars * rate * MICRO).to_integral_value(rounding=ROUND_FLOOR))


def payment_id_of(payload: str) -> int | None:
    """`topup:<payments.id>` -> the id; None for any other payload."""
    if not payload.startswith(PAYLOAD_PREFIX):
        return None
    text = payload.removeprefix(PAYLOAD_PREFIX)
    if not text.isascii() or not text.isdigit() or len(text) > 9:  # fits 32-bit INTEGER
        return None
    return int(text)


def _key(charge_id: str) -> str:
    return f"topup:stars:{charge_id}"


def _refund_key(charge_id: str, attempt: int) -> str:
    return f"refund:stars:{charge_id}" if attempt <= 1 else f"refund:stars:{charge_id}:{attempt}"


class StarsPayments:
    def __init__(
        self,
        db: Database,
        rules: StarsRules,
        *,
        notice: TopupNotice,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.rules = rules
        self.notice = notice
        self.notifier = notifier or Notifier()
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.rules.enabled and self.rules.rate is not None

    def in_range(self, amount: int) -> bool:
        return self.rules.min_amount <= amount <= self.rules.max_amount

    def quote(self, amount: int) -> Quote:
        if not self.enabled or self.rules.rate is None:
            raise StarsDisabled
        if not self.in_range(amount):
            raise OutOfRange(amount)
        result = quote(amount, self.rules.rate)
        if result.stars > MAX_STARS:
            raise OutOfRange(amount)
        return result

    async def create_invoice(self, user_id: int, amount: int) -> Invoice:
        """The `payments` row of an invoice about to be sent; its id is the invoice payload."""
        offer = self.quote(amount)
        now = self.clock()
        async with self.db.write() as session:
            payment = Payment(
                user_id=user_id,
                method=STARS,
                amount=offer.amount,
                price=str(offer.stars),
                currency=XTR,
                rate=str(self.rules.rate),
                status="pending",
                refund_attempts=0,
                created_at=now,
                updated_at=now,
            )
            session.add(payment)
            await session.flush()
            return Invoice(payment.id, f"{PAYLOAD_PREFIX}{payment.id}", offer)

    async def check(
        self, *, user_id: int, banned: bool, payload: str, currency: str, total: int
    ) -> Refusal | None:
        """The pre-checkout answer: None to accept, else why not."""
        if not self.enabled:
            return "disabled"
        if banned:
            return "banned"
        payment_id = payment_id_of(payload)
        if currency != XTR or payment_id is None:
            return "unknown"
        async with self.db.read() as session:
            payment = await session.get(Payment, payment_id)
        if payment is None or payment.user_id != user_id or payment.method != STARS:
            return "unknown"
        if payment.status not in ("pending", "expired") or str(total) != payment.price:
            return "unknown"
        if not self.in_range(payment.amount):
            return "range"
        if payment.status == "expired":
            await self._rearm(payment.id)
        return None

    async def _rearm(self, payment_id: int) -> None:
        """An expired invoice about to be paid: pending again, so that reconcile() looks for
        its payment if the update gets lost."""
        async with self.db.write() as session:
            await session.execute(
                update(Payment)
                .where(Payment.id == payment_id, Payment.status == "expired")
                .values(status="pending", updated_at=self.clock())
                .execution_options(synchronize_session=False)
            )

    async def credit(self, *, user_id: int, charge_id: str, stars: int, payload: str) -> Credited:
        """Credit a paid charge once: the ledger row, the `payments` row, the customer's notice
        and the group's line, in one transaction."""
        if stars <= 0 or not charge_id:
            raise ValueError("a paid charge has an id and a positive amount")
        now = self.clock()
        async with self.db.write() as session:
            payment = await self._payment_for(session, payload, user_id)
            rate = Decimal(payment.rate) if payment is not None else self.rules.rate
            if rate is None:
                log.error("stars payment with no rate to value it", extra={"charge": charge_id})
                return Credited(applied=False)
            amount = worth(stars, rate)
            result = await wallet.credit(
                session,
                user_id,
                amount,
                reason="topup",
                key=_key(charge_id),
                ref=f"payment:{payment.id}" if payment is not None else None,
                comment="Telegram Stars",
            )
            if not result.applied or result.balance is None:
                return Credited(applied=False)
            await self._mark_paid(session, payment, user_id, charge_id, stars, rate, amount, now)
            user = await repo.get_user(session, user_id)
            language = user.language if user is not None else "en"
            await outbox.enqueue(
                session, user_id, self.notice(language, amount, result.balance), "topup"
            )
            await self.notifier.emit(
                session, "payment", method="Telegram Stars", amount=amount, user=user_id
            )
            return Credited(applied=True, amount=amount, balance=result.balance)

    async def _payment_for(
        self, session: AsyncSession, payload: str, user_id: int
    ) -> Payment | None:
        payment_id = payment_id_of(payload)
        if payment_id is None:
            return None
        payment = await session.get(Payment, payment_id)
        if payment is None or payment.user_id != user_id or payment.method != STARS:
            return None
        return payment

    async def _mark_paid(
        self,
        session: AsyncSession,
        payment: Payment | None,
        user_id: int,
        charge_id: str,
        stars: int,
        rate: Decimal,
        amount: int,
        now: datetime,
    ) -> None:
        """The invoice's row becomes paid; a payment with no open row of its own (its invoice
        was paid before, or the payload is not ours) gets a row."""
        if payment is not None:
            moved = await session.execute(
                update(Payment)
                .where(Payment.id == payment.id, Payment.status.in_(("pending", "expired")))
                .values(
                    status="paid",
                    external_id=charge_id,
                    credited=amount,
                    price=str(stars),
                    paid_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if moved.rowcount == 1:  # type: ignore[attr-defined]
                return
        session.add(
            Payment(
                user_id=user_id,
                method=STARS,
                external_id=charge_id,
                amount=amount,
                credited=amount,
                price=str(stars),
                currency=XTR,
                rate=str(rate),
                status="paid",
                refund_attempts=0,
                created_at=now,
                updated_at=now,
                paid_at=now,
            )
        )

    async def reconcile(self, api: StarsApi, page: int = 100, max_pages: int = 10) -> int:
        """Credit the payments whose update was lost (the bot died after Telegram had handed it
        over): the bot's Star transactions paying an invoice still pending. Returns how many
        were credited now. Nothing pending: no call at all; invoices pending longer than
        PENDING_REVIEW expire."""
        since = self.clock() - PENDING_REVIEW
        async with self.db.read() as session:
            pending = set(
                (
                    await session.scalars(
                        select(Payment.id).where(
                            Payment.method == STARS,
                            Payment.status == "pending",
                            Payment.updated_at >= since,
                        )
                    )
                ).all()
            )
        if not pending:
            return 0
        credited = 0
        for number in range(max_pages):
            transactions = await api.transactions(number * page, page)
            for tx in transactions:
                payment_id = payment_id_of(tx.payload)
                if payment_id not in pending or tx.amount <= 0:
                    continue
                done = await self.credit(
                    user_id=tx.user_id, charge_id=tx.id, stars=tx.amount, payload=tx.payload
                )
                credited += done.applied
            if len(transactions) < page:
                break
        await self._expire(since)
        return credited

    async def _expire(self, before: datetime) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(Payment)
                .where(
                    Payment.method == STARS,
                    Payment.status == "pending",
                    Payment.updated_at < before,
                )
                .values(status="expired", updated_at=self.clock())
                .execution_options(synchronize_session=False)
            )

    async def refund(self, charge_id: str, *, admin_id: int, api: StarsApi) -> Refunded:
        """An admin's refund of a charge: take the credited amount back (refused, raising
        wallet.InsufficientFunds, when the balance no longer covers it), then refundStarPayment.
        If Telegram refuses, the money is given back (RefundRefused); if it says the charge was
        refunded already, the debit stands, once. Raises ChargeNotFound, or
        wallet.DuplicateOperation when the charge is refunded already."""
        payment, attempt, balance = await self._take_back(charge_id, admin_id)
        try:
            await api.refund(payment.user_id, charge_id)
        except StarsApiError as exc:
            if ALREADY_REFUNDED not in exc.description:
                await self._give_back(payment, charge_id, attempt, admin_id)
                raise RefundRefused(exc.description) from None
        amount = payment.credited or 0
        await self._refunded(payment, admin_id, amount)
        return Refunded(payment.user_id, amount, int(payment.price), balance)

    async def _take_back(self, charge_id: str, admin_id: int) -> tuple[Payment, int, int]:
        """(the payment, the refund attempt, the balance after). A payment left `refunding`
        (the bot stopped before Telegram answered) is asked again without a second debit."""
        now = self.clock()
        async with self.db.write() as session:
            payment = await session.scalar(
                select(Payment).where(Payment.method == STARS, Payment.external_id == charge_id)
            )
            if payment is None or not payment.credited:
                raise ChargeNotFound(charge_id)
            if payment.status == "refunded":
                raise wallet.DuplicateOperation(charge_id)
            if payment.status == "refunding":
                return (
                    payment,
                    payment.refund_attempts,
                    await wallet.balance(session, payment.user_id),
                )
            attempt = payment.refund_attempts + 1
            moved = await session.execute(
                update(Payment)
                .where(Payment.id == payment.id, Payment.status == "paid")
                .values(status="refunding", refund_attempts=attempt, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                raise wallet.DuplicateOperation(charge_id)
            balance = await wallet.debit(
                session,
                payment.user_id,
                payment.credited,
                reason="stars_refund",
                key=_refund_key(charge_id, attempt),
                ref=f"payment:{payment.id}",
                admin_id=admin_id,
            )
            return payment, attempt, balance

    async def _give_back(
        self, payment: Payment, charge_id: str, attempt: int, admin_id: int
    ) -> None:
        async with self.db.write() as session:
            taken = await session.scalar(
                select(LedgerEntry.delta).where(
                    LedgerEntry.idempotency_key == _refund_key(charge_id, attempt)
                )
            )
            if taken is not None and taken < 0:
                await wallet.credit(
                    session,
                    payment.user_id,
                    -taken,
                    reason="stars_refund_failed",
                    key=f"{_refund_key(charge_id, attempt)}:returned",
                    ref=f"payment:{payment.id}",
                    admin_id=admin_id,
                )
            await session.execute(
                update(Payment)
                .where(Payment.id == payment.id, Payment.status == "refunding")
                .values(status="paid", updated_at=self.clock())
                .execution_options(synchronize_session=False)
            )

    async def _refunded(self, payment: Payment, admin_id: int, amount: int) -> None:
        now = self.clock()
        async with self.db.write() as session:
            await session.execute(
                update(Payment)
                .where(Payment.id == payment.id, Payment.status == "refunding")
                .values(status="refunded", refunded_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            await self.notifier.emit(
                session,
                "stars-refund",
                amount=amount,
                stars=int(payment.price),
                user=payment.user_id,
                admin=admin_id,
            )
