"""Row claims: a worker takes rows it will act on outside any transaction (a Telegram send), and
of several processes only one takes a row at a time.

A claim is two columns, `claimed_by` (the worker: host, pid and a random part) and
`claimed_until` (its lease). `claim()` picks claimable rows and writes the claim in one write
transaction: on PostgreSQL the rows are picked with `SELECT ... FOR UPDATE SKIP LOCKED`, so two
workers claiming at the same moment get different rows instead of waiting for each other; on
SQLite the transaction's `BEGIN IMMEDIATE` already makes it the only writer (and SQLite has no
FOR UPDATE). A row whose claim ran out (its process died, or stopped renewing) is claimable again.
`finish()` records the outcome only while the claim is still the caller's, and clears it;
`renew()` extends the claims of rows still being worked on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, CursorResult, Update, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Notification, OutboxMessage

# The tables whose rows are claimed (each has `id`, `claimed_until` and `claimed_by`).
M = TypeVar("M", OutboxMessage, Notification)


def claimable(model: type[M], now: datetime) -> ColumnElement[bool]:
    """Nobody's claim is running: never claimed, released, or run out."""
    return or_(model.claimed_until.is_(None), model.claimed_until <= now)


async def claimable_rows(
    session: AsyncSession,
    model: type[M],
    *,
    where: Sequence[ColumnElement[bool]],
    now: datetime,
    limit: int,
    first: Sequence[ColumnElement[Any]] = (),
) -> list[M]:
    """Up to `limit` claimable rows matching `where`, oldest first (after the `first` ordering,
    e.g. a priority), locked until the end of this (write) transaction on PostgreSQL, rows
    another transaction has locked skipped. Claim the ones to keep with `take()` in the same
    transaction."""
    query = (
        select(model).where(*where, claimable(model, now)).order_by(*first, model.id).limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list((await session.scalars(query)).all())


async def take(
    session: AsyncSession, model: type[M], ids: Sequence[int], *, holder: str, until: datetime
) -> None:
    """Claim these rows (found by `claimable_rows()` in this transaction) for `holder`."""
    if ids:
        await session.execute(
            update(model).where(model.id.in_(ids)).values(claimed_by=holder, claimed_until=until)
        )


async def claim(
    session: AsyncSession,
    model: type[M],
    *,
    where: Sequence[ColumnElement[bool]],
    holder: str,
    now: datetime,
    until: datetime,
    limit: int,
) -> list[M]:
    """`claimable_rows()` and `take()` in one: the rows now claimed by `holder`."""
    rows = await claimable_rows(session, model, where=where, now=now, limit=limit)
    await take(session, model, [row.id for row in rows], holder=holder, until=until)
    return rows


async def renew(
    session: AsyncSession, model: type[M], ids: Sequence[int], *, holder: str, until: datetime
) -> int:
    """Extend `holder`'s claims on these rows (finished ones are left alone); how many."""
    if not ids:
        return 0
    return await _updated(
        session,
        update(model)
        .where(model.id.in_(ids), model.claimed_by == holder)
        .values(claimed_until=until),
    )


async def finish(
    session: AsyncSession,
    model: type[M],
    ids: Sequence[int],
    *,
    holder: str,
    values: Mapping[str, Any] | None = None,
) -> int:
    """Write `values` (the outcome) and clear the claim, on the rows `holder` still claims;
    how many. Without `values` this releases the claims (the rows are claimable at once)."""
    if not ids:
        return 0
    return await _updated(
        session,
        update(model)
        .where(model.id.in_(ids), model.claimed_by == holder)
        .values(**dict(values or {}), claimed_by=None, claimed_until=None),
    )


async def _updated(session: AsyncSession, statement: Update) -> int:
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount
