"""SMM orders: what every part of the service shares (states, refusals, rules, drafts, the
state changes that every path ends in)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select, update

from db.models import SmmOrder, User
from services import outbox, pricing
from services.money import ceil_micro
from services.notifier import SmmGoods
from services.orders import core
from services.orders.errors import (
    OrderError,
)
from services.orders.lifecycle import Refund
from services.orders.lifecycle import SmmState as S
from services.orders.service import OrderService
from services.providers.base import (
    SmmOrderRequest,
    SmmOrderState,
    SmmOrderStatus,
    SmmProvider,
    SmmServiceType,
)
from services.providers.errors import (
    BadRequest,
    OrderNotFound,
    ProviderError,
    Unavailable,
    UnreadableOrder,
)
from services.smm.drafts import (
    SmmDraft,
)
from services.smm_catalog import SmmCatalog, SmmItem

log = logging.getLogger(__name__)

PLACING, PENDING, IN_PROGRESS, UNKNOWN = S.PLACING, S.PENDING, S.IN_PROGRESS, S.UNKNOWN
COMPLETED, PARTIAL, CANCELLED, FAILED = S.COMPLETED, S.PARTIAL, S.CANCELLED, S.FAILED
LIVE = (PENDING, IN_PROGRESS)  # placed upstream, polled
OPEN = (PLACING, UNKNOWN, *LIVE)
CLOSED = (COMPLETED, PARTIAL, CANCELLED, FAILED)
REFILLABLE = (COMPLETED, PARTIAL)
# A refill's status words as panels spell them (lowercase, "_" as a space) -> what they mean.
# Only the running ones are polled again; any word not listed is final, and the admins hear of it.
REFILL_STATES = {
    **dict.fromkeys(("pending", "awaiting", "queued", "new", "waiting"), "pending"),
    **dict.fromkeys(("in progress", "inprogress", "processing", "active", "running"), "running"),
    **dict.fromkeys(("completed", "complete", "done", "success", "finished"), "completed"),
    "partial": "partial",
    **dict.fromkeys(
        ("rejected", "declined", "canceled", "cancelled", "refunded", "refused"), "rejected"
    ),
    **dict.fromkeys(("error", "failed", "fail"), "failed"),
    "not found": "not_found",
}
REFILL_RUNNING_WORDS = tuple(
    word for word, state in REFILL_STATES.items() if state in ("pending", "running")
)

# Reasons kept in `fail_reason` (rendered by the bot from locales).
REASON_PROVIDER_ERROR = "provider_error"
REASON_BAD_LINK = "bad_link"
REASON_BAD_QUANTITY = "bad_quantity"
REASON_LINK_BUSY = "link_busy"
REASON_UNAVAILABLE = "unavailable"
REASON_NOT_SENT = "not_sent"
REASON_LOST = "lost"


# --- what the service tells its callers ------------------------------------------------------


SmmError = OrderError  # the handlers' name for every refusal of this service


class ServiceGone(OrderError):
    """The service is no longer in the catalog."""


class NotOffered(OrderError):
    """Refill / cancel for a service or protocol that does not have it."""


class RefillInProgress(OrderError):
    pass


class Refused(OrderError):
    """The upstream said no to a refill or a cancel."""


class Presenter(Protocol):
    """The bot layer: the texts pushed to a chat, in the user's language."""

    def closed_text(self, order: SmmOrder, language: str) -> str: ...


@dataclass(frozen=True)
class SmmRules:
    poll_interval_s: float = 5.0
    reconcile_grace_s: float = 30.0
    rate_limits: dict[str, int] = field(default_factory=dict)  # provider -> requests/min
    refill_checks_per_round: int = 50
    trouble_grace_s: float = 600.0  # an order the panel cannot show turns 'unknown' after this
    # How long an `add`, a refill or a cancel request may take: its claim's length. A process
    # that died while asking leaves the claim to expire, and only then is the order recovered.
    request_lease_s: float = 120.0


# --- the service ---------------------------------------------------------------------------------


