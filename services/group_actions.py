"""Actions from the notification group: an alert that needs a decision carries buttons
(services/notifier.py ACTIONS: an unknown order → Refund / Adopt, a provider's error burst →
Switch off, a low balance → Show providers), and an admin's press does it here, with the same
services as the admin commands (/refund, /adopt, /provider x off).

Each alert is decided once: the first press claims its `group_actions` row (one INSERT, so of
two admins pressing at once, in one process or two, one acts), does the action, then records
the outcome; every later press reads who did what. A claim whose process died before recording
an outcome is taken over after CLAIM_S. An action that cannot be done now (the order is being
bought this very moment; adopting without the provider's order id) gives the claim back.
The refund itself is once per order anyway (services/admin.py): a second refund of the same
order, by button or command, only reports "already refunded".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from db.engine import Database
from db.models import GroupAction, Notification, User, utcnow
from db.upsert import insert_ignore
from services import admin
from services.console import AdminConsole
from services.ids import is_id
from services.orders import core
from services.orders.errors import OrderError

log = logging.getLogger(__name__)

CLAIM_S = 120.0  # a press still "being done" after this is taken over (its process died)
# What each kind of alert offers (services/notifier.py ACTIONS).
VERBS = {"order": ("refund", "adopt"), "provider": ("off",), "balance": ("show",)}


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    action: str  # "order", "provider", "balance"
    target: str  # "otp:12", a provider's name
    text: str  # as the group got it (HTML)


@dataclass(frozen=True, slots=True)
class Done:
    """What was done with an alert, by whom (`outcome` None: being done right now)."""

    verb: str
    target: str
    admin_id: int
    admin_name: str | None
    at: datetime
    outcome: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """A press's result: `done` is what this press did (`mine`) or what another did before."""

    alert: Alert
    done: Done
    mine: bool


class ActionError(Exception):
    """Nothing was done: `code` says why ("unknown", "busy", "needs-id", "gone")."""

    def __init__(self, code: str, target: str = "") -> None:
        super().__init__(code, target)
        self.code = code
        self.target = target


