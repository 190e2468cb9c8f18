"""Admin money operations: top-up and deduct, each with its ledger row naming the admin and a
notice to the user written to the outbox in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from db import repositories as repo
from db.engine import Database
from db.models import LedgerEntry
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
            if not result.applied or result.balance is None:  # applied: always has a balance
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
        await outbox.enqueue(session, user.id, notice(user.language, new_balance), direction)
        if notifier is not None:
            await notifier.emit(
                session, "topup", direction=direction, amount=amount, user=user.id, admin=admin_id
            )
        return Adjustment(user.id, user.username, amount, new_balance)


async def audit(db: Database) -> wallet.AuditReport:
    async with db.read() as session:
        return await wallet.audit(session)


class Accounts:
    """A customer's wallet as the screens read it, each read its own unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def balance(self, user_id: int) -> int:
        async with self.db.read() as session:
            return await wallet.balance(session, user_id)

    async def statement(self, user_id: int, limit: int = 10) -> tuple[int, list[LedgerEntry]]:
        """The balance and the last `limit` ledger rows, from one snapshot."""
        async with self.db.read() as session:
            current = await wallet.balance(session, user_id)
            return current, await wallet.history(session, user_id, limit=limit)
