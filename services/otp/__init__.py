"""OTP activations: buy, deliver codes, cancel, finish, expire, reconcile.

Every state change goes through the order core (services/orders): one conditional UPDATE that
the lifecycle table allows, with the refund (`refund:otp:<id>`) in the same transaction, so
whoever moves an activation out of 'waiting' first (the user's cancel, the poller's deadline,
a restart's reconciliation) refunds it, and nobody can refund it twice. No upstream call and no
Telegram call happens inside a transaction; what the user must hear after a commit goes
through the outbox. The service is split by job: common (the shared moves), buying, polling,
reconcile.
"""

from services.orders.errors import (
    AlreadyConfirmed,
    Banned,
    NotEnoughMoney,
    NotFound,
    OrderError,
    PriceChanged,
    TryLater,
    WrongState,
)
from services.otp.buying import Buying
from services.otp.common import (
    ACTIVE,
    BUYING,
    CANCELLED,
    CLOSED,
    EXPIRED,
    FAILED,
    FINISHED,
    OPEN,
    QUOTE_TTL,
    REASON_NO_NUMBERS,
    REASON_NO_UPSTREAM_ORDER,
    REASON_PROVIDER_ERROR,
    REASON_TIMEOUT,
    REASON_UPSTREAM_CANCELLED,
    REASON_USER_CANCEL,
    RECEIVED,
    UNKNOWN,
    WAITING,
    ActivationError,
    ConfirmAgain,
    OtpBase,
    OtpRules,
    OutOfStock,
    Presenter,
    Quote,
    TooEarly,
    TooManyActive,
    TooManyCancels,
    _cost,
    _new_code,
    new_token,
    supports,
)
from services.otp.polling import Polling
from services.otp.reconcile import Reconciling


class ActivationService(Buying, Polling, Reconciling):
    """The OTP shop: what the handlers and the scheduler call."""


__all__ = [
    "ACTIVE",
    "BUYING",
    "CANCELLED",
    "CLOSED",
    "EXPIRED",
    "FAILED",
    "FINISHED",
    "OPEN",
    "QUOTE_TTL",
    "REASON_NO_NUMBERS",
    "REASON_NO_UPSTREAM_ORDER",
    "REASON_PROVIDER_ERROR",
    "REASON_TIMEOUT",
    "REASON_UPSTREAM_CANCELLED",
    "REASON_USER_CANCEL",
    "RECEIVED",
    "UNKNOWN",
    "WAITING",
    "ActivationError",
    "ActivationService",
    "AlreadyConfirmed",
    "Banned",
    "ConfirmAgain",
    "NotEnoughMoney",
    "NotFound",
    "OrderError",
    "OtpBase",
    "OtpRules",
    "OutOfStock",
    "Presenter",
    "PriceChanged",
    "Quote",
    "TooEarly",
    "TooManyActive",
    "TooManyCancels",
    "TryLater",
    "WrongState",
    "_cost",
    "_new_code",
    "new_token",
    "supports",
]
