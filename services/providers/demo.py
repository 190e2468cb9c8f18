"""The built-in demo OTP provider: a simulated upstream with no network and no account.

It sells a few countries and services at fixed USD prices, hands out clearly fake numbers
(`+<calling code>55501xx`, the 555-01xx range reserved for fiction), and "delivers" a random code
`code_delay_s` after a buy or an "another SMS" request. It behaves like a real upstream where the
bot can tell: cancel refuses an order that has a code or has ended (InvalidState), finish needs a
code, an unknown id is OrderNotFound, stock 0 is NoNumbers, a max price below the price is
PriceTooHigh.

Orders live in this object's memory only. A restarted bot gets a new DemoOtpProvider that has
forgotten every earlier order: `status`/`cancel`/`finish` of an old id raise OrderNotFound, exactly
what a real upstream says about an order it does not know (the reconciliation path then refunds
it). Order ids carry a random per-instance prefix, so an old id never matches a new order.
Orders a day past their lifetime are forgotten too, so a long-running demo does not grow.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.providers.base import (
    OtpActiveOrder,
    OtpOffer,
    OtpProvider,
    OtpPurchase,
    OtpState,
    OtpStatus,
    SmmOrderRequest,
    SmmOrderState,
    SmmOrderStatus,
    SmmProvider,
    SmmService,
    SmmServiceType,
    smm_service_type,
)
from services.providers.config import ProviderConfig
from services.providers.errors import (
    BadRequest,
    InvalidState,
    NoNumbers,
    OrderNotFound,
    PriceTooHigh,
    ProviderError,
)

# ISO -> (calling code, price factor, default stock per service)
DEMO_COUNTRIES: dict[str, tuple[str, Decimal, int]] = {
    "US": ("1", Decimal("1.50"), 1200),
    "GB": ("44", Decimal("1.20"), 800),
    "DE": ("49", Decimal("1.30"), 600),
    "IN": ("91", Decimal("0.40"), 2500),
    "BR": ("55", Decimal("0.60"), 1500),
    "RU": ("7", Decimal("0.50"), 3000),
}
# service slug -> base price in USD
DEMO_SERVICES: dict[str, Decimal] = {
    "telegram": Decimal("0.80"),
    "whatsapp": Decimal("0.90"),
    "google": Decimal("0.40"),
    "instagram": Decimal("0.30"),
    "discord": Decimal("0.25"),
    "facebook": Decimal("0.30"),
    "twitter": Decimal("0.20"),
    "tiktok": Decimal("0.15"),
    "amazon": Decimal("0.35"),
    "microsoft": Decimal("0.20"),
}
# Out of stock by default: a combination tests can rely on for NoNumbers.
DEMO_SOLD_OUT: tuple[str, str] = ("GB", "discord")
DEMO_BALANCE = Decimal("1000000.00")
DEMO_LIFETIME_S = 1200.0
FORGET_AFTER_S = 86400.0


def demo_price(country: str, service: str) -> Decimal:
    """The fixed USD price of one demo activation."""
    factor = DEMO_COUNTRIES[country][1]
    return (DEMO_SERVICES[service] * factor).quantize(Decimal("0.01"))


@dataclass(slots=True)
class _Order:
    order_id: str
    phone: str
    country: str
    service: str
    client_ref: str
    created_at: datetime
    started: float  # clock() at buy
    code_due: float | None  # clock() when the next code arrives; None when none is expected
    state: OtpState = OtpState.WAITING
    code: str | None = None
    text: str | None = None


class DemoOtpProvider(OtpProvider):
    kind = "demo"
    is_demo = True
    supports_finish = True
    supports_another_sms = True
    supports_order_list = True

    def __init__(
        self,
        config: ProviderConfig,
        *,
        code_delay_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        lifetime_s: float = DEMO_LIFETIME_S,
        stock: Mapping[tuple[str, str], int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`stock` overrides the default stock per (ISO, slug); `rng` makes codes reproducible."""
        self.name = config.name
        self.currency = "USD"  # the demo's prices are USD whatever the entry says
        self.code_delay_s = code_delay_s
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - fake codes for a demo, no secret
        self._stock: dict[tuple[str, str], int] = {
            (iso, slug): info[2] for iso, info in DEMO_COUNTRIES.items() for slug in DEMO_SERVICES
        }
        self._stock[DEMO_SOLD_OUT] = 0
        for key, count in (stock or {}).items():
            self.set_stock(key[0], key[1], count)
        self._orders: dict[str, _Order] = {}
        self._prefix = uuid.uuid4().hex[:8]
        self._seq = 0

    def set_stock(self, country: str, service: str, count: int) -> None:
        self._check_item(country, service)
        self._stock[(country, service)] = max(0, count)

    # --- catalog -------------------------------------------------------------------------

    async def balance(self) -> Decimal:
        return DEMO_BALANCE

    async def offers(self, country: str | None = None) -> list[OtpOffer]:
        return [
            OtpOffer(
                country=iso,
                service=slug,
                price=demo_price(iso, slug),
                stock=count,
                native_country=iso,
                native_service=slug,
            )
            for (iso, slug), count in self._stock.items()
            if country is None or iso == country
        ]

    # --- orders --------------------------------------------------------------------------

    async def buy(
        self, country: str, service: str, *, max_price: Decimal | None = None, client_ref: str
    ) -> OtpPurchase:
        self._check_item(country, service)
        price = demo_price(country, service)
        if self._stock[(country, service)] <= 0:
            raise NoNumbers(f"demo: no numbers for {country}/{service}", provider=self.name)
        if max_price is not None and price > max_price:
            raise PriceTooHigh(
                f"demo: price {price} is above max price {max_price}",
                provider=self.name,
                min_price=price,
            )
        if any(order.client_ref == client_ref for order in self._orders.values()):
            raise BadRequest(f"demo: order {client_ref} already exists", provider=self.name)
        self._forget_old_orders()
        order = self._new_order(country, service, client_ref)
        self._orders[order.order_id] = order
        return OtpPurchase(
            order_id=order.order_id,
            phone=order.phone,
            price=price,
            expires_at=order.created_at + timedelta(seconds=self.lifetime_s),
        )

    async def status(self, order_id: str) -> OtpStatus:
        order = self._get(order_id)
        return OtpStatus(state=order.state, code=order.code, text=order.text)

    async def cancel(self, order_id: str) -> None:
        order = self._get(order_id)
        if order.state is OtpState.CODE:
            raise InvalidState("demo: order has sms", provider=self.name)
        if order.state is not OtpState.WAITING:
            raise InvalidState(f"demo: order is {order.state.value}", provider=self.name)
        order.state = OtpState.CANCELLED
        order.code_due = None

    async def finish(self, order_id: str) -> None:
        """Closes an order that has a code; finishing a finished order again is a no-op."""
        order = self._get(order_id)
        if order.state is OtpState.FINISHED:
            return
        if order.state is not OtpState.CODE:
            raise InvalidState(f"demo: order is {order.state.value}, no sms", provider=self.name)
        order.state = OtpState.FINISHED
        order.code_due = None

    async def request_another_sms(self, order_id: str) -> None:
        """After a code: a new, different code arrives code_delay_s later (the old one stays
        visible until then, state CODE)."""
        order = self._get(order_id)
        if order.state is not OtpState.CODE:
            raise InvalidState(f"demo: order is {order.state.value}", provider=self.name)
        order.code_due = self._clock() + self.code_delay_s

    async def active_orders(self) -> list[OtpActiveOrder]:
        result: list[OtpActiveOrder] = []
        for order in list(self._orders.values()):
            self._advance(order)
            if order.state in (OtpState.WAITING, OtpState.CODE):
                result.append(
                    OtpActiveOrder(
                        order_id=order.order_id,
                        phone=order.phone,
                        country=order.country,
                        service=order.service,
                        client_ref=order.client_ref,
                        created_at=order.created_at,
                        status=OtpStatus(state=order.state, code=order.code, text=order.text),
                    )
                )
        return result

    # --- internals -----------------------------------------------------------------------

    def _check_item(self, country: str, service: str) -> None:
        if country not in DEMO_COUNTRIES:
            raise BadRequest(f"demo: bad country {country}", provider=self.name)
        if service not in DEMO_SERVICES:
            raise BadRequest(f"demo: bad service {service}", provider=self.name)

    def _new_order(self, country: str, service: str, client_ref: str) -> _Order:
        self._seq += 1
        now = self._clock()
        calling_code = DEMO_COUNTRIES[country][0]
        return _Order(
            order_id=f"demo-{self._prefix}-{self._seq}",
            phone=f"+{calling_code}55501{self._seq % 100:02d}",
            country=country,
            service=service,
            client_ref=client_ref,
            created_at=datetime.now(UTC),
            started=now,
            code_due=now + self.code_delay_s,
        )

    def _forget_old_orders(self) -> None:
        """A long-running demo bot must not grow forever: orders a day past their lifetime go
        (like a real upstream, which also forgets old orders)."""
        horizon = self._clock() - self.lifetime_s - FORGET_AFTER_S
        for order_id in [o.order_id for o in self._orders.values() if o.started < horizon]:
            del self._orders[order_id]

    def _get(self, order_id: str) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"demo: order {order_id} not found", provider=self.name)
        self._advance(order)
        return order

    def _advance(self, order: _Order) -> None:
        """Lets time pass: deliver a due code, or end an order past its lifetime."""
        if order.state not in (OtpState.WAITING, OtpState.CODE):
            return
        now = self._clock()
        expires = order.started + self.lifetime_s
        if order.code_due is not None and order.code_due <= now and order.code_due < expires:
            order.code, order.text = self._new_code(order.code)
            order.state = OtpState.CODE
            order.code_due = None
        if now >= expires:
            order.state = (
                OtpState.EXPIRED if order.state is OtpState.WAITING else OtpState.FINISHED
            )
            order.code_due = None

    def _new_code(self, previous: str | None) -> tuple[str, str]:
        while True:
            digits = self._rng.choice((5, 6))
            code = "".join(self._rng.choice("0123456789") for _ in range(digits))
            if code != previous:
                return code, f"Your DEMO code is {code}"


