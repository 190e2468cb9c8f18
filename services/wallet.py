"""The wallet: balances in integer micro-units, every change one ledger row in the same
transaction. Functions join the caller's transaction (pass its session); they never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from db.models import LedgerEntry, User, utcnow
from db.upsert import insert_ignore_statement


class WalletError(Exception):
    pass


class UserNotFound(WalletError):
    pass


class InsufficientFunds(WalletError):
    def __init__(self, missing: int, balance: int) -> None:
        super().__init__(f"missing {missing} micro-units")
        self.missing = missing
        self.balance = balance


class DuplicateOperation(WalletError):
    """The idempotency key was used before: the operation already happened."""


@dataclass(frozen=True, slots=True)
class Applied:
    applied: bool  # False: the key existed, nothing changed ("already refunded")
    balance: int | None = None


@dataclass(frozen=True, slots=True)
class AuditReport:
    users_checked: int
    mismatches: list[tuple[int, int, int]]  # (user id, balance, ledger sum)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _check_amount(amount: int) -> None:
    if type(amount) is not int or amount <= 0:  # also refuses True, an int to isinstance
        raise ValueError(f"amount must be a positive int of micro-units, got {amount!r}")


_USERS = cast(Table, User.__table__)
# Built once: a debit is the hottest write there is, and a statement built per call costs more
# CPU (construction, cache key) than SQLite takes to run it. Core, not ORM: no per-call
# evaluation of the WHERE clause against the session's objects (`_debited` does that job).
_DEBIT = (
    update(_USERS)
    .where(_USERS.c.id == bindparam("debit_user"), _USERS.c.balance >= bindparam("debit_amount"))
    .values(balance=_USERS.c.balance - bindparam("debit_amount"))
    .returning(_USERS.c.balance)
)


@cache
def _ledger_insert(dialect: str) -> Executable:
    """INSERT ... ON CONFLICT (idempotency_key) DO NOTHING, built once per dialect."""
    return insert_ignore_statement(dialect, LedgerEntry, keys=["idempotency_key"])


def _debited(session: AsyncSession, user_id: int, new_balance: int) -> None:
    """A user record this session already holds shows the balance the debit left."""
    user = session.identity_map.get(identity_key(User, user_id))
    if user is not None:
        set_committed_value(user, "balance", new_balance)


async def _write_entry(
    session: AsyncSession,
    user_id: int,
    delta: int,
    *,
    reason: str,
    key: str,
    ref: str | None,
    admin_id: int | None,
    comment: str | None,
) -> bool:
    """Write the ledger row unless its key exists (also one a concurrent transaction is writing:
    the database waits for it). False: the key was used, nothing was written."""
    row: dict[str, Any] = {
        "user_id": user_id,
        "delta": delta,
        "reason": reason,
        "ref": ref,
        "idempotency_key": key,
        "admin_id": admin_id,
        "comment": comment[:256] if comment else None,
        "created_at": utcnow(),
    }
    statement = _ledger_insert(session.get_bind().dialect.name)
    result = cast("CursorResult[Any]", await session.execute(statement, row))
    return result.rowcount == 1


async def debit(
    session: AsyncSession,
    user_id: int,
    amount: int,
    *,
    reason: str,
    key: str,
    ref: str | None = None,
    admin_id: int | None = None,
    comment: str | None = None,
) -> int:
    """Take `amount` or raise InsufficientFunds; never below zero. Returns the new balance.

    The balance check and the update are one statement, so concurrent debits cannot overdraw.
    A reused key raises DuplicateOperation and the caller's transaction must roll back.
    """
    _check_amount(amount)
    result = await session.execute(_DEBIT, {"debit_user": user_id, "debit_amount": amount})
    new_balance: int | None = result.scalar_one_or_none()
    if new_balance is None:
        current = await session.scalar(select(User.balance).where(User.id == user_id))
        if current is None:
            raise UserNotFound(user_id)
        raise InsufficientFunds(missing=amount - current, balance=current)
    _debited(session, user_id, new_balance)
    written = await _write_entry(
        session,
        user_id,
        -amount,
        reason=reason,
        key=key,
        ref=ref,
        admin_id=admin_id,
        comment=comment,
    )
    if not written:
        raise DuplicateOperation(key)
    return new_balance


async def credit(
    session: AsyncSession,
    user_id: int,
    amount: int,
    *,
    reason: str,
    key: str,
    ref: str | None = None,
    admin_id: int | None = None,
    comment: str | None = None,
) -> Applied:
    """Add `amount` once per key; a second call with the same key changes nothing, also when
    both run at once (the ledger row goes first, and only the one that wrote it adds)."""
    _check_amount(amount)
    if await session.scalar(select(User.id).where(User.id == user_id)) is None:
        raise UserNotFound(user_id)
    written = await _write_entry(
        session,
        user_id,
        amount,
        reason=reason,
        key=key,
        ref=ref,
        admin_id=admin_id,
        comment=comment,
    )
    if not written:
        return Applied(applied=False)
    new_balance = await session.scalar(
        update(User)
        .where(User.id == user_id)
        .values(balance=User.balance + amount)
        .returning(User.balance)
    )
    if new_balance is None:  # users are never deleted; this only guards the types
        raise UserNotFound(user_id)
    return Applied(applied=True, balance=new_balance)


async def refund(
    session: AsyncSession,
    user_id: int,
    amount: int,
    *,
    key: str,
    ref: str | None = None,
    reason: str = "refund",
    admin_id: int | None = None,
    comment: str | None = None,
) -> Applied:
    """Give money back once per key (`refund:otp:<id>`); `applied=False` = already refunded."""
    return await credit(
        session,
        user_id,
        amount,
        reason=reason,
        key=key,
        ref=ref,
        admin_id=admin_id,
        comment=comment,
    )


async def balance(session: AsyncSession, user_id: int) -> int:
    value = await session.scalar(select(User.balance).where(User.id == user_id))
    if value is None:
        raise UserNotFound(user_id)
    return value


async def history(session: AsyncSession, user_id: int, limit: int = 10) -> list[LedgerEntry]:
    result = await session.execute(
        select(LedgerEntry)
        .where(LedgerEntry.user_id == user_id)
        .order_by(LedgerEntry.id.desc())
        .limit(limit)
    )
    return list(result.scalars())


async def audit(session: AsyncSession) -> AuditReport:
    """Every balance must equal the sum of its ledger rows."""
    sums = (
        select(LedgerEntry.user_id, func.sum(LedgerEntry.delta).label("total"))
        .group_by(LedgerEntry.user_id)
        .subquery()
    )
    rows = await session.execute(
        select(User.id, User.balance, func.coalesce(sums.c.total, 0)).outerjoin(
            sums, sums.c.user_id == User.id
        )
    )
    checked = 0
    mismatches: list[tuple[int, int, int]] = []
    for user_id, user_balance, total in rows:
        checked += 1
        if int(user_balance) != int(total):
            mismatches.append((user_id, int(user_balance), int(total)))
    return AuditReport(users_checked=checked, mismatches=mismatches)
