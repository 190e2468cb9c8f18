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

import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.settings import ProviderConfig
from services.providers.base import (
    OtpActiveOrder,
    OtpOffer,
    OtpProvider,
    OtpPurchase,
    OtpState,
    OtpStatus,
)
from services.providers.errors import (
    BadRequest,
    InvalidState,
    NoNumbers,
    OrderNotFound,
    PriceTooHigh,
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
        self._rng = rng or random.Random()
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
