"""Customers' own top-ups: Telegram Stars (`stars.py`), each credited once per charge."""

from services.payments.stars import (
    ALREADY_REFUNDED,
    ChargeNotFound,
    Credited,
    Invoice,
    OutOfRange,
    Quote,
    Refunded,
    RefundRefused,
    Refusal,
    StarsApi,
    StarsApiError,
    StarsDisabled,
    StarsPayments,
    StarsRules,
    StarTransaction,
    TopupNotice,
)

__all__ = [
    "ALREADY_REFUNDED",
    "ChargeNotFound",
    "Credited",
    "Invoice",
    "OutOfRange",
    "Quote",
    "RefundRefused",
    "Refunded",
    "Refusal",
    "StarTransaction",
    "StarsApi",
    "StarsApiError",
    "StarsDisabled",
    "StarsPayments",
    "StarsRules",
    "TopupNotice",
]
