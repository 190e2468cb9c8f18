"""A stateful fake SMM panel speaking API v2 (form body) or its JSON variant (docs/protocols.md).

    async with FakeSmmPanel(api_key="k") as fake:              # the form protocol
    async with FakeSmmPanel(api_key="k", json_api=True) as fake:  # the JSON variant
        config = ProviderConfig(name="p", kind="smmpanel", base_url=fake.url, api_key="k")
        ...
        fake.set_order("23501", status="Partial", remains=157)

With its default state it answers with the seeds' literal example bodies (the SEED_* and
JSON_SEED_* texts below; a test checks it). On top of that it keeps a balance, the orders it
created (charged rate x quantity x runs / 1000, refunded on Partial/Canceled/Refunded the way
panels do), refills, and cancels.

Form variant: every refusal is `{"error": ...}` with HTTP 200. JSON variant: status words are
lowercase, numbers are JSON numbers, `add` answers `order_id`, unknown ids are left out of a
status map, refusals come with a 4xx status, validation errors are `{"errors": {...}}` (422),
refill is `Invalid action`; the token is accepted as `key` in the body or as a Bearer header
(`json_auth` = "either" | "body" | "bearer").

Test hooks: `set_order`, `set_refill`, `set_services`, `error_for(action, text)` (the next call
answers `{"error": text}`), `reply(action, body)` (a literal body), `inject(kind)` with kinds
"500", "html", "empty", "429" (the action is NOT done) and "hang", "drop" (the action IS done,
then the answer is held past the client timeout / the connection is closed). Counters:
`requests[action]`, `status_ids` (ids per status call), `calls` (everything received).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web

PATH = "/api/v2"
MAX_IDS = 100

# --- the seeds' literal example bodies ----------------------------------------------------------

SEED_SERVICES = """[
    {           
        "service": 1,
        "name": "Followers",
        "type": "Default",
        "category": "First Category",
        "rate": "0.90",
        "min": "50",
        "max": "10000",
        "desc" : "Some Description",
        "refill": true
    },
    {
        "service": 2,
        "name": "Comments",
        "type": "Custom Comments",
        "category": "Second Category",
        "rate": "8",
        "min": "10",
        "desc" : "Some Description",
        "max": "1500",
        "refill": false
    }
]"""  # noqa: W291 - literal (the seed has trailing spaces)
SEED_ADD = """{
    "order": 23501
}"""
SEED_STATUS = """{
    "charge": "0.27819",
    "start_count": "3572",
    "status": "Partial",
    "remains": "157",
    "currency": "USD"
}"""
SEED_MULTI_STATUS = """{
     "1": {
        "charge": "0.27819",
        "start_count": "3572",
        "status": "Partial",
        "remains": "157",
        "currency": "USD"
     },
     "10": {
        "error": "Incorrect order ID"
     },
     "100": {
        "charge": "1.44219",
        "start_count": "234",
        "status": "In progress",
        "remains": "10",
        "currency": "USD"
     }
}"""
SEED_REFILL = """{
    "refill": "1"
}"""
SEED_REFILL_STATUS = """{
    "status": "Completed"
}"""
SEED_BALANCE = """{
    "balance": "100.84292",
    "currency": "USD"}"""

JSON_SEED_SERVICES = """[ { "service": 1, "name": "Example Service 1000 votes", "type": "Default", "category": "Votes", "rate": 10.0, "min": 1, "max": 50000, "refill": false, "cancel": true } ]"""  # noqa: E501
JSON_SEED_ADD = """{ "order_id": 123 }"""
JSON_SEED_STATUS = """{ "123": { "charge": 0, "start_count": 50, "status": "in progress", "remains": 50, "currency": "USD" }, "124": { "charge": 0, "start_count": 100, "status": "completed", "remains": 0, "currency": "USD" } }"""  # noqa: E501
JSON_SEED_BALANCE = """{ "balance": 100.0, "currency": "USD" }"""
JSON_SEED_CANCEL = """[ { "order": "123", "cancel": 1, "refund": 10.0 }, { "order": "124", "cancel": { "error": "Order already completed and cannot be canceled" } } ]"""  # noqa: E501
JSON_SEED_VALIDATION = """{ "errors": { "action": [ "The action field is required." ] } }"""
JSON_SEED_UNAUTHORIZED = """{ "error": "Unauthorized access to order status" }"""
JSON_SEED_INVALID_ACTION = """{ "error": "Invalid action" }"""

# Refusal texts (docs/protocols.md §4.5; the JSON variant's cancel refusal is its own example's).
ERR_KEY = "Invalid API key"
ERR_REQUEST = "Incorrect request"
ERR_SERVICE = "Incorrect service ID"
ERR_ORDER = "Incorrect order ID"
ERR_FUNDS = "Not enough funds on balance"
ERR_LINK = "Bad link"
ERR_LINK_BUSY = "You have active order with this link. Please wait until order being completed."
ERR_CANCEL_DONE = "Order already completed and cannot be canceled"
ERR_CANCEL_OFF = "Cancel is disabled for this service"  # ours
ERR_REFILL_OFF = "Refill is disabled for this service"  # ours
ERR_REFILL_EARLY = "Refill is not available for this order yet"  # ours
ERR_REFILL_ID = "Incorrect refill ID"  # ours
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>{echo}</body></html>"

FINAL = frozenset({"completed", "partial", "canceled", "cancelled", "refunded"})
FAULTS = frozenset({"500", "html", "empty", "429", "hang", "drop"})


def dumps(value: Any) -> str:
    """JSON where a Decimal is written as a bare number with its own digits (10.0, 0.27819)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


