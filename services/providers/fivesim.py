"""5sim.net adapter (docs/protocols.md §3).

JSON answers, but errors are plain-text bodies (`no free phones`, sometimes with HTTP 200).
Countries and products are lowercase names; the product name is our service slug.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from services.catalog_refresh import gc_paused
from services.money import loads, to_decimal
from services.providers import tables
from services.providers.base import (
    OfferRow,
    OtpActiveOrder,
    OtpOffer,
    OtpOffers,
    OtpProvider,
    OtpPurchase,
    OtpState,
    OtpStatus,
)
from services.providers.config import ProviderConfig
from services.providers.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    InvalidState,
    NoNumbers,
    OrderNotFound,
    OutcomeUnknown,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
)
from services.providers.http import ProviderHttp, body_text, retry_after

log = logging.getLogger(__name__)

KIND = "fivesim"
DEFAULT_BASE_URL = "https://5sim.net/v1"
UNKNOWN_PREFIX = f"{KIND}:"

# Plain-text error bodies, lower case. A body matches when it equals a token or starts with it.
_ERRORS: tuple[tuple[str, type[ProviderError]], ...] = (
    ("no free phones", NoNumbers),
    ("not enough user balance", ProviderBalanceLow),
    ("not enough rating", AuthError),  # account-level block: at rating 0 no buys for 24 h
    ("select country", BadRequest),
    ("select operator", BadRequest),
    ("bad country", BadRequest),
    ("bad operator", BadRequest),
    ("no product", BadRequest),
    ("country is incorrect", BadRequest),
    ("product is incorrect", BadRequest),
    ("reuse not possible", BadRequest),
    ("reuse false", BadRequest),
    ("reuse expired", BadRequest),
    ("server offline", Unavailable),
    ("internal error", Unavailable),
    ("record not found", OrderNotFound),
    ("order not found", OrderNotFound),
    ("order expired", InvalidState),
    ("order has sms", InvalidState),
    ("order no sms", InvalidState),
    ("hosting order", InvalidState),
)

_STATES: dict[str, OtpState] = {
    "PENDING": OtpState.WAITING,
    "RECEIVED": OtpState.WAITING,  # number issued; a code only if sms[] has one
    "CANCELED": OtpState.CANCELLED,
    "BANNED": OtpState.CANCELLED,
    "TIMEOUT": OtpState.EXPIRED,
    "FINISHED": OtpState.FINISHED,
}
# What each order action must leave the order in; anything else means it had already ended.
_ACTION_RESULT = {"cancel": "CANCELED", "finish": "FINISHED", "ban": "BANNED"}

# Gateway-type failures worth another try on a read. 429 and 503 are 5sim's rate limits:
# hammering them earns a 10-minute ban, so they are not retried here.
_RETRY_STATUSES = frozenset({500, 502, 504})
_RATE_LIMIT_STATUSES = frozenset({429, 503})

ORDERS_PAGE = 100
ORDERS_MAX_PAGES = 10
ORDERS_LOOKBACK = timedelta(days=1)


class FiveSimProvider(OtpProvider):
    kind = KIND
    supports_finish = True
    supports_ban = True
    supports_order_list = True
    supports_another_sms = False

    def __init__(
        self, config: ProviderConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.name = config.name
        self.currency = config.currency
        key = config.api_key.get_secret_value()
        self.http = ProviderHttp(
            provider=config.name,
            base_url=(config.base_url or DEFAULT_BASE_URL).rstrip("/"),
            api_key=key,
            timeout_s=config.timeout_s,
            rate_limit_per_min=config.rate_limit_per_min,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- account and catalog -----------------------------------------------------------------

    async def balance(self) -> Decimal:
        profile = await self._get("profile", "/user/profile")
        if not isinstance(profile, dict) or "balance" not in profile:
            raise self._bad("profile without a balance", profile)
        return self._money(profile["balance"], profile)

    async def offers(self, country: str | None = None) -> Sequence[OtpOffer]:
        """One offer per (country, product): the cheapest operator in stock, stock summed."""
        params: dict[str, str] | None = None
        native: str | None = None
        if country is not None:
            native = self._native_country(country)
            if native is None:
                return []
            params = {"country": native}
        text = await self._get("prices", "/guest/prices", params=params, decode=str)
        # The whole list is ~9 MB: decoding it takes a second of CPU, off the event loop.
        return await asyncio.to_thread(self._offers_from_text, text, native)

    def _offers_from_text(self, text: str, native: str | None) -> OtpOffers:
        try:
            data = collapse_prices(text)
        except ValueError:
            raise BadResponse("5sim answer is not JSON", provider=self.name, raw=text) from None
        if not isinstance(data, dict):
            raise self._bad("price list is not an object", data)
        if native is not None:
            data = {native: data[native]} if native in data else {}
        return offers_from(data)

    # --- orders ------------------------------------------------------------------------------

    async def buy(
        self, country: str, service: str, *, max_price: Decimal | None = None, client_ref: str
    ) -> OtpPurchase:
        """`client_ref` has no 5sim counterpart: a lost buy is found through the order list."""
        native = self._native_country(country)
        if native is None:
            raise BadRequest(f"country {country!r} is not sold by 5sim", provider=self.name)
        if not service:
            raise BadRequest("empty service", provider=self.name)
        path = f"/user/buy/activation/{quote(native, safe='')}/any/{quote(service, safe='')}"
        params = None if max_price is None else {"maxPrice": _decimal_text(max_price)}
        response = await self.http.send_once("GET", path, endpoint="buy", params=params)
        try:
            return self._purchase(self._result(response))
        except (BadResponse, Unavailable) as exc:
            if not _maybe_bought(response, exc):
                raise
            # The request reached 5sim and we cannot read what it did: the number may be ours.
            raise OutcomeUnknown(
                f"unreadable buy answer (HTTP {response.status_code}) from {self.name}",
                provider=self.name,
                raw=exc.raw,
            ) from None

    async def status(self, order_id: str) -> OtpStatus:
        order = await self._get("check", f"/user/check/{self._order_path(order_id)}")
        return self._status(self._order(order))

    async def cancel(self, order_id: str) -> None:
        await self._action("cancel", order_id)

    async def finish(self, order_id: str) -> None:
        await self._action("finish", order_id)

    async def ban(self, order_id: str) -> None:
        await self._action("ban", order_id)

    async def active_orders(self) -> list[OtpActiveOrder]:
        """Recent activation orders, newest first, open and ended, each with its status.

        Pages through `/user/orders` until a short page, an order older than a day (activations
        live 5-30 min) or ORDERS_MAX_PAGES pages.
        """
        result: list[OtpActiveOrder] = []
        cutoff = datetime.now(UTC) - ORDERS_LOOKBACK
        for page in range(ORDERS_MAX_PAGES):
            params = {
                "category": "activation",
                "limit": str(ORDERS_PAGE),
                "offset": str(page * ORDERS_PAGE),
                "order": "id",
                "reverse": "true",
            }
            data = await self._get("orders", "/user/orders", params=params)
            rows = data.get("Data") if isinstance(data, dict) else None
            if rows is None and isinstance(data, dict) and "Total" in data:
                rows = []  # Go's JSON encoder writes an empty list as null
            if not isinstance(rows, list):
                raise self._bad("order list without Data", data)
            orders = [self._active_order(self._order(row)) for row in rows]
            result.extend(orders)
            oldest = orders[-1].created_at if orders else None
            if len(rows) < ORDERS_PAGE or (oldest is not None and oldest < cutoff):
                break
        return result

    # --- helpers -----------------------------------------------------------------------------

    async def _action(self, action: str, order_id: str) -> None:
        path = f"/user/{action}/{self._order_path(order_id)}"
        order = self._order(await self._get(action, path))
        status = str(order.get("status", "")).upper()
        if status != _ACTION_RESULT[action]:
            raise InvalidState(
                f"{action} of order {order_id}: order is {status or 'without status'}",
                provider=self.name,
            )

    async def _get(
        self,
        endpoint: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        decode: Callable[[str], Any] = loads,
    ) -> Any:
        """An idempotent GET: transport errors and 500/502/504 answers are retried."""
        return await self.http.read_parsed(
            "GET",
            path,
            partial(self._result, decode=decode),
            endpoint=endpoint,
            params=params,
            retry_if=_worth_retrying,
        )

    def _result(self, response: httpx.Response, *, decode: Callable[[str], Any] = loads) -> Any:
        """The parsed JSON of a good answer, or the typed error the body (then status) says."""
        text = body_text(response)
        code = response.status_code
        error = _match_error(text)
        if code == 401:
            raise AuthError(f"5sim refused the API key (HTTP {code})", provider=self.name)
        if error is not None:
            raise error(f"5sim: {_short(text)} (HTTP {code})", provider=self.name, raw=text)
        if code in _RATE_LIMIT_STATUSES:
            raise Unavailable(
                f"5sim rate limit (HTTP {code})",
                provider=self.name,
                raw=text,
                retry_after_s=retry_after(response),
            )
        if code >= 500:
            raise Unavailable(f"5sim server error (HTTP {code})", provider=self.name, raw=text)
        if code == 403 and not text:
            raise AuthError(f"5sim refused the API key (HTTP {code})", provider=self.name)
        if code != 200 or not text.startswith(("{", "[")):
            raise BadResponse(
                f"unexpected 5sim answer (HTTP {code})", provider=self.name, raw=text or None
            )
        try:
            return decode(text)
        except ValueError:
            raise BadResponse("5sim answer is not JSON", provider=self.name, raw=text) from None

    def _purchase(self, order: Any) -> OtpPurchase:
        order = self._order(order)
        phone = _phone(order.get("phone"))
        if not phone:
            raise self._bad("order without a phone", order)
        price = order.get("price")
        return OtpPurchase(
            order_id=_order_id(order["id"]),
            phone=phone,
            price=None if price is None else self._money(price, order),
            expires_at=parse_time(order.get("expires")),
        )

    def _status(self, order: dict[str, Any]) -> OtpStatus:
        raw_status = str(order.get("status", "")).upper()
        state = _STATES.get(raw_status)
        if state is None:
            raise self._bad(f"unknown order status {raw_status!r}", order)
        sms = order.get("sms")
        if not isinstance(sms, list):
            sms = []  # null until the first SMS
        picked = pick_code(sms) if raw_status in ("RECEIVED", "FINISHED") else None
        if picked is None:
            return OtpStatus(state=state)
        if raw_status == "RECEIVED":
            state = OtpState.CODE
        return OtpStatus(state=state, code=picked[0], text=picked[1])

    def _active_order(self, order: dict[str, Any]) -> OtpActiveOrder:
        native_country = order.get("country")
        product = order.get("product")
        return OtpActiveOrder(
            order_id=_order_id(order["id"]),
            phone=_phone(order.get("phone")),
            country=_iso(native_country) if isinstance(native_country, str) else None,
            service=product if isinstance(product, str) and product else None,
            created_at=parse_time(order.get("created_at")),
            status=self._status(order),
        )

    def _order(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or "id" not in data:
            raise self._bad("not an order object", data)
        try:
            _order_id(data["id"])
        except ValueError:
            raise self._bad("order id is not a number", data) from None
        return data

    def _order_path(self, order_id: str) -> str:
        if not _is_id(order_id):
            raise OrderNotFound(f"not a 5sim order id: {order_id!r}", provider=self.name)
        return order_id

    def _native_country(self, country: str) -> str | None:
        if country.startswith(UNKNOWN_PREFIX):
            return country.removeprefix(UNKNOWN_PREFIX) or None
        return tables.fivesim_iso_country().get(country.upper())

    def _money(self, value: Any, context: Any) -> Decimal:
        try:
            return to_decimal(value)
        except (TypeError, ValueError):
            raise self._bad(f"not an amount: {value!r}", context) from None

    def _bad(self, message: str, data: Any) -> BadResponse:
        return BadResponse(f"5sim: {message}", provider=self.name, raw=str(data)[:2000])


# --- parsing (module level: the price list becomes plain rows, no model per offer) -----------


class _Product(tuple[Decimal, int]):
    """(cheapest cost in stock, stock summed over operators): one product once collapsed."""


def collapse_prices(text: str | bytes) -> Any:
    """The price list decoded with each product collapsed to a `_Product` as soon as its
    operators are read, so the whole tree (~80 MB for 9 MB of JSON) never exists at once.

    Numbers with a fraction are Decimal (never float). Raises ValueError on broken JSON.
    The cyclic garbage collector is paused meanwhile: the ~200k short-lived objects would
    make it walk the whole process (a catalog included) several times, a third more time.
    """
    with gc_paused():
        return json.loads(text, parse_float=Decimal, object_hook=_collapse)


# A JSON object, or one _collapse() has already collapsed (JSON itself never makes a tuple).
_NESTED = (dict, tuple)


def _collapse(obj: dict[str, Any]) -> Any:
    """json object_hook, called innermost object first (~200k times for the full list).

    An operator (an object with `cost` or `count` and no object inside) becomes (cost, count),
    or () when it is sold out or unreadable. A product (an object holding such pairs) becomes a
    `_Product`, or None when nothing is in stock. Countries and the top level stay dicts.
    """
    if "count" in obj or "cost" in obj:
        for value in obj.values():
            if isinstance(value, _NESTED):
                break
        else:  # an operator (inline: this is the hot path)
            count = obj.get("count")
            if type(count) is not int or count <= 0:  # also refuses bool
                return ()
            cost = obj.get("cost")
            if type(cost) is not Decimal and type(cost) is not int:
                cost = _loose_cost(cost)
                if cost is None:
                    return ()
            if cost <= 0:  # a free operator would win "cheapest" and sell the product for nothing
                return ()
            return (cost, count)
    for value in obj.values():
        if type(value) is tuple:
            return _cheapest(obj)
    return obj


def _cheapest(operators: dict[str, Any]) -> _Product | None:
    """The operator `any` gets: the cheapest in stock; the stock is summed over operators."""
    best: Decimal | int | None = None
    stock = 0
    for value in operators.values():
        if type(value) is tuple and value:
            cost, count = value
            stock += count
            if best is None or cost < best:
                best = cost
    if best is None:
        return None
    return _Product((best if type(best) is Decimal else Decimal(best), stock))


def _loose_cost(value: Any) -> Decimal | None:
    """A cost that is not an int or Decimal: a numeric string is fine, a float (NaN) is not."""
    if not isinstance(value, str):
        return None
    try:
        return to_decimal(value)
    except ValueError:
        return None


def parse_prices(body: bytes | str) -> OtpOffers:
    """5sim's /guest/prices body (country -> product -> operator -> {cost, count, rate}) into
    one offer per (country, product): the cheapest operator in stock, stock summed.

    The unfiltered list is ~9 MB (about 50k products x 3 operators): see collapse_prices().
    Raises ValueError when the body is not JSON or not an object.
    """
    data = collapse_prices(body)
    if not isinstance(data, dict):
        raise ValueError("the price list is not a JSON object")
    return offers_from(data)


def offers_from(data: Mapping[str, Any]) -> OtpOffers:
    """Offers from a price list decoded by collapse_prices(); anything unreadable is skipped.
    Each is a plain row (no model per offer; see OtpOffers)."""
    iso_of = tables.fivesim_country_iso()
    rows: list[OfferRow] = []
    append = rows.append
    with gc_paused():  # ~50k rows: see collapse_prices()
        for native_country, products in data.items():
            if not isinstance(products, dict):
                continue
            iso = iso_of.get(native_country)
            country = iso or UNKNOWN_PREFIX + native_country
            name = None if iso else native_country
            for product, entry in products.items():
                if type(entry) is _Product:
                    cost, stock = entry
                    append((country, product, cost, stock, native_country, product, name, None))
        return OtpOffers(rows)


def pick_code(sms: list[Any]) -> tuple[str, str | None] | None:
    """(code, text) from the newest SMS with a non-empty code, else the newest SMS's text."""
    entries = [m for m in sms if isinstance(m, dict)]
    if not entries:
        return None
    ordered = sorted(enumerate(entries), key=_sms_age)
    for _, message in reversed(ordered):
        code = message.get("code")
        if isinstance(code, str | int) and str(code).strip():
            return str(code).strip(), _text(message)
    for _, message in reversed(ordered):
        text = _text(message)
        if text:
            return text, text
    return None


