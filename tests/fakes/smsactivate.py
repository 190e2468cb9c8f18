"""A stateful fake of an SMS-Activate-compatible `handler_api.php` host (docs/protocols.md §2).

Answers with the seed's literal tokens and bodies. Switches:

* `legacy=True`: no getNumberV2 (answers `BAD_ACTION`, like Tiger).
* `hero=True`: HeroSMS style: real HTTP codes with JSON problem bodies
  `{"title": TOKEN, "details": ..., "info": {...}}`, 204 No Content on finish/cancel, and
  `{"status": "success", "data": [...]}` for getActiveActivations.
* `early_cancel_s`: `EARLY_CANCEL_DENIED` for that long after a purchase.
* `lifetime_s`: an activation with no code expires (money back) after that long.
* `status_cancel_token`: what getStatus says for an ended activation (`ACCESS_CANCEL` on Tiger).
* `retry_token`: `STATUS_WAIT_RETRY` (`:<previous code>` appended) or `STATUS_WAIT_RESEND`.
* `prices_as_strings`: getPrices costs as JSON strings (Tiger) instead of numbers.
* `clock_tz`: the zone of the wall-clock times it writes (`activationTime`, `activationEndTime`).

Faults (`inject`): "500", "html", "empty", "429" (with Retry-After) answer without doing the
action; "hang" and "drop" DO the action (a number is bought) and then lose the answer: "hang" holds
it past the client timeout, "drop" closes the connection. `reply()` forces a literal body.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from aiohttp import web

ACTIVE = frozenset({"waiting", "ready", "code", "retry"})
PATH = "/stubs/handler_api.php"

DEFAULT_PRICES: dict[tuple[str, str], tuple[str, int]] = {
    ("0", "tg"): ("0.1453", 120),
    ("0", "wa"): ("0.0165", 3),
    ("187", "tg"): ("0.25", 40),
    ("12", "tg"): ("0.11", 7),
}

HERO_STATUS = {
    "BAD_KEY": 401,
    "NO_BALANCE": 402,
    "BANNED": 403,
    "NO_ACTIVATION": 404,
    "WRONG_ACTIVATION_ID": 404,
    "BAD_ACTION": 400,
    "BAD_SERVICE": 400,
    "BAD_COUNTRY": 400,
    "WRONG_MAX_PRICE": 400,
    "BAD_STATUS": 409,
    "EARLY_CANCEL_DENIED": 409,
    "OTP_RECEIVED": 409,
    "NEW_OTP_RECEIVED": 409,
    "ACTIVATION_NOT_ACTIVE": 409,
    "ORDER_ALREADY_EXISTS": 409,
}


def dumps(value: Any) -> str:
    """JSON where a Decimal is written as a bare number with its own digits (0.1453, not 0.145)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


@dataclass
class FakeActivation:
    id: str
    phone: str  # digits, no "+"
    service: str
    country: str
    cost: Decimal
    order_id: str | None
    created: float  # time.monotonic()
    created_at: datetime  # wall clock, UTC
    state: str = "waiting"  # waiting ready code retry finished cancelled expired
    codes: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    set_statuses: list[str] = field(default_factory=list)


@dataclass
class _Fault:
    kind: str
    action: str | None
    times: int
    retry_after: int


@dataclass
class _Canned:
    action: str | None
    body: str
    status: int
    times: int
    headers: dict[str, str]


