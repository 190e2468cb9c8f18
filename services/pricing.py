"""The money formulas (docs/money.md), as pure functions over integer micro-units.

Every function refuses floats (TypeError): provider amounts come in as Decimal parsed from text,
store amounts as int micro-units. Each formula is computed exactly as a fraction of integers
(`Decimal.as_integer_ratio()`), so its one rounding step (up for what a user pays, down for a
refund or a max price) is the only place a digit is lost: no Decimal context precision, no
intermediate rounding. The catalog prices ~50k offers per refresh, so this is also the fast way.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from services.money import CENT, MICRO, floor_decimal

__all__ = [
    "CENT",
    "MICRO",
    "max_upstream_price",
    "otp_price",
    "otp_pricer",
    "partial_refund",
    "smm_rate_per_1000",
    "smm_total",
]


def _ratio(name: str, value: object) -> tuple[int, int]:
    """A Decimal or int as an exact (numerator, denominator); floats, bools, strings refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name} must be finite, got {value!r}")
        return value.as_integer_ratio()
    if isinstance(value, int) and not isinstance(value, bool):
        return value, 1
    raise TypeError(f"{name} must be Decimal or int, not {type(value).__name__}")


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be int, not {type(value).__name__}")
    return value


def _factor(rate: object, markup_percent: object) -> tuple[int, int]:
    """rate x (1 + markup/100) as an exact fraction (numerator, denominator), both positive."""
    rate_n, rate_d = _ratio("rate", rate)
    markup_n, markup_d = _ratio("markup_percent", markup_percent)
    if rate_n <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    percent_n = 100 * markup_d + markup_n  # (100 + markup) = percent_n / markup_d
    if percent_n <= 0:
        raise ValueError(f"markup_percent must be above -100, got {markup_percent}")
    return rate_n * percent_n, rate_d * markup_d * 100


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _marked_up(amount: object, rate: object, markup_percent: object, step: int) -> int:
    """ceil(amount x rate x (1 + markup/100)) in micro-units, to a multiple of `step`."""
    amount_n, amount_d = _ratio("provider price", amount)
    if amount_n < 0:
        raise ValueError(f"provider price must not be negative, got {amount}")
    step = _integer("step", step)
    if step <= 0:
        raise ValueError("step must be positive")
    factor_n, factor_d = _factor(rate, markup_percent)
    units = _ceil_div(amount_n * factor_n * MICRO, amount_d * factor_d * step)
    return units * step


def otp_price(
    provider_price: Decimal, rate: Decimal, markup_percent: Decimal, step: int = CENT
) -> int:
    """What a user pays for one activation: price x rate x (1 + markup/100), in micro-units,
    rounded UP to `step` (the store currency's smallest unit: CENT for USD, MICRO for JPY)."""
    return _marked_up(provider_price, rate, markup_percent, step)


def otp_pricer(
    rate: Decimal, markup_percent: Decimal, step: int = CENT
) -> Callable[[Decimal], int]:
    """otp_price() with the rate and markup fixed: the same result for every provider price,
    for pricing many of them (the catalog prices ~15k distinct ones per provider and markup)."""
    factor_n, factor_d = _factor(rate, markup_percent)
    step = _integer("step", step)
    if step <= 0:
        raise ValueError("step must be positive")
    numerator, denominator = factor_n * MICRO, factor_d * step

    def price(provider_price: Decimal) -> int:
        amount_n, amount_d = _ratio("provider price", provider_price)
        if amount_n < 0:
            raise ValueError(f"provider price must not be negative, got {provider_price}")
        return _ceil_div(amount_n * numerator, amount_d * denominator) * step

    return price


def smm_rate_per_1000(
    provider_rate_per_1000: Decimal, rate: Decimal, markup_percent: Decimal
) -> int:
    """The user's SMM rate per 1000, rounded UP to the micro-unit; shown and charged as is."""
    return _marked_up(provider_rate_per_1000, rate, markup_percent, 1)


def smm_total(rate_per_1000_micro: int, quantity: int, runs: int = 1) -> int:
    """ceil(rate per 1000 x quantity x runs / 1000); runs > 1 for drip-feed."""
    rate = _integer("rate_per_1000_micro", rate_per_1000_micro)
    quantity = _integer("quantity", quantity)
    runs = _integer("runs", runs)
    if rate < 0 or quantity < 0 or runs < 1:
        raise ValueError("rate and quantity must not be negative, runs must be at least 1")
    return _ceil_div(rate * quantity * runs, 1000)


def partial_refund(paid: int, remains: int, quantity: int) -> int:
    """floor(paid x remains / quantity) with remains clamped to [0, quantity]: never more than
    was paid (a panel reporting remains > quantity or < 0 cannot make us pay out extra)."""
    paid = _integer("paid", paid)
    remains = _integer("remains", remains)
    quantity = _integer("quantity", quantity)
    if paid < 0:
        raise ValueError("paid must not be negative")
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    remains = min(max(remains, 0), quantity)
    return paid * remains // quantity


def max_upstream_price(
    confirmed_micro: int, rate: Decimal, markup_percent: Decimal, places: int = 4
) -> Decimal:
    """The highest provider price (provider currency, floored to `places` decimals) whose
    marked-up price is still within what the user confirmed:
    floor(confirmed / (rate x (1 + markup/100))). otp_price() of the result never exceeds
    `confirmed_micro` when that is a whole number of price steps (what a user confirms)."""
    confirmed = _integer("confirmed_micro", confirmed_micro)
    places = _integer("places", places)
    if confirmed < 0:
        raise ValueError("confirmed_micro must not be negative")
    if places < 0:
        raise ValueError("places must not be negative")
    factor_n, factor_d = _factor(rate, markup_percent)
    units = confirmed * factor_d * 10**places // (MICRO * factor_n)
    return floor_decimal(Decimal(units).scaleb(-places), places)  # exact; fixes the exponent
