"""SMS-Activate-compatible `handler_api.php` adapter (docs/protocols.md §2).

One module for every host of the family (HeroSMS, Grizzly, SMSHub, Tiger, SMS-Man...): `base_url`
is the full `.../stubs/handler_api.php` URL and every parameter, the API key included, goes in the
query string. Answers are text tokens or JSON; HeroSMS-type hosts add real HTTP codes and JSON
problem bodies (`{"title": TOKEN, ...}`), so the body is always read before the status code.

Catalog keys round-trip to exactly one native id: a country id is shown as its ISO code only when
it is the id that `buy()` uses for that ISO; any other id with the same ISO (e.g. 12 "USA
(virtual)" next to 187 "USA") is shown as `smsactivate:<id>`, so a price shown is what gets bought.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from services.money import loads, to_decimal
from services.providers import tables
from services.providers.base import (
    OtpActiveOrder,
    OtpOffer,
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
    EarlyCancel,
    InvalidState,
    NoNumbers,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    PriceTooHigh,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
)
from services.providers.http import ProviderHttp, body_text, retry_after

log = logging.getLogger(__name__)

KIND = "smsactivate"
_PREFIX = f"{KIND}:"
_PAGE = 100  # getActiveActivations page size (HeroSMS caps `limit` at 100)
_MAX_PAGES = 50
_WAITING = OtpStatus(state=OtpState.WAITING)  # one for every order of a list without a code
T = TypeVar("T")

# Error tokens of every host; matched by exact value or exact prefix, longest first.
_ERROR_TOKENS: dict[str, type[ProviderError]] = {
    "NO_NUMBERS": NoNumbers,
    "NO_BALANCE": ProviderBalanceLow,
    "NO_BALANCE_FORWARD": ProviderBalanceLow,
    "BAD_KEY": AuthError,
    "API_KEY_NOT_VALID": AuthError,
    "BANNED": AuthError,
    "CHANNELS_LIMIT": AuthError,
    "ACCOUNT_INACTIVE": AuthError,
    "BAD_ACTION": NotSupported,
    "NO_ACTION": NotSupported,
    "BAD_SERVICE": BadRequest,
    "WRONG_SERVICE": BadRequest,
    "BAD_COUNTRY": BadRequest,
    "WRONG_COUNTRY": BadRequest,
    "BAD_STATUS": InvalidState,
    "INCORECT_STATUS": InvalidState,
    "OTP_RECEIVED": InvalidState,
    "NEW_OTP_RECEIVED": InvalidState,
    "ACTIVATION_NOT_ACTIVE": InvalidState,
    "FREE_CANCELLATION_EXPIRED": InvalidState,
    "NO_ACTIVATION": OrderNotFound,
    "WRONG_ACTIVATION_ID": OrderNotFound,
    "EARLY_CANCEL_DENIED": EarlyCancel,
    "WRONG_MAX_PRICE": PriceTooHigh,
    "ERROR_SQL": Unavailable,
    "SERVER_ERROR": Unavailable,
    "ORDER_ALREADY_EXISTS": OutcomeUnknown,
}
_ERRORS_LONGEST_FIRST = sorted(_ERROR_TOKENS, key=len, reverse=True)

# getStatus answers, longest first (STATUS_WAIT_RETRY before any shorter STATUS_WAIT*).
_STATUS_TOKENS: list[tuple[str, OtpState]] = sorted(
    [
        ("STATUS_WAIT_CODE", OtpState.WAITING),
        ("STATUS_WAIT_RESEND", OtpState.WAITING),
        ("STATUS_WAIT_RETRY", OtpState.WAITING),
        ("STATUS_OK", OtpState.CODE),
        ("STATUS_CANCEL", OtpState.CANCELLED),
        ("ACCESS_CANCEL_ALREADY", OtpState.CANCELLED),
        ("ACCESS_CANCEL", OtpState.CANCELLED),  # Tiger answers getStatus with this
    ],
    key=lambda item: len(item[0]),
    reverse=True,
)


def matches(text: str, token: str) -> bool:
    """`text` is `token` itself or `token` followed by a separator (never `token` + more name)."""
    if not text.startswith(token):
        return False
    if len(text) == len(token):
        return True
    following = text[len(token)]
    return not (following.isalnum() or following == "_")


def match_token(text: str, tokens: list[str]) -> str | None:
    """The longest token of `tokens` that `text` is or starts with (callers pass longest first)."""
    return next((token for token in tokens if matches(text, token)), None)


def _plain_number(value: Decimal) -> str:
    return f"{value:f}"


def _phone(value: Any) -> str:
    digits = str(value).strip()
    return digits if digits.startswith("+") else f"+{digits}"


def _id_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str | Decimal):
        text = str(value).strip()
        return text or None
    return None


def _parse_time(value: Any) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS` (naive: zone unknown), ISO with an offset, or a Unix timestamp."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, int | Decimal) or (
            isinstance(value, str) and value.isascii() and value.isdigit()
        ):
            return datetime.fromtimestamp(int(value), UTC)
        if isinstance(value, str) and value.strip():
            return datetime.fromisoformat(value.strip())
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def expires_at(data: dict[str, Any], now: datetime | None = None) -> datetime | None:
    """`activationEndTime` as UTC.

    Hosts send local wall-clock times without a zone (SMS-Activate used Moscow time), so when
    both times are naive the lifetime `end - start` is added to our own clock instead.
    """
    end = _parse_time(data.get("activationEndTime"))
    if end is None:
        return None
    start = _parse_time(data.get("activationTime"))
    if end.tzinfo is None and start is not None and start.tzinfo is None:
        lifetime = end - start
        if lifetime <= timedelta(0):
            return None
        return (now or datetime.now(UTC)) + lifetime
    return _as_utc(end)


def _sms_codes(value: Any) -> list[str]:
    """smsCode comes as a list, a string, a JSON-encoded list, or null."""
    if value is None or isinstance(value, bool):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return _sms_codes(loads(text))
            except ValueError:
                return [text]
        return [text] if text else []
    if isinstance(value, list):
        return [str(item).strip() for item in value if item is not None and str(item).strip()]
    return [str(value)]


def _item_status(item: dict[str, Any]) -> OtpStatus:
    """An order list item's status: the last code it shows, or waiting."""
    codes = _sms_codes(item.get("smsCode"))
    if not codes:
        return _WAITING
    texts = _sms_codes(item.get("smsText"))
    return OtpStatus(state=OtpState.CODE, code=codes[-1], text=texts[-1] if texts else None)