class FakeSmsActivate:
    def __init__(
        self,
        *,
        api_key: str = "fake-sa-key-0123456789abcdef",
        balance: Decimal | str = "92.20",
        legacy: bool = False,
        hero: bool = False,
        early_cancel_s: float = 0.0,
        lifetime_s: float = 1200.0,
        status_cancel_token: str = "STATUS_CANCEL",
        retry_token: str = "STATUS_WAIT_RETRY",
        prices_as_strings: bool = False,
        clock_tz: tzinfo = UTC,
        hang_s: float = 30.0,
    ) -> None:
        self.api_key = api_key
        self.balance = Decimal(balance)
        self.legacy = legacy
        self.hero = hero
        self.early_cancel_s = early_cancel_s
        self.lifetime_s = lifetime_s
        self.status_cancel_token = status_cancel_token
        self.retry_token = retry_token
        self.prices_as_strings = prices_as_strings
        self.clock_tz = clock_tz
        self.hang_s = hang_s
        self.prices: dict[tuple[str, str], list[Any]] = {
            key: [Decimal(cost), count] for key, (cost, count) in DEFAULT_PRICES.items()
        }
        self.activations: dict[str, FakeActivation] = {}
        self.by_order_id: dict[str, str] = {}
        self.requests: Counter[str] = Counter()  # per action
        self.calls: list[tuple[str, dict[str, str]]] = []  # (action, params) in order
        self._faults: list[_Fault] = []
        self._canned: list[_Canned] = []
        self._ids = itertools.count(2_000_000_001)
        self._phones = itertools.count(1)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    async def start(self) -> FakeSmsActivate:
        app = web.Application()
        app.router.add_route("*", PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._release.set()  # let hanging handlers finish
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSmsActivate:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- test hooks --------------------------------------------------------------------------

    def set_price(self, country: str, service: str, cost: Decimal | str, count: int) -> None:
        self.prices[(str(country), service)] = [Decimal(cost), count]

    def clear_prices(self) -> None:
        self.prices.clear()

    def set_stock(self, country: str, service: str, count: int) -> None:
        self.prices[(str(country), service)][1] = count

    def deliver_sms(self, activation_id: str, code: str, text: str | None = None) -> None:
        act = self.activations[str(activation_id)]
        self._refresh(act)
        if act.state not in ACTIVE:
            raise ValueError(f"activation {activation_id} is {act.state}")
        act.codes.append(code)
        act.texts.append(text if text is not None else f"Your code: {code}")
        act.state = "code"

    def expire(self, activation_id: str) -> None:
        """End the activation as its lifetime would: refunded if no code came, else finished."""
        act = self.activations[str(activation_id)]
        if act.state in ACTIVE:
            self._end_by_time(act)

    def inject(
        self, kind: str, *, action: str | None = None, times: int = 1, retry_after: int = 1
    ) -> None:
        """A fault for the next `times` requests of `action` (any action when None)."""
        if kind not in {"500", "html", "empty", "429", "hang", "drop"}:
            raise ValueError(f"unknown fault {kind}")
        self._faults.append(_Fault(kind, action, times, retry_after))

    def reply(
        self,
        action: str | None,
        body: str | dict | list,
        *,
        status: int = 200,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests of `action` with this literal body."""
        text = body if isinstance(body, str) else dumps(body)
        self._canned.append(_Canned(action, text, status, times, dict(headers or {})))

    def create(self, service: str = "tg", country: str = "0") -> FakeActivation:
        """An activation bought behind the adapter's back (as if by an earlier, lost request)."""
        act = self._buy({"service": service, "country": country})
        if isinstance(act, web.Response):
            raise ValueError(f"cannot buy {service}/{country}: {act.text}")
        return act

    def active(self) -> list[FakeActivation]:
        for act in self.activations.values():
            self._refresh(act)
        return [act for act in self.activations.values() if act.state in ACTIVE]

    # --- plumbing ----------------------------------------------------------------------------

    def _take(self, queue: list, action: str) -> Any:
        for item in queue:
            if item.action in (None, action) and item.times > 0:
                item.times -= 1
                if item.times == 0:
                    queue.remove(item)
                return item
        return None

    def _now_text(self, moment: datetime) -> str:
        return moment.astimezone(self.clock_tz).strftime("%Y-%m-%d %H:%M:%S")

    def _text(self, body: str, status: int = 200) -> web.Response:
        return web.Response(text=body, status=status, content_type="text/html")

    def _json(self, body: Any, status: int = 200) -> web.Response:
        return web.Response(text=dumps(body), status=status, content_type="application/json")

    def _error(self, token: str, *, info: dict[str, Any] | None = None, text: str = "") -> Any:
        """An error token: plain text with HTTP 200, or HeroSMS's JSON problem body."""
        if self.hero and token in HERO_STATUS:
            body = {"title": token, "details": token.replace("_", " ").lower()}
            if info:
                body["info"] = info
            return self._json(body, HERO_STATUS[token])
        return self._text(text or token)

    def _no_content_or(self, token: str) -> web.Response:
        return web.Response(status=204) if self.hero else self._text(token)

    def _refresh(self, act: FakeActivation) -> None:
        if act.state in ACTIVE and time.monotonic() - act.created >= self.lifetime_s:
            self._end_by_time(act)

    def _end_by_time(self, act: FakeActivation) -> None:
        if act.codes:
            act.state = "finished"
        else:
            act.state = "expired"
            self.balance += act.cost

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        action = params.get("action", "")
        self.requests[action] += 1
        self.calls.append((action, params))
        fault = self._take(self._faults, action)
        if fault is not None and fault.kind not in {"hang", "drop"}:
            return self._fault(fault, request)
        canned = self._take(self._canned, action)
        if canned is not None:
            response = web.Response(text=canned.body, status=canned.status, headers=canned.headers)
        else:
            response = self._dispatch(action, params)
        if fault is not None and fault.kind == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.hang_s)
        elif fault is not None:  # drop: the action happened, the answer never leaves
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return response

    def _fault(self, fault: _Fault, request: web.Request) -> web.Response:
        if fault.kind == "500":
            return self._text("Internal Server Error", 500)
        if fault.kind == "html":
            # Like real error pages, it echoes the request (and so the api_key in the URL).
            page = f"<html><body><h1>502 Bad Gateway</h1><p>{request.path_qs}</p></body></html>"
            return self._text(page)
        if fault.kind == "empty":
            return self._text("")
        return web.Response(
            text="Too Many Requests", status=429, headers={"Retry-After": str(fault.retry_after)}
        )

    def _dispatch(self, action: str, params: dict[str, str]) -> web.Response:
        if params.get("api_key") != self.api_key:
            return self._error("BAD_KEY")
        handlers = {
            "getBalance": self._get_balance,
            "getPrices": self._get_prices,
            "getNumber": self._get_number,
            "getNumberV2": self._get_number_v2,
            "getStatus": self._get_status,
            "setStatus": self._set_status,
            "getActiveActivations": self._get_active,
        }
        if self.hero:
            handlers["finishActivation"] = lambda p: self._set_status({**p, "status": "6"})
            handlers["cancelActivation"] = lambda p: self._set_status({**p, "status": "8"})
        if self.legacy:
            handlers.pop("getNumberV2")
        handler = handlers.get(action)
        if handler is None:
            return self._error("BAD_ACTION")
        return handler(params)

    # --- actions -----------------------------------------------------------------------------

    def _get_balance(self, params: dict[str, str]) -> web.Response:
        return self._text(f"ACCESS_BALANCE:{self.balance}")

    def _get_prices(self, params: dict[str, str]) -> web.Response:
        country, service = params.get("country"), params.get("service")
        result: dict[str, dict[str, Any]] = {}
        for (cid, code), (cost, count) in self.prices.items():
            if count <= 0 or (country and cid != country) or (service and code != service):
                continue
            price = str(cost) if self.prices_as_strings else cost
            result.setdefault(cid, {})[code] = {
                "cost": price,
                "count": count,
                "physicalCount": count,
            }
        return self._json(result)

    def _buy(self, params: dict[str, str]) -> FakeActivation | web.Response:
        service, country = params.get("service", ""), params.get("country", "0")
        if not service or service not in {code for _, code in self.prices}:
            return self._error("BAD_SERVICE")
        if not country.isdigit():
            return self._error("BAD_COUNTRY")
        entry = self.prices.get((country, service))
        if entry is None or entry[1] <= 0:
            return self._text("NO_NUMBERS")
        cost = entry[0]
        max_price = params.get("maxPrice")
        if max_price is not None and Decimal(max_price) < cost:
            return self._error(
                "WRONG_MAX_PRICE", info={"min": cost}, text=f"WRONG_MAX_PRICE:{cost}"
            )
        if self.balance < cost:
            return self._error("NO_BALANCE")
        entry[1] -= 1
        self.balance -= cost
        act = FakeActivation(
            id=str(next(self._ids)),
            phone=f"7999{next(self._phones):07d}",
            service=service,
            country=country,
            cost=cost,
            order_id=params.get("orderId"),
            created=time.monotonic(),
            created_at=datetime.now(UTC),
        )
        self.activations[act.id] = act
        if act.order_id:
            self.by_order_id[act.order_id] = act.id
        return act

    def _get_number(self, params: dict[str, str]) -> web.Response:
        act = self._buy(params)
        if isinstance(act, web.Response):
            return act
        return self._text(f"ACCESS_NUMBER:{act.id}:{act.phone}")

    def _get_number_v2(self, params: dict[str, str]) -> web.Response:
        order_id = params.get("orderId")
        if order_id and order_id in self.by_order_id:
            return self._error("ORDER_ALREADY_EXISTS")
        act = self._buy(params)
        if isinstance(act, web.Response):
            return act
        body: dict[str, Any] = {
            "activationId": int(act.id) if self.hero else act.id,
            "phoneNumber": act.phone if self.hero else int(act.phone),
            "activationCost": act.cost,
            "currency": 840,
            "countryCode": act.country,
            "canGetAnotherSms": True,
            "activationTime": self._now_text(act.created_at),
            "activationOperator": "any",
        }
        if self.hero:
            body["countryPhoneCode"] = "7"
            end = act.created_at + timedelta(seconds=self.lifetime_s)
            body["activationEndTime"] = self._now_text(end)
        return self._json(body)

    def _lookup(self, params: dict[str, str]) -> FakeActivation | web.Response:
        raw = params.get("id", "")
        if not raw.isdigit():
            return self._error("WRONG_ACTIVATION_ID")
        act = self.activations.get(raw)
        if act is None:
            return self._error("NO_ACTIVATION")
        self._refresh(act)
        return act

    def _get_status(self, params: dict[str, str]) -> web.Response:
        act = self._lookup(params)
        if isinstance(act, web.Response):
            return act
        if act.state in {"waiting", "ready"}:
            return self._text("STATUS_WAIT_CODE")
        if act.state == "code":
            return self._text(f"STATUS_OK:{act.codes[-1]}")
        if act.state == "retry":
            if self.retry_token == "STATUS_WAIT_RETRY":
                return self._text(f"STATUS_WAIT_RETRY:{act.codes[-1]}")
            return self._text(self.retry_token)
        return self._text(self.status_cancel_token)

    def _set_status(self, params: dict[str, str]) -> web.Response:
        act = self._lookup(params)
        if isinstance(act, web.Response):
            return act
        status = params.get("status", "")
        act.set_statuses.append(status)
        if status == "1":
            if act.state != "waiting":
                return self._error("BAD_STATUS")
            act.state = "ready"
            return self._text("ACCESS_READY")
        if status in {"8", "-1"}:
            return self._cancel(act)
        if status == "3":
            if act.state not in {"code", "retry"}:
                return self._error(self._not_active_token(act))
            act.state = "retry"
            return self._text("ACCESS_RETRY_GET")
        if status == "6":
            if act.state not in {"code", "retry"}:
                return self._error(self._not_active_token(act))
            act.state = "finished"
            return self._no_content_or("ACCESS_ACTIVATION")
        return self._error("BAD_STATUS")

    def _not_active_token(self, act: FakeActivation) -> str:
        return "ACTIVATION_NOT_ACTIVE" if self.hero and act.state not in ACTIVE else "BAD_STATUS"

    def _cancel(self, act: FakeActivation) -> web.Response:
        if act.state == "cancelled":
            if self.hero:
                return self._error("ACTIVATION_NOT_ACTIVE")
            return self._text("ACCESS_CANCEL_ALREADY")
        if act.state in {"code", "retry"}:
            if self.hero:
                return self._error("NEW_OTP_RECEIVED" if len(act.codes) > 1 else "OTP_RECEIVED")
            return self._error("BAD_STATUS")
        if act.state not in ACTIVE:
            return self._error(self._not_active_token(act))
        if time.monotonic() - act.created < self.early_cancel_s:
            return self._error("EARLY_CANCEL_DENIED")
        act.state = "cancelled"
        self.balance += act.cost
        return self._no_content_or("ACCESS_CANCEL")

    def _active_item(self, act: FakeActivation) -> dict[str, Any]:
        if self.hero:
            return {
                "activationId": int(act.id),
                "serviceCode": act.service,
                "phoneNumber": act.phone,
                "activationCost": act.cost,
                "activationStatus": "2" if act.codes else "1",
                "smsCode": act.codes[-1] if act.codes else None,
                "smsText": act.texts[-1] if act.texts else None,
                "activationTime": self._now_text(act.created_at),
                "countryCode": act.country,
                "currency": 840,
            }
        return {
            "activationId": act.id,
            "serviceCode": act.service,
            "phoneNumber": act.phone,
            "activationCost": str(act.cost),
            "activationStatus": "4" if act.codes else "1",
            "smsCode": list(act.codes) if act.codes else None,
            "smsText": json.dumps(act.texts) if act.texts else None,
            "activationTime": self._now_text(act.created_at),
            "discount": "0.00",
            "repeated": "0",
            "countryCode": act.country,
            "countryName": "Russia" if act.country == "0" else act.country,
            "canGetAnotherSms": "1",
            "currency": 840,
        }

    def _get_active(self, params: dict[str, str]) -> web.Response:
        items = [self._active_item(act) for act in self.active()]
        if self.hero:
            start = int(params.get("start") or 0)
            limit = min(int(params.get("limit") or 100), 100)
            return self._json({"status": "success", "data": items[start : start + limit]})
        if not items:
            return self._text("NO_ACTIVATIONS")
        return self._json({"status": "success", "activeActivations": items})
