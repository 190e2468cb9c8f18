"""The proofs channel (PROOFS_CHAT_ID): delivered codes shown to prospective customers as masked
lines ("🇷🇺 Telegram · +7 900 ***-**-12 · code in 14 s"), merged into at most one post a
minute. Never the code, never the customer.

A job in one process at a time posts what arrived since the last post: the activations whose
first code came after a watermark (`code_at`, then id) kept in `shop_flags`, moved on only after
Telegram took the post (a crash in between posts those lines again, never loses them)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models import Activation, ShopFlag, utcnow
from db.upsert import upsert
from services.outbox import SendResult, SendStatus

log = logging.getLogger(__name__)

WATERMARK = "proofs-after"  # shop_flags: "<iso time of code_at>|<activation id>"
EVERY = timedelta(minutes=1)  # at most one post a minute
MAX_LINES = 40  # per post; the rest waits for the next minute
MAX_TEXT = 4096


@dataclass(frozen=True, slots=True)
class Proof:
    country: str
    service: str
    phone: str  # masked
    seconds: int  # from the purchase to the code


Line = Callable[[Proof], str]  # the bot layer's text for one proof, in the shop's language
Send = Callable[[str], Awaitable[SendResult]]


def mask_phone(phone: str) -> str:
    """+7 900 ***-**-12: the country code and the first digits of the number, the last two;
    never enough to call or find the customer."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 9:
        return "***"
    head, tail = digits[: len(digits) - 7], digits[-2:]
    return f"+{head[:-3]} {head[-3:]} ***-**-{tail}"


def _parse(value: str | None) -> tuple[datetime, int] | None:
    if not value or "|" not in value:
        return None
    moment, _, row_id = value.partition("|")
    try:
        return datetime.fromisoformat(moment), int(row_id)
    except ValueError:
        return None


class Proofs:
    def __init__(
        self,
        db: Database,
        send: Send,
        line: Line,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.send = send
        self.line = line
        self.clock = clock
        self._posted_at: datetime | None = None

    async def post(self) -> int:
        """One merged post of the codes delivered since the last one: how many lines."""
        now = self.clock()
        if self._posted_at is not None and now - self._posted_at < EVERY:
            return 0
        async with self.db.read() as session:
            value = await session.scalar(select(ShopFlag.value).where(ShopFlag.name == WATERMARK))
            mark = _parse(value)
            rows = [] if mark is None else await _delivered_after(session, *mark)
        if mark is None:  # just turned on: from now on, not the shop's whole history
            await self._mark(now, 0)
            return 0
        if not rows:
            return 0
        lines = [self.line(_proof(row)) for row in rows]
        result = await self.send("\n".join(lines)[:MAX_TEXT])
        if result.status is not SendStatus.SENT:
            log.warning("proofs post not sent", extra={"status": str(result.status)})
            return 0
        last = rows[-1]
        await self._mark(last.code_at, last.id)
        self._posted_at = now
        return len(lines)

    async def _mark(self, at: datetime, row_id: int) -> None:
        async with self.db.write() as session:
            await upsert(
                session,
                ShopFlag,
                {"name": WATERMARK, "value": f"{at.isoformat()}|{row_id}", "updated_at": utcnow()},
                keys=["name"],
                update=["value", "updated_at"],
            )


async def _delivered_after(session: AsyncSession, at: datetime, row_id: int) -> list[Any]:
    """The activations whose first code came after (at, row_id), oldest first, a post's worth."""
    query = (
        select(
            Activation.id,
            Activation.country,
            Activation.service,
            Activation.phone,
            Activation.created_at,
            Activation.code_at,
        )
        .where(
            Activation.code_at.is_not(None),
            or_(
                Activation.code_at > at,
                and_(Activation.code_at == at, Activation.id > row_id),
            ),
        )
        .order_by(Activation.code_at, Activation.id)
        .limit(MAX_LINES)
    )
    return list((await session.execute(query)).all())


def _proof(row: Any) -> Proof:
    seconds = max(0, int((row.code_at - row.created_at).total_seconds()))
    return Proof(row.country, row.service, mask_phone(row.phone or ""), seconds)
