"""A stateful fake 5sim server on 127.0.0.1, for adapter and end-to-end tests.

Answers are built from the seed's literal example bodies (below): the fake only changes the
values (ids, phones, statuses, times, sms) and keeps each template's keys in their order.
Errors are plain-text bodies, as 5sim sends them.

    async with FakeFiveSim(token="k") as fake:
        provider = FiveSimProvider(ProviderConfig(..., base_url=fake.url, api_key="k"))
        fake.deliver_sms(order_id, "09363", "VK: 09363 - ...")
        fake.set_fault("hang", route="buy")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from services.money import loads
from services.providers import tables

# --- the seed's literal example bodies ---------------------------------------------------------

PROFILE_BODY = """{
  "id":1,
  "email":"[email protected]",
  "vendor":"demo",
  "default_forwarding_number":"78009005040",
  "balance":100,
  "rating":96,
  "default_country": {
    "name":"russia","iso":"ru","prefix":"+7"
  },
  "default_operator": {
    "name":""
  },
  "frozen_balance":0
}"""

ORDERS_BODY = """{
  "Data": [
    {
      "id":53533933,
      "phone":"+79085895281",
      "operator":"tele2",
      "product":"aliexpress",
      "price":2,
      "status":"BANNED",
      "expires":"2020-06-28T16:32:43.307041Z",
      "sms":[],
      "created_at":"2020-06-28T16:17:43.307041Z",
      "country":"russia"
    }
  ],
  "ProductNames":[],
  "Statuses":[],
  "Total":3
}"""

PRICES_BODY = """{
  "russia":{
    "1688":{
      "beeline":{
        "cost":4,
        "count":1260,
        "rate": 99.99
      },
      "lycamobile":{
        "cost":4,
        "count":935,
        "rate": 99.99
      },
      "matrix":{
        "cost":4,
        "count":0,
        "rate": 99.99
      }
    }
  }
}"""

PRICES_COUNTRY_PRODUCT_BODY = """{
  "russia":{
    "telegram":{
      "beeline":{
        "cost":8,
        "count":0,
        "rate": 99.99
      },
      "matrix":{
        "cost":8,
        "count":0,
        "rate": 99.99
      },
      "megafon":{
        "cost":8,
        "count":0,
        "rate": 99.99
      },
      "mts":{
        "cost":8,
        "count":0,
        "rate": 99.99
      },
      "rostelecom":{
        "cost":8,
        "count":0,
        "rate": 99.99
      },
      "tele2":{
        "cost":8,
        "count":0,
        "rate": 99.99
      },
      "virtual15":{
        "cost":8,
        "count":0,
        "rate": 99.99
      },
      "yota":{
        "cost":8,
        "count":0,
        "rate": 99.99
      }
    }
  }
}"""

BUY_BODY = """{
  "id":11631253,
  "phone":"+79000381454",
  "operator":"beeline",
  "product":"vkontakte",
  "price":21,
  "status":"PENDING",
  "expires":"2018-10-13T08:28:38.809469028Z",
  "sms":null,
  "created_at":"2018-10-13T08:13:38.809469028Z",
  "forwarding":false,
  "forwarding_number":"",
  "country":"russia"
}"""

_ORDER_WITH_SMS = """{
  "id": 11631253,
  "created_at": "2018-10-13T08:13:38.809469028Z",
  "phone": "+79000381454",
  "product": "vkontakte",
  "price": 21,
  "status": "%s",
  "expires": "2018-10-13T08:28:38.809469028Z",
  "sms": [
      {
        "created_at":"2018-10-13T08:20:38.809469028Z",
        "date":"2018-10-13T08:19:38Z",
        "sender":"VKcom",
        "text":"VK: 09363 - use this code to reclaim your suspended profile.",
        "code":"09363"
      }
  ],
  "forwarding": false,
  "forwarding_number": "",
  "country":"russia"
}"""
CHECK_BODY = _ORDER_WITH_SMS % "RECEIVED"
FINISH_BODY = _ORDER_WITH_SMS % "FINISHED"
CANCEL_BODY = _ORDER_WITH_SMS % "CANCELED"
BAN_BODY = _ORDER_WITH_SMS % "BANNED"

SMS_BODY = """{
    "sms": [
        {
            "created_at":"1970-12-01T17:23:25.106597Z",
            "date":"1970-12-01T17:23:15Z",
            "sender":"Facebook",
            "text":"Use 415127 as your login code",
            "code":"415127"
        }
    ]
}"""

SMS_INBOX_BODY = """{
  "Data": [
    {
      "ID":844928,
      "created_at":"2017-09-05T15:48:33.763297Z",
      "date":"2017-09-05T15:48:27Z",
      "sender":"+79998887060",
      "text":"12345",
      "code":"",
      "is_wave":false,
      "wave_uuid":""
    }
  ],
  "Total":1
}"""

HTML_BODY = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

OPEN = ("PENDING", "RECEIVED")
FAULT_KINDS = ("500", "503", "429", "html", "empty", "hang", "drop", "text")
ROUTES = ("profile", "orders", "prices", "buy", "check", "cancel", "finish", "ban", "inbox")
FIRST_ORDER_ID = 11631253  # the seed's example id


# --- state -------------------------------------------------------------------------------------


@dataclass
class FakeOrder:
    id: int
    phone: str
    operator: str
    product: str
    price: Decimal
    country: str
    created_at: datetime
    expires: datetime
    status: str = "PENDING"
    sms: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_sms(self) -> bool:
        return bool(self.sms)


@dataclass
class Fault:
    kind: str
    remaining: int | None  # None: until cleared
    status: int | None
    body: str | None
    retry_after: str | None
    commit: bool  # run the real action first, then answer with the fault


@dataclass(frozen=True)
class SeenRequest:
    route: str
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    accept: str | None


class FakeFiveSim:
    def __init__(
        self,
        *,
        token: str | None = None,
        prices: Mapping[str, Any] | str | None = None,
        balance: Decimal | int | str = 100,
        order_ttl: timedelta = timedelta(minutes=15),
        hang_s: float = 30.0,
    ) -> None:
        self.token = token
        self.balance = Decimal(balance)
        self.rating = Decimal(96)
        self.order_ttl = order_ttl
        self.hang_s = hang_s
        self.buy_no_numbers = False
        self.keep_pending = False  # True: orders stay PENDING until an SMS arrives
        self.orders: dict[int, FakeOrder] = {}
        self.hits: Counter[str] = Counter()  # per route name (ROUTES)
        self.paths: Counter[str] = Counter()  # per request path
        self.seen: list[SeenRequest] = []
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._next_id = FIRST_ORDER_ID
        self._faults: dict[str, list[Fault]] = {}
        self._prices: dict[str, Any] = {}
        self._prices_text: str | None = None
        self.set_prices(PRICES_BODY if prices is None else prices)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._middleware])
        get = app.router.add_get
        get("/v1/user/profile", self._profile, name="profile")
        get("/v1/user/orders", self._orders, name="orders")
        get("/v1/guest/prices", self._prices_handler, name="prices")
        get("/v1/user/buy/activation/{country}/{operator}/{product}", self._buy, name="buy")
        get("/v1/user/check/{id}", self._check, name="check")
        get("/v1/user/cancel/{id}", self._cancel, name="cancel")
        get("/v1/user/finish/{id}", self._finish, name="finish")
        get("/v1/user/ban/{id}", self._ban, name="ban")
        get("/v1/user/sms/inbox/{id}", self._inbox, name="inbox")
        self._closing.clear()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self._port = server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._closing.set()  # wake hanging handlers so shutdown is quick
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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
        """The /v1 root (a provider's base_url)."""
        if self._port is None:
            raise RuntimeError("FakeFiveSim is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    # --- switches for tests --------------------------------------------------------------------

    def require_token(self, token: str | None) -> None:
        """Only `Bearer <token>` passes /user/*; anything else gets 401 with an empty body."""
        self.token = token

    def set_prices(self, prices: Mapping[str, Any] | str) -> None:
        """country -> product -> operator -> {cost, count, rate}. Text is served verbatim."""
        if isinstance(prices, str):
            self._prices = loads(prices)
            self._prices_text = prices
        else:
            self._prices = loads(dumps(prices))
            self._prices_text = None

    def set_buy_no_numbers(self, on: bool = True) -> None:
        """Every buy answers `no free phones` with HTTP 200, as 5sim does."""
        self.buy_no_numbers = on

    def set_fault(
        self,
        kind: str,
        *,
        route: str = "*",
        times: int | None = None,
        status: int | None = None,
        body: str | None = None,
        retry_after: str | None = "1",
        commit: bool | None = None,
    ) -> None:
        """Make `route` (a name in ROUTES, or "*") misbehave for `times` requests (None: always).

        kinds: "500", "503", "429" (with Retry-After), "html", "empty" (HTTP 200 unless `status`),
        "hang" (past any client timeout), "drop" (close the connection after the request),
        "text" (`body` as plain text with `status`, default 400). `commit=True` runs the real
        action before answering with the fault (the default for "hang" and "drop": the order
        exists but its answer is lost). Faults of one route fire in the order they were set;
        one with `times=None` lasts until clear_faults(). Route faults fire before "*" ones.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        if route != "*" and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES}")
        if commit is None:
            commit = kind in ("hang", "drop")
        fault = Fault(kind, times, status, body, retry_after, commit)
        self._faults.setdefault(route, []).append(fault)

    def set_error(
        self, text: str, *, route: str, status: int = 400, times: int | None = None
    ) -> None:
        """Answer `route` with a plain-text 5sim error (`no free phones`, `bad country`...)."""
        self.set_fault("text", route=route, body=text, status=status, times=times)

    def clear_faults(self) -> None:
        self._faults.clear()

    def deliver_sms(
        self, order_id: int | str, code: str, text: str | None = None, *, sender: str = "VKcom"
    ) -> None:
        order = self._refresh(self._order(order_id))
        if order.status not in OPEN:
            raise ValueError(f"order {order.id} is {order.status}: no SMS can arrive")
        now = self.now()
        order.sms.append(
            {
                "created_at": _time(now),
                "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "sender": sender,
                "text": f"Your code is {code}" if text is None else text,
                "code": code,
            }
        )
        order.status = "RECEIVED"

    def set_status(self, order_id: int | str, status: str) -> None:
        self._order(order_id).status = status

    def expire(self, order_id: int | str) -> None:
        """Move the order past its `expires` (TIMEOUT with a refund, or FINISHED after an SMS)."""
        order = self._order(order_id)
        order.expires = self.now() - timedelta(seconds=1)
        self._refresh(order)

    def order(self, order_id: int | str) -> FakeOrder:
        return self._order(order_id)

    # --- middleware: counters, faults, auth ----------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route = request.match_info.route.name or "unknown"
        self.hits[route] += 1
        self.paths[request.path] += 1
        self.seen.append(
            SeenRequest(
                route=route,
                method=request.method,
                path=request.path,
                query=dict(request.query),
                authorization=request.headers.get("Authorization"),
                accept=request.headers.get("Accept"),
            )
        )
        fault = self._take_fault(route)
        if fault is not None and not fault.commit:
            return await self._fault_response(request, fault)
        if request.path.startswith("/v1/user/") and not self._authorized(request):
            return web.Response(status=401, body=b"")
        response = await handler(request)
        if fault is not None:
            return await self._fault_response(request, fault)
        return response

    def _authorized(self, request: web.Request) -> bool:
        return self.token is None or request.headers.get("Authorization") == (
            f"Bearer {self.token}"
        )

    def _take_fault(self, route: str) -> Fault | None:
        for key in (route, "*"):
            queue = self._faults.get(key) or []
            while queue:
                fault = queue[0]
                if fault.remaining is None:
                    return fault
                if fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        queue.pop(0)
                    return fault
                queue.pop(0)
        return None

    async def _fault_response(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        kind = fault.kind
        if kind == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=self.hang_s)
            return web.Response(status=500, body=b"")
        if kind == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(body=b"")
        if kind == "html":
            return web.Response(
                status=fault.status or 200, text=fault.body or HTML_BODY, content_type="text/html"
            )
        if kind == "empty":
            return web.Response(status=fault.status or 200, body=b"")
        if kind == "429":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.Response(status=429, text=fault.body or "", headers=headers)
        if kind == "text":
            return _text(fault.body or "", fault.status or 400)
        return _text(fault.body or "", int(kind) if fault.status is None else fault.status)

    # --- handlers ------------------------------------------------------------------------------

    async def _profile(self, request: web.Request) -> web.Response:
        profile = loads(PROFILE_BODY)
        profile["balance"] = self.balance
        profile["rating"] = self.rating
        return _json(profile)

    async def _prices_handler(self, request: web.Request) -> web.Response:
        country = request.query.get("country")
        product = request.query.get("product")
        if country is None and product is None:
            if self._prices_text is None:
                self._prices_text = dumps(self._prices)
            return web.Response(text=self._prices_text, content_type="application/json")
        if country is not None and country not in self._prices:
            return _text("bad country", 400)
        if product is None:
            return _json({country: self._prices[country]})
        if country is not None:
            products = self._prices[country]
            if product not in products:
                return _text("no product", 400)
            return _json({country: {product: products[product]}})
        by_country = {c: p[product] for c, p in self._prices.items() if product in p}
        return _json({product: by_country})

    async def _buy(self, request: web.Request) -> web.Response:
        country = request.match_info["country"]
        operator = request.match_info["operator"]
        product = request.match_info["product"]
        if self.buy_no_numbers:
            return _text("no free phones", 200)
        if self.rating <= 0:
            return _text("not enough rating", 400)
        if country not in self._prices:
            return _text("bad country", 400)
        operators = self._prices[country].get(product)
        if not isinstance(operators, dict):
            return _text("no product", 400)
        if operator != "any" and operator not in operators:
            return _text("bad operator", 400)
        max_price = _max_price(request.query.get("maxPrice")) if operator == "any" else None
        chosen = self._choose_operator(operators, operator, max_price)
        if chosen is None:
            return _text("no free phones", 200)
        price = Decimal(operators[chosen]["cost"])
        if price > self.balance:
            return _text("not enough user balance", 400)
        order = self._create(country, chosen, product, price)
        operators[chosen]["count"] -= 1
        self._prices_text = None
        body = self._render(order, BUY_BODY)
        if not self.keep_pending:
            order.status = "RECEIVED"
        return body

    async def _check(self, request: web.Request) -> web.Response:
        order = self._find(request)
        if order is None:
            return _text("order not found", 404)
        return self._render(order, CHECK_BODY)

    async def _cancel(self, request: web.Request) -> web.Response:
        return self._end(request, "CANCELED", CANCEL_BODY, refund=True)

    async def _ban(self, request: web.Request) -> web.Response:
        return self._end(request, "BANNED", BAN_BODY, refund=True)

    async def _finish(self, request: web.Request) -> web.Response:
        order = self._find(request)
        if order is None:
            return _text("order not found", 400)
        if order.status == "TIMEOUT":
            return _text("order expired", 400)
        if order.status in OPEN:
            if not order.has_sms:
                return _text("order no sms", 400)
            order.status = "FINISHED"
        return self._render(order, FINISH_BODY)

    async def _inbox(self, request: web.Request) -> web.Response:
        order = self._find(request)
        if order is None:
            return _text("order not found", 400)
        template = loads(SMS_INBOX_BODY)
        keys = list(template["Data"][0])
        rows = [
            dict.fromkeys(keys, "") | {"ID": n + 1, "is_wave": False} | sms
            for n, sms in enumerate(order.sms)
        ]
        return _json({"Data": rows, "Total": len(rows)})

    async def _orders(self, request: web.Request) -> web.Response:
        query = request.query
        template = loads(ORDERS_BODY)
        item_keys = list(template["Data"][0])
        rows: list[FakeOrder] = []
        if query.get("category", "activation") == "activation":
            rows = sorted(self.orders.values(), key=lambda o: o.id)
        if query.get("reverse", "false").lower() == "true":
            rows.reverse()
        offset = _int(query.get("offset"), 0)
        limit = _int(query.get("limit"), 15)
        page = [self._refresh(o) for o in rows[offset : offset + limit]]
        template["Data"] = [
            {key: self._fields(order)[key] for key in item_keys} | {"sms": list(order.sms)}
            for order in page
        ]
        template["ProductNames"] = sorted({o.product for o in rows})
        template["Statuses"] = sorted({o.status for o in rows})
        template["Total"] = len(rows)
        return _json(template)

    # --- helpers -------------------------------------------------------------------------------

    def _choose_operator(
        self, operators: dict[str, Any], operator: str, max_price: Decimal | None
    ) -> str | None:
        names = list(operators) if operator == "any" else [operator]
        fits = [
            name
            for name in names
            if operators[name].get("count", 0) > 0
            and (max_price is None or Decimal(operators[name]["cost"]) <= max_price)
        ]
        return min(fits, key=lambda name: Decimal(operators[name]["cost"]), default=None)

    def _create(self, country: str, operator: str, product: str, price: Decimal) -> FakeOrder:
        order_id = self._next_id
        self._next_id += 1
        info = tables._raw()["fivesim_countries"].get(country, {})
        prefix = info.get("prefix") or "+7"
        now = self.now()
        order = FakeOrder(
            id=order_id,
            phone=f"{prefix}900{order_id % 10_000_000:07d}",
            operator=operator,
            product=product,
            price=price,
            country=country,
            created_at=now,
            expires=now + self.order_ttl,
        )
        self.orders[order_id] = order
        self.balance -= price
        return order

    def _end(
        self, request: web.Request, status: str, template: str, *, refund: bool
    ) -> web.Response:
        order = self._find(request)
        if order is None:
            return _text("order not found", 400)
        if order.status == "TIMEOUT":
            return _text("order expired", 400)
        if order.status in OPEN:
            if order.has_sms:
                return _text("order has sms", 400)
            order.status = status
            if refund:
                self.balance += order.price
        return self._render(order, template)

    def _find(self, request: web.Request) -> FakeOrder | None:
        raw = request.match_info["id"]
        order = self.orders.get(int(raw)) if raw.isdigit() else None
        return None if order is None else self._refresh(order)

    def _order(self, order_id: int | str) -> FakeOrder:
        try:
            return self.orders[int(order_id)]
        except (KeyError, ValueError):
            raise KeyError(f"no fake 5sim order {order_id!r}") from None

    def _refresh(self, order: FakeOrder) -> FakeOrder:
        if order.status in OPEN and self.now() >= order.expires:
            if order.has_sms:
                order.status = "FINISHED"
            else:
                order.status = "TIMEOUT"
                self.balance += order.price
        return order

    def _fields(self, order: FakeOrder) -> dict[str, Any]:
        return {
            "id": order.id,
            "phone": order.phone,
            "operator": order.operator,
            "product": order.product,
            "price": order.price,
            "status": order.status,
            "expires": _time(order.expires),
            "sms": [dict(sms) for sms in order.sms] or None,
            "created_at": _time(order.created_at),
            "forwarding": False,
            "forwarding_number": "",
            "country": order.country,
        }

    def _render(self, order: FakeOrder, template: str) -> web.Response:
        """The template's keys in the template's order, with this order's values."""
        fields = self._fields(order)
        return _json({key: fields.get(key, value) for key, value in loads(template).items()})


# --- encoding ----------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """JSON with Decimal written as a plain number (5sim sends numbers, never strings)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def big_price_list(countries: int = 180, products: int = 300, operators: int = 3) -> str:
    """A price list the size of the real one (defaults: about 9 MB), deterministic."""
    names = list(tables._raw()["fivesim_countries"])[:countries]
    slugs = list(tables._raw()["fivesim_products"])[:products]
    costs = ("4", "8", "12.5", "0.35", "21.17")
    parts: list[str] = []
    for c_index, country in enumerate(names):
        rows = []
        for p_index, product in enumerate(slugs):
            ops = ",".join(
                f'"virtual{o}":{{"cost":{costs[(c_index + p_index + o) % len(costs)]},'
                f'"count":{(c_index * 7 + p_index * 3 + o) % 4 * 311},"rate":99.99}}'
                for o in range(operators)
            )
            rows.append(f'"{product}":{{{ops}}}')
        parts.append(f'"{country}":{{{",".join(rows)}}}')
    return "{" + ",".join(parts) + "}"


def _json(value: Any) -> web.Response:
    return web.Response(text=dumps(value), content_type="application/json")


def _text(body: str, status: int) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/plain")


def _time(moment: datetime) -> str:
    """RFC 3339 with nanoseconds, as in the seed (`2018-10-13T08:28:38.809469028Z`)."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}000Z"


def _max_price(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _int(value: str | None, default: int) -> int:
    return int(value) if value is not None and value.isdigit() else default
