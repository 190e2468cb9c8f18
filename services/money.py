"""Money in integer micro-units of the store currency. No float ever touches an amount."""

from __future__ import annotations

import json
import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

MICRO = 1_000_000
CENT = 10_000  # micro-units in one cent
MAX_ADMIN_AMOUNT = 1_000_000_000  # whole units: a typo guard for /topup and /deduct

_AMOUNT_RE = re.compile(r"^[0-9]{1,12}(?:\.[0-9]{1,6})?$")
_CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "RUB": "₽", "GBP": "£", "INR": "₹"}


class AmountError(ValueError):
    """A typed-in amount that is not a plain positive decimal with at most 6 places."""


def to_decimal(value: Any) -> Decimal:
    """A provider value (str, int or Decimal) as Decimal; a float is refused, not converted."""
    if isinstance(value, bool | float):
        raise TypeError(f"refusing to build money from {type(value).__name__}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {value!r}") from exc
    else:
        raise TypeError(f"cannot read money from {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def loads(body: str | bytes) -> Any:
    """json.loads that keeps every number with a fraction as Decimal."""
    return json.loads(body, parse_float=Decimal)


def parse_amount(text: str) -> int:
    """An admin-typed amount ('12.5') to micro-units; junk, zero, negatives, 1e3, NaN refused."""
    text = text.strip()
    if not _AMOUNT_RE.match(text):
        raise AmountError(text)
    value = Decimal(text)
    if value <= 0 or value > MAX_ADMIN_AMOUNT:
        raise AmountError(text)
    return int(value * MICRO)


def ceil_micro(amount: Decimal, step: int = 1) -> int:
    """Decimal store-currency units -> micro-units, rounded up to a multiple of `step`."""
    micro = (amount * MICRO).to_integral_value(rounding=ROUND_CEILING)
    units = (micro + step - 1) // step
    return int(units) * step


def floor_div(numerator: int, denominator: int) -> int:
    return numerator // denominator


def floor_decimal(amount: Decimal, places: int = 4) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR)


def format_money(micro: int, currency: str = "USD") -> str:
    """12_500_000 -> '$12.50'; sub-cent amounts keep their digits ('$0.0035')."""
    sign = "-" if micro < 0 else ""
    value = Decimal(abs(micro)) / MICRO
    text = f"{value:.2f}" if abs(micro) % CENT == 0 else f"{value.normalize():f}"
    symbol = _CURRENCY_SIGNS.get(currency.upper())
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency.upper()}"
