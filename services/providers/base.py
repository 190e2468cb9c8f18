"""What every upstream looks like to the rest of the bot: normalized models and interfaces.

Country keys are ISO 3166 alpha-2 codes (upper case), service keys lowercase slugs. An id a
protocol's tables cannot map is kept as-is (prefixed with the provider kind) rather than dropped.
Prices are Decimal in the provider's own currency; the pricing layer converts them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, overload

from pydantic import BaseModel, ConfigDict, model_validator

from services.providers.errors import NotSupported, ProviderError


class Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class OtpOffer(Model):
    """One (country, service) that a provider sells, with its price and stock."""

    country: str  # ISO alpha-2 (or "<kind>:<native id>" when unknown)
    service: str  # slug (or the native code when unknown)
    price: Decimal  # provider currency
    stock: int
    native_country: str
    native_service: str
    country_name: str | None = None  # as the provider calls it, for unknown codes
    service_name: str | None = None


# One offer as a plain tuple of OtpOffer's fields, in this order.
OfferRow = tuple[str, str, Decimal, int, str, str, str | None, str | None]
OFFER_FIELDS = tuple(OtpOffer.model_fields)


class OtpOffers(Sequence[OtpOffer]):
    """Offers kept as plain rows (`OfferRow`s): what an adapter returns for a large price list
    (5sim's ~50k offers) instead of a model per offer, at a fraction of the time and memory.
    The catalog takes `rows` as they are; reading an item makes (and validates) its OtpOffer,
    so to everyone else this is a sequence of OtpOffers."""

    __slots__ = ("rows",)

    def __init__(self, rows: Iterable[OfferRow]) -> None:
        self.rows: tuple[OfferRow, ...] = tuple(rows)

    @overload
    def __getitem__(self, index: int) -> OtpOffer: ...

    @overload
    def __getitem__(self, index: slice) -> list[OtpOffer]: ...

    def __getitem__(self, index: int | slice) -> OtpOffer | list[OtpOffer]:
        if isinstance(index, slice):
            return [_offer(row) for row in self.rows[index]]
        return _offer(self.rows[index])

    def __len__(self) -> int:
        return len(self.rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OtpOffers):
            return self.rows == other.rows
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list, which has none

    def __repr__(self) -> str:
        return f"OtpOffers({len(self.rows)} offers)"


def _offer(row: OfferRow) -> OtpOffer:
    country, service, price, stock, native_country, native_service, country_name, name = row
    offer = OtpOffer(
        country=country,
        service=service,
        price=price,
        stock=stock,
        native_country=native_country,
        native_service=native_service,
        country_name=country_name,
    )
    # service_name set only when there is one, as an adapter building the model would.
    return offer if name is None else offer.model_copy(update={"service_name": name})


class OtpPurchase(Model):
    order_id: str
    phone: str  # digits with a leading "+"
    price: Decimal | None = None  # what the upstream charged, when it says
    expires_at: datetime | None = None  # upstream expiry, timezone-aware UTC, when known


class OtpState(StrEnum):
    WAITING = "waiting"
    CODE = "code"  # a code is in; more may follow after "another SMS"
    CANCELLED = "cancelled"  # cancelled/banned upstream, money returned to us
    EXPIRED = "expired"  # ended with no code, money returned to us
    FINISHED = "finished"  # closed after a code (no refund)


class OtpStatus(Model):
    state: OtpState
    code: str | None = None
    text: str | None = None  # the full SMS text when the protocol gives it


class OtpActiveOrder(Model):
    """An order from the upstream's own list (for reconciling unknown buys)."""

    order_id: str
    phone: str
    country: str | None = None
    service: str | None = None
    client_ref: str | None = None
    created_at: datetime | None = None
    status: OtpStatus | None = None


class ProviderBase(ABC):
    """Lifecycle shared by all adapters: `async with Adapter(...) as p:` closes its HTTP client."""

    name: str
    kind: str
    currency: str

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:  # noqa: B027 - adapters without a client have nothing to close
        pass


class OtpProvider(ProviderBase):
    """An OTP (virtual number) upstream. Features a protocol lacks raise NotSupported."""

    supports_finish: bool = True
    supports_another_sms: bool = False
    supports_ban: bool = False
    supports_order_list: bool = False
    is_demo: bool = False

    @abstractmethod
    async def balance(self) -> Decimal: ...

    @abstractmethod
    async def offers(self, country: str | None = None) -> Sequence[OtpOffer]:
        """Everything for sale (or for one ISO country), with price and stock: a list, or
        `OtpOffers` for a large price list."""

    @abstractmethod
    async def buy(
        self, country: str, service: str, *, max_price: Decimal | None = None, client_ref: str
    ) -> OtpPurchase:
        """Never retried. A lost answer raises OutcomeUnknown; `client_ref` is our order id."""

    @abstractmethod
    async def status(self, order_id: str) -> OtpStatus: ...

    @abstractmethod
    async def cancel(self, order_id: str) -> None:
        """Cancel before a code; an order that already ended raises InvalidState."""

    async def finish(self, order_id: str) -> None:
        raise NotSupported("finish", provider=self.name)

    async def request_another_sms(self, order_id: str) -> None:
        raise NotSupported("another SMS", provider=self.name)

    async def ban(self, order_id: str) -> None:
        raise NotSupported("ban", provider=self.name)

    async def active_orders(self) -> list[OtpActiveOrder]:
        """The upstream's list of our open orders (reconciliation)."""
        raise NotSupported("order list", provider=self.name)

    async def active_statuses(self) -> dict[str, OtpStatus]:
        """Order id -> status of each order in the upstream's list (the poller's reading of
        it); an adapter whose list is long may read only what this needs."""
        orders = await self.active_orders()
        return {order.order_id: order.status for order in orders if order.status is not None}


# --- SMM ----------------------------------------------------------------------------------------


class SmmServiceType(StrEnum):
    """The SMM service types this bot can order; a panel type not listed here is hidden."""

    DEFAULT = "default"  # link + quantity, optional drip-feed (runs, interval)
    PACKAGE = "package"  # link only; no quantity (how a panel prices one package is unverified)
    CUSTOM_COMMENTS = "custom_comments"  # link + comments, one per line (quantity = lines)
    POLL = "poll"  # link + quantity + answer_number
    MENTIONS = "mentions"  # link + quantity + usernames


# Panel type names (lowercased, spaces/underscores/hyphens collapsed to one space) -> our type.
# Subscriptions are deliberately absent (no price rule fits them), and so are the
# types whose extra fields the bot does not collect (SEO, Mentions with Hashtags, ...).
_SMM_TYPE_NAMES: dict[str, SmmServiceType] = {
    "default": SmmServiceType.DEFAULT,
    "package": SmmServiceType.PACKAGE,
    "custom comments": SmmServiceType.CUSTOM_COMMENTS,
    "poll": SmmServiceType.POLL,
    "mentions": SmmServiceType.MENTIONS,
    "mentions with usernames": SmmServiceType.MENTIONS,
}


def smm_service_type(name: str) -> SmmServiceType | None:
    """A panel's `type` as ours, compared case-insensitively; None for a type we do not offer."""
    key = " ".join(name.replace("_", " ").replace("-", " ").lower().split())
    return _SMM_TYPE_NAMES.get(key)


class SmmService(Model):
    service_id: str
    name: str
    category: str
    type: SmmServiceType
    rate: Decimal  # per 1000 units, provider currency
    min: int
    max: int
    refill: bool = False
    cancel: bool = False
    dripfeed: bool = False
    description: str | None = None


class SmmOrderRequest(Model):
    """What to order. Which fields are sent depends on `type` (see `SmmServiceType`)."""

    service_id: str
    type: SmmServiceType = SmmServiceType.DEFAULT
    link: str
    quantity: int | None = None  # CUSTOM_COMMENTS: set to the number of comments; PACKAGE: None
    runs: int | None = None  # drip-feed (DEFAULT only), with `interval` in minutes
    interval: int | None = None
    comments: tuple[str, ...] = ()
    answer_number: int | None = None
    usernames: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _comment_count(cls, data: Any) -> Any:
        """Custom comments: the quantity is the number of comments (filled in when left out)."""
        if not isinstance(data, dict) or data.get("quantity") is not None:
            return data
        comments = data.get("comments")
        if data.get("type") == SmmServiceType.CUSTOM_COMMENTS and isinstance(
            comments, list | tuple
        ):
            return {**data, "quantity": len(comments)}
        return data

    @model_validator(mode="after")
    def _fields_for_type(self) -> Self:
        if not self.link.strip():
            raise ValueError("link is required")
        needs_quantity = self.type in (
            SmmServiceType.DEFAULT,
            SmmServiceType.POLL,
            SmmServiceType.MENTIONS,
        )
        if needs_quantity and (self.quantity is None or self.quantity < 1):
            raise ValueError(f"{self.type} needs a positive quantity")
        if (self.runs is None) != (self.interval is None):
            raise ValueError("drip-feed needs both runs and interval")
        if self.runs is not None and (self.type is not SmmServiceType.DEFAULT or self.runs < 1):
            raise ValueError("drip-feed (runs >= 1) is for default services only")
        if self.interval is not None and self.interval < 1:
            raise ValueError("interval must be at least 1 minute")
        self._check_type_fields()
        return self

    def _check_type_fields(self) -> None:
        if self.type is SmmServiceType.CUSTOM_COMMENTS:
            lines = [c for c in self.comments if c.strip()]
            if not lines or len(lines) != len(self.comments):
                raise ValueError("custom comments need one non-empty comment per line")
            if any("\n" in c or "\r" in c for c in self.comments):
                raise ValueError("one comment per item, without line breaks")
            if self.quantity != len(self.comments):
                raise ValueError("quantity must equal the number of comments")
        if self.type is SmmServiceType.POLL and (
            self.answer_number is None or self.answer_number < 1
        ):
            raise ValueError("a poll order needs answer_number >= 1")
        if self.type is SmmServiceType.MENTIONS and not [u for u in self.usernames if u.strip()]:
            raise ValueError("a mentions order needs usernames")


class SmmOrderState(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    PARTIAL = "partial"
    CANCELLED = "cancelled"  # Canceled / Cancelled / Refunded: a full refund upstream


_SMM_STATE_WORDS: dict[str, SmmOrderState] = {
    "pending": SmmOrderState.PENDING,
    "processing": SmmOrderState.IN_PROGRESS,
    "in progress": SmmOrderState.IN_PROGRESS,
    "inprogress": SmmOrderState.IN_PROGRESS,
    "active": SmmOrderState.IN_PROGRESS,
    "completed": SmmOrderState.COMPLETED,
    "complete": SmmOrderState.COMPLETED,
    "partial": SmmOrderState.PARTIAL,
    "canceled": SmmOrderState.CANCELLED,
    "cancelled": SmmOrderState.CANCELLED,
    "refunded": SmmOrderState.CANCELLED,
}


def smm_order_state(word: str) -> SmmOrderState | None:
    """An upstream status word ("In progress", "in_progress", "Canceled"...) or None."""
    key = " ".join(word.replace("_", " ").replace("-", " ").lower().split())
    return _SMM_STATE_WORDS.get(key)


class SmmOrderStatus(Model):
    state: SmmOrderState
    charge: Decimal | None = None  # as the upstream reports it (refunds use our own snapshot)
    start_count: int | None = None
    remains: int | None = None  # as sent: may be negative or above the quantity; caller clamps
    currency: str | None = None


class SmmProvider(ProviderBase):
    """An SMM panel. Features a protocol lacks raise NotSupported and have their flag False.

    Where a protocol has them, the per-order list calls (`statuses`, `cancel`) do not raise a
    ProviderError: every id asked for gets a result or the error for that id (a failed batch
    gives its error to each of its ids), so one bad id or batch does not hide the others.
    """

    supports_refill: bool = False
    supports_cancel: bool = False
    supports_batch_status: bool = False
    max_batch: int = 1  # order ids per upstream status / cancel call
    is_demo: bool = False

    @abstractmethod
    async def balance(self) -> Decimal: ...

    @abstractmethod
    async def services(self) -> list[SmmService]:
        """The services of the types we offer (others, and Subscriptions, are left out)."""

    @abstractmethod
    async def add(self, request: SmmOrderRequest, *, client_ref: str) -> str:
        """Place an order; returns the upstream order id. Never retried: a lost answer raises
        OutcomeUnknown. `client_ref` is our order id (for logs: panels take no reference)."""

    @abstractmethod
    async def statuses(self, order_ids: list[str]) -> dict[str, SmmOrderStatus | ProviderError]:
        """Status of each order, batched up to `max_batch` ids per upstream call."""

    async def status(self, order_id: str) -> SmmOrderStatus:
        result = (await self.statuses([order_id]))[order_id]
        if isinstance(result, ProviderError):
            raise result
        return result

    async def refill(self, order_id: str) -> str:
        """Ask for a refill; returns the refill id."""
        raise NotSupported("refill", provider=self.name)

    async def refill_status(self, refill_id: str) -> str:
        """The refill's status word, lowercased ("pending", "completed", "rejected"...)."""
        raise NotSupported("refill status", provider=self.name)

    async def cancel(self, order_ids: list[str]) -> dict[str, bool | ProviderError]:
        """True: the cancel was accepted (the final Canceled/Partial comes through statuses)."""
        raise NotSupported("cancel", provider=self.name)
