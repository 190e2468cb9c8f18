"""The one writer of order state, shared by every kind of order.

`move()` is the only way an order changes state: it checks the move against the order's
lifecycle table, applies it as one conditional UPDATE (`WHERE status IN (<from>)`, so of two
racing callers only one moves the order), and pays the refund the table names in the same
transaction, bounded by what the order paid: OTP orders refund their price once under
`refund:otp:<id>`; SMM orders also record `refunded`, and a refund's UPDATE only matches the
`refunded` it was computed from. The caller's unit of work commits both or neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import Database
from db.models import Activation, SmmOrder, User, utcnow
from services import wallet
from services.ids import is_id
from services.orders.errors import (
    AlreadyConfirmed,
    Banned,
    IllegalTransition,
    NotEnoughMoney,
    NotFound,
)
from services.orders.lifecycle import LIFECYCLES, Lifecycle, Refund

Order = Activation | SmmOrder
OrderT = TypeVar("OrderT", Activation, SmmOrder)
MODELS: dict[str, type[Activation] | type[SmmOrder]] = {"otp": Activation, "smm": SmmOrder}


@dataclass(frozen=True, slots=True)
class Moved:
    """An order that moved: whose it is, what it cost, and what this move paid back."""

    user_id: int
    price: int
    refunded: int


async def open_order(
    db: Database,
    kind: str,
    order: OrderT,
    *,
    check: Callable[[AsyncSession], Awaitable[None]] | None = None,
    charge_key: str | None = None,
) -> OrderT:
    """Write an order's first row and debit its price under `charge:<kind>:<id>` (or
    `charge_key`: the reseller API's `api:<key id>:<client ref>`), in one transaction. The
    same confirmation pressed twice is AlreadyConfirmed (its `confirm_key` is unique); a
    banned user, or `check` refusing, changes nothing. The caller sets the row's
    `claimed_until`, so no process's reconciliation mistakes the order for a crash while it is
    being bought or placed."""
    try:
        async with db.write() as session:
            user = await session.get(User, order.user_id)
            if user is None or user.banned:
                raise Banned()
            if check is not None:
                await check(session)
            session.add(order)
            await session.flush()
            await wallet.debit(
                session,
                order.user_id,
                order.price,
                reason="purchase",
                key=charge_key or f"charge:{kind}:{order.id}",
                ref=f"{kind}:{order.id}",
            )
    except wallet.InsufficientFunds as exc:
        raise NotEnoughMoney(exc.missing, exc.balance) from None
    except IntegrityError:
        existing = await by_confirm_key(db, kind, order.confirm_key)
        if existing is None:
            raise
        raise AlreadyConfirmed(existing) from None
    return order


async def release(db: Database, kind: str, order_id: int, column: str = "claimed_until") -> None:
    """The buy, `add` or request is over: its claim goes (whatever became of it)."""
    model = MODELS[kind]
    async with db.write() as session:
        await session.execute(
            update(model)
            .where(model.id == order_id, getattr(model, column).is_not(None))
            .values({column: None})
        )


async def claim(db: Database, kind: str, order_id: int, column: str, seconds: float) -> bool:
    """Take a claim on the order (e.g. a refill request on its way) unless a live one exists:
    one conditional UPDATE, so two presses or two processes never both send it."""
    model = MODELS[kind]
    now = utcnow()
    async with db.write() as session:
        result = await session.execute(
            update(model)
            .where(
                model.id == order_id,
                or_(getattr(model, column).is_(None), getattr(model, column) <= now),
            )
            .values({column: now + timedelta(seconds=seconds)})
            .returning(model.id)
        )
        return result.first() is not None


def unclaimed(model: type[Activation] | type[SmmOrder], now: datetime) -> Any:
    """The condition "nobody is buying / placing this right now"."""
    return or_(model.claimed_until.is_(None), model.claimed_until <= now)


def check(lifecycle: Lifecycle, sources: Iterable[str], target: str, refund: Refund) -> None:
    for source in sources:
        if not lifecycle.allowed(source, target, refund):
            raise IllegalTransition(f"{lifecycle.kind}: {source} -> {target} ({refund})")


async def move(
    session: AsyncSession,
    kind: str,
    order_id: int,
    sources: Sequence[str],
    target: str,
    *,
    now: datetime,
    refund: Refund = Refund.NONE,
    share: int = 0,
    reason: str | None = None,
    values: Mapping[str, Any] | None = None,
    seen_refunded: int = 0,
    admin_id: int | None = None,
    comment: str | None = None,
    where: Sequence[Any] = (),
) -> Moved | None:
    """Move one order from any of `sources` to `target`; None when it was in none of them.

    `share` is the SHARE refund's amount (SMM Partial); `seen_refunded` what a REST refund
    saw as already refunded (the UPDATE only matches that value); `where` adds conditions
    of the caller's own (a code not seen yet)."""
    lifecycle = LIFECYCLES[kind]
    check(lifecycle, sources, target, refund)
    model = MODELS[kind]
    changes: dict[str, Any] = {"status": target, "updated_at": now, **(values or {})}
    if reason is not None:
        changes["fail_reason"] = reason
    if target in lifecycle.final and target not in sources:
        changes["closed_at"] = now
    query = update(model).where(model.id == order_id, model.status.in_(list(sources)), *where)
    if model is SmmOrder and refund is not Refund.NONE:
        query, changes = _bounded(query, changes, refund, share, seen_refunded)
    result = await session.execute(
        query.values(**changes).returning(model.user_id, model.price)
    )
    row = result.first()
    if row is None:
        return None
    user_id, price = row
    amount = _amount(model, refund, price, share, seen_refunded)
    if amount <= 0:
        return Moved(user_id, price, 0)
    suffix = ":admin" if (admin_id is not None and model is SmmOrder) else ""
    done = await wallet.refund(
        session,
        user_id,
        amount,
        key=f"refund:{kind}:{order_id}{suffix}",
        ref=f"{kind}:{order_id}",
        admin_id=admin_id,
        comment=comment,
    )
    return Moved(user_id, price, amount if done.applied else 0)


