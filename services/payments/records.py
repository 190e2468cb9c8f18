"""The `payments` rows as admins read them (/payments), and "Check now": the payment system
asked again about one payment (webhooks and updates get lost)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from db import repositories as repo
from db.engine import Database
from db.models import Payment
from services.payments.cryptopay import CRYPTOPAY, CryptoPayPayments
from services.payments.stars import STARS, StarsApi, StarsPayments
from services.wallet import UserNotFound


@dataclass(frozen=True, slots=True)
class PaymentLine:
    id: int
    user_id: int
    method: str
    amount: int
    credited: int | None
    status: str
    external_id: str | None
    created_at: datetime


def payment_line(payment: Payment) -> PaymentLine:
    return PaymentLine(
        payment.id,
        payment.user_id,
        payment.method,
        payment.amount,
        payment.credited,
        payment.status,
        payment.external_id,
        payment.created_at,
    )


class PaymentsBook:
    def __init__(self, db: Database, stars: StarsPayments, cryptopay: CryptoPayPayments) -> None:
        self.db = db
        self.stars = stars
        self.cryptopay = cryptopay

    async def recent(self, user: str | None = None, limit: int = 15) -> list[PaymentLine]:
        """The last `limit` payments, of one user (id or @name) or everyone's. Raises
        UserNotFound, repo.AmbiguousUser."""
        async with self.db.read() as session:
            query = select(Payment).order_by(Payment.id.desc()).limit(limit)
            if user is not None:
                found = await repo.find_user(session, user)
                if found is None:
                    raise UserNotFound(user)
                query = query.where(Payment.user_id == found.id)
            return [payment_line(p) for p in (await session.scalars(query)).all()]

    async def get(self, payment_id: int) -> PaymentLine | None:
        async with self.db.read() as session:
            payment = await session.get(Payment, payment_id)
            return payment_line(payment) if payment is not None else None

    async def check(self, payment_id: int, stars_api: StarsApi) -> PaymentLine | None:
        """Ask the payment system about a pending payment now: credited if it was paid. Raises
        CryptoPayError or StarsApiError when the system cannot be asked."""
        line = await self.get(payment_id)
        if line is None or line.status != "pending":
            return line
        if line.method == CRYPTOPAY and line.external_id and self.cryptopay.api is not None:
            for invoice in await self.cryptopay.api.get_invoices([int(line.external_id)]):
                if invoice.status == "paid":
                    await self.cryptopay.credit(invoice.invoice_id)
                elif invoice.status == "expired":
                    await self.cryptopay.poll()  # closes it
        elif line.method == CRYPTOPAY:  # createInvoice's answer was lost: the poll seeks it
            await self.cryptopay.poll()
        elif line.method == STARS:
            await self.stars.reconcile(stars_api)
        return await self.get(payment_id)