@dataclass
class FakeOrder:
    order_id: str
    service_id: str
    link: str
    quantity: int
    charge: Decimal
    runs: int = 1
    status: str = "Pending"
    start_count: int = 0
    remains: int = 0
    params: dict[str, Any] = field(default_factory=dict)  # what `add` received (no key)
    refunded: Decimal = Decimal(0)


@dataclass
class FakeRefill:
    refill_id: str
    order_id: str
    status: str = "Pending"


@dataclass
class FakeCall:
    action: str
    params: dict[str, Any]  # form fields (strings) or the JSON body (typed), key included
    headers: dict[str, str]


@dataclass
class _Queued:
    action: str | None
    times: int
    kind: str = ""
    body: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, text: str, status: int | None = None) -> None:
        super().__init__(text)
        self.text, self.status = text, status


class FakeSmmPanel:
    def __init__(
        self,
        *,
        api_key: str = "fake-smm-key-0123456789",
        json_api: bool = False,
        json_auth: Literal["either", "body", "bearer"] = "either",
        balance: Decimal | str | None = None,
        currency: str = "USD",
        reject_duplicate_links: bool = False,
        hang_s: float = 30.0,
    ) -> None:
        self.api_key = api_key
        self.json_api = json_api
        self.json_auth = json_auth
        default_balance = "100.0" if json_api else "100.84292"
        self.balance = Decimal(balance if balance is not None else default_balance)
        self.currency = currency
        self.reject_duplicate_links = reject_duplicate_links
        self.hang_s = hang_s
        self.services: list[dict[str, Any]] = _loads(
            JSON_SEED_SERVICES if json_api else SEED_SERVICES
        )
        self.orders: dict[str, FakeOrder] = {}
        self.refills: dict[str, FakeRefill] = {}
        self.requests: Counter[str] = Counter()
        self.status_ids: list[int] = []  # how many ids each status call asked for
        self.calls: list[FakeCall] = []
        self._faults: list[_Queued] = []
        self._canned: list[_Queued] = []
        self._order_ids = itertools.count(123 if json_api else 23501)
        self._refill_ids = itertools.count(1)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def start(self) -> FakeSmmPanel:
        app = web.Application()
        app.router.add_route("*", PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSmmPanel:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- test hooks --------------------------------------------------------------------------

    def set_services(self, services: list[dict[str, Any]]) -> None:
        """The services list, rendered as given (strings stay strings, Decimals are numbers)."""
        self.services = list(services)

    def set_order(
        self,
        order_id: str,
        *,
        status: str | None = None,
        remains: int | None = None,
        start_count: int | None = None,
        charge: Decimal | str | None = None,
        quantity: int | None = None,
        service_id: str = "1",
        link: str = "https://example.com/post",
    ) -> FakeOrder:
        """Create the order if the fake does not know it, then move it on. A status of Partial
        refunds charge x remains / quantity to the balance, Canceled/Refunded the whole charge."""
        order = self.orders.get(str(order_id))
        if order is None:
            qty = quantity or 1000
            order = FakeOrder(str(order_id), service_id, link, qty, Decimal(0), remains=qty)
            self.orders[order.order_id] = order
        if quantity is not None:
            order.quantity = quantity
        if charge is not None:
            order.charge = Decimal(charge)
        if remains is not None:
            order.remains = remains
        if start_count is not None:
            order.start_count = start_count
        if status is not None:
            order.status = status
            self._refund(order)
        return order

    def set_refill(self, refill_id: str, status: str) -> None:
        self.refills[str(refill_id)].status = status

    def error_for(
        self, action: str | None, text: str, *, status: int = 200, times: int = 1
    ) -> None:
        """The next `times` calls of `action` (any when None) answer `{"error": text}`."""
        self.reply(action, {"error": text}, status=status, times=times)

    def reply(
        self,
        action: str | None,
        body: str | dict | list,
        *,
        status: int = 200,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` calls of `action` answer this literal body (the action is not done)."""
        text = body if isinstance(body, str) else dumps(body)
        self._canned.append(
            _Queued(action, times, body=text, status=status, headers=headers or {})
        )

    def inject(
        self, kind: str, *, action: str | None = None, times: int = 1, retry_after: int = 1
    ) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind}")
        headers = {"Retry-After": str(retry_after)} if kind == "429" else {}
        self._faults.append(_Queued(action, times, kind=kind, headers=headers))

    def calls_for(self, action: str) -> list[FakeCall]:
        return [call for call in self.calls if call.action == action]

    # --- plumbing ----------------------------------------------------------------------------

    @staticmethod
    def _take(queue: list[_Queued], action: str) -> _Queued | None:
        for item in queue:
            if item.action in (None, action) and item.times > 0:
                item.times -= 1
                if item.times == 0:
                    queue.remove(item)
                return item
        return None

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if self.json_api:
            raw = await request.read()
            try:
                body = json.loads(raw, parse_float=Decimal) if raw else {}
            except ValueError:
                body = {}
            return body if isinstance(body, dict) else {}
        return {k: str(v) for k, v in (await request.post()).items()}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params = await self._params(request)
        action = str(params.get("action", ""))
        self.requests[action] += 1
        self.calls.append(FakeCall(action, params, dict(request.headers)))
        fault = self._take(self._faults, action)
        if fault is not None and fault.kind not in {"hang", "drop"}:
            return self._fault(fault, params)
        canned = self._take(self._canned, action)
        if canned is not None:
            response = web.Response(
                text=canned.body,
                status=canned.status,
                headers=canned.headers,
                content_type="application/json",
            )
        else:
            response = self._dispatch(action, params, request)
        if fault is not None and fault.kind == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.hang_s)
        elif fault is not None:  # drop: the action happened, the answer never leaves
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return response

    def _fault(self, fault: _Queued, params: dict[str, Any]) -> web.Response:
        if fault.kind == "500":
            return web.Response(text="Internal Server Error", status=500)
        if fault.kind == "html":
            # Like real error pages, it echoes the request (and so the key).
            echo = "&".join(f"{k}={v}" for k, v in params.items())
            return web.Response(text=HTML_PAGE.format(echo=echo), content_type="text/html")
        if fault.kind == "empty":
            return web.Response(text="", content_type="application/json")
        return web.Response(text="Too Many Requests", status=429, headers=fault.headers)

    def _json(self, body: Any, status: int = 200) -> web.Response:
        return web.Response(text=dumps(body), status=status, content_type="application/json")

    def _authorized(self, params: dict[str, Any], request: web.Request) -> bool:
        in_body = params.get("key") == self.api_key
        if not self.json_api:
            return in_body
        in_header = request.headers.get("Authorization") == f"Bearer {self.api_key}"
        return {"either": in_body or in_header, "body": in_body, "bearer": in_header}[
            self.json_auth
        ]

    def _dispatch(self, action: str, params: dict[str, Any], request: web.Request) -> web.Response:
        if not self._authorized(params, request):
            if self.json_api:
                return self._json({"error": "Unauthorized access"}, 401)
            return self._json({"error": ERR_KEY})
        if not action:
            if self.json_api:
                return self._json(_loads(JSON_SEED_VALIDATION), 422)
            return self._json({"error": ERR_REQUEST})
        handlers = {
            "services": self._services,
            "add": self._add,
            "status": self._status,
            "refill": self._refill,
            "refill_status": self._refill_status,
            "cancel": self._cancel,
            "balance": self._balance,
        }
        if self.json_api:
            handlers.pop("refill")
            handlers.pop("refill_status")
        handler = handlers.get(action)
        if handler is None:
            if self.json_api:
                return self._json(_loads(JSON_SEED_INVALID_ACTION), 400)
            return self._json({"error": ERR_REQUEST})
        try:
            return self._json(handler(params))
        except _Refused as refused:
            return self._refusal(refused)

    def _refusal(self, refused: _Refused) -> web.Response:
        if refused.status == 422:
            return self._json({"errors": {"request": [refused.text]}}, 422)
        status = refused.status or (400 if self.json_api else 200)
        return self._json({"error": refused.text}, status)

    # --- rendering ---------------------------------------------------------------------------

    def _word(self, status: str) -> str:
        return status.lower() if self.json_api else status

    def _number(self, value: int | Decimal) -> Any:
        """Form panels send numbers as strings ("157"), the JSON variant as numbers."""
        return value if self.json_api else str(value)

    def _order_entry(self, order: FakeOrder) -> dict[str, Any]:
        return {
            "charge": self._number(order.charge),
            "start_count": self._number(order.start_count),
            "status": self._word(order.status),
            "remains": self._number(order.remains),
            "currency": self.currency,
        }

    def _wire_order_id(self, order_id: str) -> Any:
        if self.json_api:
            return order_id  # the JSON variant's example: "order": "123"
        return int(order_id) if order_id.isdigit() else order_id

    # --- actions -----------------------------------------------------------------------------

    def _service(self, service_id: Any) -> dict[str, Any]:
        for service in self.services:
            if str(service.get("service")) == str(service_id):
                return service
        raise _Refused(ERR_SERVICE)

    def _services(self, params: dict[str, Any]) -> Any:
        return self.services

    def _balance(self, params: dict[str, Any]) -> Any:
        return {"balance": self._number(self.balance), "currency": self.currency}

    def _add(self, params: dict[str, Any]) -> Any:
        service = self._service(params.get("service"))
        link = str(params.get("link") or "").strip()
        if not link:
            if self.json_api:
                raise _Refused("The link field is required.", 422)
            raise _Refused(ERR_LINK)
        quantity, runs = self._add_quantity(service, params)
        rate = Decimal(str(service["rate"]))
        per_package = str(service.get("type", "")).lower() == "package"
        charge = rate if per_package else rate * quantity * runs / 1000
        if self.reject_duplicate_links and any(
            o.link == link and o.status.lower() not in FINAL for o in self.orders.values()
        ):
            raise _Refused(ERR_LINK_BUSY)
        if self.balance < charge:
            raise _Refused(ERR_FUNDS)
        self.balance -= charge
        order = FakeOrder(
            order_id=str(next(self._order_ids)),
            service_id=str(service["service"]),
            link=link,
            quantity=quantity,
            charge=charge,
            runs=runs,
            remains=quantity * runs,
            params={k: v for k, v in params.items() if k not in {"key", "action"}},
        )
        self.orders[order.order_id] = order
        key = "order_id" if self.json_api else "order"
        return {key: int(order.order_id)}

    def _add_quantity(self, service: dict[str, Any], params: dict[str, Any]) -> tuple[int, int]:
        """(quantity, runs) for the service's type, or the panel's refusal."""
        kind = str(service.get("type", "Default")).lower()
        if kind == "package":
            return 1, 1
        if kind == "custom comments":
            lines = [c for c in str(params.get("comments") or "").split("\n") if c.strip()]
            if not lines:
                raise _Refused(ERR_REQUEST)
            quantity = len(lines)
        else:
            quantity = _int(params.get("quantity"))
            if quantity is None:
                raise _Refused(ERR_REQUEST)
        if kind == "poll" and _int(params.get("answer_number")) is None:
            raise _Refused(ERR_REQUEST)
        if kind == "mentions" and not str(params.get("usernames") or "").strip():
            raise _Refused(ERR_REQUEST)
        low, high = int(service["min"]), int(service["max"])
        if quantity < low:
            raise _Refused(f"Quantity less than minimal {low}")
        if quantity > high:
            raise _Refused(f"Quantity more than maximum {high}")
        runs = _int(params.get("runs")) if params.get("runs") not in (None, "") else 1
        if runs is None or runs < 1:
            raise _Refused(ERR_REQUEST)
        return quantity, runs

    def _ids(self, params: dict[str, Any], *, single: str | None = "order") -> list[str] | None:
        raw = params.get("orders")
        if raw is None and single is not None and params.get(single) is not None:
            return None
        ids = [part.strip() for part in str(raw or "").split(",") if part.strip()]
        if not ids and self.json_api:
            raise _Refused("The orders field is required.", 422)
        if not ids:
            raise _Refused(ERR_REQUEST)
        if len(ids) > MAX_IDS:
            raise _Refused(ERR_REQUEST)
        return ids

    def _status(self, params: dict[str, Any]) -> Any:
        ids = self._ids(params, single=None if self.json_api else "order")
        if ids is None:  # form `order=`: a flat answer
            self.status_ids.append(1)
            order = self.orders.get(str(params["order"]).strip())
            if order is None:
                raise _Refused(ERR_ORDER)
            return self._order_entry(order)
        self.status_ids.append(len(ids))
        result: dict[str, Any] = {}
        for order_id in ids:
            order = self.orders.get(order_id)
            if order is not None:
                result[order_id] = self._order_entry(order)
            elif not self.json_api:  # the JSON variant leaves unknown ids out
                result[order_id] = {"error": ERR_ORDER}
        return result

    def _refill(self, params: dict[str, Any]) -> Any:
        order = self.orders.get(str(params.get("order", "")).strip())
        if order is None:
            raise _Refused(ERR_ORDER)
        if not _flag(self._service(order.service_id).get("refill")):
            raise _Refused(ERR_REFILL_OFF)
        if order.status.lower() not in {"completed", "partial"}:
            raise _Refused(ERR_REFILL_EARLY)
        refill = FakeRefill(str(next(self._refill_ids)), order.order_id)
        self.refills[refill.refill_id] = refill
        return {"refill": refill.refill_id}

    def _refill_status(self, params: dict[str, Any]) -> Any:
        refill = self.refills.get(str(params.get("refill", "")).strip())
        if refill is None:
            raise _Refused(ERR_REFILL_ID)
        return {"status": refill.status}

    def _cancel(self, params: dict[str, Any]) -> Any:
        ids = self._ids(params, single=None) or []
        return [self._cancel_one(order_id) for order_id in ids]

    def _cancel_one(self, order_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"order": self._wire_order_id(order_id)}
        order = self.orders.get(order_id)
        if order is None:
            return {**entry, "cancel": {"error": ERR_ORDER}}
        if order.status.lower() in FINAL:
            return {**entry, "cancel": {"error": ERR_CANCEL_DONE}}
        try:
            allowed = _flag(self._service(order.service_id).get("cancel"))
        except _Refused:
            allowed = True  # an order made with set_order() for a service not listed
        if not allowed:
            return {**entry, "cancel": {"error": ERR_CANCEL_OFF}}
        before = order.refunded
        order.status = "Canceled"
        self._refund(order)
        if self.json_api:
            return {**entry, "cancel": 1, "refund": order.refunded - before}
        return {**entry, "cancel": 1}

    def _refund(self, order: FakeOrder) -> None:
        status = order.status.lower()
        if status in {"canceled", "cancelled", "refunded"}:
            due = order.charge
        elif status == "partial" and order.quantity > 0:
            # `remains` counts the whole order: quantity x runs for drip-feed.
            units = order.quantity * order.runs
            remains = min(max(order.remains, 0), units)
            due = order.charge * remains / units
        else:
            return
        extra = due - order.refunded
        if extra > 0:
            order.refunded += extra
            self.balance += extra


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true"}
    return bool(value)
