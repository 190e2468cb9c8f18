"""The SMM panel API v2 (Perfect Panel standard), served by the shop at `/api/v2`.

seed 001 and docs/protocols.md §4: a form POST (or GET query) with `key` and `action`; JSON
answers in the seed's shapes, numbers as strings (`"rate": "0.90"`, `"charge": "0.27819"`),
`{"order": 23501}` with a number; every refusal `{"error": "<text>"}` with HTTP 200 and the
texts panels use ("Invalid API key", "Incorrect request", "Incorrect service ID",
"Incorrect order ID", "Not enough funds on balance", "Quantity less than minimal N"...), 429
with Retry-After over the rate limit, 413 / 408 for a body too large / too slow. Our order ids
are the ones handed out; service ids are ResellerSmm's (the catalog key as a number). Any
client of an SMM panel (this project's own `smmpanel` adapter included) works against the shop
by changing the URL and the key.

Our extension: `add` takes an optional `ref` (up to 40 of [A-Za-z0-9._:-]), the client's own
reference; the same `ref` again answers the same `{"order": id}` and charges nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from services.api import errors
from services.api.keys import ApiKeys, Client
from services.api.protocol import ApiRequest, Reply
from services.api.ratelimit import RateLimits
from services.api.smm import (
    BadLink,
    BadQuantity,
    BadRequest,
    NotAvailable,
    OrderFailed,
    RefillRunning,
    ResellerSmm,
    SmmApiOrder,
    SmmOffer,
    UpstreamRefused,
    draft_from,
    order_ids,
    parse_order_id,
)
from services.money import CENT, MICRO
from services.smm.common import REASON_BAD_LINK, REASON_BAD_QUANTITY, REASON_LINK_BUSY

PATH = "/api/v2"
JSON = "application/json"

ERR_KEY = "Invalid API key"
ERR_REQUEST = "Incorrect request"
ERR_SERVICE = "Incorrect service ID"
ERR_ORDER = "Incorrect order ID"
ERR_FUNDS = "Not enough funds on balance"
ERR_LINK = "Bad link"
ERR_LINK_BUSY = "You have active order with this link. Please wait until order being completed."
ERR_REFILL_ID = "Incorrect refill ID"
ERR_REFILL_OFF = "Refill is disabled for this service"
ERR_REFILL_EARLY = "Refill is not available for this order yet"
ERR_REFILL_RUNNING = "Refill is already in progress for this order"
ERR_REFILL_REFUSED = "Refill was rejected for this order"
ERR_CANCEL_OFF = "Cancel is disabled for this service"
ERR_CANCEL_STATE = "Order already completed and cannot be canceled"
ERR_CANCEL_REFUSED = "Order cannot be canceled"
ERR_DUPLICATE = "This ref was used before for another kind of order"
ERR_BUSY = "Service is temporarily unavailable, try again later"
ERR_FAILED = "Order was refused by the provider, funds returned to balance"
ERR_RATE = "Too many requests"
ERR_SERVER = "Internal error, try again later"

Action = Callable[["SmmV2", Mapping[str, str], Client], Awaitable[Reply]]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def answer(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, dumps(value), JSON, dict(headers or {}))


def refusal(text: str, status: int = 200) -> Reply:
    return answer({"error": text}, status)


def amount(micro: int) -> str:
    """`0.27819`, `100.84292`, `10.00`: the exact amount, at least two decimals."""
    value = Decimal(micro) / MICRO
    if micro % CENT == 0:
        return f"{value:.2f}"
    return f"{value.normalize():f}"


class _Text(errors.ApiError):
    """A refusal whose text the action chose already."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def error_text(exc: errors.ApiError) -> str:
    """Each refusal's text (the first class that matches wins, subclasses first)."""
    match exc:
        case _Text(text=text):
            return text
        case BadQuantity(low=low, high=high, below=True):
            return f"Quantity less than minimal {low}"
        case BadQuantity(high=high):
            return f"Quantity more than maximum {high}"
        case OrderFailed(reason=reason):
            return {
                REASON_LINK_BUSY: ERR_LINK_BUSY,
                REASON_BAD_LINK: ERR_LINK,
                REASON_BAD_QUANTITY: ERR_REQUEST,
            }.get(reason or "", ERR_FAILED)
    for cls, text in ERROR_TEXTS:
        if isinstance(exc, cls):
            return text
    return ERR_BUSY  # Unavailable, Pending: nothing changed, or not known yet; ask again


