"""`ResellerSmm`: the SMM half of the reseller facade (given to `ResellerShop` as `smm=`).

The same shop as the bot's SMM menu underneath: the SMM catalog and its prices (plus
RESELLER_API_MARKUP_PERCENT, if set), `SmmOrderService` (services/smm: `open()` writes the
'placing' row and its debit, `execute()` sends the `add` exactly once, `refill()`, `cancel()`),
the poller and its refunds through the order core. An order placed here is an ordinary SMM order
of the customer, in "My SMM orders" in the bot; it is `quiet` (no notice in the chat) unless the
key pushes codes.

With the client's own reference an `add` is idempotent: its confirm key and its ledger key are
both `api:<key id>:<ref>` (shop.charge_keys()), so the same reference again is the same order,
one debit, however often it is repeated or its answer lost.

Protocol-neutral like shop.py: service ids are integers (the catalog key, 10 hex digits, read as
a number: stable across restarts and refreshes), amounts are micro-units, refusals are
`services.api.errors` or the SMM ones below; `smm_v2.py` and `toolvico.py` word them.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import select

from db.engine import Database
from db.models import SmmOrder
from services import wallet
from services.api import errors
from services.api.keys import Client
from services.api.shop import charge_keys, check_ref, client_ref
from services.ids import is_id
from services.orders import core
from services.orders import errors as order_errors
from services.orders.lifecycle import SmmState
from services.providers.base import SmmServiceType
from services.shop_state import ShopState
from services.smm import (
    BadInput,
    NotOffered,
    RefillInProgress,
    SmmDraft,
    SmmOrderService,
    SmmQuote,
    price_of,
    refill_state,
)
from services.smm import Refused as UpstreamSaidNo
from services.smm.common import units
from services.smm.drafts import parse_int
from services.smm_catalog import SmmCatalog, SmmItem, short_key

KEY_DIGITS = 10  # services.smm_catalog.short_key(): 10 hex digits
MAX_SERVICE_ID = 16**KEY_DIGITS - 1
MAX_IDS = 100  # ids per multi-status / multi-cancel / multi-refill call, as panels allow
_HEX = re.compile(r"[0-9a-f]{10}")

# The SMM panel words (docs/protocols.md §4.4) for each state of ours. 'placing' and 'unknown'
# (the add's answer was lost: an admin resolves it, by /adopt or /refund) read as Pending.
PANEL_STATUS = {
    SmmState.PLACING: "Pending",
    SmmState.UNKNOWN: "Pending",
    SmmState.PENDING: "Pending",
    SmmState.IN_PROGRESS: "In progress",
    SmmState.COMPLETED: "Completed",
    SmmState.PARTIAL: "Partial",
    SmmState.CANCELLED: "Canceled",
    SmmState.FAILED: "Canceled",  # refused upstream: refunded in full
}
PANEL_REFILL_STATUS = {
    "pending": "Pending",
    "running": "In progress",
    "completed": "Completed",
    "partial": "Partial",
    "rejected": "Rejected",
    "failed": "Rejected",
    "not_found": "Rejected",
}
PANEL_TYPE = {
    SmmServiceType.DEFAULT: "Default",
    SmmServiceType.PACKAGE: "Package",
    SmmServiceType.CUSTOM_COMMENTS: "Custom Comments",
    SmmServiceType.POLL: "Poll",
    SmmServiceType.MENTIONS: "Mentions",
}


# --- the SMM refusals (nothing was charged, or it was refunded already) -----------------------


class BadQuantity(errors.ApiError):
    """Outside the service's min..max (`low`/`high`); `below` says which side."""

    def __init__(self, low: int, high: int, below: bool) -> None:
        super().__init__(low, high, below)
        self.low, self.high, self.below = low, high, below


class BadLink(errors.ApiError):
    pass


class BadRequest(errors.ApiError):
    """A field the service needs is missing or malformed (comments, runs, answer...)."""


class NotAvailable(errors.ApiError):
    """Refill or cancel for a service (or an upstream protocol) that does not have it."""


class RefillRunning(errors.ApiError):
    pass


