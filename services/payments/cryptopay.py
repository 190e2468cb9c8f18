"""Crypto Pay (@CryptoBot) top-ups: an invoice in the store currency, paid in crypto, credited
once per invoice id (`topup:cryptopay:<invoice_id>`), found paid by polling `getInvoices` (the
`cryptopay-poll` job, under a lease) and, with WEBHOOK_URL, by Crypto Pay's signed webhook.

The amount credited is always the `payments` row's own (what the customer asked, in micro-units
of the store currency), never an amount read from Crypto Pay. Crypto Pay is never called inside
a database transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import repositories as repo
from db.engine import Database
from db.models import Payment, utcnow
from services import outbox, wallet
from services.money import CENT, MICRO
from services.notifier import Notifier
from services.payments.stars import PAYLOAD_PREFIX, TopupNotice

log = logging.getLogger(__name__)

CRYPTOPAY = "cryptopay"
SIGNATURE_HEADER = "crypto-pay-api-signature"
IDS_PER_CALL = 100  # getInvoices' invoice_ids, per request
RECENT_INVOICES = 1000  # getInvoices' largest page: where a lost createInvoice answer is sought
EXPIRY_MARGIN = timedelta(minutes=5)  # a row with no invoice id is given up after ttl + this


class CryptoPayError(Exception):
    """Crypto Pay could not be reached or refused the call."""


class CryptoPayDisabled(CryptoPayError):
    pass


class OutOfRange(CryptoPayError):
    pass


@dataclass(frozen=True, slots=True)
class CryptoInvoice:
    invoice_id: int
    status: str  # active, paid, expired
    pay_url: str
    payload: str | None = None


class CryptoPayApi(Protocol):
    async def create_invoice(
        self,
        *,
        amount: Decimal,
        fiat: str,
        assets: Sequence[str],
        description: str,
        payload: str,
        expires_in: int,
    ) -> CryptoInvoice:
        """createInvoice in a fiat currency; raises CryptoPayError."""

    async def get_invoices(self, invoice_ids: Sequence[int]) -> Sequence[CryptoInvoice]:
        """getInvoices for these ids; raises CryptoPayError."""

    async def recent_invoices(self, count: int) -> Sequence[CryptoInvoice]:
        """getInvoices without ids: the app's latest `count`; raises CryptoPayError."""

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CryptoPayRules:
    token: str  # the app's API token: the webhook's signature key is its SHA-256
    currency: str  # STORE_CURRENCY, the invoice's fiat
    assets: tuple[str, ...]  # accepted assets; empty = every asset Crypto Pay has
    invoice_ttl_s: int
    min_amount: int
    max_amount: int


@dataclass(frozen=True, slots=True)
class CryptoTopup:
    payment_id: int
    amount: int
    pay_url: str


def signature_ok(token: str, body: bytes, signature: str | None) -> bool:
    """Crypto Pay's webhook signature: hex HMAC-SHA-256 of the raw body, keyed with the
    SHA-256 of the app's token."""
    if not signature:
        return False
    key = hashlib.sha256(token.encode()).digest()
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def _key(invoice_id: int | str) -> str:
    return f"topup:cryptopay:{invoice_id}"


