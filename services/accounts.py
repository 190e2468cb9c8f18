"""Wallets as a service (`Accounts`): the balance and statement a customer reads, and the admin
money operations, top-up and deduct, each with its ledger row naming the admin and a notice to
the user written to the outbox in the same transaction."""

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
# A username several users have: the handlers ask for the id instead.
AmbiguousUser = repo.AmbiguousUser


@dataclass(frozen=True, slots=True)
class Adjustment:
    user_id: int
    username: str | None
    amount: int
    balance: int


class Accounts:
    """Wallets as the screens read them and as admins change them, each call its own unit of
    work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def set_language(self, user_id: int, language: str) -> None:
        async with self.db.write() as session:
            await repo.set_language(session, user_id, language)

    async def balance(self, user_id: int) -> int:
        async with self.db.read() as session:
            return await wallet.balance(session, user_id)

    async def statement(self, user_id: int, limit: int = 10) -> tuple[int, list[LedgerEntry]]:
        """The balance and the last `limit` ledger rows, from one snapshot."""
        async with self.db.read() as session:
            current = await wallet.balance(session, user_id)
            return current, await wallet.history(session, user_id, limit=limit)

    async def adjust(
        self,
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
        """An admin's top-up or deduct, its ledger row naming the admin, and the user's notice
        in the outbox, in one transaction. Raises wallet.UserNotFound, AmbiguousUser,
        wallet.InsufficientFunds or wallet.DuplicateOperation."""
        async with self.db.write() as session:
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
                if not result.applied or result.balance is None:  # applied: has a balance
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
            text = notice(user.language, new_balance)
            await outbox.enqueue(session, user.id, text, direction)
            if notifier is not None:
                await notifier.emit(
                    session,
                    "topup",
                    direction=direction,
                    amount=amount,
                    user=user.id,
                    admin=admin_id,
                )
            return Adjustment(user.id, user.username, amount, new_balance)

    async def audit(self) -> wallet.AuditReport:
        """Every balance against the sum of its ledger rows."""
        async with self.db.read() as session:
            return await wallet.audit(session)
