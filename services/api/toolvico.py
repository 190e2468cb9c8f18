"""The Toolvico protocol, served by the shop at `/api/v1/otp` and `/api/v1/smm`.

seed 000 and docs/protocols.md §1: the key in the `X-API-Key` header; `action` in the query;
reads are GET with query parameters, purchases POST with a JSON body (`buy_number`, `cancel`,
`place_order`; query parameters are read too, the body wins). Every answer is the envelope
`{"success": true, "data": {...}}` or `{"success": false, "error": "..."}` with the seed's
HTTP codes: 400 bad request, 401 bad key, 402 not enough balance, 404 order / service /
country not found, 405 a purchase by GET, 429 with Retry-After over the rate limit, 503 the
provider (our upstream) failed, nothing charged. Amounts are in the shop's currency with six
decimals, as strings or numbers exactly where the seed has them (`"wallet_balance":
"12.450000"`, `"your_price_usd": 0.040000`).

Ids: countries are the numeric SMS-Activate ids of the shipped tables (as handler_api.py hands
out) with English names, services the catalog's slugs (`service_id` and `name`), order ids ours;
SMM service ids are ResellerSmm's. `type` (1-5) is accepted and means nothing here: the shop
picks its provider itself. Our extension: `buy_number` and `place_order` take an optional
`ref`, the client's own reference: the same one again answers the same order, charged once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from services.api import errors
from services.api.handler_api import country_id, country_key
from services.api.keys import ApiKeys, Client
from services.api.protocol import ApiRequest, Reply
from services.api.ratelimit import RateLimits
from services.api.shop import OtpOrder, ResellerShop
from services.api.smm import (
    BadLink,
    BadQuantity,
    BadRequest,
    OrderFailed,
    ResellerSmm,
    SmmApiOrder,
    draft_from,
    parse_order_id,
)
from services.money import CENT, MICRO
from services.orders.lifecycle import OtpState
from services.providers.base import SmmServiceType

OTP_PATH = "/api/v1/otp"
SMM_PATH = "/api/v1/smm"
JSON = "application/json"
SIX = Decimal("0.000001")
KEY_HEADER = "x-api-key"  # ApiRequest.headers are lower case
TYPE_HEADER = "content-type"
MAX_TEXT = 2000  # characters of any one field (a link is checked again by the SMM service)

ERR_AUTH = "Invalid or missing API key"
ERR_BALANCE = "Insufficient wallet balance"
ERR_ORDER = "Order not found"
ERR_SERVICE = "Service not found"
ERR_COUNTRY = "Country not found"
ERR_RATE = "Rate limit exceeded"
ERR_UNAVAILABLE = "Provider unavailable"
ERR_NO_NUMBERS = "No numbers available"
ERR_ACTION = "Unknown action"
ERR_JSON = "Invalid JSON body"
ERR_TYPE = "Invalid type"
ERR_REF = "Invalid ref"
ERR_TOO_MANY = "Too many active orders"
ERR_RECEIVED = "Order already received a code and cannot be cancelled"
ERR_CANCELLED = "Order is already cancelled"
ERR_SERVER = "Internal server error"
ERR_TOO_LARGE = "Request body too large"
ERR_TOO_SLOW = "Request body not received in time"

# What a protocol status is for each of our OTP states (the seed: waiting | received |
# cancelled). A finished activation had its code; an expired or failed one was refunded.
OTP_STATUS = {
    OtpState.BUYING: "waiting",
    OtpState.UNKNOWN: "waiting",
    OtpState.WAITING: "waiting",
    OtpState.RECEIVED: "received",
    OtpState.FINISHED: "received",
    OtpState.CANCELLED: "cancelled",
    OtpState.EXPIRED: "cancelled",
    OtpState.FAILED: "cancelled",
}

Params = Mapping[str, Any]
Action = Callable[["Toolvico", Params, Client], Awaitable[Reply]]


class Money(Decimal):
    """An amount written as a bare JSON number with its six decimals (`0.040000`)."""


def render(value: Any) -> str:
    """JSON; a `Money` is a bare number with its own digits, never through a float."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        items = (
            f"{json.dumps(str(k), ensure_ascii=False)}: {render(v)}" for k, v in value.items()
        )
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, float):  # pragma: no cover - a bug, never data
        raise TypeError("no floats in answers")
    return json.dumps(value, ensure_ascii=False)


def six(micro: int) -> Money:
    return Money((Decimal(micro) / MICRO).quantize(SIX))


def six_text(micro: int) -> str:
    return format(six(micro), "f")


def rate_number(micro: int) -> Money:
    """A rate as the seed writes it (`1.08`): its digits, at least two decimals."""
    value = Decimal(micro) / MICRO
    return Money(f"{value:.2f}" if micro % CENT == 0 else f"{value.normalize():f}")


def ok(data: Any) -> Reply:
    return Reply(200, render({"success": True, "data": data}), JSON)


def fail(status: int, text: str, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, render({"success": False, "error": text}), JSON, dict(headers or {}))