# --- SMM ----------------------------------------------------------------------------------------

# (service id, name, category, type, USD rate per 1000, min, max, refill, cancel, dripfeed)
DEMO_SMM_SERVICES: tuple[tuple[str, str, str, str, str, int, int, bool, bool, bool], ...] = (
    ("1", "Followers · DEMO", "Instagram", "Default", "0.90", 50, 10000, True, True, True),
    ("2", "Likes · DEMO", "Instagram", "Default", "0.30", 20, 20000, False, True, False),
    ("3", "Custom comments · DEMO", "Instagram", "Custom Comments", "8.00", 1, 100, False, False,
     False),
    ("4", "Channel members · DEMO", "Telegram", "Default", "1.20", 100, 50000, True, False, False),
    ("5", "Post views · DEMO", "Telegram", "Default", "0.05", 100, 100000, False, True, False),
    ("6", "Poll votes · DEMO", "Telegram", "Poll", "0.50", 10, 5000, False, True, False),
    ("7", "Views · DEMO", "YouTube", "Default", "1.50", 500, 100000, True, True, False),
    ("8", "Starter pack · DEMO", "YouTube", "Package", "2.50", 1, 1, False, False, False),
)  # fmt: skip
DEMO_SMM_REFILL_FINAL = frozenset({"completed", "rejected"})


