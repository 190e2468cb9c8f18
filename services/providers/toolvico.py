"""Toolvico: JSON REST under one `/api/v1` root with X-API-Key auth (docs/protocols.md §1).

OTP actions live under `/otp`, SMM actions under `/smm`; both answer with the same envelope,
`{"success":true,"data":{...}}` or `{"success":false,"error":"..."}`, so the HTTP side and the
error mapping (`ToolvicoApi`, and `parse_envelope` in toolvico_envelope.py) are shared by the
adapters of both kinds of goods.

Toolvico has no finish, no "another SMS", no order list, no idempotency key and no max price.
"""

from __future__ import annotations

import asyncio
import logging
import re
from decimal import Decimal
from functools import cache
from typing import Any

import httpx

from services.providers import tables
from services.providers.base import (
    OtpOffer,
    OtpProvider,
    OtpPurchase,
    OtpState,
    OtpStatus,
    SmmOrderRequest,
    SmmOrderStatus,
    SmmProvider,
    SmmService,
    SmmServiceType,
    smm_order_state,
    smm_service_type,
)
from services.providers.config import ProviderConfig
from services.providers.errors import (
    AuthError,
    BadResponse,
    InvalidState,
    NoNumbers,
    NotSupported,
    OutcomeUnknown,
    PriceTooHigh,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
    UnreadableOrder,
)
from services.providers.http import ProviderHttp
from services.providers.smmpanel import decimal_or_none, int_or_none, to_int, unique_ids
from services.providers.toolvico_envelope import Op, decimal_field, id_field, parse_envelope

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://toolvico.com/api/v1"
DEFAULT_RATE_LIMIT_PER_MIN = 60  # per endpoint, i.e. per action (Toolvico's docs: "per endpoint")
# Toolvico publishes no stock count. Every listed service is shown as available with this
# constant; a buy that finds no number raises NoNumbers and the next provider is tried.
OFFER_STOCK = 100
_SERVICES_CONCURRENCY = 4  # services requests in flight during a full catalog refresh


