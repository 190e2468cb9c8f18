"""CSV exports for the shop owner (/export): the ledger, the orders, the payments.

UTF-8, one header row, money as decimal strings in the store currency, times in UTC ISO 8601.
Rows are read in batches from a server-side cursor and written to a file as they come, so a
year of a busy shop never sits in memory; the caller sends the file and removes it."""

from __future__ import annotations

import asyncio
import csv
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Select, String, and_, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models import Activation, LedgerEntry, Payment, SmmOrder
from services.money import MICRO

KINDS = ("ledger", "orders", "payments")
BATCH = 1000


class BadPeriod(ValueError):
    """A date that is not YYYY-MM-DD, or an end before the start."""


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive

    def where(self, column: Any) -> Any:
        bounds = []
        if self.start is not None:
            bounds.append(column >= self.start)
        if self.end is not None:
            bounds.append(column < self.end)
        return and_(*bounds) if bounds else True


def parse_period(words: Sequence[str]) -> Period:
    """`[from] [to]` as UTC days, both included: `2026-01-01 2026-01-31` is all of January."""
    if len(words) > 2:
        raise BadPeriod(" ".join(words))
    days = [_day(word) for word in words]
    start = _midnight(days[0]) if days else None
    end = _midnight(days[1] + timedelta(days=1)) if len(days) == 2 else None
    if start is not None and end is not None and end <= start:
        raise BadPeriod(" ".join(words))
    return Period(start, end)


def _day(word: str) -> date:
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise BadPeriod(word) from None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def money(micro: int | None) -> str:
    """Micro-units as a decimal string: `5.00`, `0.355011`, `-0.18` (at least two places)."""
    if micro is None:
        return ""
    value = (Decimal(micro) / MICRO).quantize(Decimal("0.000001"))
    text = format(value.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


Row = Sequence[Any]
AnySelect = Select[*tuple[Any, ...]]
Query = tuple[AnySelect, Callable[[Any], Row]]  # the rows, and a row of the CSV from one

LEDGER_HEADER = (
    "id", "time", "user_id", "amount", "reason", "ref", "key", "admin_id", "comment",
)  # fmt: skip
ORDERS_HEADER = (
    "kind", "id", "time", "user_id", "status", "item", "quantity", "provider",
    "provider_order_id", "price", "refunded", "closed",
)  # fmt: skip
PAYMENTS_HEADER = (
    "id", "time", "user_id", "method", "external_id", "amount", "credited", "status",
    "paid", "refunded",
)  # fmt: skip


def _ledger(period: Period) -> list[Query]:
    def row(e: LedgerEntry) -> Row:
        return (
            e.id, when(e.created_at), e.user_id, money(e.delta), e.reason, e.ref or "",
            e.idempotency_key, e.admin_id or "", e.comment or "",
        )  # fmt: skip

    query = select(LedgerEntry).where(period.where(LedgerEntry.created_at))
    return [(query.order_by(LedgerEntry.id), row)]


def _otp_refunds() -> Any:
    """What each OTP order got back, from the ledger (an activation keeps no such column):
    one grouped pass, joined by the ledger's `ref` (`otp:<id>`)."""
    return (
        select(LedgerEntry.ref.label("ref"), func.sum(LedgerEntry.delta).label("amount"))
        .where(LedgerEntry.reason == "refund", LedgerEntry.ref.like("otp:%"))
        .group_by(LedgerEntry.ref)
        .subquery()
    )


def _orders(period: Period) -> list[Query]:
    def otp_row(found: Any) -> Row:
        a: Activation = found[0]
        return (
            "otp", a.id, when(a.created_at), a.user_id, a.status, f"{a.country}/{a.service}",
            1, a.provider or "", a.provider_order_id or "", money(a.price), money(found[1]),
            when(a.closed_at),
        )  # fmt: skip

    def smm_row(found: Any) -> Row:
        o: SmmOrder = found[0]
        return (
            "smm", o.id, when(o.created_at), o.user_id, o.status, o.service_name, o.quantity,
            o.provider, o.provider_order_id or "", money(o.price), money(found[1]),
            when(o.closed_at),
        )  # fmt: skip

    refunds = _otp_refunds()
    ref = literal("otp:", String) + cast(Activation.id, String)
    otp: AnySelect = (
        select(Activation, func.coalesce(refunds.c.amount, 0))
        .outerjoin(refunds, refunds.c.ref == ref)
        .where(period.where(Activation.created_at))
        .order_by(Activation.id)
    )
    smm: AnySelect = (
        select(SmmOrder, SmmOrder.refunded)
        .where(period.where(SmmOrder.created_at))
        .order_by(SmmOrder.id)
    )
    return [(otp, otp_row), (smm, smm_row)]


def _payments(period: Period) -> list[Query]:
    def row(p: Payment) -> Row:
        return (
            p.id, when(p.created_at), p.user_id, p.method, p.external_id or "", money(p.amount),
            money(p.credited), p.status, when(p.paid_at), when(p.refunded_at),
        )  # fmt: skip

    query = select(Payment).where(period.where(Payment.created_at)).order_by(Payment.id)
    return [(query, row)]


SOURCES: dict[str, tuple[Sequence[str], Callable[[Period], list[Query]]]] = {
    "ledger": (LEDGER_HEADER, _ledger),
    "orders": (ORDERS_HEADER, _orders),
    "payments": (PAYMENTS_HEADER, _payments),
}


async def _batches(
    session: AsyncSession, query: AnySelect, scalar: bool
) -> AsyncIterator[list[Any]]:
    result = await session.stream(query.execution_options(yield_per=BATCH))
    async for partition in result.partitions(BATCH):
        yield [found[0] for found in partition] if scalar else list(partition)


def _open_temp() -> IO[str]:
    return tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", newline="", suffix=".csv", delete=False
    )


def _discard(handle: IO[str]) -> None:
    handle.close()
    Path(handle.name).unlink(missing_ok=True)


class ExportInterrupted(Exception):
    """The bot is shutting down: the export was abandoned (its file removed)."""


async def export(
    db: Database, kind: str, period: Period, stopping: threading.Event | None = None
) -> tuple[Path, int]:
    """Write the CSV of `kind` (one of KINDS) for the period to a temporary file: its path and
    the number of data rows. The caller removes the file. File writes go to a thread, a batch
    at a time, so the event loop never waits on the disk."""
    header, queries = SOURCES[kind]
    handle = await asyncio.to_thread(_open_temp)
    writer = csv.writer(handle)
    count = 0
    try:
        await asyncio.to_thread(writer.writerow, header)
        async with db.read() as session:
            for query, to_row in queries(period):
                scalar = len(query.column_descriptions) == 1
                async for batch in _batches(session, query, scalar):
                    if stopping is not None and stopping.is_set():
                        raise ExportInterrupted(f"{count} rows written")
                    await asyncio.to_thread(writer.writerows, [to_row(f) for f in batch])
                    count += len(batch)
        await asyncio.to_thread(handle.close)
    except BaseException:
        await asyncio.to_thread(_discard, handle)
        raise
    return Path(handle.name), count


class Exporter:
    """The database's exports, for the handlers (which never see the database). `stopping`
    (the bot shutting down) abandons an export between two batches: ExportInterrupted."""

    def __init__(self, db: Database, stopping: threading.Event | None = None) -> None:
        self.db = db
        self.stopping = stopping

    async def export(self, kind: str, period: Period) -> tuple[Path, int]:
        return await export(self.db, kind, period, self.stopping)