class UpstreamRefused(errors.ApiError):
    """The upstream panel said no to a refill or a cancel (e.g. already completed)."""


class OrderFailed(errors.ApiError):
    """The upstream refused the `add`: the order is 'failed' and its price was refunded.
    `reason` is services.smm's REASON_* (link_busy, bad_link, bad_quantity, ...)."""

    def __init__(self, order_id: int, reason: str | None) -> None:
        super().__init__(order_id, reason)
        self.order_id, self.reason = order_id, reason


# --- what the protocols show -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmmOffer:
    id: int  # the service id handed out
    item: SmmItem
    rate_per_1000: int  # micro, at API prices (a Package: the package's price)

    @property
    def type_name(self) -> str:
        return PANEL_TYPE[self.item.type]


@dataclass(frozen=True, slots=True)
class SmmApiOrder:
    """An SMM order as the API shows it to its owner."""

    id: int
    status: str  # services.orders.lifecycle.SmmState
    service_id: int | None  # the API's service id (None: not a catalog service any more)
    link: str
    quantity: int  # units the order delivers (quantity x runs)
    price: int  # micro, what was charged
    refunded: int
    start_count: int | None
    remains: int | None
    refill_status: str | None  # the panel word of its latest refill (None: never refilled)
    client_ref: str | None
    created_at: datetime

    @property
    def panel_status(self) -> str:
        return PANEL_STATUS.get(SmmState(self.status), "Pending")

    @property
    def panel_remains(self) -> int:
        """What is still to deliver: all of it until the panel says otherwise, none once
        completed."""
        if self.status == SmmState.COMPLETED:
            return 0
        return self.quantity if self.remains is None else self.remains


def service_id_of(key: str) -> int:
    return int(key, 16)


def service_key(raw: str | int | None) -> str | None:
    """The API's service id (digits, as text or a number) -> the catalog key; None for junk."""
    text = str(raw).strip() if raw is not None and not isinstance(raw, bool) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 13:
        return None
    value = int(text)
    if not 0 <= value <= MAX_SERVICE_ID:
        return None
    return format(value, f"0{KEY_DIGITS}x")


def order_ids(raw: str | None) -> list[str] | None:
    """`orders=1,10,100` -> the ids as sent (trimmed, in order, no repeats); None when empty
    or longer than MAX_IDS."""
    ids = list(dict.fromkeys(part.strip() for part in (raw or "").split(",") if part.strip()))
    if not ids or len(ids) > MAX_IDS:
        return None
    return ids


