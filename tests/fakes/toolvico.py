"""A stateful fake of Toolvico's REST API: `/api/v1/otp` and `/api/v1/smm`.

With its default state the fake answers with the seed's literal example bodies (the SEED_* texts
below; a test checks that they match). On top of that it keeps a wallet, OTP orders (codes that a
test delivers, cancel with a minimum wait, expiry) and SMM orders, enforces the X-API-Key header
and, when asked, the 60 requests/min/endpoint limit, and injects faults (HTTP errors, HTML or
empty bodies, hangs, dropped connections, 429 with Retry-After).

    async with FakeToolvico(api_key="k") as fake:
        config = ProviderConfig(name="tv", kind="toolvico", base_url=fake.url, api_key="k")
        ...
        fake.deliver_code("42", "123456")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web
from aiohttp.test_utils import TestServer

# --- the seed's literal example bodies ----------------------------------------------------------

SEED_OTP_COUNTRIES = """{
  "success": true,
  "data": {
    "countries": [
      { "id": "61", "name": "Pakistan" },
      { "id": "21", "name": "India" }
    ]
  }
}"""
SEED_OTP_SERVICES_61 = """{
  "success": true,
  "data": {
    "services": [
      { "service_id": "306343", "name": "discord", "your_price_usd": 0.040000 }
    ]
  }
}"""
SEED_OTP_BUY = """{
  "success": true,
  "data": {
    "order_id": "42",
    "phone_number": "+923001234567",
    "status": "waiting"
  }
}"""
SEED_OTP_STATUS = """{
  "success": true,
  "data": { "status": "received", "code": "123456" }
}"""
SEED_OTP_CANCEL = """{
  "success": true,
  "data": { "refunded": true, "amount": "0.040000" }
}"""
SEED_BALANCE = """{
  "success": true,
  "data": { "wallet_balance": "12.450000", "currency": "USD" }
}"""
SEED_SMM_SERVICES = """{
  "success": true,
  "data": {
    "services": [
      { "service_id": "1", "name": "Followers", "category": "Instagram", "rate_usd_per_1000": 1.08, "min": 50, "max": 10000 }
    ]
  }
}"""  # noqa: E501 - literal
SEED_SMM_PLACE_ORDER = """{
  "success": true,
  "data": { "order_id": "15", "charged": 0.540000, "status": "Pending" }
}"""
SEED_SMM_ORDER_STATUS = """{
  "success": true,
  "data": { "status": "Partial", "remains": 157, "start_count": 3572 }
}"""

# Error texts. The seed shows only `json.error` being read; these wordings are our guesses, each
# in the form an upstream would plausibly use (docs/protocols.md §1).
ERR_AUTH = "Invalid or missing API key"
ERR_BALANCE = "Insufficient wallet balance"
ERR_API_OFF = "API access not enabled"
ERR_ORDER_NOT_FOUND = "Order not found"
ERR_SERVICE_NOT_FOUND = "Service not found"
ERR_COUNTRY_NOT_FOUND = "Country not found"
ERR_RATE = "Rate limit exceeded"
ERR_UNAVAILABLE = "Provider unavailable"
ERR_NO_NUMBERS = "No numbers available"
HTML_BODY = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

_DEFAULT_ERRORS = {
    400: "Bad request",
    401: ERR_AUTH,
    402: ERR_BALANCE,
    403: ERR_API_OFF,
    404: ERR_ORDER_NOT_FOUND,
    429: ERR_RATE,
    500: "Internal server error",
    503: ERR_UNAVAILABLE,
}

_DECIMAL_MARK = "__decimal__:"
_DECIMAL_RE = re.compile(r'"__decimal__:([-0-9.Ee+]+)"')


def render(payload: Any) -> str:
    """JSON where a Decimal is written as a bare number with its own digits (0.040000)."""

    def default(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"{_DECIMAL_MARK}{value}"
        raise TypeError(type(value).__name__)

    return _DECIMAL_RE.sub(r"\1", json.dumps(payload, default=default))


def money6(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


# --- state --------------------------------------------------------------------------------------


@dataclass
class OtpOrder:
    order_id: str
    service_id: str
    country_id: str
    server_type: int
    phone: str
    price: Decimal
    created_at: float
    status: str = "waiting"  # waiting | received | cancelled
    code: str | None = None
    refunded: bool = False


@dataclass
class SmmOrder:
    order_id: str
    service_id: str
    link: str
    quantity: int
    charged: Decimal
    status: str = "Pending"
    remains: int = 0
    start_count: int = 0
    refunded: Decimal = Decimal(0)


FaultKind = Literal["status", "html", "empty", "raw", "hang", "drop"]


@dataclass
class Fault:
    """One injected misbehaviour. `after=True` (hang/drop only) runs the action first, so the
    order exists upstream while the client never sees the answer."""

    kind: FaultKind
    api: str | None = None  # "otp" / "smm" / None = both
    action: str | None = None  # None = every action
    status: int | None = None
    body: str | None = None  # "status": error text; "raw": the exact body
    content_type: str = "application/json"
    retry_after: str | None = None
    after: bool = False
    times: int | None = 1  # None = until cleared

    def matches(self, api: str, action: str) -> bool:
        return (self.api in (None, api)) and (self.action in (None, action))


@dataclass
class RecordedRequest:
    method: str
    api: str
    action: str
    query: dict[str, str]
    body: Any
    api_key: str | None


def _seed_catalog() -> tuple[dict[int, list[dict]], dict[tuple[int, str], list[dict]]]:
    countries = {t: [] for t in range(1, 6)}
    countries[1] = json.loads(SEED_OTP_COUNTRIES)["data"]["countries"]
    services: dict[tuple[int, str], list[dict]] = {
        (1, "61"): json.loads(SEED_OTP_SERVICES_61, parse_float=Decimal)["data"]["services"],
        # Not in the seed: India's list, with the price as a string (Toolvico's docs: "string or
        # number") and a display-style name.
        (1, "21"): [
            {"service_id": "306350", "name": "Telegram", "your_price_usd": "0.120000"},
            {"service_id": "306351", "name": "WhatsApp", "your_price_usd": "0.250000"},
        ],
    }
    return countries, services


_PHONE_PREFIX = {"61": "+92300", "21": "+91980"}


class FakeToolvico:
    """The fake server and its state. Start with `async with` (or start()/close())."""

    def __init__(
        self,
        *,
        api_key: str = "test-toolvico-key",
        wallet: Decimal = Decimal("12.45"),
        rate_limit: int | None = None,
        rate_window_s: float = 60.0,
        min_cancel_wait_s: float = 0.0,
        order_lifetime_s: float | None = None,
        hang_s: float = 30.0,
    ) -> None:
        self.api_key = api_key
        self.wallet = wallet
        self.api_enabled = True
        self.rate_limit = rate_limit  # per endpoint (api + action); None = not enforced
        self.rate_window_s = rate_window_s
        self.min_cancel_wait_s = min_cancel_wait_s
        self.order_lifetime_s = order_lifetime_s
        self.hang_s = hang_s
        self.countries, self.services = _seed_catalog()
        self.smm_services: list[dict] = json.loads(SEED_SMM_SERVICES, parse_float=Decimal)["data"][
            "services"
        ]
        self.otp_orders: dict[str, OtpOrder] = {}
        self.smm_orders: dict[str, SmmOrder] = {}
        self.calls: Counter[str] = Counter()  # "otp:buy_number" -> requests seen (all of them)
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.no_numbers: dict[str, int] = {}  # service_id -> HTTP status of the refusal
        self.stock: dict[str, int] = {}  # service_id -> numbers left (absent = unlimited)
        self._next_otp_id = 42
        self._next_smm_id = 15
        self._next_phone = 1234567
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._time_offset = 0.0
        self._closing = asyncio.Event()
        self._server: TestServer | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/api/v1/{api}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            await self._server.close()
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The /api/v1 root (what goes into `base_url`)."""
        assert self._server is not None, "not started"
        return str(self._server.make_url("/api/v1"))

    # --- test hooks -----------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() + self._time_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (cancel wait, order lifetime) without sleeping."""
        self._time_offset += seconds

    def add_fault(self, kind: FaultKind, **kwargs: Any) -> Fault:
        fault = Fault(kind=kind, **kwargs)
        self.faults.append(fault)
        return fault

    def fail(
        self,
        status: int,
        error: str | None = None,
        *,
        action: str | None = None,
        api: str | None = None,
        retry_after: str | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Answer an error envelope `{"success":false,"error":...}` with this HTTP status."""
        return self.add_fault(
            "status",
            status=status,
            body=error,
            action=action,
            api=api,
            retry_after=retry_after,
            times=times,
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_no_numbers(self, service_id: str, *, status: int = 503) -> None:
        """Buying this service is refused with "No numbers available" (HTTP 503, or 200)."""
        self.no_numbers[service_id] = status

    def restock(self, service_id: str) -> None:
        self.no_numbers.pop(service_id, None)
        self.stock.pop(service_id, None)

    def set_countries(self, countries: list[dict], *, server_type: int = 1) -> None:
        self.countries[server_type] = countries

    def set_services(self, country_id: str, services: list[dict], *, server_type: int = 1) -> None:
        self.services[(server_type, country_id)] = services

    def deliver_code(self, order_id: str, code: str) -> None:
        order = self.otp_orders[order_id]
        order.status, order.code = "received", code

    def expire(self, order_id: str) -> None:
        """The upstream ends a waiting order on its own (lifetime over): cancelled + refund."""
        self._cancel_otp(self.otp_orders[order_id])

    def set_smm_order(
        self,
        order_id: str,
        *,
        status: str | None = None,
        remains: int | None = None,
        start_count: int | None = None,
    ) -> None:
        """Move an SMM order on; Partial refunds charged*remains/quantity, Canceled all of it."""
        order = self.smm_orders[order_id]
        if remains is not None:
            order.remains = remains
        if start_count is not None:
            order.start_count = start_count
        if status is not None:
            order.status = status
            self._refund_smm(order)

    def requests_for(self, action: str, api: str = "otp") -> list[RecordedRequest]:
        return [r for r in self.requests if r.api == api and r.action == action]

    # --- HTTP -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        api = request.match_info["api"]
        action = request.query.get("action", "")
        body = await self._json_body(request)
        self.calls[f"{api}:{action}"] += 1
        self.requests.append(
            RecordedRequest(
                request.method,
                api,
                action,
                dict(request.query),
                body,
                request.headers.get("X-API-Key"),
            )
        )
        fault = self._take_fault(api, action)
        if fault is not None and not fault.after:
            return await self._apply_fault(fault, request)
        response = self._answer(request, api, action, body)
        if fault is not None:
            return await self._apply_fault(fault, request)
        return response

    async def _json_body(self, request: web.Request) -> Any:
        if request.method != "POST":
            return None
        raw = await request.read()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return ValueError  # marker: the adapter sent something that is not JSON

    def _take_fault(self, api: str, action: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(api, action):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    async def _apply_fault(self, fault: Fault, request: web.Request) -> web.StreamResponse:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.kind == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.hang_s)
            return _error(503, ERR_UNAVAILABLE)
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if fault.kind == "html":
            return web.Response(
                status=fault.status or 200, text=fault.body or HTML_BODY, content_type="text/html"
            )
        if fault.kind == "empty":
            return web.Response(status=fault.status or 200, body=b"", headers=headers)
        if fault.kind == "raw":
            return web.Response(
                status=fault.status or 200,
                text=fault.body or "",
                headers={**headers, "Content-Type": fault.content_type},
            )
        status = fault.status or 500
        return _error(status, fault.body or _DEFAULT_ERRORS.get(status, "Error"), headers)

    def _answer(self, request: web.Request, api: str, action: str, body: Any) -> web.Response:
        if request.headers.get("X-API-Key") != self.api_key:
            return _error(401, ERR_AUTH)
        if not self.api_enabled:
            return _error(403, ERR_API_OFF)
        limited = self._rate_limited(f"{api}:{action}")
        if limited is not None:
            return limited
        if body is ValueError:
            return _error(400, "Invalid JSON body")
        handler = _ROUTES.get((api, action))
        if handler is None:
            return _error(400, "Unknown action")
        method, func = handler
        if request.method != method:
            return _error(405, f"Use {method} for {action}")
        try:
            return func(self, request.query, body if isinstance(body, dict) else {})
        except _Refused as refused:
            return _error(refused.status, refused.message)

    def _rate_limited(self, endpoint: str) -> web.Response | None:
        if not self.rate_limit:
            return None
        now = time.monotonic()
        hits = self._hits[endpoint]
        while hits and hits[0] <= now - self.rate_window_s:
            hits.popleft()
        if len(hits) >= self.rate_limit:
            wait = max(1, math.ceil(hits[0] + self.rate_window_s - now))
            return _error(429, ERR_RATE, {"Retry-After": str(wait)})
        hits.append(now)
        return None

    # --- OTP ------------------------------------------------------------------------------------

    def _otp_countries(self, query: Any, body: dict) -> web.Response:
        server_type = _server_type(query.get("type"))
        return _ok({"countries": self.countries.get(server_type, [])})

    def _otp_services(self, query: Any, body: dict) -> web.Response:
        server_type = _server_type(query.get("type"))
        country_id = query.get("country_id")
        if not country_id:
            raise _Refused(400, "country_id is required")
        if (server_type, country_id) not in self.services:
            raise _Refused(404, ERR_COUNTRY_NOT_FOUND)
        return _ok({"services": self.services[(server_type, country_id)]})

    def _otp_buy(self, query: Any, body: dict) -> web.Response:
        server_type = _server_type(body.get("type"))
        service_id, country_id = str(body.get("service_id", "")), str(body.get("country_id", ""))
        service = next(
            (
                s
                for s in self.services.get((server_type, country_id), [])
                if str(s["service_id"]) == service_id
            ),
            None,
        )
        if service is None:
            raise _Refused(404, ERR_SERVICE_NOT_FOUND)
        if service_id in self.no_numbers:
            raise _Refused(self.no_numbers[service_id], ERR_NO_NUMBERS)
        if self.stock.get(service_id, 1) <= 0:
            raise _Refused(503, ERR_NO_NUMBERS)
        price = Decimal(str(service["your_price_usd"]))
        if self.wallet < price:
            raise _Refused(402, ERR_BALANCE)
        self.wallet -= price
        if service_id in self.stock:
            self.stock[service_id] -= 1
        order = OtpOrder(
            order_id=str(self._next_otp_id),
            service_id=service_id,
            country_id=country_id,
            server_type=server_type,
            phone=f"{_PHONE_PREFIX.get(country_id, '+1555')}{self._next_phone}",
            price=price,
            created_at=self.now(),
        )
        self._next_otp_id += 1
        self._next_phone += 1
        self.otp_orders[order.order_id] = order
        return _ok({"order_id": order.order_id, "phone_number": order.phone, "status": "waiting"})

    def _otp_order(self, order_id: Any) -> OtpOrder:
        order = self.otp_orders.get(str(order_id)) if order_id not in (None, "") else None
        if order is None:
            raise _Refused(404, ERR_ORDER_NOT_FOUND)
        lifetime = self.order_lifetime_s
        expired = lifetime is not None and self.now() - order.created_at >= lifetime
        if order.status == "waiting" and expired:
            self._cancel_otp(order)
        return order

    def _otp_status(self, query: Any, body: dict) -> web.Response:
        order = self._otp_order(query.get("order_id"))
        if order.status == "received":
            return _ok({"status": "received", "code": order.code})
        return _ok({"status": order.status})

    def _otp_cancel(self, query: Any, body: dict) -> web.Response:
        order = self._otp_order(body.get("order_id"))
        if order.status == "received":
            raise _Refused(400, "Order already received a code and cannot be cancelled")
        if order.status == "cancelled":
            raise _Refused(400, "Order is already cancelled")
        left = self.min_cancel_wait_s - (self.now() - order.created_at)
        if left > 0:
            raise _Refused(
                400, f"Please wait {math.ceil(left)} seconds before cancelling this order"
            )
        self._cancel_otp(order)
        return _ok({"refunded": True, "amount": f"{money6(order.price)}"})

    def _cancel_otp(self, order: OtpOrder) -> None:
        order.status = "cancelled"
        if not order.refunded:
            order.refunded = True
            self.wallet += order.price

    def _balance(self, query: Any, body: dict) -> web.Response:
        return _ok({"wallet_balance": f"{money6(self.wallet)}", "currency": "USD"})

    # --- SMM ------------------------------------------------------------------------------------

    def _smm_services(self, query: Any, body: dict) -> web.Response:
        return _ok({"services": self.smm_services})

    def _smm_place(self, query: Any, body: dict) -> web.Response:
        service_id = str(body.get("service_id", ""))
        service = next((s for s in self.smm_services if str(s["service_id"]) == service_id), None)
        if service is None:
            raise _Refused(404, ERR_SERVICE_NOT_FOUND)
        link = body.get("link")
        if not isinstance(link, str) or not link.strip():
            raise _Refused(400, "link is required")
        quantity = body.get("quantity")
        if isinstance(quantity, str) and quantity.isdigit():
            quantity = int(quantity)
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise _Refused(400, "quantity is required")
        low, high = int(service["min"]), int(service["max"])
        if not low <= quantity <= high:
            raise _Refused(400, f"Quantity must be between {low} and {high}")
        charged = money6(Decimal(str(service["rate_usd_per_1000"])) * quantity / 1000)
        if self.wallet < charged:
            raise _Refused(402, ERR_BALANCE)
        self.wallet -= charged
        order = SmmOrder(
            order_id=str(self._next_smm_id),
            service_id=service_id,
            link=link,
            quantity=quantity,
            charged=charged,
            remains=quantity,
        )
        self._next_smm_id += 1
        self.smm_orders[order.order_id] = order
        return _ok({"order_id": order.order_id, "charged": charged, "status": order.status})

    def _smm_status(self, query: Any, body: dict) -> web.Response:
        order = self.smm_orders.get(str(query.get("order_id", "")))
        if order is None:
            raise _Refused(404, ERR_ORDER_NOT_FOUND)
        return _ok(
            {"status": order.status, "remains": order.remains, "start_count": order.start_count}
        )

    def _refund_smm(self, order: SmmOrder) -> None:
        status = order.status.lower()
        if status in ("canceled", "cancelled", "refunded"):
            due = order.charged
        elif status == "partial":
            remains = min(max(order.remains, 0), order.quantity)
            due = money6(order.charged * remains / order.quantity)
        else:
            return
        extra = due - order.refunded
        if extra > 0:
            order.refunded += extra
            self.wallet += extra


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _server_type(value: Any) -> int:
    if value in (None, ""):
        return 1
    try:
        server_type = int(value)
    except (TypeError, ValueError):
        raise _Refused(400, "Invalid type") from None
    if not 1 <= server_type <= 5:
        raise _Refused(400, "Invalid type")
    return server_type


def _ok(data: dict) -> web.Response:
    return web.Response(
        text=render({"success": True, "data": data}), content_type="application/json"
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=render({"success": False, "error": message}),
        content_type="application/json",
        headers=headers,
    )


_Handler = Any
_ROUTES: dict[tuple[str, str], tuple[str, _Handler]] = {
    ("otp", "countries"): ("GET", FakeToolvico._otp_countries),
    ("otp", "services"): ("GET", FakeToolvico._otp_services),
    ("otp", "buy_number"): ("POST", FakeToolvico._otp_buy),
    ("otp", "get_status"): ("GET", FakeToolvico._otp_status),
    ("otp", "cancel"): ("POST", FakeToolvico._otp_cancel),
    ("otp", "balance"): ("GET", FakeToolvico._balance),
    ("smm", "services"): ("GET", FakeToolvico._smm_services),
    ("smm", "place_order"): ("POST", FakeToolvico._smm_place),
    ("smm", "order_status"): ("GET", FakeToolvico._smm_status),
    ("smm", "balance"): ("GET", FakeToolvico._balance),
}