class SmmBase(OrderService[SmmCatalog, SmmProvider, SmmRules, Presenter]):
    """The shared moves of SmmOrderService (see services/smm/__init__.py)."""

    kind = "smm"

    async def get(self, order_id: int) -> SmmOrder:
        order: SmmOrder = await super().get(order_id)
        return order

    async def get_own(self, user_id: int, order_id: int) -> SmmOrder:
        order: SmmOrder = await super().get_own(user_id, order_id)
        return order

    async def by_token(self, user_id: int, token: str) -> int | None:
        """The order an earlier press of this confirmation placed, if any."""
        return await self._by_confirm_key(f"{user_id}:{token}")

    def is_demo(self, order: SmmOrder) -> bool:
        provider = self.providers.get(order.provider)
        return bool(provider is not None and provider.is_demo)

    def can_refill(self, order: SmmOrder) -> bool:
        provider = self.providers.get(order.provider)
        return bool(
            order.can_refill
            and provider is not None
            and provider.supports_refill
            and order.status in REFILLABLE
            and (order.refill_id is None or _refill_done(order.refill_status))
        )

    def can_cancel(self, order: SmmOrder) -> bool:
        provider = self.providers.get(order.provider)
        return bool(
            order.can_cancel
            and provider is not None
            and provider.supports_cancel
            and order.status in LIVE
            and order.cancel_requested_at is None
        )

    async def _settle(
        self,
        order_id: int,
        from_states: Sequence[str],
        to_state: str,
        *,
        refund: int | None,
        reason: str | None = None,
        notify: bool = True,
        values: dict[str, Any] | None = None,
    ) -> SmmOrder:
        """Move to a final state and refund `refund` (None: the whole price) in the same
        transaction; tell the user through the outbox."""
        kind = Refund.FULL if refund is None else Refund.NONE
        if to_state == PARTIAL:
            kind = Refund.SHARE
        async with self.db.write() as session:
            moved = await core.move(
                session,
                "smm",
                order_id,
                from_states,
                to_state,
                now=self.clock(),
                refund=kind,
                share=refund or 0,
                reason=reason,
                values=values,
            )
            if moved is not None:
                user_id = moved.user_id
                if moved.refunded:
                    await self.notifier.emit(
                        session,
                        "refund",
                        user=user_id,
                        amount=moved.refunded,
                        order=f"smm:{order_id}",
                        reason=reason or to_state,
                    )
                if notify and self.presenter is not None:
                    order = await session.get_one(SmmOrder, order_id)
                    if not order.quiet:  # a reseller API order that pushes nothing
                        language = await session.scalar(
                            select(User.language).where(User.id == user_id)
                        )
                        text = self.presenter.closed_text(order, language or "en")
                        await outbox.enqueue(session, user_id, text, f"smm:{to_state}")
        order = await self.get(order_id)
        if moved is not None:
            log.info(
                "smm order closed",
                extra={
                    "smm_order_id": order_id,
                    "status": to_state,
                    "refund": order.refunded,
                    "reason": reason,
                },
            )
        return order

    async def apply_status(self, order: SmmOrder, status: SmmOrderStatus) -> SmmOrder:
        """What the panel says about an order we placed."""
        if status.state in (SmmOrderState.PENDING, SmmOrderState.IN_PROGRESS):
            changes = _progress(order, status)
            if changes is None:
                return order
            async with self.db.write() as session:
                await self._write_progress(session, order.id, changes)
            return await self.get(order.id)
        return await self._finish(order, status)

    async def _write_progress(self, session: Any, order_id: int, changes: dict[str, Any]) -> None:
        """Start count, remains, trouble marks; and pending -> in progress, the one move here."""
        changes = dict(changes)
        if changes.pop("status", None) == IN_PROGRESS:
            moved = await core.move(
                session,
                "smm",
                order_id,
                (PENDING,),
                IN_PROGRESS,
                now=self.clock(),
                values=changes,
            )
            if moved is not None:
                return  # the move wrote the progress too
        await session.execute(
            update(SmmOrder)
            .where(SmmOrder.id == order_id, SmmOrder.status.in_(LIVE))
            .values(**changes, updated_at=self.clock())
        )

    async def _finish(self, order: SmmOrder, status: SmmOrderStatus) -> SmmOrder:
        """Completed, Partial (refund of the undelivered share) or Canceled (full refund)."""
        start_count = status.start_count if status.start_count is not None else order.start_count
        remains = _clamped(status.remains, units(order))
        match status.state:
            case SmmOrderState.COMPLETED:
                return await self._settle(
                    order.id,
                    LIVE,
                    COMPLETED,
                    refund=0,
                    values={"start_count": start_count, "remains": 0},
                )
            case SmmOrderState.PARTIAL if status.remains is None:
                # Never a refund of $0: the poller marks it for the admins instead.
                log.warning("partial without remains", extra={"smm_order_id": order.id})
                return order
            case SmmOrderState.PARTIAL:
                paid_back = pricing.partial_refund(order.price, status.remains or 0, units(order))
                return await self._settle(
                    order.id,
                    LIVE,
                    PARTIAL,
                    refund=paid_back,
                    values={"start_count": start_count, "remains": remains or 0},
                )
            case _:
                return await self._settle(
                    order.id,
                    LIVE,
                    CANCELLED,
                    refund=None,
                    values={"start_count": start_count, "remains": remains},
                )

    async def _fail(self, order_id: int, reason: str, *, notify: bool = False) -> SmmOrder:
        return await self._settle(
            order_id, (PLACING,), FAILED, refund=None, reason=reason, notify=notify
        )

    async def _mark_unknown(self, order_id: int, error: str) -> SmmOrder:
        async with self.db.write() as session:
            moved = await core.move(
                session,
                "smm",
                order_id,
                (PLACING,),
                UNKNOWN,
                now=self.clock(),
                values={"alerted_at": self.clock()},
            )
            order = await session.get(SmmOrder, order_id) if moved else None
            row = (order.provider,) if order is not None else None
            if row is not None:
                await self.notifier.emit(
                    session,
                    "unknown-order",
                    order=f"smm:{order_id}",
                    provider=row[0],
                    tried="smm-no-answer",
                    since="",
                    detail="",
                    word="",
                )
        if row is not None:
            log.error(
                "smm order outcome unknown and SMM panels have no order list: "
                "an admin must resolve it (never re-sent)",
                extra={"smm_order_id": order_id, "provider": row[0], "error": error},
            )
        return await self.get(order_id)

    async def _placed(self, order_id: int, upstream_id: str) -> SmmOrder:
        async with self.db.write() as session:
            moved = await core.move(
                session,
                "smm",
                order_id,
                (PLACING, UNKNOWN),
                PENDING,
                now=self.clock(),
                values={"provider_order_id": upstream_id},
            )
            placed = await session.get(SmmOrder, order_id) if moved else None
            if placed is not None:
                cost = upstream_cost(placed)
                await self.notifier.emit(
                    session,
                    "purchase",
                    what=SmmGoods(placed.service_name[:60], placed.quantity),
                    user=placed.user_id,
                    price=placed.price,
                    cost=cost,
                    profit=placed.price - cost,
                    provider=placed.provider,
                )
        order = await self.get(order_id)
        log.info(
            "smm order placed",
            extra={
                "smm_order_id": order_id,
                "provider": order.provider,
                "order_id": upstream_id,
                "price": order.price,
            },
        )
        return order