ERROR_TEXTS: tuple[tuple[type[errors.ApiError], str], ...] = (
    (errors.Refused, ERR_KEY),
    (errors.NoSuchOrder, ERR_ORDER),
    (errors.BadService, ERR_SERVICE),
    (errors.NoMoney, ERR_FUNDS),
    (BadLink, ERR_LINK),
    (BadRequest, ERR_REQUEST),
    (errors.BadRef, ERR_REQUEST),
    (errors.DuplicateRef, ERR_DUPLICATE),
    (errors.Limited, ERR_BUSY),
)


def status_entry(order: SmmApiOrder, currency: str) -> dict[str, str]:
    return {
        "charge": amount(order.price),
        "start_count": str(order.start_count or 0),
        "status": order.panel_status,
        "remains": str(order.panel_remains),
        "currency": currency,
    }


def service_entry(offer: SmmOffer) -> dict[str, Any]:
    item = offer.item
    entry: dict[str, Any] = {
        "service": offer.id,
        "name": item.name,
        "type": offer.type_name,
        "category": item.category,
        "rate": amount(offer.rate_per_1000),
        "min": str(item.min),
        "max": str(item.max),
    }
    if item.description:
        entry["desc"] = item.description
    entry.update(refill=item.refill, cancel=item.cancel, dripfeed=item.dripfeed)
    return entry