class GroupActions:
    def __init__(
        self,
        db: Database,
        backoffice: admin.Backoffice,
        console: AdminConsole,
        *,
        adopt_otp: Callable[[int, str, str | None], Awaitable[object]],
        adopt_smm: Callable[[int, str], Awaitable[object]],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.backoffice = backoffice
        self.console = console
        self.adopt_otp = adopt_otp
        self.adopt_smm = adopt_smm
        self.clock = clock

    async def alert(self, notification_id: int, verb: str) -> Alert:
        """The alert a button belongs to, if `verb` is one of its buttons; else ActionError."""
        if not is_id(notification_id):
            raise ActionError("unknown")
        async with self.db.read() as session:
            row = await session.get(Notification, notification_id)
        if row is None or not row.action or not row.target:
            raise ActionError("unknown")
        if verb not in VERBS.get(row.action, ()):
            raise ActionError("unknown")
        return Alert(row.id, row.action, row.target, row.text)

    async def done(self, notification_id: int) -> Done | None:
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(GroupAction, User.first_name, User.username)
                    .outerjoin(User, User.id == GroupAction.done_by)
                    .where(GroupAction.notification_id == notification_id)
                )
            ).first()
        if row is None:
            return None
        action, first_name, username = row
        name = first_name or (f"@{username}" if username else None)
        return Done(
            action.verb,
            action.target,
            action.done_by,
            name,
            action.done_at,
            action.outcome,
            action.detail,
        )

    async def perform(
        self,
        notification_id: int,
        verb: str,
        admin_id: int,
        *,
        notice: Callable[[str, int], str],
    ) -> Outcome:
        """Do what the button says, once per alert. Raises ActionError when nothing was done
        (and nobody did anything before)."""
        alert = await self.alert(notification_id, verb)
        if verb == "show":
            raise ActionError("unknown")  # nothing to decide: the handler shows /providers
        before = await self._claim(alert, verb, admin_id)
        if before is not None:
            return Outcome(alert, before, mine=False)
        try:
            outcome, detail = await self._act(alert, verb, admin_id, notice)
        except BaseException:
            await self._release(alert.id, admin_id)  # nothing was done: another may try
            raise
        async with self.db.write() as session:
            await session.execute(
                update(GroupAction)
                .where(GroupAction.notification_id == alert.id, GroupAction.done_by == admin_id)
                .values(outcome=outcome, detail=detail, done_at=self.clock())
            )
        done = await self.done(alert.id)
        if done is None:  # pragma: no cover - the row was written just above
            raise ActionError("unknown")
        log.info(
            "group action",
            extra={"admin_id": admin_id, "verb": verb, "target": alert.target, "outcome": outcome},
        )
        return Outcome(alert, done, mine=True)

    async def _claim(self, alert: Alert, verb: str, admin_id: int) -> Done | None:
        """None: this press acts. Else what another press did (or is doing)."""
        now = self.clock()
        values = {
            "notification_id": alert.id,
            "verb": verb,
            "target": alert.target,
            "done_by": admin_id,
            "done_at": now,
        }
        async with self.db.write() as session:
            if await insert_ignore(session, GroupAction, values, keys=["notification_id"]):
                return None
            # Taken over only when the one acting died without an outcome.
            taken = await session.scalar(
                update(GroupAction)
                .where(
                    GroupAction.notification_id == alert.id,
                    GroupAction.outcome.is_(None),
                    GroupAction.done_at < now - timedelta(seconds=CLAIM_S),
                )
                .values(verb=verb, done_by=admin_id, done_at=now)
                .returning(GroupAction.notification_id)
            )
            if taken is not None:
                return None
        return await self.done(alert.id)

    async def _release(self, notification_id: int, admin_id: int) -> None:
        async with self.db.write() as session:
            await session.execute(
                delete(GroupAction).where(
                    GroupAction.notification_id == notification_id,
                    GroupAction.done_by == admin_id,
                    GroupAction.outcome.is_(None),
                )
            )

    async def _act(
        self, alert: Alert, verb: str, admin_id: int, notice: Callable[[str, int], str]
    ) -> tuple[str, str | None]:
        if verb == "refund":
            return await self._refund(alert.target, admin_id, notice)
        if verb == "adopt":
            return await self._adopt(alert.target)
        if verb == "off":
            if alert.target not in self.console.providers:
                raise ActionError("gone", alert.target)
            await self.console.set_provider_enabled(alert.target, False)
            return "switched-off", None
        raise ActionError("unknown")

    async def _refund(
        self, target: str, admin_id: int, notice: Callable[[str, int], str]
    ) -> tuple[str, str | None]:
        try:
            kind, order_id = admin.parse_order_ref(target)
            result = await self.backoffice.refund_order(
                kind, order_id, admin_id=admin_id, reason=None, notice=notice
            )
        except admin.UnknownOrder:
            raise ActionError("gone", target) from None
        except admin.OrderBusy:
            raise ActionError("busy", target) from None
        if not result.applied:
            return "already-refunded", None
        return "refunded", str(result.amount)

    async def _adopt(self, target: str) -> tuple[str, str | None]:
        """Adopt with the provider's order id on record (an SMM order the panel stopped
        showing); without one (the buy's answer was lost) only /adopt with the id can."""
        try:
            kind, order_id = admin.parse_order_ref(target)
            order = await core.get(self.db, kind, order_id)
        except (admin.UnknownOrder, OrderError):
            raise ActionError("gone", target) from None
        if order.status != "unknown":
            return "settled", str(order.status)
        upstream = order.provider_order_id
        if not upstream:
            raise ActionError("needs-id", target)
        try:
            if kind == "otp":
                await self.adopt_otp(order_id, upstream, None)
            else:
                await self.adopt_smm(order_id, upstream)
        except OrderError:
            return "settled", str((await core.get(self.db, kind, order_id)).status)
        return "adopted", upstream
