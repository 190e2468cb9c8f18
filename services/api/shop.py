"""`ResellerShop`: the one facade every reseller API protocol calls.

The same shop as in Telegram underneath: the customer's wallet, the OTP catalog and its
prices (plus RESELLER_API_MARKUP_PERCENT, if set), the order service with its order core
(every state change, every refund), the poller, the deadlines. An order placed here is an
ordinary activation row of the customer, in their history in the bot; it has no card, and its
code reaches the chat only when the key pushes codes (`quiet` otherwise).

Protocol-neutral: catalog keys in (ISO country, service slug), amounts in micro-units, refusals
as `services.api.errors`. Each protocol maps its own ids and tokens.

The SMM side goes in `services/api/smm.py`, a `ResellerSmm` given to this class as `smm=` (by
bot/reseller_api.py `make_reseller_api()`), on the same pattern: the same `Client`, the same
`charge_keys()` (a client reference -> `api:<key id>:<ref>`, one order and one debit), `quiet`
orders (the `smm_orders.quiet` column exists since migration 0012), `SmmOrderService`
underneath with an `open()` sibling of `Buying.open()` for the first row and its debit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from db.engine import Database
from db.models import Activation
from services import pricing, wallet
from services.api import errors
from services.api.keys import Client
from services.money import CENT, MICRO
from services.orders import errors as order_errors
from services.orders.lifecycle import OtpState
from services.otp import ActivationService
from services.otp import common as otp
from services.shop_state import ShopState

MAX_REF_LENGTH = 40  # fits the ledger key and the order's confirm key with the key id
_REF = re.compile(r"[A-Za-z0-9._:-]{1,40}")
ACTIVE_PAGE = 100
# What an API caller sees as its open numbers: a number was issued (not 'buying'/'unknown').
WITH_NUMBER = (OtpState.WAITING, OtpState.RECEIVED)


@dataclass(frozen=True, slots=True)
class OtpPrice:
    country: str  # ISO code (or a provider-prefixed key)
    service: str  # slug
    price: int  # micro-units, what an API order costs
    stock: int


@dataclass(frozen=True, slots=True)
class OtpOrder:
    """An activation as the API shows it to its owner."""

    id: int
    status: str  # services.orders.lifecycle.OtpState
    country: str
    service: str
    price: int
    phone: str | None  # with its +
    code: str | None
    sms_text: str | None
    created_at: datetime
    expires_at: datetime | None
    client_ref: str | None
    can_another_sms: bool

    @property
    def phone_digits(self) -> str:
        return (self.phone or "").lstrip("+")


def charge_keys(client: Client, ref: str | None) -> tuple[str, str | None]:
    """(the order's confirm key, its ledger key). With the client's own reference both are
    `api:<key id>:<ref>`, so the same reference twice is one order and one debit; without one,
    a fresh confirm key and the ordinary `charge:<kind>:<id>`."""
    if ref is None:
        return f"api:{client.key_id}:#{otp.new_token()}", None
    key = f"api:{client.key_id}:{ref}"
    return key, key


def client_ref(confirm_key: str) -> str | None:
    """The client's reference of an order placed with one (None for bot orders)."""
    if not confirm_key.startswith("api:"):
        return None
    ref = confirm_key.split(":", 2)[2]
    return None if ref.startswith("#") else ref


def check_ref(ref: str | None) -> str | None:
    if ref is None or ref == "":
        return None
    if not _REF.fullmatch(ref):
        raise errors.BadRef()
    return ref


class ResellerShop:
    def __init__(
        self,
        db: Database,
        otp_service: ActivationService,
        *,
        markup_percent: Decimal = Decimal(0),
        smm: Any = None,  # services/api/smm.py ResellerSmm, once it exists
        shop_state: ShopState | None = None,  # maintenance mode: no new purchases
    ) -> None:
        self.db = db
        self.otp = otp_service
        self.markup_percent = markup_percent
        self.smm = smm
        self.shop_state = shop_state

    async def check_open(self) -> None:
        """Maintenance mode closes the API to new purchases too (Limited: each protocol's
        "nothing for you now, try later" answer); open orders go on."""
        if self.shop_state is not None and await self.shop_state.maintenance() is not None:
            raise errors.Limited()

    @property
    def catalog(self) -> Any:
        return self.otp.catalog

    # --- money -------------------------------------------------------------------------------

    async def balance(self, client: Client) -> int:
        async with self.db.read() as session:
            return await wallet.balance(session, client.user_id)

    def api_price(self, shop_price: int) -> int:
        """The shop's price plus RESELLER_API_MARKUP_PERCENT, rounded up to the store
        currency's smallest unit (as every OTP price is)."""
        if self.markup_percent == 0:
            return shop_price
        step = getattr(self.otp.catalog, "price_step", CENT)
        return pricing.otp_price(
            Decimal(shop_price) / MICRO, Decimal(1), self.markup_percent, step
        )

    # --- the OTP catalog ---------------------------------------------------------------------

    def otp_countries(self) -> list[str]:
        return [item.iso for item in self.catalog.countries()]

    def otp_services(self, country: str | None = None) -> list[str]:
        if country is not None:
            return [item.slug for item in self.catalog.services(country)]
        return list(self.catalog.all_services())

    def service_name(self, slug: str) -> str:
        return str(self.catalog.service_name(slug))

    def otp_price(self, country: str, service: str) -> OtpPrice | None:
        quote = self.otp.quote(country, service)
        if quote is None:
            return None
        return OtpPrice(country, service, self.api_price(quote.price), quote.stock)

    def otp_prices(
        self, country: str | None = None, service: str | None = None
    ) -> Iterator[OtpPrice]:
        """What is in stock now, at API prices; filtered by country and/or service."""
        countries = [country] if country is not None else self.otp_countries()
        for iso in countries:
            slugs = [service] if service is not None else self.otp_services(iso)
            for slug in slugs:
                price = self.otp_price(iso, slug)
                if price is not None:
                    yield price

    # --- OTP orders --------------------------------------------------------------------------

    async def buy_number(
        self,
        client: Client,
        country: str,
        service: str,
        *,
        max_price: int | None = None,
        ref: str | None = None,
    ) -> OtpOrder:
        """Charge the API price and buy, as the Buy button does (cheapest provider first,
        never above the price charged; refunded in full when none sells). With `ref`, the
        client's own reference: the same one again is DuplicateRef, never a second order."""
        ref = check_ref(ref)
        await self.check_open()
        offer = self.otp_price(country, service)
        if offer is None:
            raise errors.NoStock()
        if max_price is not None and max_price < offer.price:
            raise errors.PriceAbove(offer.price)
        confirm_key, charge_key = charge_keys(client, ref)
        try:
            opened = await self.otp.open(
                client.user_id,
                country,
                service,
                offer.price,
                confirm_key,
                charge_key=charge_key,
                quiet=not client.push_codes,
            )
        except order_errors.AlreadyConfirmed as exc:
            raise errors.DuplicateRef(exc.order_id) from None
        except wallet.DuplicateOperation:  # the ref was used by an order of another kind
            raise errors.DuplicateRef(None) from None
        except order_errors.NotEnoughMoney as exc:
            raise errors.NoMoney(exc.balance) from None
        except otp.TooManyActive as exc:
            raise errors.TooManyOpen(exc.limit) from None
        except order_errors.Banned:
            raise errors.Refused() from None  # banned while the request was on its way
        except order_errors.OrderError:
            # Another rule of the shop refused the purchase (e.g. MAX_CANCELS_PER_DAY).
            raise errors.Limited() from None
        activation = await self.otp.execute(opened.id)
        if activation.status == OtpState.FAILED:
            raise errors.NoStock()
        if activation.status in (OtpState.BUYING, OtpState.UNKNOWN):
            raise errors.Pending(activation.id)
        return self._order(activation)

    async def otp_order(self, client: Client, order_id: int) -> OtpOrder:
        return self._order(await self._own(client, order_id))

    async def cancel_number(self, client: Client, order_id: int) -> OtpOrder:
        """Cancel and refund (through the order core, once), not before the cancel delay."""
        activation = await self._own(client, order_id)
        if activation.status in (OtpState.CANCELLED, OtpState.EXPIRED, OtpState.FAILED):
            raise errors.AlreadyClosed()
        try:
            done = await self.otp.cancel(client.user_id, order_id)
        except otp.TooEarly as exc:
            raise errors.TooEarly(exc.seconds) from None
        except order_errors.WrongState:
            raise errors.WrongState() from None
        except order_errors.TryLater:
            raise errors.Unavailable() from None
        except order_errors.NotFound:
            raise errors.NoSuchOrder() from None
        if done.status not in (OtpState.CANCELLED, OtpState.EXPIRED):
            raise errors.WrongState()  # a code arrived first: it stands, no refund
        return self._order(done)

    async def finish_number(self, client: Client, order_id: int) -> OtpOrder:
        await self._own(client, order_id)
        try:
            return self._order(await self.otp.finish(client.user_id, order_id))
        except order_errors.WrongState:
            raise errors.WrongState() from None
        except order_errors.TryLater:
            raise errors.Unavailable() from None

    async def another_sms(self, client: Client, order_id: int) -> OtpOrder:
        await self._own(client, order_id)
        try:
            return self._order(await self.otp.another_sms(client.user_id, order_id))
        except order_errors.WrongState:
            raise errors.WrongState() from None
        except order_errors.TryLater:
            raise errors.Unavailable() from None

    async def active_numbers(
        self, client: Client, offset: int = 0, limit: int = ACTIVE_PAGE
    ) -> list[OtpOrder]:
        """The caller's activations that have a number and are still open, oldest first."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(Activation)
                .where(
                    Activation.user_id == client.user_id,
                    Activation.status.in_(list(WITH_NUMBER)),
                )
                .order_by(Activation.id)
                .offset(max(0, offset))
                .limit(max(1, min(limit, ACTIVE_PAGE)))
            )
            activations: Sequence[Activation] = list(rows.scalars())
        return [self._order(a) for a in activations]

    async def _own(self, client: Client, order_id: int) -> Activation:
        try:
            return await self.otp.get_own(client.user_id, order_id)
        except order_errors.NotFound:
            raise errors.NoSuchOrder() from None

    def _order(self, activation: Activation) -> OtpOrder:
        return OtpOrder(
            id=activation.id,
            status=activation.status,
            country=activation.country,
            service=activation.service,
            price=activation.price,
            phone=activation.phone,
            code=activation.code,
            sms_text=activation.sms_text,
            created_at=activation.created_at,
            expires_at=activation.expires_at,
            client_ref=client_ref(activation.confirm_key),
            can_another_sms=self.otp.supports(activation, "another_sms"),
        )
