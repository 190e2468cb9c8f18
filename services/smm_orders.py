"""SMM orders: place, poll, refill, cancel, history.

Every state change is one conditional UPDATE (`... WHERE status IN (...)`), and a refund is
written in the same transaction with the key `refund:smm:<id>`: whoever moves an order into a
final state first refunds it, and nobody can refund it twice. No upstream call and no Telegram
call happens inside a transaction; what the user must hear after a commit goes through the
outbox. An `add` is sent exactly once: a lost answer leaves the order 'unknown' for an admin
(SMM panels have no order list to find it in).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from db.engine import Database
from db.models import SmmOrder, User, utcnow
from services import outbox, pricing, wallet
from services.ids import is_id
from services.money import ceil_micro
from services.notifier import Notifier, SmmGoods
from services.providers.base import (
    SmmOrderRequest,
    SmmOrderState,
    SmmOrderStatus,
    SmmProvider,
    SmmServiceType,
)
from services.providers.errors import (
    AuthError,
    BadRequest,
    InvalidState,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
    UnreadableOrder,
)
from services.smm_catalog import SmmCatalog, SmmItem

log = logging.getLogger(__name__)

PLACING, PENDING, IN_PROGRESS, UNKNOWN = "placing", "pending", "in_progress", "unknown"
COMPLETED, PARTIAL, CANCELLED, FAILED = "completed", "partial", "cancelled", "failed"
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

MAX_LINK = 2000
MAX_COMMENT = 500
MAX_ANSWER = 100
RUNS_RANGE = (2, 100)
INTERVAL_RANGE = (1, 1440)  # minutes
_HOST = re.compile(r"[\w-]+(\.[\w-]+)+", re.UNICODE)
_USERNAME = re.compile(r"@?[A-Za-z0-9_.]{1,64}")

# Reasons kept in `fail_reason` (rendered by the bot from locales).
REASON_PROVIDER_ERROR = "provider_error"
REASON_BAD_LINK = "bad_link"
REASON_BAD_QUANTITY = "bad_quantity"
REASON_LINK_BUSY = "link_busy"
REASON_UNAVAILABLE = "unavailable"
REASON_NOT_SENT = "not_sent"
REASON_LOST = "lost"


# --- what the service tells its callers ------------------------------------------------------


class SmmError(Exception):
    """A user-facing refusal; the handler renders it. Nothing changed."""


class NotFound(SmmError):
    """No such order for this user (another user's id looks exactly the same)."""


class Banned(SmmError):
    pass


class ServiceGone(SmmError):
    """The service is no longer in the catalog."""


class PriceChanged(SmmError):
    def __init__(self, price: int) -> None:
        super().__init__(price)
        self.price = price


class NotEnoughMoney(SmmError):
    def __init__(self, missing: int, balance: int) -> None:
        super().__init__(missing)
        self.missing = missing
        self.balance = balance


class AlreadyConfirmed(SmmError):
    """The same confirmation was pressed twice: the first press is the order."""

    def __init__(self, order_id: int) -> None:
        super().__init__(order_id)
        self.order_id = order_id


class NotOffered(SmmError):
    """Refill / cancel for a service or protocol that does not have it."""


class WrongState(SmmError):
    """The action does not fit the order's state (not finished yet, already ended...)."""


class RefillInProgress(SmmError):
    pass


class Refused(SmmError):
    """The upstream said no to a refill or a cancel."""


class TryLater(SmmError):
    """The upstream did not answer; nothing changed."""


class BadInput(SmmError):
    """What the user typed cannot be ordered; `code` names the problem, `params` fill the text."""

    def __init__(self, code: str, **params: int) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


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


# --- input ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmmDraft:
    """What the user typed, step by step (kept in the FSM between messages)."""

    service: str  # catalog key
    link: str = ""
    quantity: int | None = None
    runs: int | None = None
    interval: int | None = None
    comments: tuple[str, ...] = ()
    answer_number: int | None = None
    usernames: tuple[str, ...] = ()

    def to_data(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "link": self.link,
            "quantity": self.quantity,
            "runs": self.runs,
            "interval": self.interval,
            "comments": list(self.comments),
            "answer_number": self.answer_number,
            "usernames": list(self.usernames),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SmmDraft:
        return cls(
            service=str(data.get("service") or ""),
            link=str(data.get("link") or ""),
            quantity=data.get("quantity"),
            runs=data.get("runs"),
            interval=data.get("interval"),
            comments=tuple(data.get("comments") or ()),
            answer_number=data.get("answer_number"),
            usernames=tuple(data.get("usernames") or ()),
        )


@dataclass(frozen=True, slots=True)
class SmmQuote:
    item: SmmItem
    draft: SmmDraft
    quantity: int
    runs: int
    total: int  # micro


def is_http_url(text: str) -> bool:
    if any(char.isspace() for char in text):
        return False
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme.lower() in ("http", "https") and bool(_HOST.fullmatch(host))


def check_link(text: str) -> str:
    link = text.strip()
    if not link:
        raise BadInput("link_empty")
    if len(link) > MAX_LINK:
        raise BadInput("link_too_long", max=MAX_LINK)
    if not is_http_url(link):
        raise BadInput("link_not_url")
    return link


def parse_int(text: str, code: str) -> int:
    digits = "".join(text.split())
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        raise BadInput(code)
    return int(digits)


def check_quantity(quantity: int | None, item: SmmItem) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise BadInput("quantity_not_number", min=item.min, max=item.max)
    if not item.min <= quantity <= item.max:
        raise BadInput("quantity_range", min=item.min, max=item.max)
    return quantity


def parse_quantity(text: str, item: SmmItem) -> int:
    try:
        value = parse_int(text, "quantity_not_number")
    except BadInput:
        raise BadInput("quantity_not_number", min=item.min, max=item.max) from None
    return check_quantity(value, item)


def check_comments(comments: Sequence[str], item: SmmItem) -> tuple[str, ...]:
    lines = tuple(line.strip() for line in comments if line.strip())
    if not lines:
        raise BadInput("comments_empty", min=item.min, max=item.max)
    if any(len(line) > MAX_COMMENT for line in lines):
        raise BadInput("comment_too_long", max=MAX_COMMENT)
    if not item.min <= len(lines) <= item.max:
        raise BadInput("comments_count", min=item.min, max=item.max, count=len(lines))
    return lines


def parse_comments(text: str, item: SmmItem) -> tuple[str, ...]:
    return check_comments(text.splitlines(), item)


def check_answer(value: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ANSWER:
        raise BadInput("answer_range", max=MAX_ANSWER)
    return value


def parse_answer(text: str) -> int:
    try:
        return check_answer(parse_int(text, "answer_range"))
    except BadInput:
        raise BadInput("answer_range", max=MAX_ANSWER) from None


def check_usernames(names: Sequence[str]) -> tuple[str, ...]:
    cleaned = tuple(name.strip() for name in names if name.strip())
    if not cleaned or len(cleaned) > 1000:
        raise BadInput("usernames_empty")
    if not all(_USERNAME.fullmatch(name) for name in cleaned):
        raise BadInput("usernames_bad")
    return cleaned


def parse_usernames(text: str) -> tuple[str, ...]:
    return check_usernames(text.replace(",", " ").split())


def check_runs(runs: int | None) -> int:
    low, high = RUNS_RANGE
    if isinstance(runs, bool) or not isinstance(runs, int) or not low <= runs <= high:
        raise BadInput("runs_range", min=low, max=high)
    return runs


def parse_runs(text: str) -> int:
    try:
        return check_runs(parse_int(text, "runs_range"))
    except BadInput:
        raise BadInput("runs_range", min=RUNS_RANGE[0], max=RUNS_RANGE[1]) from None


def check_interval(minutes: int | None) -> int:
    low, high = INTERVAL_RANGE
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not low <= minutes <= high:
        raise BadInput("interval_range", min=low, max=high)
    return minutes


def parse_interval(text: str) -> int:
    try:
        return check_interval(parse_int(text, "interval_range"))
    except BadInput:
        raise BadInput("interval_range", min=INTERVAL_RANGE[0], max=INTERVAL_RANGE[1]) from None


def price_of(item: SmmItem, quantity: int, runs: int = 1) -> int:
    """A Package costs its rate once (panels charge the package's rate, not rate x 1/1000);
    everything else ceil(rate per 1000 x quantity x runs / 1000)."""
    if item.per_package:
        return item.rate_per_1000
    return pricing.smm_total(item.rate_per_1000, quantity, runs)


def new_token() -> str:
    """A confirmation's idempotency token (in the Confirm button's callback data)."""
    return secrets.token_urlsafe(6)


# --- the service ---------------------------------------------------------------------------------


class SmmOrderService:
    def __init__(
        self,
        db: Database,
        catalog: SmmCatalog,
        providers: dict[str, SmmProvider],
        rules: SmmRules,
        *,
        kick_outbox: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.providers = providers
        self.rules = rules
        self.kick_outbox = kick_outbox
        self.clock = clock
        self.presenter: Presenter | None = None
        self.notifier = Notifier()  # the bot layer replaces it when NOTIFY_CHAT_ID is set
        self._in_flight: set[int] = set()  # orders this process is placing right now
        self._poll_lock = asyncio.Lock()
        self._reconcile_lock = asyncio.Lock()
        self._stopped = False
        self._acting: set[int] = set()  # orders with a refill/cancel request on its way

    # --- placing -------------------------------------------------------------------------

    def quote(self, draft: SmmDraft) -> SmmQuote:
        """Check every field of the draft against the service; the price the user confirms."""
        item = self.catalog.item(draft.service)
        if item is None:
            raise ServiceGone()
        link = check_link(draft.link)
        runs = 1
        match item.type:
            case SmmServiceType.PACKAGE:
                quantity = 1
            case SmmServiceType.CUSTOM_COMMENTS:
                quantity = len(check_comments(draft.comments, item))
            case _:
                quantity = check_quantity(draft.quantity, item)
        if item.type is SmmServiceType.POLL:
            check_answer(draft.answer_number)
        if item.type is SmmServiceType.MENTIONS:
            check_usernames(draft.usernames)
        if draft.runs is not None or draft.interval is not None:
            if not item.dripfeed:
                raise BadInput("dripfeed_off")
            runs = check_runs(draft.runs)
            check_interval(draft.interval)
        if link != draft.link:
            draft = replace(draft, link=link)
        return SmmQuote(item, draft, quantity, runs, price_of(item, quantity, runs))

    async def create(
        self, user_id: int, draft: SmmDraft, confirmed_price: int, token: str
    ) -> SmmOrder:
        """Debit the confirmed price and write the 'placing' row, in one transaction."""
        quote = self.quote(draft)
        if quote.total != confirmed_price:
            raise PriceChanged(quote.total)
        item, now = quote.item, self.clock()
        confirm_key = f"{user_id}:{token}"
        claimed: int | None = None
        try:
            async with self.db.write() as session:
                user = await session.get(User, user_id)
                if user is None or user.banned:
                    raise Banned()
                order = SmmOrder(
                    user_id=user_id,
                    confirm_key=confirm_key,
                    status=PLACING,
                    provider=item.provider,
                    service_id=item.service_id,
                    service_name=item.name[:256],
                    category=item.category[:256],
                    type=item.type.value,
                    link=quote.draft.link,
                    quantity=quote.quantity,
                    runs=draft.runs,
                    interval=draft.interval,
                    extra=_extra(item, quote.draft),
                    rate_per_1000=item.rate_per_1000,
                    upstream_rate=str(item.upstream_rate),
                    upstream_currency=item.currency[:3],
                    rate=str(item.rate),
                    markup_percent=str(item.markup_percent),
                    price=quote.total,
                    refunded=0,
                    can_refill=item.refill,
                    can_cancel=item.cancel,
                    created_at=now,
                    updated_at=now,
                )
                session.add(order)
                await session.flush()
                # Claimed before the commit, so reconciliation never mistakes it for a crash.
                self._in_flight.add(order.id)
                claimed = order.id
                await wallet.debit(
                    session,
                    user_id,
                    quote.total,
                    reason="purchase",
                    key=f"charge:smm:{order.id}",
                    ref=f"smm:{order.id}",
                )
        except wallet.InsufficientFunds as exc:
            self._in_flight.discard(claimed or 0)
            raise NotEnoughMoney(exc.missing, exc.balance) from None
        except IntegrityError:
            self._in_flight.discard(claimed or 0)
            existing = await self._by_confirm_key(confirm_key)
            if existing is None:
                raise
            raise AlreadyConfirmed(existing) from None
        except BaseException:
            self._in_flight.discard(claimed or 0)
            raise
        return order

    async def by_token(self, user_id: int, token: str) -> int | None:
        """The order an earlier press of this confirmation placed, if any."""
        return await self._by_confirm_key(f"{user_id}:{token}")

    async def _by_confirm_key(self, key: str) -> int | None:
        async with self.db.read() as session:
            return await session.scalar(select(SmmOrder.id).where(SmmOrder.confirm_key == key))

    async def execute(self, order_id: int) -> SmmOrder:
        """Send the `add`, exactly once: a refusal refunds at once, a lost answer is 'unknown'."""
        try:
            return await self._execute(order_id)
        finally:
            self._in_flight.discard(order_id)

    async def _execute(self, order_id: int) -> SmmOrder:
        order = await self.get(order_id)
        if order.status != PLACING:
            return order
        provider = self.providers.get(order.provider)
        if provider is None:
            log.error("smm order of an unconfigured provider", extra={"provider": order.provider})
            return await self._fail(order_id, REASON_PROVIDER_ERROR)
        try:
            request = _request(order)
        except ValueError as exc:
            log.error(
                "smm order cannot be sent", extra={"smm_order_id": order_id, "error": str(exc)}
            )
            return await self._fail(order_id, REASON_PROVIDER_ERROR)
        if not await self._mark_submitted(order_id):
            return await self.get(order_id)
        try:
            upstream_id = await provider.add(request, client_ref=str(order_id))
        except OutcomeUnknown as exc:
            return await self._mark_unknown(order_id, str(exc))
        except ProviderError as exc:
            level = (
                logging.ERROR
                if isinstance(exc, ProviderBalanceLow | AuthError)
                else logging.WARNING
            )
            log.log(
                level,
                "smm order refused by provider",
                extra={
                    "smm_order_id": order_id,
                    "provider": order.provider,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            return await self._fail(order_id, _reason(exc))
        return await self._placed(order_id, upstream_id)

    async def _mark_submitted(self, order_id: int) -> bool:
        """Written *before* the `add` leaves: a crash after this cannot tell whether the panel
        has the order, a crash before it can (nothing was sent: refund)."""
        async with self.db.write() as session:
            result = await session.execute(
                update(SmmOrder)
                .where(
                    SmmOrder.id == order_id,
                    SmmOrder.status == PLACING,
                    SmmOrder.submitted_at.is_(None),
                )
                .values(submitted_at=self.clock(), updated_at=self.clock())
                .returning(SmmOrder.id)
            )
            return result.first() is not None

    async def _mark_unknown(self, order_id: int, error: str) -> SmmOrder:
        async with self.db.write() as session:
            result = await session.execute(
                update(SmmOrder)
                .where(SmmOrder.id == order_id, SmmOrder.status == PLACING)
                .values(status=UNKNOWN, updated_at=self.clock(), alerted_at=self.clock())
                .returning(SmmOrder.provider)
            )
            row = result.first()
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
        self.notifier.wake()
        if row is not None:
            log.error(
                "smm order outcome unknown and SMM panels have no order list: "
                "an admin must resolve it (never re-sent)",
                extra={"smm_order_id": order_id, "provider": row[0], "error": error},
            )
        return await self.get(order_id)

    async def adopt(self, order_id: int, upstream_id: str) -> SmmOrder:
        """An admin found the lost order on the panel: poll it from now on."""
        order = await self.get(order_id)
        if order.status != UNKNOWN:
            raise WrongState()
        if order.provider_order_id is None:  # the `add` answer was lost: announced now
            return await self._placed(order_id, upstream_id)
        # Placed and announced before; the panel stopped showing it: follow it again.
        async with self.db.write() as session:
            await session.execute(
                update(SmmOrder)
                .where(SmmOrder.id == order_id, SmmOrder.status == UNKNOWN)
                .values(
                    status=PENDING,
                    provider_order_id=upstream_id,
                    trouble_since=None,
                    trouble=None,
                    alerted_at=None,
                    updated_at=self.clock(),
                )
            )
        log.info("smm order followed again", extra={"smm_order_id": order_id})
        return await self.get(order_id)

    async def _placed(self, order_id: int, upstream_id: str) -> SmmOrder:
        async with self.db.write() as session:
            result = await session.execute(
                update(SmmOrder)
                .where(SmmOrder.id == order_id, SmmOrder.status.in_((PLACING, UNKNOWN)))
                .values(status=PENDING, provider_order_id=upstream_id, updated_at=self.clock())
                .returning(SmmOrder)
            )
            placed = result.scalar_one_or_none()
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
        self.notifier.wake()
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

    async def _fail(self, order_id: int, reason: str, *, notify: bool = False) -> SmmOrder:
        return await self._settle(
            order_id, (PLACING,), FAILED, refund=None, reason=reason, notify=notify
        )

    # --- reading -------------------------------------------------------------------------

    async def get(self, order_id: int) -> SmmOrder:
        if not is_id(order_id):  # a forged huge id would overflow the query
            raise NotFound()
        async with self.db.read() as session:
            order = await session.get(SmmOrder, order_id)
        if order is None:
            raise NotFound()
        return order

    async def get_own(self, user_id: int, order_id: int) -> SmmOrder:
        order = await self.get(order_id)
        if order.user_id != user_id:
            raise NotFound()
        return order

    async def history(self, user_id: int, offset: int, limit: int) -> tuple[list[SmmOrder], int]:
        async with self.db.read() as session:
            total = await session.scalar(
                select(func.count()).select_from(SmmOrder).where(SmmOrder.user_id == user_id)
            )
            rows = await session.execute(
                select(SmmOrder)
                .where(SmmOrder.user_id == user_id)
                .order_by(SmmOrder.id.desc())
                .offset(offset)
                .limit(limit)
            )
            return list(rows.scalars()), int(total or 0)

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

    # --- user actions --------------------------------------------------------------------

    async def refill(self, user_id: int, order_id: int) -> SmmOrder:
        order = await self.get_own(user_id, order_id)
        provider = self.providers.get(order.provider)
        if not order.can_refill or provider is None or not provider.supports_refill:
            raise NotOffered()
        if order.status not in REFILLABLE:
            raise WrongState()
        if order_id in self._acting or (
            order.refill_id is not None and not _refill_done(order.refill_status)
        ):
            raise RefillInProgress()
        self._acting.add(order_id)
        try:
            refill_id = await provider.refill(order.provider_order_id or "")
        except (InvalidState, BadRequest, OrderNotFound, NotSupported) as exc:
            log.info("refill refused", extra={"smm_order_id": order_id, "error": str(exc)})
            raise Refused() from None
        except ProviderError as exc:
            log.warning("refill failed", extra={"smm_order_id": order_id, "error": str(exc)})
            raise TryLater() from None
        finally:
            self._acting.discard(order_id)
        async with self.db.write() as session:
            await session.execute(
                update(SmmOrder)
                .where(SmmOrder.id == order_id)
                .values(refill_id=refill_id, refill_status="pending", updated_at=self.clock())
            )
        log.info("refill requested", extra={"smm_order_id": order_id, "refill_id": refill_id})
        return await self.get(order_id)

    async def cancel(self, user_id: int, order_id: int) -> SmmOrder:
        """Ask the panel to cancel. The refund comes from the status poll (Canceled or Partial),
        never from this answer: `cancel: 1` only means the request was accepted."""
        order = await self.get_own(user_id, order_id)
        provider = self.providers.get(order.provider)
        if not order.can_cancel or provider is None or not provider.supports_cancel:
            raise NotOffered()
        if order.status not in LIVE or order.cancel_requested_at is not None:
            raise WrongState()
        if order_id in self._acting:
            raise TryLater()
        upstream_id = order.provider_order_id or ""
        self._acting.add(order_id)
        try:
            answer = (await provider.cancel([upstream_id])).get(upstream_id)
        except NotSupported:
            raise NotOffered() from None
        except ProviderError as exc:
            answer = exc
        finally:
            self._acting.discard(order_id)
        if isinstance(answer, Unavailable):
            raise TryLater()
        if answer is not True:
            log.info("cancel refused", extra={"smm_order_id": order_id, "answer": str(answer)})
            raise Refused()
        async with self.db.write() as session:
            await session.execute(
                update(SmmOrder)
                .where(SmmOrder.id == order_id, SmmOrder.status.in_(LIVE))
                .values(cancel_requested_at=self.clock(), updated_at=self.clock())
            )
        log.info("cancel requested", extra={"smm_order_id": order_id})
        return await self.get(order_id)

    # --- state changes -------------------------------------------------------------------

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
        now = self.clock()
        changes: dict[str, Any] = {
            "status": to_state,
            "fail_reason": reason,
            "closed_at": now,
            "updated_at": now,
            **(values or {}),
        }
        # Bounded by what was paid, in the statement that moves the state: an open order has
        # refunded nothing, and pays back at most its price (the partial share is floor()ed).
        changes["refunded"] = SmmOrder.price if refund is None else refund
        async with self.db.write() as session:
            result = await session.execute(
                update(SmmOrder)
                .where(
                    SmmOrder.id == order_id,
                    SmmOrder.status.in_(from_states),
                    SmmOrder.refunded == 0,
                    SmmOrder.price >= (refund or 0),
                )
                .values(**changes)
                .returning(SmmOrder.user_id, SmmOrder.refunded)
            )
            row = result.first()
            if row is not None:
                user_id, amount = row
                if amount > 0:
                    done = await wallet.refund(
                        session,
                        user_id,
                        amount,
                        key=f"refund:smm:{order_id}",
                        ref=f"smm:{order_id}",
                    )
                    if done.applied:
                        await self.notifier.emit(
                            session,
                            "refund",
                            user=user_id,
                            amount=amount,
                            order=f"smm:{order_id}",
                            reason=reason or to_state,
                        )
                if notify and self.presenter is not None:
                    language = await session.scalar(
                        select(User.language).where(User.id == user_id)
                    )
                    order = await session.get(SmmOrder, order_id)
                    assert order is not None
                    text = self.presenter.closed_text(order, language or "en")
                    await outbox.enqueue(session, user_id, text, f"smm:{to_state}")
        self.notifier.wake()
        order = await self.get(order_id)
        if row is not None:
            log.info(
                "smm order closed",
                extra={
                    "smm_order_id": order_id,
                    "status": to_state,
                    "refund": order.refunded,
                    "reason": reason,
                },
            )
            if notify:
                self.kick_outbox()
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

    # --- the scheduler's side ------------------------------------------------------------

    async def stop(self) -> None:
        """Shutdown: no new rounds, and let a running one finish."""
        self._stopped = True
        async with self._poll_lock, self._reconcile_lock:
            pass

    async def poll(self) -> None:
        """One round over every live order, batched per provider; rounds never overlap."""
        if self._poll_lock.locked() or self._stopped:
            return
        async with self._poll_lock:
            async with self.db.read() as session:
                rows = await session.execute(
                    select(SmmOrder)
                    .where(SmmOrder.status.in_(LIVE), SmmOrder.provider_order_id.is_not(None))
                    .order_by(SmmOrder.checked_at.is_not(None), SmmOrder.checked_at, SmmOrder.id)
                )
                orders = list(rows.scalars())
            by_provider: dict[str, list[SmmOrder]] = defaultdict(list)
            for order in orders:
                by_provider[order.provider].append(order)
            await asyncio.gather(
                *(self._poll_provider(name, group) for name, group in by_provider.items())
            )
            await self._poll_refills()

    def _poll_budget(self, provider: SmmProvider) -> int | None:
        """Ids per round for a rate-limited provider (Toolvico: one id per request)."""
        per_minute = self.rules.rate_limits.get(provider.name)
        if not per_minute:
            return None
        calls = max(1, int(per_minute * self.rules.poll_interval_s / 60))
        return calls * max(1, provider.max_batch)

    async def _poll_provider(self, name: str, orders: list[SmmOrder]) -> None:
        provider = self.providers.get(name)
        if provider is None:
            log.error("smm order of an unconfigured provider", extra={"provider": name})
            return
        budget = self._poll_budget(provider)
        if budget is not None:
            orders = orders[:budget]  # least recently checked first
        by_upstream = {order.provider_order_id or "": order for order in orders}
        try:
            results = await provider.statuses(list(by_upstream))
        except ProviderError as exc:
            log.info("smm status failed", extra={"provider": name, "error": str(exc)})
            return
        finished: list[tuple[SmmOrder, SmmOrderStatus]] = []
        lost: list[SmmOrder] = []
        given_up: list[tuple[SmmOrder, str, str]] = []
        now = self.clock()
        async with self.db.write() as session:
            # One transaction for the round's bookkeeping and progress (start count, remains,
            # pending -> in progress); each final state gets its own, with its refund.
            await session.execute(
                update(SmmOrder)
                .where(SmmOrder.id.in_([o.id for o in orders]))
                .values(checked_at=now)
            )
            for upstream_id, order in by_upstream.items():
                result = results.get(upstream_id)
                trouble = _trouble(result)
                if trouble is not None:
                    if isinstance(result, OrderNotFound) and provider.is_demo:
                        lost.append(order)
                    elif await self._note_trouble(session, order, trouble, now):
                        given_up.append((order, *trouble))
                    continue
                if isinstance(result, SmmOrderStatus):
                    if order.trouble_since is not None:
                        await self._write_progress(
                            session, order.id, {"trouble_since": None, "trouble": None}
                        )
                    if result.state not in (SmmOrderState.PENDING, SmmOrderState.IN_PROGRESS):
                        finished.append((order, result))
                    elif (changes := _progress(order, result)) is not None:
                        await self._write_progress(session, order.id, changes)
                elif result is not None:
                    log.info(
                        "smm status of one order failed",
                        extra={"smm_order_id": order.id, "error": type(result).__name__},
                    )
        for order, status in finished:
            await self._finish(order, status)
        for order in lost:
            # The demo forgets its orders on a restart: nothing will ever be delivered.
            await self._settle(order.id, LIVE, CANCELLED, refund=None, reason=REASON_LOST)
        for order, detail, word in given_up:
            await self._give_up(order, detail, word)

    async def _note_trouble(
        self, session: Any, order: SmmOrder, trouble: tuple[str, str], now: datetime
    ) -> bool:
        """The panel cannot show this order properly. True once the grace period is over."""
        if order.trouble_since is None:
            log.warning(
                "smm order unreadable upstream",
                extra={"smm_order_id": order.id, "trouble": trouble[0], "word": trouble[1]},
            )
            await self._write_progress(
                session, order.id, {"trouble_since": now, "trouble": ":".join(trouble)[:128]}
            )
            return False
        return (now - order.trouble_since).total_seconds() >= self.rules.trouble_grace_s

    async def _give_up(self, order: SmmOrder, detail: str, word: str) -> None:
        """Still unreadable after the grace period: 'unknown', and the admins are told once;
        an admin resolves it (/refund, or /adopt to follow it again)."""
        async with self.db.write() as session:
            result = await session.execute(
                update(SmmOrder)
                .where(
                    SmmOrder.id == order.id,
                    SmmOrder.status.in_(LIVE),
                    SmmOrder.alerted_at.is_(None),
                )
                .values(status=UNKNOWN, alerted_at=self.clock(), updated_at=self.clock())
                .returning(SmmOrder.id)
            )
            if result.first() is None:
                return
            await self.notifier.emit(
                session,
                "unknown-order",
                order=f"smm:{order.id}",
                provider=order.provider,
                tried="smm-trouble",
                since=_clock_time(order.trouble_since),
                detail=detail,
                word=word,
            )
        self.notifier.wake()
        log.error(
            "smm order unreadable upstream past the grace period: an admin must resolve it",
            extra={"smm_order_id": order.id, "trouble": detail, "word": word},
        )

    async def _poll_refills(self) -> None:
        async with self.db.read() as session:
            rows = await session.execute(
                select(SmmOrder)
                .where(SmmOrder.refill_id.is_not(None))
                .where(
                    SmmOrder.refill_status.is_(None)
                    | SmmOrder.refill_status.in_(REFILL_RUNNING_WORDS)
                )
                .order_by(SmmOrder.updated_at)
                .limit(self.rules.refill_checks_per_round)
            )
            orders = list(rows.scalars())
        for order in orders:
            provider = self.providers.get(order.provider)
            if provider is None or not provider.supports_refill:
                continue
            try:
                word = await provider.refill_status(order.refill_id or "")
            except OrderNotFound:
                word = "not found"
            except ProviderError as exc:
                log.info(
                    "refill status failed", extra={"smm_order_id": order.id, "error": str(exc)}
                )
                continue
            word = " ".join(word.lower().replace("_", " ").split())[:32]
            async with self.db.write() as session:
                result = await session.execute(
                    update(SmmOrder)
                    .where(SmmOrder.id == order.id, SmmOrder.refill_id == order.refill_id)
                    .values(refill_status=word, updated_at=self.clock())
                    .returning(SmmOrder.id)
                )
                if result.first() is not None and refill_state(word) == "other":
                    await self.notifier.emit(
                        session,
                        "refill-unknown",
                        order=f"smm:{order.id}",
                        provider=order.provider,
                        word=word,
                    )
            if refill_state(word) == "other":
                self.notifier.wake()
                log.warning(
                    "refill status word not known: taken as final",
                    extra={"smm_order_id": order.id, "word": word},
                )

    async def reconcile(self) -> None:
        """Orders left 'placing' (a crash): never sent -> refunded; maybe sent -> 'unknown'."""
        if self._reconcile_lock.locked() or self._stopped:
            return
        async with self._reconcile_lock:
            await self._reconcile()

    async def _reconcile(self) -> None:
        horizon = self.clock() - timedelta(seconds=self.rules.reconcile_grace_s)
        async with self.db.read() as session:
            rows = await session.execute(
                select(SmmOrder).where(SmmOrder.status == PLACING, SmmOrder.updated_at <= horizon)
            )
            stale = [o for o in rows.scalars() if o.id not in self._in_flight]
        for order in stale:
            if order.submitted_at is None:
                await self._fail(order.id, REASON_NOT_SENT, notify=True)
            else:
                await self._mark_unknown(order.id, "the bot stopped while the order was sent")


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
