"""Prometheus metrics (METRICS_LISTEN; bot/metrics_server.py serves them) and the health check.

Two kinds: what this process does, counted as it happens (updates and handler latency, provider
requests, code delivery latency), and the shop's state read from the database when scraped
(orders by kind and status, outbox and group backlogs, wallet operations by reason, payments by
method and status; the same in every process, labelled `scope="shop"` in the HELP texts). With
several processes each serves its own; sum the per-process series and take any one of the shop's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import ColumnElement, func, or_, select

from db.engine import Database
from db.models import (
    Activation,
    Lease,
    LedgerEntry,
    Notification,
    OutboxMessage,
    Payment,
    SmmOrder,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DELIVERY_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120)

UPDATES = Counter(
    "shop_updates_total", "Telegram updates handled by this process, by handler", ["handler"]
)
HANDLER_SECONDS = Histogram(
    "shop_handler_seconds", "Time in a handler, by handler", ["handler"], buckets=LATENCY_BUCKETS
)
PROVIDER_REQUESTS = Counter(
    "shop_provider_requests_total",
    "Requests to upstream providers by this process, by provider, action and outcome",
    ["provider", "action", "outcome"],
)
PROVIDER_SECONDS = Histogram(
    "shop_provider_request_seconds",
    "Upstream request latency, by provider and action",
    ["provider", "action"],
    buckets=LATENCY_BUCKETS,
)
CODE_DELIVERY_SECONDS = Histogram(
    "shop_code_delivery_seconds",
    "From the poller finding a code at the upstream to its message sent to the customer",
    buckets=DELIVERY_BUCKETS,
)
ORDERS = Gauge(
    "shop_orders", "Orders by kind and status (the shop's, from the database)", ["kind", "status"]
)
OUTBOX_BACKLOG = Gauge("shop_outbox_backlog", "Customer messages waiting to be sent (the shop's)")
NOTIFICATION_BACKLOG = Gauge(
    "shop_notification_backlog", "Group lines waiting to be sent (the shop's)"
)
WALLET_OPERATIONS = Gauge(
    "shop_wallet_operations",
    "Ledger entries by reason (the shop's, from the database)",
    ["reason"],
)
PAYMENTS = Gauge(
    "shop_payments",
    "Top-ups by method and status (the shop's, from the database)",
    ["method", "status"],
)
SHOP_REFRESH_S = 15.0  # the database figures are read at most this often


def handler_name(callback: Callable[..., object]) -> str:
    return f"{getattr(callback, '__module__', '?')}.{getattr(callback, '__name__', '?')}"


def observe_update(handler: str, seconds: float) -> None:
    UPDATES.labels(handler).inc()
    HANDLER_SECONDS.labels(handler).observe(seconds)


def observe_provider(provider: str, action: str, ok: bool, seconds: float) -> None:
    PROVIDER_REQUESTS.labels(provider, action, "ok" if ok else "error").inc()
    PROVIDER_SECONDS.labels(provider, action).observe(seconds)


def observe_code_delivery(seconds: float) -> None:
    CODE_DELIVERY_SECONDS.observe(max(0.0, seconds))


class ShopFigures:
    """The database's figures, read when scraped (at most every SHOP_REFRESH_S)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.clock = clock
        self._read_at: float | None = None

    async def refresh(self) -> None:
        now = self.clock()
        if self._read_at is not None and now - self._read_at < SHOP_REFRESH_S:
            return
        async with self.db.read() as session:
            orders = [
                ("otp", status, count)
                for status, count in await session.execute(
                    select(Activation.status, func.count()).group_by(Activation.status)
                )
            ] + [
                ("smm", status, count)
                for status, count in await session.execute(
                    select(SmmOrder.status, func.count()).group_by(SmmOrder.status)
                )
            ]
            ledger = (
                await session.execute(
                    select(LedgerEntry.reason, func.count()).group_by(LedgerEntry.reason)
                )
            ).all()
            payments = (
                await session.execute(
                    select(Payment.method, Payment.status, func.count()).group_by(
                        Payment.method, Payment.status
                    )
                )
            ).all()
            outbox = await session.scalar(select(func.count()).where(*_unsent_outbox()))
            group = await session.scalar(
                select(func.count()).where(Notification.sent_at.is_(None))
            )
        ORDERS.clear()
        for kind, status, count in orders:
            ORDERS.labels(kind, status).set(count)
        WALLET_OPERATIONS.clear()
        for reason, count in ledger:
            WALLET_OPERATIONS.labels(reason).set(count)
        PAYMENTS.clear()
        for method, status, count in payments:
            PAYMENTS.labels(method, status).set(count)
        OUTBOX_BACKLOG.set(outbox or 0)
        NOTIFICATION_BACKLOG.set(group or 0)
        self._read_at = now

    async def exposition(self, registry: CollectorRegistry = REGISTRY) -> bytes:
        await self.refresh()
        return generate_latest(registry)


def _unsent_outbox() -> list[ColumnElement[bool]]:
    return [OutboxMessage.sent_at.is_(None), OutboxMessage.failed.is_(None)]


# --- /health -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    reason: str = ""
    outbox_backlog: int = 0


POLL_LEASE = "otp-poll"  # renewed at every poll round, 3 intervals long (bot/app.py)


async def health(db: Database, outbox_max: int, now: datetime | None = None) -> Health:
    """200 only when the database answers, a poll round ran within 3 intervals (its lease,
    which every round renews for 3 intervals, has not run out) and the outbox backlog is below
    `outbox_max`."""
    now = now or datetime.now(UTC)
    try:
        async with db.read() as session:
            poll_until = await session.scalar(
                select(Lease.expires_at).where(Lease.name == POLL_LEASE)
            )
            backlog = int(
                await session.scalar(
                    select(func.count()).where(
                        *_unsent_outbox(),
                        or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
                    )
                )
                or 0
            )
    except Exception as exc:  # noqa: BLE001 - any failure to read is "the database does not answer"
        return Health(False, f"database: {type(exc).__name__}")
    if poll_until is None or poll_until <= now:
        return Health(False, "poll: no poll round within 3 intervals", backlog)
    if backlog >= outbox_max:
        return Health(False, f"outbox: {backlog} messages waiting (limit {outbox_max})", backlog)
    return Health(True, "", backlog)