def _bounded(
    query: Any, changes: dict[str, Any], refund: Refund, share: int, seen: int
) -> tuple[Any, dict[str, Any]]:
    """An SMM refund never pays back more than the order paid, whoever triggers it."""
    if refund is Refund.REST:
        query = query.where(SmmOrder.refunded == seen, SmmOrder.price > seen)
        changes["refunded"] = SmmOrder.price
    elif refund is Refund.SHARE:
        query = query.where(SmmOrder.refunded == 0, SmmOrder.price >= share)
        changes["refunded"] = share
    else:
        query = query.where(SmmOrder.refunded == 0)
        changes["refunded"] = SmmOrder.price
    return query, changes


def _amount(model: type, refund: Refund, price: int, share: int, seen: int) -> int:
    if refund is Refund.NONE:
        return 0
    if refund is Refund.SHARE:
        return share
    if refund is Refund.REST and model is SmmOrder:
        return price - seen
    return price


# --- reading ------------------------------------------------------------------------------


async def get(db: Database, kind: str, order_id: int) -> Any:
    model = MODELS[kind]
    if not is_id(order_id):  # out of range: no such row, and no query that overflows
        raise NotFound()
    async with db.read() as session:
        order = await session.get(model, order_id)
    if order is None:
        raise NotFound()
    return order


async def get_own(db: Database, kind: str, user_id: int, order_id: int) -> Any:
    order = await get(db, kind, order_id)
    if order.user_id != user_id:
        raise NotFound()
    return order


async def history(
    db: Database, kind: str, user_id: int, offset: int, limit: int
) -> tuple[list[Any], int]:
    model = MODELS[kind]
    async with db.read() as session:
        total = await session.scalar(
            select(func.count()).select_from(model).where(model.user_id == user_id)
        )
        rows = await session.execute(
            select(model)
            .where(model.user_id == user_id)
            .order_by(model.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return list(rows.scalars()), int(total or 0)


async def by_confirm_key(db: Database, kind: str, key: str) -> int | None:
    model = MODELS[kind]
    async with db.read() as session:
        return await session.scalar(select(model.id).where(model.confirm_key == key))
