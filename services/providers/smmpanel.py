"""SMM panel API v2, the Perfect Panel standard (docs/protocols.md §4).

Every call is a POST to the one endpoint URL (`base_url`, e.g. `https://panel/api/v2`) with a
form body carrying `key` and `action`. Answers are JSON; an error is `{"error": "..."}`, usually
with HTTP 200, so the body is read before the status code. Values may come as strings or numbers
(`"rate": "0.90"` or `10.0`, `"min": "50"` or `1`): money is parsed to Decimal, never float.

The JSON-body variant (§4.7) differs only in the encoding and a few answers; it subclasses
this adapter in `smmpanel_json.py`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from enum import Enum
from typing import Any

import httpx

from services import money
from services.providers.base import (
    SmmOrderRequest,
    SmmOrderState,
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
    BadRequest,
    BadResponse,
    InvalidState,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
    UnreadableOrder,
)
from services.providers.http import ProviderHttp, body_text, retry_after

log = logging.getLogger(__name__)

MAX_IDS_PER_CALL = 100  # `orders=` takes up to 100 ids (status, cancel)


class Op(Enum):
    """What a call does: decides how an error or an unreadable answer is read."""

    READ = "read"  # services, balance, refill_status: idempotent, 5xx retried
    ORDER = "order"  # status: idempotent, per-order errors
    ADD = "add"  # costs money, sent once: an unreadable answer is OutcomeUnknown
    ACTION = "action"  # refill, cancel: sent once; an unmatched refusal is InvalidState


_LINK_BUSY = "an order for this link is still running upstream; retry later"

# docs/protocols.md §4.5, matched case-insensitively as substrings, first match wins (so the longer
# `neworder.error.link_duplicate` comes before `neworder.error.link`).
_ERROR_RULES: list[tuple[re.Pattern[str], type[ProviderError], str | None]] = [
    (re.compile(r"invalid api key|incorrect api key|wrong api key"), AuthError, None),
    (re.compile(r"unauthori[sz]ed|unauthenticated"), AuthError, None),
    (re.compile(r"incorrect order id|order not found"), OrderNotFound, None),
    (re.compile(r"incorrect refill id|refill not found"), OrderNotFound, None),
    (re.compile(r"incorrect service id|service not found"), BadRequest, None),
    (
        re.compile(r"not enough funds|neworder\.error\.not_enough_funds|insufficient (funds|bal)"),
        ProviderBalanceLow,
        None,
    ),
    (
        re.compile(
            r"quantity less than minimal|quantity more than maximum"
            r"|neworder\.error\.min_quantity|neworder\.error\.max_quantity"
        ),
        BadRequest,
        None,
    ),
    (
        re.compile(r"active order with this link|neworder\.error\.link_duplicate"),
        BadRequest,
        _LINK_BUSY,
    ),
    (re.compile(r"neworder\.error\.link|bad link"), BadRequest, None),
    (re.compile(r"invalid action|incorrect action|unknown action"), NotSupported, None),
    (re.compile(r"incorrect request"), BadRequest, None),
    # The JSON variant's {"errors": {...}} (see SmmPanelJsonProvider._error_text), Laravel wording.
    (re.compile(r"^validation failed|field is required"), BadRequest, None),
]


# --- value parsing ------------------------------------------------------------------------------


def id_text(value: Any) -> str | None:
    """An id sent as a JSON string or integer, as a string; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def to_int(value: Any) -> int:
    """50, "50", "50.0" or Decimal("50") -> 50; a fraction, a float or junk raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, int):
        return value
    try:
        number = money.to_decimal(value)
    except TypeError:
        raise ValueError(f"not an integer: {value!r}") from None
    if number != number.to_integral_value():
        raise ValueError(f"not an integer: {value!r}")
    return int(number)


def int_or_none(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return to_int(value)
    except ValueError:
        return None


def decimal_or_none(value: Any) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return money.to_decimal(value)
    except (TypeError, ValueError):
        return None


def flag(value: Any) -> bool:
    """true/false, 1/0, "1"/"0", "true"/"yes"; missing is False."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return False


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def unique_ids(order_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(str(order_id).strip() for order_id in order_ids))


