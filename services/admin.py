"""What the admin commands read and change: user reports, stats, bans, manual refunds and
provider switches. Plain results; the admin handlers render them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db import repositories as repo
from db.engine import Database
from db.models import Activation, LedgerEntry, Payment, ProviderSetting, SmmOrder, User, utcnow
from db.upsert import upsert
from services import outbox, wallet
from services.ids import is_id
from services.money import MICRO
from services.notifier import Notifier
from services.orders import core
from services.orders.lifecycle import LIFECYCLES
from services.payments.records import PaymentLine, payment_line
from services.smm import units, upstream_cost

PERIODS = {"today": None, "7d": timedelta(days=7), "30d": timedelta(days=30)}
_ORDER_REF = re.compile(r"^(?:(otp|smm)[:#]?)?#?([0-9]{1,40})$", re.IGNORECASE)
DELIVERED_OTP = ("received", "finished")


class AdminError(Exception):
    pass


class UnknownOrder(AdminError):
    pass


class UnknownUser(AdminError):
    pass


# Several users have that username: the handlers ask for the id instead.
AmbiguousUser = repo.AmbiguousUser


@dataclass(frozen=True)
class UserReport:
    user: User
    activations: list[Activation]
    smm_orders: list[SmmOrder]
    ledger: list[LedgerEntry]
    payments: list[PaymentLine]


ADMIN_TOPUP = "admin"  # Stats.topups' method for an admin's /topup
CREDITED = ("paid", "refunding", "refunded")  # payments whose money reached the wallet


@dataclass
class Stats:
    since: datetime
    otp_by_status: dict[str, int] = field(default_factory=dict)
    smm_by_status: dict[str, int] = field(default_factory=dict)
    revenue: int = 0  # purchases minus refunds, micro
    refunds: int = 0
    cost: int = 0  # upstream cost of what was delivered (an estimate for SMM partials)
    new_users: int = 0
    top_services: list[tuple[str, int]] = field(default_factory=list)
    providers: dict[str, dict[str, int]] = field(default_factory=dict)
    topups: dict[str, tuple[int, int]] = field(default_factory=dict)  # method: (count, micro)

    @property
    def profit(self) -> int:
        return self.revenue - self.cost


@dataclass(frozen=True)
class RefundOutcome:
    applied: bool
    kind: str
    order_id: int
    user_id: int
    amount: int


def parse_order_ref(text: str) -> tuple[str, int]:
    """'otp:12', 'smm:7', '#12' or '12' (an OTP activation)."""
    match = _ORDER_REF.match(text.strip())
    if not match:
        raise UnknownOrder(text)
    return (match.group(1) or "otp").lower(), int(match.group(2))


def period_start(name: str, now: datetime) -> datetime:
    delta = PERIODS.get(name, PERIODS["today"])
    if delta is None:
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now - delta


def _micro(upstream: str | None, rate: str | None, share: Decimal = Decimal(1)) -> int:
    if not upstream or not rate:
        return 0
    value = Decimal(upstream) * Decimal(rate) * share * MICRO
    return int(value.to_integral_value(rounding=ROUND_CEILING))


class Backoffice:
    """What the admin console reads and changes: user reports, bans, stats and manual refunds,
    each call its own unit of work. `notifier` tells the shop's group about manual refunds."""

    def __init__(self, db: Database, notifier: Notifier | None = None) -> None:
        self.db = db
        self.notifier = notifier

    async def user_report(self, query: str) -> UserReport:
        """Raises UnknownUser, or AmbiguousUser when several users have that name."""
        async with self.db.read() as session:
            user = await _find_user(session, query)
            activations = await session.scalars(
                select(Activation)
                .where(Activation.user_id == user.id)
                .order_by(Activation.id.desc())
                .limit(10)
            )
            smm = await session.scalars(
                select(SmmOrder)
                .where(SmmOrder.user_id == user.id)
                .order_by(SmmOrder.id.desc())
                .limit(10)
            )
            ledger = await wallet.history(session, user.id, limit=10)
            payments = await session.scalars(
                select(Payment)
                .where(Payment.user_id == user.id)
                .order_by(Payment.id.desc())
                .limit(10)
            )
            lines = [payment_line(p) for p in payments]
            return UserReport(user, list(activations), list(smm), ledger, lines)

    async def set_banned(self, query: str, banned: bool) -> User:
        """Raises UnknownUser, or AmbiguousUser when several users have that name."""
        async with self.db.write() as session:
            user = await _find_user(session, query)
            await repo.set_banned(session, user.id, banned)  # drops cached user records
            user.banned = banned
            return user

    async def stats(self, since: datetime) -> Stats:
        result = Stats(since=since)
        async with self.db.read() as session:
            await _count_orders(session, result)
            await _count_money_and_users(session, result)
            await _count_topups(session, result)
            services: dict[str, int] = {}
            await _add_delivered_otp(session, result, services)
            await _add_delivered_smm(session, result, services)
        result.top_services = sorted(services.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        return result

    async def refund_order(
        self,
        kind: str,
        order_id: int,
        *,
        admin_id: int,
        reason: str | None,
        notice: Callable[[str, int], str],
    ) -> RefundOutcome:
        """A manual refund, once per order: the same key as the automatic one, so an order the
        bot already refunded reports "already refunded" and one refunded here is never refunded
        again. `notice(language, amount)` renders the user's message. Raises UnknownOrder or
        OrderBusy."""
        if not is_id(order_id):  # a huge id would overflow the query: no such order
            raise UnknownOrder(f"{kind}:{order_id}")
        now = utcnow()
        try:
            return await self._refund_in_tx(kind, order_id, admin_id, reason, notice, now)
        except _AlreadyRefunded as done:
            return done.outcome

    async def _refund_in_tx(
        self,
        kind: str,
        order_id: int,
        admin_id: int,
        reason: str | None,
        notice: Callable[[str, int], str],
        now: datetime,
    ) -> RefundOutcome:
        for _ in range(5):  # a concurrent change of the same order: read it again
            async with self.db.write() as session:
                outcome = await _refund_once(session, kind, order_id, admin_id, reason, now)
                if outcome is None:
                    continue
                if outcome.applied:
                    await self._tell_refund(session, outcome, notice, reason)
            return outcome
        raise OrderBusy(f"{kind}:{order_id}")

    async def _tell_refund(
        self,
        session: AsyncSession,
        outcome: RefundOutcome,
        notice: Callable[[str, int], str],
        reason: str | None,
    ) -> None:
        """The user's notice into the outbox and the group's line, in the refund's transaction."""
        language = await session.scalar(select(User.language).where(User.id == outcome.user_id))
        text = notice(language or "en", outcome.amount)
        await outbox.enqueue(session, outcome.user_id, text, "refund")
        if self.notifier is not None:
            await self.notifier.emit(
                session,
                "refund",
                user=outcome.user_id,
                amount=outcome.amount,
                order=f"{outcome.kind}:{outcome.order_id}",
                reason="admin",
                note=reason,  # the admin's own words: data, escaped by the renderer
            )


async def _find_user(session: AsyncSession, query: str) -> User:
    """Raises UnknownUser, or AmbiguousUser when several users have that name."""
    user = await repo.find_user(session, query)
    if user is None:
        raise UnknownUser(query)
    return user


async def _count_orders(session: AsyncSession, result: Stats) -> None:
    """Orders of the period by status, OTP and SMM."""
    since = result.since
    for status, count in await session.execute(
        select(Activation.status, func.count())
        .where(Activation.created_at >= since)
        .group_by(Activation.status)
    ):
        result.otp_by_status[status] = int(count)
    for status, count in await session.execute(
        select(SmmOrder.status, func.count())
        .where(SmmOrder.created_at >= since)
        .group_by(SmmOrder.status)
    ):
        result.smm_by_status[status] = int(count)


async def _count_money_and_users(session: AsyncSession, result: Stats) -> None:
    """Revenue (purchases minus refunds), refunds, and the users who joined in the period."""
    since = result.since
    for reason, total in await session.execute(
        select(LedgerEntry.reason, func.sum(LedgerEntry.delta))
        .where(LedgerEntry.created_at >= since, LedgerEntry.reason.in_(("purchase", "refund")))
        .group_by(LedgerEntry.reason)
    ):
        if reason == "purchase":
            result.revenue += -int(total or 0)
        else:
            result.refunds += int(total or 0)
            result.revenue -= int(total or 0)
    result.new_users = int(
        await session.scalar(
            select(func.count()).select_from(User).where(User.created_at >= since)
        )
        or 0
    )


async def _count_topups(session: AsyncSession, result: Stats) -> None:
    """Money customers paid in by each method in the period, and what admins topped up."""
    for method, count, total in await session.execute(
        select(Payment.method, func.count(), func.sum(Payment.credited))
        .where(Payment.paid_at >= result.since, Payment.status.in_(CREDITED))
        .group_by(Payment.method)
    ):
        result.topups[method] = (int(count), int(total or 0))
    count, total = (
        await session.execute(
            select(func.count(), func.sum(LedgerEntry.delta)).where(
                LedgerEntry.created_at >= result.since,
                LedgerEntry.reason == "topup",
                LedgerEntry.admin_id.is_not(None),
            )
        )
    ).one()
    if count:
        result.topups[ADMIN_TOPUP] = (int(count), int(total or 0))


async def _add_delivered_otp(
    session: AsyncSession, result: Stats, services: dict[str, int]
) -> None:
    delivered = await session.scalars(
        select(Activation).where(
            Activation.created_at >= result.since, Activation.status.in_(DELIVERED_OTP)
        )
    )
    for activation in delivered:
        cost = _micro(activation.upstream_price, activation.rate)
        _add(result, activation.provider or "?", activation.price, cost)
        key = f"📱 {activation.service}"
        services[key] = services.get(key, 0) + 1


async def _add_delivered_smm(
    session: AsyncSession, result: Stats, services: dict[str, int]
) -> None:
    """Completed and partial SMM orders; a partial one costs the share it delivered."""
    done = await session.scalars(
        select(SmmOrder).where(
            SmmOrder.created_at >= result.since, SmmOrder.status.in_(("completed", "partial"))
        )
    )
    for order in done:
        cost = upstream_cost(order)
        if order.status == "partial" and order.quantity:
            total = units(order)
            remains = min(max(order.remains or 0, 0), total)
            cost = cost * (total - remains) // total
        _add(result, order.provider, order.price - order.refunded, cost)
        key = f"📈 {order.service_name[:40]}"
        services[key] = services.get(key, 0) + 1


def _add(result: Stats, provider: str, revenue: int, cost: int) -> None:
    row = result.providers.setdefault(provider, {"orders": 0, "revenue": 0, "cost": 0})
    row["orders"] += 1
    row["revenue"] += revenue
    row["cost"] += cost
    result.cost += cost


class _AlreadyRefunded(Exception):
    """Rolls the state change back when the refund key was used before."""

    def __init__(self, outcome: RefundOutcome) -> None:
        super().__init__()
        self.outcome = outcome


# An OTP buy waiting for its upstream's answer cannot be refunded by hand (the number may be
# bought that very moment, and then nobody would record it); nor an SMM order whose `add` is on
# its way. Every other move is the lifecycle's own `admin_refund` row.
IN_FLIGHT = {"otp": "buying", "smm": "placing"}


class OrderBusy(AdminError):
    """The order is being bought or placed right now: refund it once that is over."""


async def _refund_once(
    session: AsyncSession,
    kind: str,
    order_id: int,
    admin_id: int,
    reason: str | None,
    now: datetime,
) -> RefundOutcome | None:
    """The order's own admin-refund transition, bounded by what was paid; None when the order
    changed since it was read (the transition matched nothing)."""
    order: Activation | SmmOrder | None = await session.get(core.MODELS[kind], order_id)
    if order is None:
        raise UnknownOrder(f"{kind}:{order_id}")
    if order.status == IN_FLIGHT[kind]:
        raise OrderBusy(f"{kind}:{order_id}")
    move = LIFECYCLES[kind].admin_refund.get(order.status)
    if move is None:  # closed with a full refund already (cancelled, expired, failed)
        return RefundOutcome(False, kind, order_id, order.user_id, 0)
    target, refund = move
    seen = getattr(order, "refunded", 0)
    if seen >= order.price:  # an SMM order refunded in full already
        return RefundOutcome(False, kind, order_id, order.user_id, 0)
    moved = await core.move(
        session,
        kind,
        order_id,
        (order.status,),
        target,
        now=now,
        refund=refund,
        reason="admin" if target != order.status else None,
        seen_refunded=seen,
        admin_id=admin_id,
        comment=reason,
    )
    if moved is None:
        return None  # nothing was written
    if not moved.refunded:
        raise _AlreadyRefunded(RefundOutcome(False, kind, order_id, order.user_id, 0))
    return RefundOutcome(True, kind, order_id, order.user_id, moved.refunded)


async def provider_switches(db: Database) -> dict[str, bool]:
    async with db.read() as session:
        rows = await session.execute(select(ProviderSetting.name, ProviderSetting.enabled))
        return {name: bool(enabled) for name, enabled in rows}


async def set_provider_enabled(db: Database, name: str, enabled: bool) -> None:
    """One statement, so two admins (or two processes) switching it at once cannot collide.
    The admin's switch wins over the automatic one (services/auto_switch.py): on clears an
    automatic off; off stays off until an admin says on."""
    values = {
        "name": name,
        "enabled": enabled,
        "balance_low": False,
        "updated_at": utcnow(),
        "auto_off_reason": None,
        "auto_off_at": None,
        "auto_off_detail": None,
    }
    columns = ["enabled", "updated_at"]
    if enabled:
        columns += ["auto_off_reason", "auto_off_at", "auto_off_detail"]
    async with db.write() as session:
        await upsert(session, ProviderSetting, values, keys=["name"], update=columns)