def _sms_age(item: tuple[int, dict[str, Any]]) -> tuple[datetime, int]:
    index, message = item
    when = parse_time(message.get("created_at")) or parse_time(message.get("date"))
    return when or datetime.min.replace(tzinfo=UTC), index


def _text(message: dict[str, Any]) -> str | None:
    text = message.get("text")
    return text.strip() or None if isinstance(text, str) else None


def parse_time(value: Any) -> datetime | None:
    """5sim's RFC 3339 times (nanoseconds, `Z`) as aware UTC; junk gives None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _worth_retrying(response: httpx.Response) -> bool:
    """A read that failed with a gateway-type error (not 5sim's 429/503 rate limits)."""
    return response.status_code in _RETRY_STATUSES


def _maybe_bought(response: httpx.Response, exc: ProviderError) -> bool:
    """After a buy: an unreadable 200, or a 5xx with no documented refusal text (a 4xx, a
    rate limit or `server offline` means 5sim refused before buying)."""
    code = response.status_code
    if isinstance(exc, BadResponse):
        return not 400 <= code < 500
    return code in _RETRY_STATUSES and _match_error(exc.raw or "") is None


def _match_error(text: str) -> type[ProviderError] | None:
    lowered = text[:200].strip().strip('"').strip().lower()  # error bodies are short
    if not lowered or lowered.startswith(("{", "[", "<")):
        return None
    for token, error in _ERRORS:
        if lowered == token or lowered.startswith(token):
            return error
    return None


def _iso(native_country: str) -> str:
    return tables.fivesim_country_iso().get(native_country) or UNKNOWN_PREFIX + native_country


def _order_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or not _is_id(str(value)):
        raise ValueError(f"bad order id {value!r}")
    return str(value)


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _phone(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return ""
    value = value.strip()
    return value if value.startswith("+") else f"+{value}"


def _decimal_text(value: Decimal) -> str:
    text = format(to_decimal(value), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _short(text: str) -> str:
    return text[:80]