class SmmV2:
    """`/api/v2`, POST (form) or GET."""

    paths: tuple[str, ...] = (PATH,)

    def __init__(
        self, smm: ResellerSmm, keys: ApiKeys, limits: RateLimits, currency: str = "USD"
    ) -> None:
        self.smm = smm
        self.keys = keys
        self.limits = limits
        self.currency = currency

    def failure(self) -> Reply:
        return refusal(ERR_SERVER, 500)

    def too_large(self) -> Reply:
        return refusal(ERR_REQUEST, 413)

    def too_slow(self) -> Reply:
        return refusal(ERR_REQUEST, 408)

    async def handle(self, request: ApiRequest) -> Reply:
        params = request.params
        client = await self.keys.authenticate(params.get("key"))
        if client is None:
            return refusal(ERR_KEY)
        action = params.get("action", "")
        handler = ACTIONS.get(action)
        if handler is None:
            return refusal(ERR_REQUEST)
        wait = await self.limits.check(client.key_id, f"v2:{action}")
        if wait is not None:
            return answer({"error": ERR_RATE}, 429, {"Retry-After": str(wait)})
        try:
            return await handler(self, params, client)
        except errors.ApiError as exc:
            return refusal(error_text(exc))

    # --- actions -----------------------------------------------------------------------------

    async def services(self, params: Mapping[str, str], client: Client) -> Reply:
        return answer([service_entry(offer) for offer in self.smm.offers()])

    async def add(self, params: Mapping[str, str], client: Client) -> Reply:
        offer = self.smm.offer(params.get("service"))
        if offer is None:
            raise errors.BadService()
        draft = draft_from(
            offer,
            link=params.get("link", ""),
            quantity=params.get("quantity"),
            runs=params.get("runs"),
            interval=params.get("interval"),
            comments=params.get("comments"),
            answer_number=params.get("answer_number"),
            usernames=params.get("usernames"),
        )
        ref = params.get("ref")
        order = await self.smm.add(client, draft, ref=ref.strip() if ref else None)
        return answer({"order": order.id})

    async def status(self, params: Mapping[str, str], client: Client) -> Reply:
        if "orders" in params:
            return await self._statuses(params["orders"], client)
        order_id = parse_order_id(params.get("order"))
        if order_id is None:
            raise errors.NoSuchOrder()
        return answer(status_entry(await self.smm.order(client, order_id), self.currency))

    async def _statuses(self, raw: str, client: Client) -> Reply:
        ids = order_ids(raw)
        if ids is None:
            return refusal(ERR_REQUEST)
        numbers = {text: parse_order_id(text) for text in ids}
        found = await self.smm.orders(client, [n for n in numbers.values() if n is not None])
        result: dict[str, Any] = {}
        for text, number in numbers.items():
            order = found.get(number) if number is not None else None
            if order is None:
                result[text] = {"error": ERR_ORDER}
            else:
                result[text] = status_entry(order, self.currency)
        return answer(result)

    async def refill(self, params: Mapping[str, str], client: Client) -> Reply:
        if "orders" in params:
            ids = order_ids(params["orders"])
            if ids is None:
                return refusal(ERR_REQUEST)
            return answer([await self._refill_one(text, client) for text in ids])
        order_id = parse_order_id(params.get("order"))
        if order_id is None:
            raise errors.NoSuchOrder()
        order = await self._refill(order_id, client)
        return answer({"refill": str(order.id)})

    async def _refill(self, order_id: int, client: Client) -> SmmApiOrder:
        try:
            return await self.smm.refill(client, order_id)
        except NotAvailable:
            raise _Text(ERR_REFILL_OFF) from None
        except RefillRunning:
            raise _Text(ERR_REFILL_RUNNING) from None
        except UpstreamRefused:
            raise _Text(ERR_REFILL_REFUSED) from None
        except errors.WrongState:
            raise _Text(ERR_REFILL_EARLY) from None

    async def _refill_one(self, text: str, client: Client) -> dict[str, Any]:
        number = parse_order_id(text)
        entry: dict[str, Any] = {"order": number if number is not None else text}
        try:
            if number is None:
                raise errors.NoSuchOrder()
            order = await self._refill(number, client)
        except errors.ApiError as exc:
            return {**entry, "refill": {"error": error_text(exc)}}
        return {**entry, "refill": order.id}

    async def refill_status(self, params: Mapping[str, str], client: Client) -> Reply:
        if "refills" in params:
            ids = order_ids(params["refills"])
            if ids is None:
                return refusal(ERR_REQUEST)
            items = []
            for text in ids:
                number = parse_order_id(text)
                try:
                    if number is None:
                        raise errors.NoSuchOrder()
                    word: Any = await self.smm.refill_status(client, number)
                except errors.NoSuchOrder:
                    word = {"error": ERR_REFILL_ID}
                items.append({"refill": number if number is not None else text, "status": word})
            return answer(items)
        refill_id = parse_order_id(params.get("refill"))
        try:
            if refill_id is None:
                raise errors.NoSuchOrder()
            return answer({"status": await self.smm.refill_status(client, refill_id)})
        except errors.NoSuchOrder:
            return refusal(ERR_REFILL_ID)

    async def cancel(self, params: Mapping[str, str], client: Client) -> Reply:
        raw = params.get("orders")
        if raw is None:
            raw = params.get("order")
        ids = order_ids(raw)
        if ids is None:
            return refusal(ERR_REQUEST)
        return answer([await self._cancel_one(text, client) for text in ids])

    async def _cancel_one(self, text: str, client: Client) -> dict[str, Any]:
        number = parse_order_id(text)
        entry: dict[str, Any] = {"order": number if number is not None else text}
        try:
            if number is None:
                raise errors.NoSuchOrder()
            await self.smm.cancel(client, number)
        except NotAvailable:
            return {**entry, "cancel": {"error": ERR_CANCEL_OFF}}
        except errors.WrongState:
            return {**entry, "cancel": {"error": ERR_CANCEL_STATE}}
        except UpstreamRefused:
            return {**entry, "cancel": {"error": ERR_CANCEL_REFUSED}}
        except errors.ApiError as exc:
            return {**entry, "cancel": {"error": error_text(exc)}}
        return {**entry, "cancel": 1}

    async def balance(self, params: Mapping[str, str], client: Client) -> Reply:
        micro = await self.smm.balance(client)
        return answer({"balance": amount(micro), "currency": self.currency})


ACTIONS: dict[str, Action] = {
    "services": SmmV2.services,
    "add": SmmV2.add,
    "status": SmmV2.status,
    "refill": SmmV2.refill,
    "refill_status": SmmV2.refill_status,
    "cancel": SmmV2.cancel,
    "balance": SmmV2.balance,
}