class CryptoPayPayments:
    def __init__(
        self,
        db: Database,
        rules: CryptoPayRules | None,
        api: CryptoPayApi | None,
        *,
        notice: TopupNotice,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.rules = rules
        self.api = api
        self.notice = notice
        self.notifier = notifier or Notifier()
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.rules is not None and self.api is not None

    def in_range(self, amount: int) -> bool:
        return self.rules is not None and (
            self.rules.min_amount <= amount <= self.rules.max_amount
        )

    async def create_invoice(self, user_id: int, amount: int, description: str) -> CryptoTopup:
        """The row, then createInvoice, then the row gets the invoice id and the pay link.
        The amount is taken up to the cent (an invoice shows cents)."""
        rules, api = self.rules, self.api
        if rules is None or api is None:
            raise CryptoPayDisabled
        amount = -(-amount // CENT) * CENT
        if not self.in_range(amount):
            raise OutOfRange(amount)
        now = self.clock()
        async with self.db.write() as session:
            payment = Payment(
                user_id=user_id,
                method=CRYPTOPAY,
                amount=amount,
                price=str(Decimal(amount) / MICRO),
                currency=rules.currency,
                rate="1",
                status="pending",
                refund_attempts=0,
                created_at=now,
                updated_at=now,
            )
            session.add(payment)
            await session.flush()
            payment_id = payment.id
        invoice = await api.create_invoice(
            amount=Decimal(amount) / MICRO,
            fiat=rules.currency,
            assets=rules.assets,
            description=description,
            payload=f"{PAYLOAD_PREFIX}{payment_id}",
            expires_in=rules.invoice_ttl_s,
        )
        async with self.db.write() as session:
            await session.execute(
                update(Payment)
                .where(Payment.id == payment_id)
                .values(
                    external_id=str(invoice.invoice_id),
                    pay_url=invoice.pay_url,
                    updated_at=self.clock(),
                )
                .execution_options(synchronize_session=False)
            )
        return CryptoTopup(payment_id, amount, invoice.pay_url)

    async def credit(self, invoice_id: int, payload: str | None = None) -> bool:
        """Credit a paid invoice once: ledger, row, notice and group line in one transaction.
        False: not ours, or credited before. `payload` finds the row of an invoice whose
        createInvoice answer was lost (the row never learnt the invoice id)."""
        now = self.clock()
        async with self.db.write() as session:
            payment = await self._row(session, invoice_id, payload)
            if payment is None:
                log.warning("cryptopay: paid invoice unknown here", extra={"invoice": invoice_id})
                return False
            result = await wallet.credit(
                session,
                payment.user_id,
                payment.amount,
                reason="topup",
                key=_key(invoice_id),
                ref=f"payment:{payment.id}",
                comment="Crypto Pay",
            )
            if not result.applied or result.balance is None:
                return False
            await session.execute(
                update(Payment)
                .where(Payment.id == payment.id)
                .values(status="paid", credited=payment.amount, paid_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            user = await repo.get_user(session, payment.user_id)
            language = user.language if user is not None else "en"
            text = self.notice(language, payment.amount, result.balance)
            await outbox.enqueue(session, payment.user_id, text, "topup")
            await self.notifier.emit(
                session,
                "payment",
                method="Crypto Pay",
                amount=payment.amount,
                user=payment.user_id,
            )
            return True

    async def _row(
        self, session: AsyncSession, invoice_id: int, payload: str | None = None
    ) -> Payment | None:
        payment = await session.scalar(
            select(Payment).where(
                Payment.method == CRYPTOPAY, Payment.external_id == str(invoice_id)
            )
        )
        payment_id = _payment_id(payload)
        if payment is not None or payment_id is None:
            return payment
        adopted = await session.execute(
            update(Payment)
            .where(
                Payment.id == payment_id,
                Payment.method == CRYPTOPAY,
                Payment.external_id.is_(None),
            )
            .values(external_id=str(invoice_id), updated_at=self.clock())
            .execution_options(synchronize_session=False)
        )
        if not adopted.rowcount:  # type: ignore[attr-defined]
            return None
        log.warning("cryptopay: invoice found by its payload", extra={"invoice": invoice_id})
        return await session.get(Payment, payment_id, populate_existing=True)

    async def poll(self) -> int:
        """Ask Crypto Pay about every pending invoice (webhooks get lost, so this runs also
        with the webhook on): paid ones are credited, expired ones closed. Returns how many
        were credited now."""
        if self.api is None or self.rules is None:
            return 0
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    select(Payment.id, Payment.external_id, Payment.created_at).where(
                        Payment.method == CRYPTOPAY, Payment.status == "pending"
                    )
                )
            ).all()
        ids = [int(row.external_id) for row in rows if row.external_id]
        credited = 0
        for start in range(0, len(ids), IDS_PER_CALL):
            for invoice in await self.api.get_invoices(ids[start : start + IDS_PER_CALL]):
                credited += await self._settle(invoice)
        unanswered = {row.id: row.created_at for row in rows if not row.external_id}
        if unanswered:  # createInvoice's answer was lost: the invoice may exist all the same
            for invoice in await self.api.recent_invoices(RECENT_INVOICES):
                payment_id = _payment_id(invoice.payload)
                if payment_id in unanswered and invoice.status != "active":
                    del unanswered[payment_id]
                    credited += await self._settle(invoice)
                elif payment_id is not None and payment_id in unanswered:
                    del unanswered[payment_id]
                    await self._adopt(payment_id, invoice)
        give_up = self.clock() - timedelta(seconds=self.rules.invoice_ttl_s) - EXPIRY_MARGIN
        for payment_id, created_at in unanswered.items():  # no invoice was made: none to pay
            if created_at < give_up:
                await self._close(payment_id=payment_id)
        return credited

    async def _settle(self, invoice: CryptoInvoice) -> int:
        """A paid invoice credited, an expired one closed: 1 when credited now."""
        if invoice.status == "paid":
            return int(await self.credit(invoice.invoice_id, invoice.payload))
        if invoice.status == "expired":
            async with self.db.write() as session:  # a lost answer's row learns its id first
                await self._row(session, invoice.invoice_id, invoice.payload)
            await self._close(external_id=str(invoice.invoice_id))
        return 0

    async def _adopt(self, payment_id: int, invoice: CryptoInvoice) -> None:
        """The row of a still payable invoice learns its id (and the pay link, for /payments)."""
        async with self.db.write() as session:
            await session.execute(
                update(Payment)
                .where(Payment.id == payment_id, Payment.external_id.is_(None))
                .values(
                    external_id=str(invoice.invoice_id),
                    pay_url=invoice.pay_url,
                    updated_at=self.clock(),
                )
                .execution_options(synchronize_session=False)
            )

    async def _close(
        self, *, external_id: str | None = None, payment_id: int | None = None
    ) -> None:
        condition = (
            Payment.external_id == external_id
            if external_id is not None
            else Payment.id == payment_id
        )
        async with self.db.write() as session:
            await session.execute(
                update(Payment)
                .where(Payment.method == CRYPTOPAY, Payment.status == "pending", condition)
                .values(status="expired", updated_at=self.clock())
                .execution_options(synchronize_session=False)
            )

    async def webhook(self, body: bytes, signature: str | None) -> int:
        """Crypto Pay's POST: the HTTP status to answer. A bad signature is 401 and changes
        nothing; a paid invoice is credited (once); anything else is acknowledged."""
        if self.rules is None or not signature_ok(self.rules.token, body, signature):
            return 401
        try:
            update_ = json.loads(body)
            invoice = update_["payload"]
            invoice_id = int(invoice["invoice_id"])
            status = invoice.get("status")
            payload = invoice.get("payload")
        except (ValueError, KeyError, TypeError):
            return 400
        if update_.get("update_type") == "invoice_paid" and status == "paid":
            await self.credit(invoice_id, payload if isinstance(payload, str) else None)
        return 200

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()


def _payment_id(payload: str | None) -> int | None:
    """Our row's id from an invoice's payload (`topup:<id>`), if it is one of ours."""
    if not payload or not payload.startswith(PAYLOAD_PREFIX):
        return None
    digits = payload[len(PAYLOAD_PREFIX) :]
    return int(digits) if digits.isdigit() and len(digits) < 19 else None
