"""Privacy retention: the phone numbers, SMS texts and codes of ended orders are erased after
RETENTION_DAYS (a daily job), or at once for a customer who asks (/forget). Money records stay:
amounts, times, services, the ledger. The outbox's sent messages (they repeat numbers and codes)
and the group's sent lines go with them: they are delivery records, not money."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models import Activation, Notification, OutboxMessage
from services.otp.common import CLOSED


@dataclass(frozen=True, slots=True)
class Erased:
    orders: int  # activations whose number, SMS and code were erased now
    messages: int  # sent outbox and group rows removed


def _rows(result: Any) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


async def _erase_orders(session: AsyncSession, now: datetime, *conditions: Any) -> int:
    result = await session.execute(
        update(Activation)
        .where(Activation.status.in_(CLOSED), Activation.erased_at.is_(None), *conditions)
        .values(phone=None, sms_text=None, code=None, erased_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rows(result)


class Retention:
    def __init__(
        self,
        db: Database,
        days: int | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.days = days
        self.clock = clock

    async def erase_old(self) -> Erased:
        """The daily job: what ended more than RETENTION_DAYS ago. Nothing when unset."""
        if self.days is None:
            return Erased(0, 0)
        now = self.clock()
        cutoff = now - timedelta(days=self.days)
        async with self.db.write() as session:
            orders = await _erase_orders(session, now, Activation.closed_at < cutoff)
            messages = _rows(
                await session.execute(delete(OutboxMessage).where(OutboxMessage.sent_at < cutoff))
            )
            messages += _rows(
                await session.execute(delete(Notification).where(Notification.sent_at < cutoff))
            )
        return Erased(orders, messages)

    async def forget(self, user_id: int) -> Erased:
        """/forget: the customer's own ended orders, now (open ones are left to finish)."""
        now = self.clock()
        async with self.db.write() as session:
            orders = await _erase_orders(session, now, Activation.user_id == user_id)
            messages = _rows(
                await session.execute(
                    delete(OutboxMessage).where(
                        OutboxMessage.chat_id == user_id, OutboxMessage.sent_at.is_not(None)
                    )
                )
            )
        return Erased(orders, messages)