def _clean_code(text: str) -> str:
    code = text.strip()
    if len(code) >= 2 and code[0] == code[-1] == "'":
        code = code[1:-1]
    return code


class SmsActivateProvider(OtpProvider):
    kind = KIND
    supports_another_sms = True
    supports_order_list = True

    def __init__(
        self, config: ProviderConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.config = config
        self.name = config.name
        self.currency = config.currency
        url = httpx.URL(config.base_url)
        self._url = str(url.copy_with(query=None))
        self._base_params = dict(url.params)  # a query in base_url is kept, not replaced
        self._api_key = config.api_key.get_secret_value()
        self.http = ProviderHttp(
            provider=config.name,
            base_url=self._url,
            api_key=self._api_key,
            timeout_s=config.timeout_s,
            rate_limit_per_min=config.rate_limit_per_min,
            transport=transport,
        )
        self.has_v2 = True  # until the host answers BAD_ACTION/NO_ACTION to getNumberV2
        overrides = {str(k): v.strip().upper() for k, v in config.country_overrides.items()}
        self._id_iso = {**tables.sa_country_iso(), **overrides}
        self._iso_id = self._reverse_countries(overrides)
        self._slug_code = tables.sa_slug_service()

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- catalog keys ------------------------------------------------------------------------

    def _reverse_countries(self, overrides: dict[str, str]) -> dict[str, str]:
        """ISO -> the one id buy() uses: an override first, then the table's choice."""

        def numeric(cid: str) -> tuple[int, str]:
            return (int(cid), cid) if cid.isascii() and cid.isdigit() else (1 << 30, cid)

        result: dict[str, str] = {}
        for cid in sorted(overrides, key=numeric):
            result.setdefault(overrides[cid], cid)
        for iso, cid in tables.sa_iso_country().items():
            if self._id_iso.get(cid) == iso:
                result.setdefault(iso, cid)
        for cid in sorted(self._id_iso, key=numeric):
            result.setdefault(self._id_iso[cid], cid)
        return result

    def country_key(self, country_id: str) -> str:
        iso = self._id_iso.get(country_id)
        if iso and self._iso_id.get(iso) == country_id:
            return iso
        return f"{_PREFIX}{country_id}"

    def country_id(self, country: str) -> str | None:
        if country.startswith(_PREFIX):
            return country[len(_PREFIX) :] or None
        return self._iso_id.get(country.strip().upper())

    def service_key(self, code: str) -> str:
        slug = tables.sa_service_slug(code)
        return slug if self._slug_code.get(slug) == code else code

    def service_code(self, service: str) -> str:
        return self._slug_code.get(service, service)

    @staticmethod
    def _country_name(country_id: str) -> str | None:
        info = tables._raw()["sms_activate_countries"].get(country_id)
        return info.get("name_en") if info else None

    # --- transport ---------------------------------------------------------------------------

    def _error(
        self, token: str, info: dict[str, Any], action: str, raw: str, response: httpx.Response
    ) -> ProviderError | None:
        """The typed error for an upstream error token, or None when it is not one."""
        name = match_token(token, _ERRORS_LONGEST_FIRST)
        if name is None:
            return None
        cls = _ERROR_TOKENS[name]
        message = f"{name} on {action}"
        kw: dict[str, Any] = {"provider": self.name, "raw": raw}
        if cls is PriceTooHigh:
            return PriceTooHigh(message, min_price=self._min_price(token, name, info), **kw)
        if cls is EarlyCancel:
            return EarlyCancel(message, retry_after_s=retry_after(response), **kw)
        if cls is Unavailable:
            return Unavailable(message, retry_after_s=retry_after(response), **kw)
        if name == "BANNED":
            until = token[len(name) :].lstrip(":").strip() or info.get("banned_until")
            message = f"account banned until {until}" if until else "account banned"
        return cls(message, **kw)

    @staticmethod
    def _min_price(token: str, name: str, info: dict[str, Any]) -> Decimal | None:
        value: Any = token[len(name) :].lstrip(":").strip()
        if not value:
            value = info.get("min")
        try:
            return to_decimal(value)
        except (TypeError, ValueError):
            return None

    @staticmethod
    def _problem(text: str) -> tuple[str | None, dict[str, Any]]:
        """(token, info) of a JSON problem body `{"title": TOKEN, "info": {...}}`."""
        if not text.startswith("{") or ('"title"' not in text and '"error"' not in text):
            return None, {}  # also spares a second parse of a big price list
        try:
            data = loads(text)
        except ValueError:
            return None, {}
        if not isinstance(data, dict):
            return None, {}
        raw_info = data.get("info")
        info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
        title = data.get("title")
        if isinstance(title, str) and title.strip():
            return title.strip(), info
        if data.get("status") == "error":
            for key in ("error", "message", "msg"):
                message = data.get(key)
                if isinstance(message, str):
                    return message.strip(), info
        return None, {}

    def _check(self, action: str, response: httpx.Response, *, buy: bool) -> str:
        """The body text of a usable answer; every error token and bad status raises."""
        text = body_text(response).lstrip("\ufeff").strip()  # also a BOM after a newline
        code = response.status_code
        token, info = self._problem(text)
        error = self._error(token or text, info, action, text, response)
        if error is not None:
            raise error
        if code == 429:
            raise Unavailable(
                f"rate limited on {action}",
                retry_after_s=retry_after(response),
                provider=self.name,
                raw=text,
            )
        if code >= 500:
            # A buy that reached the server may have been made: reconcile, do not refund blindly.
            cls = OutcomeUnknown if buy else Unavailable
            raise cls(f"HTTP {code} on {action}", provider=self.name, raw=text)
        if code == 204 and not text:
            return ""
        if code >= 400:
            raise BadResponse(f"HTTP {code} on {action}", provider=self.name, raw=text)
        if not text or text.startswith("<"):
            raise self._unreadable(action, text, buy=buy)
        return text

    def _unreadable(self, action: str, text: str, *, buy: bool = False) -> ProviderError:
        what = "empty answer" if not text else "unreadable answer"
        if buy:
            return OutcomeUnknown(f"{what} to {action}", provider=self.name, raw=text)
        return BadResponse(f"{what} to {action}", provider=self.name, raw=text)

    async def _call(
        self, action: str, params: dict[str, Any] | None = None, *, buy: bool = False
    ) -> str:
        """One action. Reads retry 5xx/ERROR_SQL with backoff (not a 429 or an answer with
        Retry-After: see ProviderHttp.read_parsed); buys are sent exactly once."""
        query = {**self._base_params, **(params or {}), "api_key": self._api_key, "action": action}
        if buy:
            response = await self.http.send_once("GET", self._url, endpoint=action, params=query)
            return self._check(action, response, buy=True)
        return await self.http.read_parsed(
            "GET",
            self._url,
            lambda response: self._check(action, response, buy=False),
            endpoint=action,
            params=query,
        )

    def _json(self, action: str, text: str) -> Any:
        try:
            return loads(text)
        except ValueError:
            raise self._unreadable(action, text) from None

    # --- OtpProvider -------------------------------------------------------------------------

    async def balance(self) -> Decimal:
        text = await self._call("getBalance")
        if matches(text, "ACCESS_BALANCE"):
            try:
                return to_decimal(text.split(":", 1)[1])
            except (IndexError, ValueError):
                pass
        raise self._unreadable("getBalance", text)

    async def offers(self, country: str | None = None) -> list[OtpOffer]:
        params: dict[str, str] = {}
        wanted: str | None = None
        if country is not None:
            wanted = self.country_id(country)
            if wanted is None:
                return []
            params["country"] = wanted
        data = self._json("getPrices", await self._call("getPrices", params))
        if not isinstance(data, dict):
            raise self._unreadable("getPrices", str(data))
        result: list[OtpOffer] = []
        for country_id, services in data.items():
            if (wanted is not None and str(country_id) != wanted) or not isinstance(
                services, dict
            ):
                continue
            for code, entry in services.items():
                offer = self._offer(str(country_id), str(code), entry)
                if offer is not None:
                    result.append(offer)
        return result

    def _offer(self, country_id: str, code: str, entry: Any) -> OtpOffer | None:
        if not isinstance(entry, dict):
            return None
        try:
            price = to_decimal(entry["cost"])
            stock = int(str(entry.get("count", 0)).strip())
        except (KeyError, TypeError, ValueError):
            log.warning("%s: skipping unreadable price for %s/%s", self.name, country_id, code)
            return None
        key = self.country_key(country_id)
        return OtpOffer(
            country=key,
            service=self.service_key(code),
            price=price,
            stock=max(stock, 0),
            native_country=country_id,
            native_service=code,
            country_name=self._country_name(country_id) if key.startswith(_PREFIX) else None,
        )

    async def buy(
        self, country: str, service: str, *, max_price: Decimal | None = None, client_ref: str
    ) -> OtpPurchase:
        country_id = self.country_id(country)
        if country_id is None:
            raise BadRequest(f"unknown country {country!r}", provider=self.name)
        params: dict[str, str] = {"service": self.service_code(service), "country": country_id}
        if max_price is not None:
            params["maxPrice"] = _plain_number(max_price)
        if self.has_v2:
            try:
                return await self._buy_v2(params, client_ref)
            except NotSupported:
                # BAD_ACTION: nothing was bought, so asking getNumber now buys at most once.
                log.info("%s: getNumberV2 not supported, using getNumber", self.name)
                self.has_v2 = False
        text = await self._call("getNumber", params, buy=True)
        return self._parse_access_number("getNumber", text)

    async def _buy_v2(self, params: dict[str, str], client_ref: str) -> OtpPurchase:
        text = await self._call("getNumberV2", {**params, "orderId": client_ref}, buy=True)
        if matches(text, "ACCESS_NUMBER"):
            return self._parse_access_number("getNumberV2", text)
        try:
            data = loads(text)
        except ValueError:
            raise self._unreadable("getNumberV2", text, buy=True) from None
        order_id = _id_text(data.get("activationId")) if isinstance(data, dict) else None
        phone = _id_text(data.get("phoneNumber")) if isinstance(data, dict) else None
        if order_id is None or phone is None:
            raise self._unreadable("getNumberV2", text, buy=True)
        price: Decimal | None = None
        if data.get("activationCost") is not None:
            try:
                price = to_decimal(data["activationCost"])
            except (TypeError, ValueError):
                log.warning("%s: unreadable activationCost in getNumberV2", self.name)
        return OtpPurchase(
            order_id=order_id, phone=_phone(phone), price=price, expires_at=expires_at(data)
        )

    def _parse_access_number(self, action: str, text: str) -> OtpPurchase:
        parts = text.split(":", 2)
        if len(parts) == 3 and parts[0] == "ACCESS_NUMBER" and parts[1].strip() and parts[2]:
            return OtpPurchase(order_id=parts[1].strip(), phone=_phone(parts[2]))
        raise self._unreadable(action, text, buy=True)

    async def status(self, order_id: str) -> OtpStatus:
        text = await self._call("getStatus", {"id": order_id})
        for token, state in _STATUS_TOKENS:
            if not matches(text, token):
                continue
            if state is OtpState.CODE:
                return OtpStatus(state=state, code=_clean_code(text.split(":", 1)[1]))
            return OtpStatus(state=state)
        raise self._unreadable("getStatus", text)

    async def _set_status(self, order_id: str, status: int, ok: list[str]) -> None:
        text = await self._call("setStatus", {"id": order_id, "status": str(status)})
        if text == "":  # HeroSMS: 204 No Content
            return
        if match_token(text, ok) is None:
            raise self._unreadable("setStatus", text)

    async def cancel(self, order_id: str) -> None:
        await self._set_status(order_id, 8, ["ACCESS_CANCEL_ALREADY", "ACCESS_CANCEL"])

    async def finish(self, order_id: str) -> None:
        await self._set_status(order_id, 6, ["ACCESS_ACTIVATION"])

    async def request_another_sms(self, order_id: str) -> None:
        await self._set_status(order_id, 3, ["ACCESS_RETRY_GET"])

    async def active_orders(self) -> list[OtpActiveOrder]:
        return list((await self._walk_active(self._keyed_order)).values())

    async def active_statuses(self) -> dict[str, OtpStatus]:
        """The poller's reading of the list: only each order's status (at 10,000 orders a
        full OtpActiveOrder each costs seconds and tens of MB for what the poller ignores)."""
        return await self._walk_active(self._keyed_status)

    async def _walk_active(self, convert: Callable[[Any, str], tuple[str, T]]) -> dict[str, T]:
        """Every page of getActiveActivations, each item converted, by order id."""
        seen: dict[str, T] = {}
        for page in range(_MAX_PAGES):
            items, raw = await self._active_page(page * _PAGE)
            converted = [convert(item, raw) for item in items]
            fresh = [(order_id, value) for order_id, value in converted if order_id not in seen]
            seen.update(fresh)
            # Hosts without paging ignore start/limit and answer everything at once: a page
            # longer than asked for, or with nothing new, ends the walk.
            if len(items) != _PAGE or not fresh:
                break
        return seen

    async def _active_page(self, start: int) -> tuple[list[Any], str]:
        """The items of one page, and the answer they came in (for errors)."""
        action = "getActiveActivations"
        text = await self._call(action, {"start": str(start), "limit": str(_PAGE)})
        if matches(text, "NO_ACTIVATIONS") or self._problem(text)[0] == "NO_ACTIVATIONS":
            return [], text
        data = self._json(action, text)
        items = data.get("activeActivations", data.get("data")) if isinstance(data, dict) else None
        if isinstance(items, dict):
            items = items.get("activeActivations", list(items.values()))
        if items is None and isinstance(data, dict) and data.get("status") == "success":
            items = []
        if not isinstance(items, list):
            raise self._unreadable(action, text)
        return items, text

    def _keyed_order(self, item: Any, raw: str) -> tuple[str, OtpActiveOrder]:
        order = self._active_order(item, raw)
        return order.order_id, order

    def _keyed_status(self, item: Any, raw: str) -> tuple[str, OtpStatus]:
        order_id = (
            _id_text(item.get("activationId", item.get("id"))) if isinstance(item, dict) else None
        )
        if order_id is None:
            # Skipping it could close an order that exists: refuse the whole list instead.
            raise self._unreadable("getActiveActivations", raw)
        return order_id, _item_status(item)

    def _active_order(self, item: Any, raw: str) -> OtpActiveOrder:
        if not isinstance(item, dict):
            raise self._unreadable("getActiveActivations", raw)
        order_id = _id_text(item.get("activationId", item.get("id")))
        phone = _id_text(item.get("phoneNumber", item.get("phone")))
        if order_id is None or phone is None:
            # Skipping it could refund an order that exists: refuse the whole list instead.
            raise self._unreadable("getActiveActivations", raw)
        status = _item_status(item)
        service = _id_text(item.get("serviceCode", item.get("service")))
        country = _id_text(item.get("countryCode", item.get("country")))
        created = _parse_time(item.get("activationTime"))
        return OtpActiveOrder(
            order_id=order_id,
            phone=_phone(phone),
            country=self.country_key(country) if country else None,
            service=self.service_key(service) if service else None,
            client_ref=_id_text(item.get("orderId")),
            created_at=_as_utc(created) if created else None,
            status=status,
        )
