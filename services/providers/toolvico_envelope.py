"""Toolvico's answer envelope and what each refusal means (docs/protocols.md §1).

Every Toolvico answer, OTP or SMM, is `{"success":true,"data":{...}}` or
`{"success":false,"error":"..."}`: `parse_envelope` returns the data or raises the ProviderError
that the HTTP status, the operation (`Op`) and the error text call for; `decimal_field` and
`id_field` read the fields both adapters share.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import Enum
from typing import Any

import httpx

from services import money
from services.providers.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    EarlyCancel,
    InvalidState,
    NoNumbers,
    OrderNotFound,
    OutcomeUnknown,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
)
from services.providers.http import body_text, retry_after

DEFAULT_RETRY_AFTER_S = 60.0  # Toolvico's docs: "429 Rate limit exceeded - Retry after 60 seconds"


class Op(Enum):
    """What a request does: decides how an error or an unreadable answer is read."""

    READ = "read"  # catalog, balance: "not found" is a bad id (BadRequest)
    ORDER = "order"  # one existing order: "not found" is OrderNotFound
    BUY = "buy"  # costs money, never retried: an unreadable answer is OutcomeUnknown
    CANCEL = "cancel"  # ORDER plus "too early" (EarlyCancel) and "already ..." (InvalidState)


_AUTH_RE = re.compile(r"api[ _-]?key|api access|unauthori[sz]ed|forbidden")
_BALANCE_RE = re.compile(r"balance|insufficient|funds|not enough money")
_NO_NUMBERS_RE = re.compile(r"no (free )?numbers?|out of stock|no stock|not available")
_EARLY_RE = re.compile(r"\bwait\b|minimum|too (early|soon)|not yet")
_NOT_FOUND_RE = re.compile(r"not found|does not exist|unknown order|invalid order")
_RATE_RE = re.compile(r"rate limit|too many")
_STATE_RE = re.compile(r"already|cannot|can't|not allowed|received|cancel+ed|completed")
_DURATION_RE = re.compile(r"(\d+)\s*(seconds?|secs?|s|minutes?|mins?)\b")


def parse_envelope(
    response: httpx.Response, *, provider: str, action: str, op: Op
) -> dict[str, Any]:
    """The `data` object of a successful answer; anything else raises the matching error.

    The body is read before the status code: an error envelope with HTTP 200 is still an error.
    """
    raw = body_text(response)
    status = response.status_code
    payload = _json_or_none(raw)
    if not (isinstance(payload, dict) and isinstance(payload.get("success"), bool)):
        raise _unreadable(response, raw, provider=provider, action=action, op=op)
    if payload["success"]:
        data = payload.get("data")
        if 200 <= status < 300 and isinstance(data, dict):
            return data
        raise _unreadable(response, raw, provider=provider, action=action, op=op)
    error = payload.get("error") or payload.get("message") or ""
    text = error if isinstance(error, str) else str(error)
    raise _refusal(response, raw, text, provider=provider, action=action, op=op)


def _json_or_none(raw: str) -> Any:
    try:
        return money.loads(raw)
    except ValueError:
        return None


def _unreadable(
    response: httpx.Response, raw: str, *, provider: str, action: str, op: Op
) -> ProviderError:
    """Not a Toolvico envelope (HTML from a proxy, empty, garbage): trust only the status."""
    status = response.status_code
    where = f"{provider} {action}: HTTP {status}"
    if status in (401, 403):
        return AuthError(f"{where}, access refused", provider=provider, raw=raw)
    if status == 402:
        return ProviderBalanceLow(f"{where}, wallet too low", provider=provider, raw=raw)
    if status == 429:
        wait = _rate_limit_wait(response)
        return Unavailable(
            f"{where}, rate limited", provider=provider, raw=raw, retry_after_s=wait
        )
    if op is Op.BUY and (200 <= status < 300 or status >= 500):
        # The buy reached the server and we cannot read what it did: the number may be bought
        # and charged. Only a refusal we can read (an error envelope) proves it was not.
        return OutcomeUnknown(f"{where}, unreadable answer to a buy", provider=provider, raw=raw)
    if status >= 500:
        return Unavailable(f"{where}, upstream error", provider=provider, raw=raw)
    return BadResponse(f"{where}, not a Toolvico answer", provider=provider, raw=raw)


def _refusal(
    response: httpx.Response, raw: str, text: str, *, provider: str, action: str, op: Op
) -> ProviderError:
    """An error envelope: the HTTP status decides where it is unambiguous, else the text."""
    status = response.status_code
    message = f"{provider} {action}: {text or 'error'} (HTTP {status})"
    kw: dict[str, Any] = {"provider": provider, "raw": raw}
    low = text.lower()
    if status in (401, 403):
        return AuthError(message, **kw)
    if status == 402:
        return ProviderBalanceLow(message, **kw)
    if status == 429:
        wait = _rate_limit_wait(response)
        return Unavailable(message, retry_after_s=wait, **kw)
    if status >= 500:
        if _NO_NUMBERS_RE.search(low):
            return NoNumbers(message, **kw)
        return Unavailable(message, retry_after_s=retry_after(response), **kw)
    if status == 404:
        # Toolvico's 404 is "Order or service not found": on a buy that is the service.
        by_op = OrderNotFound if op in (Op.ORDER, Op.CANCEL) else BadRequest
        return by_op(message, **kw)
    return _refusal_by_text(response, low, message, op=op, kw=kw)


def _refusal_by_text(
    response: httpx.Response, low: str, message: str, *, op: Op, kw: dict[str, Any]
) -> ProviderError:
    """HTTP 200/400/409/...: only the error text says what happened."""
    if _AUTH_RE.search(low):
        return AuthError(message, **kw)
    if _BALANCE_RE.search(low):
        return ProviderBalanceLow(message, **kw)
    if _NO_NUMBERS_RE.search(low):
        return NoNumbers(message, **kw)
    if op is Op.CANCEL and _EARLY_RE.search(low):
        wait = retry_after(response)
        wait = _seconds_in(low) if wait is None else wait
        return EarlyCancel(message, retry_after_s=wait, **kw)
    if _NOT_FOUND_RE.search(low):
        return (OrderNotFound if op in (Op.ORDER, Op.CANCEL) else BadRequest)(message, **kw)
    if _RATE_RE.search(low):
        return Unavailable(message, retry_after_s=retry_after(response), **kw)
    if op is Op.CANCEL and _STATE_RE.search(low):
        return InvalidState(message, **kw)
    return BadRequest(message, **kw)


def _rate_limit_wait(response: httpx.Response) -> float:
    wait = retry_after(response)
    return DEFAULT_RETRY_AFTER_S if wait is None else wait


def _seconds_in(text: str) -> float | None:
    """'please wait 90 seconds' -> 90.0, 'wait 2 minutes' -> 120.0."""
    match = _DURATION_RE.search(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value * 60 if match.group(2).startswith("m") else value


def decimal_field(data: dict[str, Any], key: str, *, provider: str) -> Decimal:
    """A money field that may be a JSON number (already Decimal via money.loads) or a string."""
    try:
        return money.to_decimal(data.get(key))
    except (TypeError, ValueError):
        raise BadResponse(
            f"{provider}: {key} is not a number", provider=provider, raw=repr(data)
        ) from None


def id_field(data: dict[str, Any], key: str, *, provider: str) -> str:
    """An id that may come as a JSON string or integer; always returned as a string."""
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise BadResponse(f"{provider}: no {key} in the answer", provider=provider, raw=repr(data))