def parse_order_id(raw: object) -> int | None:
    """An order id from a request (text or a JSON number); None for anything that cannot be a
    row id (huge, negative, junk): it reads as "no such order"."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if is_id(raw) else None
    text = str(raw).strip() if raw is not None else ""
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    value = int(text)
    return value if is_id(value) else None


# --- the facade --------------------------------------------------------------------------------


class ResellerSmm:
    def __init__(
        self,
        db: Database,
        service: SmmOrderService,
        *,
        markup_percent: Decimal = Decimal(0),
        shop_state: ShopState | None = None,  # maintenance mode: no new orders
    ) -> None:
        self.db = db
        self.service = service
        self.markup_percent = markup_percent
        self.shop_state = shop_state

    @property
    def catalog(self) -> SmmCatalog:
        return self.service.catalog

    # --- prices ------------------------------------------------------------------------------

    def api_rate(self, micro: int) -> int:
        """The shop's amount plus RESELLER_API_MARKUP_PERCENT, rounded up to the micro-unit."""
        if self.markup_percent == 0:
            return micro
        scaled = Decimal(micro) * (100 + self.markup_percent) / 100
        return int(scaled.to_integral_value(rounding=ROUND_CEILING))

    def _offer(self, item: SmmItem) -> SmmOffer:
        return SmmOffer(service_id_of(item.key), item, self.api_rate(item.rate_per_1000))

    def offers(self, types: Iterable[SmmServiceType] | None = None) -> list[SmmOffer]:
        """Every service for sale, category by category, at API prices."""
        wanted = set(types) if types is not None else None
        found = []
        for category in self.catalog.categories():
            for item in self.catalog.services(category.key):
                if _HEX.fullmatch(item.key) and (wanted is None or item.type in wanted):
                    found.append(self._offer(item))
        return found

    def offer(self, service_id: str | int | None) -> SmmOffer | None:
        key = service_key(service_id)
        item = self.catalog.item(key) if key is not None else None
        return self._offer(item) if item is not None else None

    def quote(self, draft: SmmDraft) -> SmmQuote:
        """The service's own checks and the price at API prices (the item's rate replaced by
        the API rate, so that the total is the listed rate x quantity)."""
        try:
            quote = self.service.quote(draft)
        except BadInput as exc:
            raise _bad_input(exc, draft) from None
        except order_errors.OrderError:  # ServiceGone
            raise errors.BadService() from None
        if self.markup_percent == 0:
            return quote
        item = replace(quote.item, rate_per_1000=self.api_rate(quote.item.rate_per_1000))
        total = price_of(item, quote.quantity, quote.runs)
        return replace(quote, item=item, total=total)

    # --- orders ------------------------------------------------------------------------------

    async def balance(self, client: Client) -> int:
        async with self.db.read() as session:
            return await wallet.balance(session, client.user_id)

    async def add(self, client: Client, draft: SmmDraft, *, ref: str | None = None) -> SmmApiOrder:
        """Charge and place the order, as the Confirm button does (the `add` is sent once; a
        refusal refunds at once: OrderFailed). The same `ref` again is that same order."""
        ref = check_ref(ref)
        confirm_key, charge_key = charge_keys(client, ref)
        if ref is not None:  # sent before: that order, whatever the catalog says now
            existing = await core.by_confirm_key(self.db, "smm", confirm_key)
            if existing is not None:
                return await self._repeat(client, existing)
        quote = self.quote(draft)
        if self.shop_state is not None and await self.shop_state.maintenance() is not None:
            raise errors.Limited()  # maintenance mode: open orders go on, no new ones
        try:
            opened = await self.service.open(
                client.user_id,
                quote,
                confirm_key,
                charge_key=charge_key,
                quiet=not client.push_codes,
            )
        except order_errors.AlreadyConfirmed as exc:  # the same ref, at the same moment
            return await self._repeat(client, exc.order_id)
        except wallet.DuplicateOperation:  # the ref was used by an OTP order of this key
            raise errors.DuplicateRef(None) from None
        except order_errors.NotEnoughMoney as exc:
            raise errors.NoMoney(exc.balance) from None
        except order_errors.Banned:
            raise errors.Refused() from None
        order = await self.service.execute(opened.id)
        if order.status == SmmState.FAILED:
            raise OrderFailed(order.id, order.fail_reason)
        return self._order(order)

    async def _repeat(self, client: Client, order_id: int) -> SmmApiOrder:
        try:
            return await self.order(client, order_id)
        except errors.NoSuchOrder:
            raise errors.DuplicateRef(None) from None

    async def order(self, client: Client, order_id: int) -> SmmApiOrder:
        return self._order(await self._own(client, order_id))

    async def orders(self, client: Client, ids: Sequence[int]) -> dict[int, SmmApiOrder]:
        """The caller's own orders among `ids`, in one query; others' ids are simply absent."""
        wanted = [i for i in ids if is_id(i)][:MAX_IDS]
        if not wanted:
            return {}
        async with self.db.read() as session:
            rows = await session.execute(
                select(SmmOrder).where(SmmOrder.user_id == client.user_id, SmmOrder.id.in_(wanted))
            )
            found = list(rows.scalars())
        return {order.id: self._order(order) for order in found}

    async def refill(self, client: Client, order_id: int) -> SmmApiOrder:
        """Ask the upstream for a refill. The refill's id is the order's id: an order has one
        refill at a time, and refill_status shows its latest."""
        await self._own(client, order_id)
        with _in_api_words():
            return self._order(await self.service.refill(client.user_id, order_id))

    async def refill_status(self, client: Client, refill_id: int) -> str:
        """The panel word of the order's latest refill; NoSuchOrder when it has none."""
        order = await self.order(client, refill_id)
        if order.refill_status is None:
            raise errors.NoSuchOrder()
        return order.refill_status

    async def cancel(self, client: Client, order_id: int) -> SmmApiOrder:
        """Ask the upstream to cancel; the refund follows from its status (Canceled or Partial,
        through the poller and the order core), never from this answer."""
        await self._own(client, order_id)
        with _in_api_words():
            return self._order(await self.service.cancel(client.user_id, order_id))

    async def _own(self, client: Client, order_id: int) -> SmmOrder:
        if not is_id(order_id):
            raise errors.NoSuchOrder()
        try:
            return await self.service.get_own(client.user_id, order_id)
        except order_errors.NotFound:
            raise errors.NoSuchOrder() from None

    def _order(self, order: SmmOrder) -> SmmApiOrder:
        refill = None
        if order.refill_id is not None:
            refill = PANEL_REFILL_STATUS.get(refill_state(order.refill_status), "Rejected")
        return SmmApiOrder(
            id=order.id,
            status=order.status,
            service_id=service_id_of(short_key(order.provider, order.service_id)),
            link=order.link,
            quantity=units(order),
            price=order.price,
            refunded=order.refunded,
            start_count=order.start_count,
            remains=order.remains,
            refill_status=refill,
            client_ref=client_ref(order.confirm_key),
            created_at=order.created_at,
        )