class ToolvicoApi:
    """One Toolvico account on one path (`/otp` or `/smm`): its HTTP client and envelope."""

    def __init__(
        self,
        config: ProviderConfig,
        path: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        api_key = config.api_key.get_secret_value()
        self.provider = config.name
        self.path = path
        self.http = ProviderHttp(
            provider=config.name,
            base_url=(config.base_url or DEFAULT_BASE_URL).rstrip("/"),
            api_key=api_key,
            timeout_s=config.timeout_s,
            rate_limit_per_min=config.rate_limit_per_min or DEFAULT_RATE_LIMIT_PER_MIN,
            headers={"X-API-Key": api_key, "Accept": "application/json"},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(
        self, action: str, params: dict[str, Any] | None = None, *, op: Op = Op.READ
    ) -> dict[str, Any]:
        """An idempotent GET (transport errors retried by ProviderHttp)."""
        response = await self.http.read(
            "GET", self.path, endpoint=action, params={"action": action, **(params or {})}
        )
        return parse_envelope(response, provider=self.provider, action=action, op=op)

    async def post(self, action: str, body: dict[str, Any], *, op: Op) -> dict[str, Any]:
        """A POST sent exactly once (buy, cancel, place order)."""
        try:
            response = await self.http.send_once(
                "POST", self.path, endpoint=action, params={"action": action}, json=body
            )
        except OutcomeUnknown:
            if op is Op.BUY:
                raise
            # A lost cancel answer creates nothing: say "try again later"; the next status poll
            # shows whether it went through.
            raise Unavailable(
                f"{self.provider} {action}: answer lost", provider=self.provider
            ) from None
        return parse_envelope(response, provider=self.provider, action=action, op=op)


# --- OTP ----------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    return re.sub(r"[\W_]+", "", name.lower())


@cache
def _country_lookup() -> dict[str, str]:
    """Normalized English country name -> ISO (tables' names first, then 5sim's, e.g. 'usa')."""
    lookup: dict[str, str] = {}
    for iso, info in tables.countries().items():
        lookup.setdefault(_norm(info.name_en), iso)
    for name, iso in tables.fivesim_country_iso().items():
        lookup.setdefault(_norm(name), iso)
    return lookup


@cache
def _service_lookup() -> dict[str, str]:
    """Normalized slug or display label -> slug ('discord', 'Google Voice' -> 'googlevoice')."""
    names = tables.service_names()
    lookup = {_norm(slug): slug for slug in names}
    for slug, label in names.items():
        lookup.setdefault(_norm(label), slug)
    return lookup


def country_iso(name: str, country_id: str) -> str:
    return _country_lookup().get(_norm(name)) or f"toolvico:{country_id}"


def service_slug(name: str, service_id: str) -> str:
    """A known slug when the name matches one; else the name itself, lowercased."""
    key = _norm(name)
    if not key:
        return f"toolvico:{service_id}"
    return _service_lookup().get(key, key)


_OTP_STATES = {
    "waiting": OtpState.WAITING,
    "pending": OtpState.WAITING,
    "received": OtpState.CODE,
    "cancelled": OtpState.CANCELLED,
    "canceled": OtpState.CANCELLED,
    "refunded": OtpState.CANCELLED,
    "expired": OtpState.EXPIRED,
    "timeout": OtpState.EXPIRED,
}


class ToolvicoOtpProvider(OtpProvider):
    """Toolvico OTP numbers for one server `type` (1-5; each type is its own PROVIDERS entry)."""

    kind = "toolvico"
    supports_finish = False
    supports_another_sms = False
    supports_ban = False
    supports_order_list = False

    def __init__(
        self, config: ProviderConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.name = config.name
        self.currency = config.currency
        self.server_type = config.server_type or 1
        self.api = ToolvicoApi(config, "/otp", transport=transport)
        self.http = self.api.http
        # (ISO, slug) -> the offer last seen, whose native ids a buy needs.
        self._offers: dict[tuple[str, str], OtpOffer] = {}

    async def aclose(self) -> None:
        await self.api.aclose()

    async def balance(self) -> Decimal:
        data = await self.api.get("balance")
        return decimal_field(data, "wallet_balance", provider=self.name)

    async def offers(self, country: str | None = None) -> list[OtpOffer]:
        countries = await self._countries()
        if country is not None:
            countries = [c for c in countries if c[2] == country]
        limit = asyncio.Semaphore(_SERVICES_CONCURRENCY)

        async def one(item: tuple[str, str, str]) -> list[OtpOffer]:
            async with limit:
                return await self._services(*item)

        found = await asyncio.gather(*(one(item) for item in countries))
        best: dict[tuple[str, str], OtpOffer] = {}
        for offer in (offer for group in found for offer in group):
            key = (offer.country, offer.service)
            # Two Toolvico entries can land on one catalog key (same slug twice in a country):
            # the cheapest is the one we sell.
            if key not in best or offer.price < best[key].price:
                best[key] = offer
        if country is None:
            self._offers = dict(best)
        else:
            self._offers = {k: v for k, v in self._offers.items() if k[0] != country}
            self._offers.update(best)
        return list(best.values())

    async def _countries(self) -> list[tuple[str, str, str]]:
        """(Toolvico id, name, ISO or 'toolvico:<id>') for this server type."""
        data = await self.api.get("countries", {"type": self.server_type})
        items = data.get("countries")
        if not isinstance(items, list):
            raise BadResponse(f"{self.name}: no countries list", provider=self.name)
        result = []
        for item in items:
            try:
                country_id = id_field(item, "id", provider=self.name)
            except (BadResponse, AttributeError):
                log.warning("%s: skipping a country entry without an id: %r", self.name, item)
                continue
            name = item.get("name") if isinstance(item.get("name"), str) else ""
            result.append((country_id, name, country_iso(name, country_id)))
        return result

    async def _services(self, country_id: str, country_name: str, iso: str) -> list[OtpOffer]:
        params = {"country_id": country_id, "type": self.server_type}
        data = await self.api.get("services", params)
        items = data.get("services")
        if not isinstance(items, list):
            raise BadResponse(f"{self.name}: no services list", provider=self.name)
        offers = []
        for item in items:
            try:
                service_id = id_field(item, "service_id", provider=self.name)
                price = decimal_field(item, "your_price_usd", provider=self.name)
            except (BadResponse, AttributeError):
                log.warning("%s: skipping a service entry: %r", self.name, item)
                continue
            if price <= 0:
                log.warning("%s: skipping service %s priced %s", self.name, service_id, price)
                continue
            name = item.get("name") if isinstance(item.get("name"), str) else ""
            offers.append(
                OtpOffer(
                    country=iso,
                    service=service_slug(name, service_id),
                    price=price,
                    stock=OFFER_STOCK,
                    native_country=country_id,
                    native_service=service_id,
                    country_name=country_name or None,
                    service_name=name or None,
                )
            )
        return offers

    async def buy(
        self, country: str, service: str, *, max_price: Decimal | None = None, client_ref: str
    ) -> OtpPurchase:
        # Toolvico takes no order reference (client_ref is not sent) and no max price: with a
        # max price the country's prices are fetched again just before buying.
        offer = self._offers.get((country, service))
        if offer is None or max_price is not None:
            await self.offers(country)
            offer = self._offers.get((country, service))
        if offer is None:
            raise NoNumbers(
                f"{self.name} does not sell {service} in {country}", provider=self.name
            )
        if max_price is not None and offer.price > max_price:
            raise PriceTooHigh(
                f"{self.name}: {service} in {country} costs {offer.price}",
                provider=self.name,
                min_price=offer.price,
            )
        body = {
            "service_id": offer.native_service,
            "country_id": offer.native_country,
            "type": self.server_type,
        }
        data = await self.api.post("buy_number", body, op=Op.BUY)
        try:
            return self._purchase(data)
        except BadResponse as exc:
            # success:true means the number was bought; without its id we cannot track it.
            raise OutcomeUnknown(str(exc), provider=self.name, raw=exc.raw) from None

    def _purchase(self, data: dict[str, Any]) -> OtpPurchase:
        order_id = id_field(data, "order_id", provider=self.name)
        phone = id_field(data, "phone_number", provider=self.name)
        return OtpPurchase(
            order_id=order_id, phone=phone if phone.startswith("+") else f"+{phone}"
        )

    async def status(self, order_id: str) -> OtpStatus:
        data = await self.api.get("get_status", {"order_id": order_id}, op=Op.ORDER)
        word = data.get("status")
        state = _OTP_STATES.get(word.strip().lower()) if isinstance(word, str) else None
        if state is None:
            raise BadResponse(
                f"{self.name}: unknown status {word!r}", provider=self.name, raw=repr(data)
            )
        if state is not OtpState.CODE:
            return OtpStatus(state=state)
        code = data.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            code = str(code)
        if not isinstance(code, str) or not code.strip():
            # "received" with no code: not a state the lifecycle can act on; the next poll
            # will see the code.
            raise BadResponse(
                f"{self.name}: received without a code", provider=self.name, raw=repr(data)
            )
        text = data.get("sms") or data.get("text")
        return OtpStatus(
            state=state, code=code.strip(), text=text if isinstance(text, str) else None
        )

    async def cancel(self, order_id: str) -> None:
        # Toolvico's example sends order_id as a JSON integer ({"order_id":42}).
        numeric = order_id.isascii() and order_id.isdigit()  # "²".isdigit() is True too
        native: int | str = int(order_id) if numeric else order_id
        data = await self.api.post("cancel", {"order_id": native}, op=Op.CANCEL)
        if data.get("refunded") in (True, 1, "true", "1"):
            return
        raise InvalidState(
            f"{self.name}: cancel of {order_id} was not refunded",
            provider=self.name,
            raw=repr(data),
        )


# --- SMM ----------------------------------------------------------------------------------------


class ToolvicoSmmProvider(SmmProvider):
    """Toolvico SMM orders: link + quantity only, one order per status call, USD wallet.

    No refill, no cancel, no batch status (features a protocol lacks are not offered).
    """

    kind = "toolvico"
    supports_refill = False
    supports_cancel = False
    supports_batch_status = False
    max_batch = 1

    def __init__(
        self, config: ProviderConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.name = config.name
        self.currency = config.currency
        self.api = ToolvicoApi(config, "/smm", transport=transport)
        self.http = self.api.http

    async def aclose(self) -> None:
        await self.api.aclose()

    async def balance(self) -> Decimal:
        data = await self.api.get("balance")
        return decimal_field(data, "wallet_balance", provider=self.name)

    async def services(self) -> list[SmmService]:
        data = await self.api.get("services")
        items = data.get("services")
        if not isinstance(items, list):
            raise BadResponse(f"{self.name}: no services list", provider=self.name, raw=repr(data))
        services = (self._service(item) for item in items)
        return [service for service in services if service is not None]

    def _service(self, item: Any) -> SmmService | None:
        """One entry; None (logged) when unusable. place_order takes only link + quantity, so
        an entry that says it is of another type is hidden."""
        try:
            service_id = id_field(item, "service_id", provider=self.name)
            rate = decimal_field(item, "rate_usd_per_1000", provider=self.name)
            low, high = to_int(item.get("min")), to_int(item.get("max"))
        except (BadResponse, AttributeError, ValueError):
            log.warning("%s: skipping an SMM service entry: %r", self.name, item)
            return None
        type_name = item.get("type", "Default")
        kind = smm_service_type(type_name) if isinstance(type_name, str) else None
        if kind is not SmmServiceType.DEFAULT:
            log.debug("%s: hiding SMM service %s of type %r", self.name, service_id, type_name)
            return None
        if rate <= 0 or low < 0 or high < max(low, 1):
            log.warning(
                "%s: skipping SMM service %s: %s, %s-%s", self.name, service_id, rate, low, high
            )
            return None
        name, category = item.get("name"), item.get("category")
        description = item.get("description", item.get("desc"))
        return SmmService(
            service_id=service_id,
            name=name.strip() if isinstance(name, str) and name.strip() else f"#{service_id}",
            category=category.strip() if isinstance(category, str) else "",
            type=kind,
            rate=rate,
            min=low,
            max=high,
            description=description.strip() or None if isinstance(description, str) else None,
        )

    async def add(self, request: SmmOrderRequest, *, client_ref: str) -> str:
        if request.type is not SmmServiceType.DEFAULT or request.runs is not None:
            raise NotSupported(
                f"{self.name}: Toolvico orders take a link and a quantity only",
                provider=self.name,
            )
        body = {
            "service_id": request.service_id,
            "link": request.link.strip(),
            "quantity": request.quantity,
        }
        data = await self.api.post("place_order", body, op=Op.BUY)
        try:
            order_id = id_field(data, "order_id", provider=self.name)
        except BadResponse as exc:
            # success:true means the order was placed; without its id we cannot track it.
            raise OutcomeUnknown(str(exc), provider=self.name, raw=exc.raw) from None
        log.info(
            "%s: SMM order %s placed (ours: %s, charged %s)",
            self.name,
            order_id,
            client_ref,
            data.get("charged"),
        )
        return order_id

    async def statuses(self, order_ids: list[str]) -> dict[str, SmmOrderStatus | ProviderError]:
        """One request per order (the per-endpoint rate limiter paces them). After a refusal
        that will repeat for every id (bad key, rate limit) the rest get the same error unasked."""
        result: dict[str, SmmOrderStatus | ProviderError] = {}
        ids = unique_ids(order_ids)
        for index, order_id in enumerate(ids):
            try:
                result[order_id] = await self._status(order_id)
            except ProviderError as exc:
                result[order_id] = exc
                if isinstance(exc, AuthError | ProviderBalanceLow) or (
                    isinstance(exc, Unavailable) and exc.retry_after_s is not None
                ):
                    result.update(dict.fromkeys(ids[index + 1 :], exc))
                    break
        return result

    async def _status(self, order_id: str) -> SmmOrderStatus:
        data = await self.api.get("order_status", {"order_id": order_id}, op=Op.ORDER)
        word = data.get("status")
        state = smm_order_state(word) if isinstance(word, str) else None
        if state is None:
            raise UnreadableOrder(
                f"{self.name}: unknown SMM status {word!r}",
                word=word[:40] if isinstance(word, str) else "",
                provider=self.name,
                raw=repr(data),
            )
        currency = data.get("currency")
        return SmmOrderStatus(
            state=state,
            charge=decimal_or_none(data.get("charge", data.get("charged"))),
            start_count=int_or_none(data.get("start_count")),
            remains=int_or_none(data.get("remains")),
            currency=currency.strip().upper() if isinstance(currency, str) and currency else None,
        )