# --- helpers -------------------------------------------------------------------------------------


def _trouble(result: SmmOrderStatus | ProviderError | None) -> tuple[str, str] | None:
    """(what, status word) when the panel's answer about one order cannot be acted on."""
    if result is None or isinstance(result, OrderNotFound):
        return "not-found", ""
    if isinstance(result, UnreadableOrder):
        return "unknown-status", result.word
    if (
        isinstance(result, SmmOrderStatus)
        and result.state is SmmOrderState.PARTIAL
        and result.remains is None
    ):
        return "partial-no-remains", "Partial"
    return None


def _clock_time(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if when is not None else "?"


def units(order: SmmOrder) -> int:
    """What the whole order delivers: quantity x runs for drip-feed. A panel's `remains`
    counts the whole order, so a partial refund is paid x remains / units."""
    return order.quantity * (order.runs or 1)


def _clamped(remains: int | None, quantity: int) -> int | None:
    return None if remains is None else min(max(remains, 0), quantity)


def _progress(order: SmmOrder, status: SmmOrderStatus) -> dict[str, Any] | None:
    """The columns a Pending / In progress answer changes, or None when nothing changed."""
    target = IN_PROGRESS if status.state is SmmOrderState.IN_PROGRESS else order.status
    start_count = status.start_count if status.start_count is not None else order.start_count
    remains = _clamped(status.remains, units(order))
    if remains is None:
        remains = order.remains
    if (target, start_count, remains) == (order.status, order.start_count, order.remains):
        return None
    return {"status": target, "start_count": start_count, "remains": remains}


def refill_state(word: str | None) -> str:
    """pending, running, completed, partial, rejected, failed, not_found, or other."""
    return REFILL_STATES.get(word or "pending", "other")


def _refill_done(word: str | None) -> bool:
    return word is None or refill_state(word) not in ("pending", "running")


def _extra(item: SmmItem, draft: SmmDraft) -> str | None:
    match item.type:
        case SmmServiceType.CUSTOM_COMMENTS:
            return "\n".join(line.strip() for line in draft.comments if line.strip())
        case SmmServiceType.POLL:
            return str(draft.answer_number)
        case SmmServiceType.MENTIONS:
            return "\n".join(draft.usernames)
        case _:
            return None


def _request(order: SmmOrder) -> SmmOrderRequest:
    kind = SmmServiceType(order.type)
    lines = tuple(order.extra.split("\n")) if order.extra else ()
    return SmmOrderRequest(
        service_id=order.service_id,
        type=kind,
        link=order.link,
        quantity=None if kind is SmmServiceType.PACKAGE else order.quantity,
        runs=order.runs,
        interval=order.interval,
        comments=lines if kind is SmmServiceType.CUSTOM_COMMENTS else (),
        answer_number=int(order.extra or 0) if kind is SmmServiceType.POLL else None,
        usernames=lines if kind is SmmServiceType.MENTIONS else (),
    )


def _reason(exc: ProviderError) -> str:
    """Why an `add` was refused, for the user (the full text is in the log)."""
    if isinstance(exc, Unavailable):
        return REASON_UNAVAILABLE
    if isinstance(exc, BadRequest):
        text = str(exc).lower()
        if "this link" in text or "link_duplicate" in text:
            return REASON_LINK_BUSY
        if "quantity" in text:
            return REASON_BAD_QUANTITY
        if "link" in text:
            return REASON_BAD_LINK
    return REASON_PROVIDER_ERROR


def upstream_cost(order: SmmOrder) -> int:
    """What the panel charges for the whole order, in store micro-units (for reports)."""
    units = Decimal(order.quantity * (order.runs or 1)) / 1000
    if order.type == "package":
        units = Decimal(1)
    return ceil_micro(Decimal(order.upstream_rate) * Decimal(order.rate) * units)