def _bad_input(exc: BadInput, draft: SmmDraft) -> errors.ApiError:
    match exc.code:
        case "quantity_range" | "comments_count":
            low, high = exc.params.get("min", 0), exc.params.get("max", 0)
            count = exc.params.get("count", draft.quantity or 0)
            return BadQuantity(low, high, below=count < low)
        case "link_empty" | "link_too_long" | "link_not_url":
            return BadLink()
        case _:
            return BadRequest()


def draft_from(
    offer: SmmOffer,
    *,
    link: str,
    quantity: str | int | None,
    runs: str | int | None = None,
    interval: str | int | None = None,
    comments: str | None = None,
    answer_number: str | int | None = None,
    usernames: str | None = None,
) -> SmmDraft:
    """A request's fields as a draft for the service's type; BadRequest for junk (the
    quantity's range and the rest are checked by quote())."""
    kind = offer.item.type
    count: int | None = None
    if kind in (SmmServiceType.DEFAULT, SmmServiceType.POLL, SmmServiceType.MENTIONS):
        count = _number(quantity)
        if count is None:
            raise BadRequest()
    lines: tuple[str, ...] = ()
    if kind is SmmServiceType.CUSTOM_COMMENTS:
        lines = tuple(line for line in (comments or "").replace("\r", "").split("\n"))
    answer = _number(answer_number) if kind is SmmServiceType.POLL else None
    names: tuple[str, ...] = ()
    if kind is SmmServiceType.MENTIONS:
        names = tuple((usernames or "").replace(",", " ").split())
    run_count = _number(runs) if runs not in (None, "") else None
    minutes = _number(interval) if interval not in (None, "") else None
    if (runs not in (None, "") and run_count is None) or (
        interval not in (None, "") and minutes is None
    ):
        raise BadRequest()
    return SmmDraft(
        service=offer.item.key,
        link=link,
        quantity=count,
        runs=run_count,
        interval=minutes,
        comments=lines,
        answer_number=answer,
        usernames=names,
    )


def _number(raw: str | int | None) -> int | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    try:
        return parse_int(raw, "number")
    except BadInput:
        return None


# The order core's refusals of a refill or a cancel, in the API's words (first match wins).
_REFUSALS: tuple[tuple[type[Exception], type[errors.ApiError]], ...] = (
    (NotOffered, NotAvailable),
    (RefillInProgress, RefillRunning),
    (UpstreamSaidNo, UpstreamRefused),
    (order_errors.WrongState, errors.WrongState),
    (order_errors.TryLater, errors.Unavailable),
    (order_errors.NotFound, errors.NoSuchOrder),
)


@contextlib.contextmanager
def _in_api_words() -> Iterator[None]:
    try:
        yield
    except tuple(core_error for core_error, _ in _REFUSALS) as exc:
        api_error = next(api for core_error, api in _REFUSALS if isinstance(exc, core_error))
        raise api_error() from None
