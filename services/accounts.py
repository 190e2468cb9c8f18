"""Admin money operations: top-up and deduct, each with its ledger row naming the admin and a
notice to the user written to the outbox in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from db import repositories as repo
from db.engine import Database
from services import outbox, wallet
from services.notifier import Notifier

Direction = Literal["topup", "deduct"]
# (user's language, new balance) -> the notice text in that language
NoticeRenderer = Callable[[str, int], str]


@dataclass(frozen=True, slots=True)
class Adjustment:
    user_id: int
    username: str | None
    amount: int
    balance: int


async def admin_adjust(
    db: Database,
    *,
    direction: Direction,
    target: str,
    amount: int,
    admin_id: int,
    key: str,
    comment: str | None,
    notice: NoticeRenderer,
    notifier: Notifier | None = None,
) -> Adjustment:
    """Raises wallet.UserNotFound, repositories.AmbiguousUser (a username several users
    have), wallet.InsufficientFunds or wallet.DuplicateOperation."""
    async with db.write() as session:
        user = await repo.find_user(session, target)
        if user is None:
            raise wallet.UserNotFound(target)
        if direction == "topup":
            result = await wallet.credit(
                session,
                user.id,
                amount,
                reason="topup",
                key=key,
                admin_id=admin_id,
                comment=comment,
            )
            if not result.applied:
                raise wallet.DuplicateOperation(key)
            new_balance = result.balance
        else:
            new_balance = await wallet.debit(
                session,
                user.id,
                amount,
                reason="deduct",
                key=key,
                admin_id=admin_id,
                comment=comment,
            )
        assert new_balance is not None
        await outbox.enqueue(session, user.id, notice(user.language, new_balance), direction)
        if notifier is not None:
            await notifier.emit(
                session, "topup", direction=direction, amount=amount, user=user.id, admin=admin_id
            )
        return Adjustment(user.id, user.username, amount, new_balance)


async def audit(db: Database) -> wallet.AuditReport:
    async with db.read() as session:
        return await wallet.audit(session)