# --- the adapter --------------------------------------------------------------------------------


class SmmPanelProvider(SmmProvider):
    kind = "smmpanel"
    supports_refill = True
    supports_cancel = True
    supports_batch_status = True
    max_batch = MAX_IDS_PER_CALL

    # What differs in the JSON variant (docs/protocols.md §4.7).
    single_status_param = True  # one id is asked with `order=` (flat answer), not `orders=`
    order_id_keys: tuple[str, ...] = ("order",)  # where `add` puts the new order's id

    def __init__(
        self, config: ProviderConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not config.base_url:
            raise ValueError(f"provider {config.name}: base_url (the panel's API URL) is required")
        self.name = config.name
        self.currency = config.currency
        self._url = config.base_url
        self._api_key = config.api_key.get_secret_value()
        self.http = ProviderHttp(
            provider=config.name,
            base_url=self._url,
            api_key=self._api_key,
            timeout_s=config.timeout_s,
            rate_limit_per_min=config.rate_limit_per_min,
            headers=self._headers(),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- encoding (overridden by the JSON variant) --------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def _encode(self, payload: dict[str, Any]) -> dict[str, Any]:
        """httpx keyword arguments carrying the request body."""
        return {"data": {key: str(value) for key, value in payload.items()}}

    def _wire_id(self, value: str) -> str | int:
        return value

    def _error_text(self, payload: Any, status: int) -> str | None:
        """The refusal text of an answer, or None when the answer is not an error."""
        if not isinstance(payload, dict):
            return None
        error = payload.get("error")
        if isinstance(error, str) and error.strip():
            return error.strip()
        if isinstance(error, dict | list) and error:
            return str(error)
        message = payload.get("message")
        if not 200 <= status < 300 and isinstance(message, str) and message.strip():
            return message.strip()  # e.g. a framework's {"message": "Unauthenticated."}
        return None

    # --- transport ----------------------------------------------------------------------------

    async def _call(self, action: str, params: dict[str, Any] | None = None, *, op: Op) -> Any:
        """One action; reads retry 5xx with backoff, everything else is sent exactly once."""
        kwargs = self._encode({"key": self._api_key, "action": action, **(params or {})})
        if op is Op.ADD:
            response = await self.http.send_once("POST", self._url, endpoint=action, **kwargs)
            return self._parse(action, response, op=op)
        if op is Op.ACTION:
            try:
                response = await self.http.send_once("POST", self._url, endpoint=action, **kwargs)
            except OutcomeUnknown:
                # A lost refill/cancel answer creates nothing to pay for: try again later; the
                # next status poll shows whether it went through.
                raise Unavailable(
                    f"{self.name} {action}: answer lost", provider=self.name
                ) from None
            return self._parse(action, response, op=op)
        return await self.http.read_parsed(
            "POST",
            self._url,
            lambda response: self._parse(action, response, op=op),
            endpoint=action,
            retry_if=lambda response: response.status_code >= 500,
            **kwargs,
        )

    def _parse(self, action: str, response: httpx.Response, *, op: Op) -> Any:
        """The JSON of a good answer; an error body, then a bad status, raise the typed error."""
        raw = body_text(response)
        status = response.status_code
        try:
            payload = money.loads(raw) if raw else None
        except ValueError:
            payload = None
        if payload is None:
            raise self._unreadable(action, raw, response, op=op)
        text = self._error_text(payload, status)
        if text is not None:
            raise self._refusal(text, action=action, op=op, raw=raw, response=response)
        if status == 429:
            raise Unavailable(
                f"{self.name} {action}: rate limited (HTTP 429)",
                provider=self.name,
                raw=raw,
                retry_after_s=retry_after(response),
            )
        if status >= 500:
            cls = OutcomeUnknown if op is Op.ADD else Unavailable
            raise cls(f"{self.name} {action}: HTTP {status}", provider=self.name, raw=raw)
        if status in (401, 403):
            raise AuthError(f"{self.name} {action}: HTTP {status}", provider=self.name, raw=raw)
        if not 200 <= status < 300:
            raise BadResponse(f"{self.name} {action}: HTTP {status}", provider=self.name, raw=raw)
        return payload

    def _unreadable(
        self, action: str, raw: str, response: httpx.Response, *, op: Op
    ) -> ProviderError:
        """Not JSON (HTML from a proxy, empty, garbage): only the status code can be trusted."""
        status = response.status_code
        what = "empty answer" if not raw else "unreadable answer"
        message = f"{self.name} {action}: {what} (HTTP {status})"
        if status == 429:
            return Unavailable(
                message, provider=self.name, raw=raw, retry_after_s=retry_after(response)
            )
        if op is Op.ADD and (200 <= status < 300 or status >= 500):
            # The add reached the panel and we cannot read what it did: the order may exist.
            return OutcomeUnknown(message, provider=self.name, raw=raw)
        if status in (401, 403):
            return AuthError(message, provider=self.name, raw=raw)
        if status >= 500:
            return Unavailable(message, provider=self.name, raw=raw)
        return BadResponse(message, provider=self.name, raw=raw)

    def _refusal(
        self,
        text: str,
        *,
        action: str,
        op: Op,
        raw: str | None = None,
        response: httpx.Response | None = None,
    ) -> ProviderError:
        """The typed error for a refusal text (docs/protocols.md §4.5), then by HTTP status."""
        low = text.lower()
        kw: dict[str, Any] = {"provider": self.name, "raw": raw or text}
        for pattern, cls, note in _ERROR_RULES:
            if pattern.search(low):
                message = f"{self.name} {action}: {text}" + (f" ({note})" if note else "")
                return cls(message, **kw)
        message = f"{self.name} {action}: {text}"
        status = response.status_code if response is not None else 200
        if status in (401, 403):
            return AuthError(message, **kw)
        if status == 429 and response is not None:
            return Unavailable(message, retry_after_s=retry_after(response), **kw)
        if status >= 500:
            return Unavailable(message, **kw)
        if op is Op.ACTION:
            return InvalidState(message, **kw)  # e.g. "Order already completed"
        return BadRequest(message, **kw)

    def _bad(self, message: str, data: Any) -> BadResponse:
        return BadResponse(f"{self.name}: {message}", provider=self.name, raw=repr(data))

    # --- SmmProvider --------------------------------------------------------------------------

    async def balance(self) -> Decimal:
        data = await self._call("balance", op=Op.READ)
        value = decimal_or_none(data.get("balance")) if isinstance(data, dict) else None
        if value is None:
            raise self._bad("balance answer without a balance", data)
        return value

    async def services(self) -> list[SmmService]:
        data = await self._call("services", op=Op.READ)
        if not isinstance(data, list):
            raise self._bad("services answer is not a list", data)
        result = []
        for item in data:
            service = self._service(item)
            if service is not None:
                result.append(service)
        return result

    def _service(self, item: Any) -> SmmService | None:
        """One entry of the services list; None (logged) for a hidden type or an unusable entry."""
        if not isinstance(item, dict):
            log.warning("%s: skipping a service entry that is not an object", self.name)
            return None
        service_id = id_text(item.get("service"))
        type_name = item.get("type", "Default")  # no type: a plain link + quantity service
        kind = smm_service_type(type_name) if isinstance(type_name, str) else None
        if service_id is None or kind is None:
            log.debug("%s: hiding service %s of type %r", self.name, service_id, type_name)
            return None
        try:
            rate = money.to_decimal(item.get("rate"))
            low, high = to_int(item.get("min")), to_int(item.get("max"))
        except (TypeError, ValueError):
            log.warning("%s: skipping service %s: bad rate/min/max", self.name, service_id)
            return None
        if rate <= 0 or low < 0 or high < max(low, 1):
            log.warning(
                "%s: skipping service %s: rate %s, %s-%s", self.name, service_id, rate, low, high
            )
            return None
        description = item.get("desc", item.get("description"))
        return SmmService(
            service_id=service_id,
            name=_text(item.get("name")) or f"#{service_id}",
            category=_text(item.get("category")),
            type=kind,
            rate=rate,
            min=low,
            max=high,
            refill=flag(item.get("refill")),
            cancel=flag(item.get("cancel")),
            dripfeed=flag(item.get("dripfeed")),
            description=_text(description) or None,
        )

    async def add(self, request: SmmOrderRequest, *, client_ref: str) -> str:
        data = await self._call("add", self._order_params(request), op=Op.ADD)
        order_id = None
        if isinstance(data, dict):
            order_id = next(
                (oid for key in self.order_id_keys if (oid := id_text(data.get(key)))), None
            )
        if order_id is None:
            # A 2xx answer that is not a refusal: the order may well exist.
            raise OutcomeUnknown(
                f"{self.name} add: answer without an order id", provider=self.name, raw=repr(data)
            )
        log.info("%s: order %s placed (ours: %s)", self.name, order_id, client_ref)
        return order_id

    def _order_params(self, request: SmmOrderRequest) -> dict[str, Any]:
        """`service`, `link` and the fields of the request's type (docs/protocols.md §4.3)."""
        params: dict[str, Any] = {
            "service": self._wire_id(request.service_id),
            "link": request.link.strip(),
        }
        kind = request.type
        if kind in (SmmServiceType.DEFAULT, SmmServiceType.POLL, SmmServiceType.MENTIONS):
            params["quantity"] = request.quantity
        if kind is SmmServiceType.DEFAULT and request.runs is not None:
            params["runs"] = request.runs
            params["interval"] = request.interval
        elif kind is SmmServiceType.CUSTOM_COMMENTS:
            params["comments"] = "\n".join(c.strip() for c in request.comments)
        elif kind is SmmServiceType.POLL:
            params["answer_number"] = request.answer_number
        elif kind is SmmServiceType.MENTIONS:
            params["usernames"] = "\n".join(u.strip() for u in request.usernames if u.strip())
        return params

    async def statuses(self, order_ids: list[str]) -> dict[str, SmmOrderStatus | ProviderError]:
        result: dict[str, SmmOrderStatus | ProviderError] = {}
        for chunk in chunks(unique_ids(order_ids), self.max_batch):
            try:
                result.update(await self._status_chunk(chunk))
            except ProviderError as exc:
                result.update(dict.fromkeys(chunk, exc))
        return result

    async def _status_chunk(self, ids: list[str]) -> dict[str, SmmOrderStatus | ProviderError]:
        single = len(ids) == 1 and self.single_status_param
        params = {"order": ids[0]} if single else {"orders": ",".join(ids)}
        try:
            data = await self._call("status", params, op=Op.ORDER)
        except OrderNotFound as exc:  # a top-level "Incorrect order ID"
            return dict.fromkeys(ids, exc)
        if not isinstance(data, dict):
            raise self._bad("status answer is not an object", data)
        if single and "status" in data:
            return {ids[0]: self._order_status(ids[0], data)}
        by_id = {str(key).strip(): value for key, value in data.items()}
        result: dict[str, SmmOrderStatus | ProviderError] = {}
        for order_id in ids:
            if order_id in by_id:
                result[order_id] = self._order_status(order_id, by_id[order_id])
            else:
                # The JSON variant leaves unknown ids out of the map.
                result[order_id] = OrderNotFound(
                    f"{self.name} status: order {order_id} is not in the answer",
                    provider=self.name,
                )
        return result

    def _order_status(self, order_id: str, entry: Any) -> SmmOrderStatus | ProviderError:
        if not isinstance(entry, dict):
            return self._bad(f"status of order {order_id} is not an object", entry)
        text = self._error_text(entry, 200)
        if text is not None:
            return self._refusal(text, action=f"status of order {order_id}", op=Op.ORDER)
        word = entry.get("status")
        state = smm_order_state(word) if isinstance(word, str) else None
        if state is None:
            return UnreadableOrder(
                f"{self.name}: order {order_id}: unknown status {word!r}",
                word=word[:40] if isinstance(word, str) else "",
                provider=self.name,
                raw=repr(entry),
            )
        remains = entry.get("remains")
        remains_int = int_or_none(remains)
        if remains_int is None and remains not in (None, "") and state is SmmOrderState.PARTIAL:
            return UnreadableOrder(
                f"{self.name}: order {order_id}: remains {remains!r} is not a number",
                word="Partial",
                provider=self.name,
                raw=repr(entry),
            )
        currency = entry.get("currency")
        return SmmOrderStatus(
            state=state,
            charge=decimal_or_none(entry.get("charge")),
            start_count=int_or_none(entry.get("start_count")),
            remains=remains_int,
            currency=currency.strip().upper() if isinstance(currency, str) and currency else None,
        )

    async def refill(self, order_id: str) -> str:
        if not self.supports_refill:
            raise NotSupported("refill", provider=self.name)
        data = await self._call("refill", {"order": order_id}, op=Op.ACTION)
        if isinstance(data, list):  # the `orders=` form: [{"order": 1, "refill": 1}]
            data = next((e for e in data if isinstance(e, dict)), None)
        value = data.get("refill") if isinstance(data, dict) else None
        text = self._error_text(value, 200)
        if text is not None:
            raise self._refusal(text, action=f"refill of order {order_id}", op=Op.ACTION)
        refill_id = id_text(value)
        if refill_id is None:
            raise self._bad("refill answer without a refill id", data)
        return refill_id

    async def refill_status(self, refill_id: str) -> str:
        if not self.supports_refill:
            raise NotSupported("refill status", provider=self.name)
        data = await self._call("refill_status", {"refill": refill_id}, op=Op.READ)
        value = data.get("status") if isinstance(data, dict) else None
        text = self._error_text(value, 200)
        if text is not None:
            raise self._refusal(text, action=f"refill {refill_id} status", op=Op.READ)
        if not isinstance(value, str) or not value.strip():
            raise self._bad("refill status answer without a status", data)
        return " ".join(value.lower().split())

    async def cancel(self, order_ids: list[str]) -> dict[str, bool | ProviderError]:
        if not self.supports_cancel:
            raise NotSupported("cancel", provider=self.name)
        result: dict[str, bool | ProviderError] = {}
        for chunk in chunks(unique_ids(order_ids), self.max_batch):
            try:
                data = await self._call("cancel", {"orders": ",".join(chunk)}, op=Op.ACTION)
                result.update(self._cancel_answers(chunk, data))
            except ProviderError as exc:
                result.update(dict.fromkeys(chunk, exc))
        return result

    def _cancel_answers(self, ids: list[str], data: Any) -> dict[str, bool | ProviderError]:
        """`[{"order": 9, "cancel": {"error": ...}}, {"order": 2, "cancel": 1}]` per id."""
        if isinstance(data, dict) and "cancel" in data and len(ids) == 1:
            data = [{"order": ids[0], **data}]
        if not isinstance(data, list):
            raise self._bad("cancel answer is not a list", data)
        answers: dict[str, Any] = {}
        for entry in data:
            order_id = id_text(entry.get("order")) if isinstance(entry, dict) else None
            if order_id is not None:
                answers[order_id] = entry.get("cancel")
        result: dict[str, bool | ProviderError] = {}
        for order_id in ids:
            if order_id not in answers:
                result[order_id] = self._bad(f"order {order_id} is not in the cancel answer", data)
            else:
                result[order_id] = self._cancel_value(order_id, answers[order_id])
        return result

    def _cancel_value(self, order_id: str, value: Any) -> bool | ProviderError:
        text = self._error_text(value, 200)
        if text is not None:
            return self._refusal(text, action=f"cancel of order {order_id}", op=Op.ACTION)
        if isinstance(value, bool | int | str) and str(value).strip().lower() in {
            "1",
            "true",
            "0",
            "false",
        }:
            return flag(value)
        return self._bad(f"cancel of order {order_id}: unknown answer {value!r}", value)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