class Refusal(errors.ApiError):
    """An answer chosen by the action: HTTP status and text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(status, text)
        self.status, self.text = status, text


def error_reply(exc: errors.ApiError) -> Reply:
    match exc:
        case Refusal(status=status, text=text):
            return fail(status, text)
        case BadQuantity(low=low, high=high):
            return fail(400, f"Quantity must be between {low} and {high}")
        case errors.TooEarly(seconds=seconds):
            return fail(400, f"Please wait {max(1, seconds)} seconds before cancelling this order")
        case errors.Pending(order_id=order_id):
            return fail(503, f"Provider did not answer in time; order {order_id} is being checked")
    for cls, status, text in ERRORS:
        if isinstance(exc, cls):
            return fail(status, text)
    return fail(503, ERR_UNAVAILABLE)  # Unavailable: nothing changed, try again


ERRORS: tuple[tuple[type[errors.ApiError], int, str], ...] = (
    (errors.Refused, 401, ERR_AUTH),
    (errors.NoSuchOrder, 404, ERR_ORDER),
    (errors.BadService, 404, ERR_SERVICE),
    (errors.BadCountry, 404, ERR_COUNTRY),
    (errors.NoMoney, 402, ERR_BALANCE),
    (errors.NoStock, 503, ERR_NO_NUMBERS),
    (errors.TooManyOpen, 400, ERR_TOO_MANY),
    (errors.Limited, 503, ERR_UNAVAILABLE),
    (errors.BadRef, 400, ERR_REF),
    (errors.DuplicateRef, 400, "This ref was used before for another kind of order"),
    (errors.AlreadyClosed, 400, ERR_CANCELLED),
    (errors.WrongState, 400, ERR_RECEIVED),
    (BadLink, 400, "link is not a valid URL"),
    (BadRequest, 400, "Bad request"),
    (OrderFailed, 503, ERR_UNAVAILABLE),  # refused upstream: refunded at once
)


# --- request fields ------------------------------------------------------------------------------


def text_field(params: Params, name: str, *, required: bool = True) -> str | None:
    value = params.get(name)
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        if required:
            raise Refusal(400, f"{name} is required")
        return None
    text = str(value).strip()
    if not text:
        if required:
            raise Refusal(400, f"{name} is required")
        return None
    if len(text) > MAX_TEXT:
        raise Refusal(400, f"{name} is too long")
    return text


def server_type(params: Params) -> int:
    raw = params.get("type")
    if raw is None or raw == "":
        return 1
    text = str(raw).strip()
    if isinstance(raw, bool) or not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 5:
        raise Refusal(400, ERR_TYPE)
    return int(text)


def order_id_field(params: Params) -> int:
    if params.get("order_id") in (None, ""):
        raise Refusal(400, "order_id is required")
    order_id = parse_order_id(params.get("order_id"))
    if order_id is None:
        raise errors.NoSuchOrder()
    return order_id


# --- answers -------------------------------------------------------------------------------------


def otp_status(order: OtpOrder) -> dict[str, Any]:
    word = OTP_STATUS.get(OtpState(order.status), "waiting")
    if word == "received" and order.code:
        return {"status": word, "code": order.code}
    if word == "received":  # finished without a code in our books: nothing more will come
        return {"status": "cancelled"}
    return {"status": word}


def smm_status(order: SmmApiOrder) -> dict[str, Any]:
    return {
        "status": order.panel_status,
        "remains": order.panel_remains,
        "start_count": order.start_count or 0,
    }


# --- the protocol --------------------------------------------------------------------------------


class Toolvico:
    """`/api/v1/otp` and `/api/v1/smm`."""

    paths: tuple[str, ...] = (OTP_PATH, SMM_PATH)

    def __init__(
        self, shop: ResellerShop, keys: ApiKeys, limits: RateLimits, currency: str = "USD"
    ) -> None:
        self.shop = shop
        self.keys = keys
        self.limits = limits
        self.currency = currency

    @property
    def smm(self) -> ResellerSmm | None:
        smm: ResellerSmm | None = self.shop.smm
        return smm

    def failure(self) -> Reply:
        return fail(500, ERR_SERVER)

    def too_large(self) -> Reply:
        return fail(413, ERR_TOO_LARGE)

    def too_slow(self) -> Reply:
        return fail(408, ERR_TOO_SLOW)

    async def handle(self, request: ApiRequest) -> Reply:
        client = await self.keys.authenticate(request.headers.get(KEY_HEADER))
        if client is None:
            return fail(401, ERR_AUTH)
        api = "smm" if request.path.rstrip("/") == SMM_PATH else "otp"
        action = str(request.params.get("action", ""))
        route = ROUTES.get((api, action))
        if route is None or (api == "smm" and self.smm is None):
            return fail(400, ERR_ACTION)
        method, handler = route
        if method == "POST" and request.method != "POST":
            return fail(405, f"Use POST for {action}")
        params = self._params(request)
        if params is None:
            return fail(400, ERR_JSON)
        wait = await self.limits.check(client.key_id, f"toolvico:{api}:{action}")
        if wait is not None:
            return fail(429, ERR_RATE, {"Retry-After": str(wait)})
        try:
            return await handler(self, params, client)
        except errors.ApiError as exc:
            return error_reply(exc)

    @staticmethod
    def _params(request: ApiRequest) -> dict[str, Any] | None:
        """The query, then the JSON body's fields over it; None for a body that is not a JSON
        object."""
        params: dict[str, Any] = dict(request.params)
        if request.method != "POST" or not request.body.strip():
            return params
        if request.headers.get(TYPE_HEADER, "").split(";")[0].strip() in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            return params  # a form: already in request.params
        try:
            body = json.loads(request.body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(body, dict):
            return None
        params.update(body)
        return params

    # --- OTP -------------------------------------------------------------------------------

    async def otp_countries(self, params: Params, client: Client) -> Reply:
        server_type(params)
        countries = []
        for key in self.shop.otp_countries():
            cid = country_id(key)
            if cid is not None:
                countries.append({"id": cid, "name": self.shop.catalog.country_name(key)})
        countries.sort(key=lambda item: int(item["id"]))
        return ok({"countries": countries})

    def _country(self, params: Params) -> str:
        raw = text_field(params, "country_id")
        key = country_key(raw or "")
        if key is None or key not in self.shop.otp_countries():
            raise errors.BadCountry()
        return key

    async def otp_services(self, params: Params, client: Client) -> Reply:
        server_type(params)
        country = self._country(params)
        services = [
            {
                "service_id": price.service,
                "name": price.service,
                "your_price_usd": six(price.price),
            }
            for price in self.shop.otp_prices(country)
        ]
        return ok({"services": services})

    async def buy_number(self, params: Params, client: Client) -> Reply:
        server_type(params)
        country = self._country(params)
        service = text_field(params, "service_id") or ""
        if service not in self.shop.otp_services(country):
            raise errors.BadService()
        ref = text_field(params, "ref", required=False)
        try:
            order = await self.shop.buy_number(client, country, service, ref=ref)
        except errors.DuplicateRef as exc:
            if exc.order_id is None:
                raise
            order = await self.shop.otp_order(client, exc.order_id)
        return ok(
            {
                "order_id": str(order.id),
                "phone_number": order.phone or "",
                "status": OTP_STATUS.get(OtpState(order.status), "waiting"),
            }
        )

    async def get_status(self, params: Params, client: Client) -> Reply:
        order = await self.shop.otp_order(client, order_id_field(params))
        return ok(otp_status(order))

    async def cancel(self, params: Params, client: Client) -> Reply:
        order = await self.shop.cancel_number(client, order_id_field(params))
        return ok({"refunded": True, "amount": six_text(order.price)})

    async def balance(self, params: Params, client: Client) -> Reply:
        micro = await self.shop.balance(client)
        return ok({"wallet_balance": six_text(micro), "currency": self.currency})

    # --- SMM -------------------------------------------------------------------------------

    def _smm(self) -> ResellerSmm:
        smm = self.smm
        if smm is None:  # pragma: no cover - handle() answers Unknown action first
            raise Refusal(400, ERR_ACTION)
        return smm

    async def smm_services(self, params: Params, client: Client) -> Reply:
        services = [
            {
                "service_id": str(offer.id),
                "name": offer.item.name,
                "category": offer.item.category,
                "rate_usd_per_1000": rate_number(offer.rate_per_1000),
                "min": offer.item.min,
                "max": offer.item.max,
            }
            for offer in self._smm().offers(types=[SmmServiceType.DEFAULT])
        ]
        return ok({"services": services})

    async def place_order(self, params: Params, client: Client) -> Reply:
        smm = self._smm()
        offer = smm.offer(text_field(params, "service_id"))
        if offer is None or offer.item.type is not SmmServiceType.DEFAULT:
            raise errors.BadService()
        link = text_field(params, "link") or ""
        quantity = params.get("quantity")
        if quantity is None or quantity == "":
            raise Refusal(400, "quantity is required")
        if isinstance(quantity, bool) or not isinstance(quantity, int | str):
            raise Refusal(400, "quantity must be a whole number")
        draft = draft_from(offer, link=link, quantity=quantity)
        order = await smm.add(client, draft, ref=text_field(params, "ref", required=False))
        return ok({"order_id": str(order.id), "charged": six(order.price), "status": "Pending"})

    async def order_status(self, params: Params, client: Client) -> Reply:
        order = await self._smm().order(client, order_id_field(params))
        return ok(smm_status(order))


ROUTES: dict[tuple[str, str], tuple[str, Action]] = {
    ("otp", "countries"): ("GET", Toolvico.otp_countries),
    ("otp", "services"): ("GET", Toolvico.otp_services),
    ("otp", "buy_number"): ("POST", Toolvico.buy_number),
    ("otp", "get_status"): ("GET", Toolvico.get_status),
    ("otp", "cancel"): ("POST", Toolvico.cancel),
    ("otp", "balance"): ("GET", Toolvico.balance),
    ("smm", "services"): ("GET", Toolvico.smm_services),
    ("smm", "place_order"): ("POST", Toolvico.place_order),
    ("smm", "order_status"): ("GET", Toolvico.order_status),
    ("smm", "balance"): ("GET", Toolvico.balance),
}
