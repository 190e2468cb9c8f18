"""The SMS-Activate-compatible protocol (`/stubs/handler_api.php`), served by the shop.

seed 003 and docs/protocols.md §2: `api_key` and `action` as query or form parameters, plain
text tokens (`ACCESS_NUMBER:<id>:<phone>`, `STATUS_OK:<code>`, `NO_BALANCE`...) or JSON,
HTTP 200 for every answer of the protocol (as the original host did), 429 over the rate
limit, 413 for a body over the limit. Countries are the numeric ids and services the short
codes of the shipped tables (services/providers/tables.py), mapped both ways to the catalog's
ISO codes and slugs; our activation ids are the ones handed out.

Each action is a function from (parameters, caller) to a `Reply`; `HandlerApi.handle()` checks
the key, the action and the rate first. Any clients of this protocol (this project's own
`smsactivate` adapter included) work against the shop by changing the base URL and the key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from services.api import errors
from services.api.keys import ApiKeys, Client
from services.api.protocol import ApiRequest, Reply
from services.api.ratelimit import RateLimits
from services.api.shop import OtpOrder, OtpPrice, ResellerShop
from services.ids import is_id
from services.money import MICRO
from services.orders.lifecycle import OtpState
from services.providers import tables

log = logging.getLogger(__name__)

PATH = "/stubs/handler_api.php"
JSON = "application/json"
TEXT = "text/plain"
RATE_LIMITED = "TOO_MANY_REQUESTS"
GENERIC_ERROR = "ERROR_SQL"  # the protocol's "server fault, try again later"
SA_PREFIX = "smsactivate:"  # catalog keys of handler_api countries without an ISO of their own
# ISO 4217 numeric codes, as getNumberV2's `currency` carries them.
CURRENCY_NUMBERS = {"USD": 840, "RUB": 643, "EUR": 978, "CNY": 156, "GBP": 826, "INR": 356}
# activationStatus in getActiveActivations: SMS-Activate's numbers for "waiting for the code"
# and "code received".
ACTIVATION_STATUS = {OtpState.WAITING: "4", OtpState.RECEIVED: "2"}

Action = Callable[["HandlerApi", Mapping[str, str], Client], Awaitable[Reply]]


def text(body: str, status: int = 200) -> Reply:
    return Reply(status, body, TEXT)


def as_json(value: Any) -> Reply:
    return Reply(200, dumps(value), JSON)


def dumps(value: Any) -> str:
    """JSON with Decimals written as numbers (`0.18`, never a float on the way)."""
    if isinstance(value, Decimal):
        return f"{value.normalize():f}" if value != 0 else "0"
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, float):  # pragma: no cover - a bug, never data
        raise TypeError("no floats in answers")
    return json.dumps(value, ensure_ascii=False)


def units(micro: int) -> Decimal:
    return Decimal(micro) / MICRO


def balance_text(micro: int) -> str:
    """`12.30`: two decimals, rounded down (never more than the wallet holds)."""
    return str(units(micro).quantize(Decimal("0.01"), rounding=ROUND_FLOOR))


def api_time(moment: datetime | None) -> str | None:
    """`YYYY-MM-DD HH:MM:SS`, UTC (the protocol's form has no zone)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- ids: the protocol's numbers and codes <-> the catalog's keys ------------------------------


def country_id(country: str) -> str | None:
    """Our catalog key -> the protocol's numeric id (None: it has none)."""
    if country.startswith(SA_PREFIX):
        native = country[len(SA_PREFIX) :]
        return native if native.isascii() and native.isdigit() else None
    return tables.sa_iso_country().get(country.upper())


def country_key(cid: str) -> str | None:
    """The protocol's numeric id -> our catalog key; None when the tables do not know it."""
    if not (cid.isascii() and cid.isdigit()) or len(cid) > 6:
        return None
    cid = str(int(cid))
    iso = tables.sa_country_iso().get(cid)
    if iso is not None and tables.sa_iso_country().get(iso) == cid:
        return iso
    return f"{SA_PREFIX}{cid}"


def service_code(slug: str) -> str:
    return tables.sa_slug_service().get(slug, slug)


def service_slug(code: str) -> str:
    return tables.sa_service_slug(code)


def order_id(params: Mapping[str, str]) -> int | None:
    raw = params.get("id", "").strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        return None
    value = int(raw)
    return value if is_id(value) else None


def parse_max_price(raw: str | None) -> int | None:
    """maxPrice in store-currency units -> micro-units; ValueError for junk."""
    if raw is None or raw.strip() == "":
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise ValueError(raw) from None
    if not value.is_finite() or value < 0 or value > 1_000_000:
        raise ValueError(raw)
    return int(value * MICRO)


# --- answers ---------------------------------------------------------------------------------


def status_text(order: OtpOrder) -> str:
    """getStatus: STATUS_OK:<code> once a code arrived, STATUS_WAIT_CODE while waiting,
    STATUS_CANCEL once ended (cancelled, expired, finished, failed)."""
    if order.status == OtpState.RECEIVED and order.code:
        return f"STATUS_OK:{order.code}"
    if order.status in (OtpState.BUYING, OtpState.UNKNOWN, OtpState.WAITING):
        return "STATUS_WAIT_CODE"
    return "STATUS_CANCEL"


# Each refusal's token; the first class that matches wins (subclasses first).
ERROR_TOKENS: tuple[tuple[type[errors.ApiError], str], ...] = (
    (errors.NoSuchOrder, "NO_ACTIVATION"),
    (errors.Refused, "BAD_KEY"),
    (errors.BadCountry, "BAD_COUNTRY"),
    (errors.BadService, "BAD_SERVICE"),
    (errors.NoStock, "NO_NUMBERS"),
    (errors.TooManyOpen, "NO_NUMBERS"),
    (errors.Limited, "NO_NUMBERS"),
    (errors.NoMoney, "NO_BALANCE"),
    (errors.DuplicateRef, "ORDER_ALREADY_EXISTS"),
    (errors.BadRef, "BAD_DATA"),
    (errors.TooEarly, "EARLY_CANCEL_DENIED"),
    (errors.AlreadyClosed, "ACCESS_CANCEL_ALREADY"),
    (errors.WrongState, "BAD_STATUS"),
)


def error_reply(exc: errors.ApiError) -> Reply:
    if isinstance(exc, errors.PriceAbove):
        return text(f"WRONG_MAX_PRICE:{dumps(units(exc.price))}")
    for cls, token in ERROR_TOKENS:
        if isinstance(exc, cls):
            return text(token)
    return text(GENERIC_ERROR)  # Pending, Unavailable: not known yet; ask again later


def v2_number(order: OtpOrder, currency: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "activationId": order.id,
        "phoneNumber": order.phone_digits,
        "activationCost": units(order.price),
        "currency": CURRENCY_NUMBERS.get(currency.upper(), 0),
        "countryCode": country_id(order.country) or "",
        "canGetAnotherSms": order.can_another_sms,
        "activationTime": api_time(order.created_at),
        "activationEndTime": api_time(order.expires_at),
        "activationOperator": "any",
    }
    if order.client_ref is not None:
        answer["orderId"] = order.client_ref
    return answer


def active_item(order: OtpOrder, currency: str) -> dict[str, Any]:
    return {
        "activationId": order.id,
        "serviceCode": service_code(order.service),
        "phoneNumber": order.phone_digits,
        "activationCost": units(order.price),
        "activationStatus": ACTIVATION_STATUS.get(OtpState(order.status), "4"),
        "smsCode": [order.code] if order.code else None,
        "smsText": [order.sms_text] if order.sms_text else None,
        "activationTime": api_time(order.created_at),
        "countryCode": country_id(order.country) or "",
        "orderId": order.client_ref,
        "currency": CURRENCY_NUMBERS.get(currency.upper(), 0),
    }


# --- the protocol ----------------------------------------------------------------------------


class HandlerApi:
    """`/stubs/handler_api.php`, GET or POST."""

    paths: tuple[str, ...] = (PATH,)

    def __init__(
        self, shop: ResellerShop, keys: ApiKeys, limits: RateLimits, currency: str = "USD"
    ) -> None:
        self.shop = shop
        self.keys = keys
        self.limits = limits
        self.currency = currency

    def failure(self) -> Reply:
        return text(GENERIC_ERROR, 500)

    def too_large(self) -> Reply:
        return text("BAD_DATA", 413)

    def too_slow(self) -> Reply:
        return text("BAD_DATA", 408)

    async def handle(self, request: ApiRequest) -> Reply:
        params = request.params
        client = await self.keys.authenticate(params.get("api_key"))
        if client is None:
            return text("BAD_KEY")
        action = params.get("action", "")
        handler = ACTIONS.get(action)
        if handler is None:
            return text("BAD_ACTION")
        wait = await self.limits.check(client.key_id, f"handler_api:{action}")
        if wait is not None:
            return Reply(429, RATE_LIMITED, TEXT, {"Retry-After": str(wait)})
        try:
            return await handler(self, params, client)
        except errors.ApiError as exc:
            return error_reply(exc)

    # --- the item a buy names --------------------------------------------------------------

    def _item(self, params: Mapping[str, str]) -> tuple[str, str]:
        code = params.get("service", "").strip()
        if not code or len(code) > 32:
            raise errors.BadService()
        slug = service_slug(code)
        if slug not in self.shop.otp_services():
            raise errors.BadService()
        country = country_key(params.get("country", "0").strip() or "0")
        if country is None:
            raise errors.BadCountry()
        return country, slug

    async def _buy(self, params: Mapping[str, str], client: Client, ref: str | None) -> OtpOrder:
        country, slug = self._item(params)
        try:
            max_price = parse_max_price(params.get("maxPrice"))
        except ValueError:
            return_price = self.shop.otp_price(country, slug)
            raise errors.PriceAbove(return_price.price if return_price else 0) from None
        return await self.shop.buy_number(client, country, slug, max_price=max_price, ref=ref)

    # --- actions ---------------------------------------------------------------------------

    async def get_balance(self, params: Mapping[str, str], client: Client) -> Reply:
        return text(f"ACCESS_BALANCE:{balance_text(await self.shop.balance(client))}")

    async def get_number(self, params: Mapping[str, str], client: Client) -> Reply:
        order = await self._buy(params, client, None)
        return text(f"ACCESS_NUMBER:{order.id}:{order.phone_digits}")

    async def get_number_v2(self, params: Mapping[str, str], client: Client) -> Reply:
        ref = params.get("orderId")
        order = await self._buy(params, client, ref.strip() if ref else None)
        return as_json(v2_number(order, self.currency))

    async def get_status(self, params: Mapping[str, str], client: Client) -> Reply:
        activation_id = order_id(params)
        if activation_id is None:
            raise errors.NoSuchOrder()
        return text(status_text(await self.shop.otp_order(client, activation_id)))

    async def set_status(self, params: Mapping[str, str], client: Client) -> Reply:
        activation_id = order_id(params)
        if activation_id is None:
            raise errors.NoSuchOrder()
        match params.get("status", "").strip():
            case "1":
                order = await self.shop.otp_order(client, activation_id)
                if order.status not in (OtpState.WAITING, OtpState.RECEIVED):
                    raise errors.WrongState()
                return text("ACCESS_READY")
            case "3":
                await self.shop.another_sms(client, activation_id)
                return text("ACCESS_RETRY_GET")
            case "6":
                await self.shop.finish_number(client, activation_id)
                return text("ACCESS_ACTIVATION")
            case "8" | "-1":
                await self.shop.cancel_number(client, activation_id)
                return text("ACCESS_CANCEL")
            case _:
                await self.shop.otp_order(client, activation_id)  # NO_ACTIVATION first
                raise errors.WrongState()

    async def get_prices(self, params: Mapping[str, str], client: Client) -> Reply:
        country: str | None = None
        if params.get("country", "").strip():
            country = country_key(params["country"].strip())
            if country is None:
                return as_json({})
        service = service_slug(params["service"].strip()) if params.get("service") else None
        answer: dict[str, dict[str, Any]] = {}
        for price in self.shop.otp_prices(country, service):
            _add_price(answer, price)
        return as_json(answer)

    async def get_countries(self, params: Mapping[str, str], client: Client) -> Reply:
        answer: dict[str, Any] = {}
        rows = tables._raw()["sms_activate_countries"]
        for key in self.shop.otp_countries():
            cid = country_id(key)
            if cid is None:
                continue
            row = rows.get(cid)
            eng = row["name_en"] if row else self.shop.catalog.country_name(key)
            rus = (row.get("name_ru") if row else None) or eng
            answer[cid] = {
                "id": int(cid),
                "rus": rus,
                "eng": eng,
                "chn": eng,
                "visible": 1,
                "retry": 1,
                "rent": 0,
                "multiService": 0,
            }
        return as_json(dict(sorted(answer.items(), key=lambda item: int(item[0]))))

    async def get_services_list(self, params: Mapping[str, str], client: Client) -> Reply:
        country: str | None = None
        if params.get("country", "").strip():
            country = country_key(params["country"].strip())
        slugs = self.shop.otp_services(country) if country else self.shop.otp_services()
        services = [{"code": service_code(s), "name": self.shop.service_name(s)} for s in slugs]
        return as_json({"status": "success", "services": services})

    async def get_active_activations(self, params: Mapping[str, str], client: Client) -> Reply:
        start, limit = _int(params.get("start"), 0), _int(params.get("limit"), 100)
        orders = await self.shop.active_numbers(client, start, limit)
        if not orders:
            return text("NO_ACTIVATIONS")
        items = [active_item(order, self.currency) for order in orders]
        return as_json({"status": "success", "activeActivations": items})


def _add_price(answer: dict[str, dict[str, Any]], price: OtpPrice) -> None:
    cid = country_id(price.country)
    if cid is None:
        return
    answer.setdefault(cid, {})[service_code(price.service)] = {
        "cost": units(price.price),
        "count": price.stock,
        "physicalCount": price.stock,
    }


def _int(raw: str | None, default: int) -> int:
    if raw is None or not raw.strip().isascii() or not raw.strip().isdigit():
        return default
    return min(int(raw.strip()), 1_000_000)


ACTIONS: dict[str, Action] = {
    "getBalance": HandlerApi.get_balance,
    "getBalanceAndCashBack": HandlerApi.get_balance,
    "getNumber": HandlerApi.get_number,
    "getNumberV2": HandlerApi.get_number_v2,
    "getStatus": HandlerApi.get_status,
    "setStatus": HandlerApi.set_status,
    "getPrices": HandlerApi.get_prices,
    "getCountries": HandlerApi.get_countries,
    "getServicesList": HandlerApi.get_services_list,
    "getActiveActivations": HandlerApi.get_active_activations,
}