@dataclass(slots=True)
class _SmmOrder:
    order_id: str
    service: SmmService
    quantity: int
    created: float  # clock() at add
    start_count: int
    state: SmmOrderState = SmmOrderState.PENDING
    cancelled_at: float | None = None


@dataclass(slots=True)
class _Refill:
    order_id: str
    created: float


class DemoSmmProvider(SmmProvider):
    """A simulated SMM panel: an order is pending for `step_s`, in progress (remains going down)
    for another `step_s`, then completed. Cancel is accepted for an open order of a service that
    allows it and shows as Canceled in the next status (like a panel); a refill is "pending" for
    `step_s`, then "completed". Orders live in memory: after a restart they are unknown
    (OrderNotFound), as with a real panel that lost them."""

    kind = "demo"
    is_demo = True
    supports_refill = True
    supports_cancel = True
    supports_batch_status = True
    max_batch = 100

    def __init__(
        self,
        config: ProviderConfig,
        *,
        step_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = config.name
        self.currency = "USD"
        self.step_s = step_s
        self._clock = clock
        self._services = {
            sid: SmmService(
                service_id=sid,
                name=name,
                category=category,
                type=smm_service_type(kind) or SmmServiceType.DEFAULT,
                rate=Decimal(rate),
                min=low,
                max=high,
                refill=refill,
                cancel=cancel,
                dripfeed=dripfeed,
                description="A simulated service: nothing is delivered anywhere.",
            )
            for sid, name, category, kind, rate, low, high, refill, cancel, dripfeed in (
                DEMO_SMM_SERVICES
            )
        }
        self._orders: dict[str, _SmmOrder] = {}
        self._refills: dict[str, _Refill] = {}
        self._prefix = uuid.uuid4().hex[:6]
        self._seq = itertools.count(1)

    async def balance(self) -> Decimal:
        return DEMO_BALANCE

    async def services(self) -> list[SmmService]:
        return list(self._services.values())

    async def add(self, request: SmmOrderRequest, *, client_ref: str) -> str:
        service = self._services.get(request.service_id)
        if service is None:
            raise BadRequest("demo: Incorrect service ID", provider=self.name)
        quantity = 1 if request.type is SmmServiceType.PACKAGE else request.quantity or 0
        if service.type is not SmmServiceType.PACKAGE and not (
            service.min <= quantity <= service.max
        ):
            raise BadRequest(
                f"demo: quantity must be within {service.min}-{service.max}", provider=self.name
            )
        seq = next(self._seq)
        order = _SmmOrder(
            order_id=f"demo-{self._prefix}-{seq}",
            service=service,
            quantity=quantity,
            created=self._clock(),
            start_count=100 + 37 * seq,
        )
        self._orders[order.order_id] = order
        return order.order_id

    async def statuses(self, order_ids: list[str]) -> dict[str, SmmOrderStatus | ProviderError]:
        result: dict[str, SmmOrderStatus | ProviderError] = {}
        for order_id in order_ids:
            order = self._orders.get(order_id)
            if order is None:
                result[order_id] = OrderNotFound(
                    f"demo: order {order_id} not found", provider=self.name
                )
            else:
                result[order_id] = self._status(order)
        return result

    def _status(self, order: _SmmOrder) -> SmmOrderStatus:
        elapsed = self._clock() - order.created
        if order.cancelled_at is not None:
            order.state = SmmOrderState.CANCELLED
        elif elapsed >= 2 * self.step_s:
            order.state = SmmOrderState.COMPLETED
        elif elapsed >= self.step_s:
            order.state = SmmOrderState.IN_PROGRESS
        remains = order.quantity
        if order.state is SmmOrderState.COMPLETED:
            remains = 0
        elif order.state is SmmOrderState.IN_PROGRESS and self.step_s > 0:
            done = (elapsed - self.step_s) / self.step_s
            remains = max(1, order.quantity - int(order.quantity * min(done, 1.0)))
        return SmmOrderStatus(
            state=order.state,
            start_count=order.start_count,
            remains=remains,
            currency="USD",
        )

    async def refill(self, order_id: str) -> str:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound(f"demo: order {order_id} not found", provider=self.name)
        self._status(order)
        if not order.service.refill:
            raise InvalidState("demo: refill is disabled for this service", provider=self.name)
        if order.state not in (SmmOrderState.COMPLETED, SmmOrderState.PARTIAL):
            raise InvalidState("demo: the order is not completed yet", provider=self.name)
        refill_id = f"demo-r-{self._prefix}-{next(self._seq)}"
        self._refills[refill_id] = _Refill(order_id, self._clock())
        return refill_id

    async def refill_status(self, refill_id: str) -> str:
        refill = self._refills.get(refill_id)
        if refill is None:
            raise OrderNotFound(f"demo: refill {refill_id} not found", provider=self.name)
        return "completed" if self._clock() - refill.created >= self.step_s else "pending"

    async def cancel(self, order_ids: list[str]) -> dict[str, bool | ProviderError]:
        result: dict[str, bool | ProviderError] = {}
        for order_id in order_ids:
            order = self._orders.get(order_id)
            if order is None:
                result[order_id] = OrderNotFound(
                    f"demo: order {order_id} not found", provider=self.name
                )
                continue
            self._status(order)
            if not order.service.cancel:
                result[order_id] = InvalidState(
                    "demo: cancel is disabled for this service", provider=self.name
                )
            elif order.state in (SmmOrderState.PENDING, SmmOrderState.IN_PROGRESS):
                order.cancelled_at = self._clock()
                result[order_id] = True
            else:
                result[order_id] = InvalidState(
                    "demo: the order has already ended", provider=self.name
                )
        return result
