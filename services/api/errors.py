"""What the reseller facade refuses, protocol-neutral: each protocol module answers each of
these with its own token or status. Nothing was charged when one is raised, except where said."""

from __future__ import annotations


class ApiError(Exception):
    """A refusal; nothing changed."""


class Refused(ApiError):
    """The key's owner was banned (or lost API access) while the request was on its way."""


class NoSuchOrder(ApiError):
    """Not an order of this caller (another user's id and a huge id read the same)."""


class BadCountry(ApiError):
    pass


class BadService(ApiError):
    pass


class NoStock(ApiError):
    """Nothing in stock for this item (or every provider refused: the price was refunded)."""


class NoMoney(ApiError):
    def __init__(self, balance: int) -> None:
        super().__init__(balance)
        self.balance = balance


class PriceAbove(ApiError):
    """The caller's maximum price is below ours."""

    def __init__(self, price: int) -> None:
        super().__init__(price)
        self.price = price


class DuplicateRef(ApiError):
    """The client's reference was used before by this key: that order stands, no second one."""

    def __init__(self, order_id: int | None) -> None:
        super().__init__(order_id)
        self.order_id = order_id


class BadRef(ApiError):
    """A client reference that is too long or has characters outside [A-Za-z0-9._:-]."""


class TooManyOpen(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class Limited(ApiError):
    """Another rule of the shop refuses a purchase now (e.g. too many cancels today)."""


class TooEarly(ApiError):
    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class WrongState(ApiError):
    """The order's state does not allow that (already closed, no code yet, ...)."""


class AlreadyClosed(WrongState):
    """A cancel of an order that is already cancelled, expired or failed (refunded before)."""


class Pending(ApiError):
    """The upstream's answer to the buy was lost: the order is being reconciled (the price is
    held, never charged twice; refunded if no number turns up)."""

    def __init__(self, order_id: int) -> None:
        super().__init__(order_id)
        self.order_id = order_id


class Unavailable(ApiError):
    """An upstream did not answer; nothing changed, try again."""
