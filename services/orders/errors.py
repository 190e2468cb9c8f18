"""What the order services tell their callers: user-facing refusals that changed nothing. The
handlers render them in the user's language."""

from __future__ import annotations


class OrderError(Exception):
    """A user-facing refusal; nothing changed."""


class NotFound(OrderError):
    """No such order for this user (another user's id looks exactly the same)."""


class Banned(OrderError):
    pass


class PriceChanged(OrderError):
    def __init__(self, price: int) -> None:
        super().__init__(price)
        self.price = price


class NotEnoughMoney(OrderError):
    def __init__(self, missing: int, balance: int) -> None:
        super().__init__(missing)
        self.missing = missing
        self.balance = balance


class AlreadyConfirmed(OrderError):
    """The same confirmation was pressed twice: the first press is the order."""

    def __init__(self, order_id: int) -> None:
        super().__init__(order_id)
        self.order_id = order_id

    @property
    def activation_id(self) -> int:
        return self.order_id


class WrongState(OrderError):
    """The action does not fit the order's state (already closed, no code yet...)."""


class TryLater(OrderError):
    """The upstream did not answer; nothing changed."""


class IllegalTransition(ValueError):
    """A move the order's lifecycle table does not have: a bug in the caller, never data."""
