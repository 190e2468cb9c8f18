"""One error tree for every upstream. Messages never contain API keys (see services.redact)."""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict, Unpack

from services.redact import redact


class _ErrorFields(TypedDict, total=False):
    """The keyword arguments every ProviderError takes: passed through by the subclasses."""

    provider: str
    raw: str | None


class ProviderError(Exception):
    """Base of every upstream failure; `raw` keeps the answer body for debugging."""

    retryable = False

    def __init__(self, message: str = "", *, provider: str = "", raw: str | None = None) -> None:
        self.provider = provider
        self.raw = redact(raw[:2000]) if raw else raw
        super().__init__(redact(message or type(self).__name__))


class AuthError(ProviderError):
    """Bad or missing API key, API access disabled, account banned."""


class NoNumbers(ProviderError):
    """Out of stock for this country/service (try the next provider)."""


class ProviderBalanceLow(ProviderError):
    """Our own balance at the upstream is too low: alert the admins."""


class EarlyCancel(ProviderError):
    """Cancel refused because it is too soon; `retry_after_s` when the upstream says."""

    def __init__(
        self, message: str = "", *, retry_after_s: float | None = None, **kw: Unpack[_ErrorFields]
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class OrderNotFound(ProviderError):
    """The upstream does not know this order id."""


class InvalidState(ProviderError):
    """The order exists but cannot take this action now (has SMS, already ended, BAD_STATUS)."""


class BadRequest(ProviderError):
    """Bad service, country, link, quantity... Not retryable."""


class PriceTooHigh(BadRequest):
    """The current price is above the max price we passed (WRONG_MAX_PRICE)."""

    def __init__(
        self, message: str = "", *, min_price: Decimal | None = None, **kw: Unpack[_ErrorFields]
    ) -> None:
        super().__init__(message, **kw)
        self.min_price = min_price


class NotSupported(ProviderError):
    """The protocol or this host does not have the feature."""


class Unavailable(ProviderError):
    """Upstream down, 5xx, 429, connection refused before sending: safe to retry later."""

    retryable = True

    def __init__(
        self, message: str = "", *, retry_after_s: float | None = None, **kw: Unpack[_ErrorFields]
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class BadResponse(ProviderError):
    """An answer we cannot read: HTML, empty, unknown token, broken JSON."""


class UnreadableOrder(BadResponse):
    """One order's answer the bot cannot act on: a status word it does not know, or a Partial
    whose `remains` is unreadable. The rest of the answer is fine."""

    def __init__(self, message: str = "", *, word: str = "", **kw: Unpack[_ErrorFields]) -> None:
        super().__init__(message, **kw)
        self.word = word


class OutcomeUnknown(ProviderError):
    """A buy/add was sent but no answer came back: the order may exist. Reconcile, never resend."""
