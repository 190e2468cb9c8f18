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
    "ruled_max_upstream_price",
    "ruled_otp_price",
    "ruled_smm_rate",
    "smm_floor",
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
    rate: Decimal, markup_percent: Decimal, step: int = CENT, min_profit: int | None = None
) -> Callable[[Decimal], int]:
    """otp_price() with the rate and markup fixed: the same result for every provider price,
    for pricing many of them (the catalog prices ~15k distinct ones per provider and markup).
    With `min_profit` (micro-units), ruled_otp_price()'s floor too: never below cost + it."""
    factor_n, factor_d = _factor(rate, markup_percent)
    step = _integer("step", step)
    if step <= 0:
        raise ValueError("step must be positive")
    numerator, denominator = factor_n * MICRO, factor_d * step
    floor = _floor_of(rate, step, min_profit)

    def price(provider_price: Decimal) -> int:
        amount_n, amount_d = _ratio("provider price", provider_price)
        if amount_n < 0:
            raise ValueError(f"provider price must not be negative, got {provider_price}")
        marked_up = _ceil_div(amount_n * numerator, amount_d * denominator) * step
        return marked_up if floor is None else max(marked_up, floor(amount_n, amount_d))

    return price


def _floor_of(rate: object, step: int, min_profit: int | None) -> Callable[[int, int], int] | None:
    """ceil(cost + min_profit) to `step`, cost = amount x rate, as a function of the amount's
    exact fraction; None without a minimum profit."""
    if min_profit is None:
        return None
    profit = _integer("min_profit", min_profit)
    if profit < 0:
        raise ValueError("min_profit must not be negative")
    rate_n, rate_d = _ratio("rate", rate)

    def floor(amount_n: int, amount_d: int) -> int:
        cost_n, cost_d = amount_n * rate_n * MICRO, amount_d * rate_d
        return _ceil_div(cost_n + profit * cost_d, cost_d * step) * step

    return floor


def ruled_otp_price(
    provider_price: Decimal,
    rate: Decimal,
    markup_percent: Decimal,
    step: int = CENT,
    *,
    fixed: int | None = None,
    min_profit: int | None = None,
) -> int:
    """The price of one number when an admin's rules apply (docs/money.md, "How a price is
    decided"): the fixed price (rounded up to `step`) instead of the markup's, then never
    below ceil(cost + min_profit) to `step`, cost = provider price x rate."""
    amount_n, amount_d = _ratio("provider price", provider_price)
    if amount_n < 0:
        raise ValueError(f"provider price must not be negative, got {provider_price}")
    if fixed is None:
        base = otp_price(provider_price, rate, markup_percent, step)
    else:
        base = _ceil_div(_integer("fixed", fixed), step) * step
    floor = _floor_of(rate, step, min_profit)
    return base if floor is None else max(base, floor(amount_n, amount_d))


def smm_rate_per_1000(
    provider_rate_per_1000: Decimal, rate: Decimal, markup_percent: Decimal
) -> int:
    """The user's SMM rate per 1000, rounded UP to the micro-unit; shown and charged as is."""
    return _marked_up(provider_rate_per_1000, rate, markup_percent, 1)


def ruled_smm_rate(
    provider_rate_per_1000: Decimal,
    rate: Decimal,
    markup_percent: Decimal,
    *,
    fixed: int | None = None,
) -> int:
    """The user's SMM rate per 1000: an admin's fixed rate, else the markup's."""
    if fixed is not None:
        return _integer("fixed", fixed)
    return smm_rate_per_1000(provider_rate_per_1000, rate, markup_percent)


def smm_floor(provider_rate_per_1000: Decimal, rate: Decimal, units: int, min_profit: int) -> int:
    """The least an SMM order may cost with a minimum profit per sale: ceil to the micro-unit
    of provider rate x rate x units / 1000 + min_profit (`units` = quantity x runs; for a
    Package, 1000: its rate is the package's price)."""
    amount_n, amount_d = _ratio("provider rate", provider_rate_per_1000)
    rate_n, rate_d = _ratio("rate", rate)
    units = _integer("units", units)
    profit = _integer("min_profit", min_profit)
    if amount_n < 0 or units < 0 or profit < 0:
        raise ValueError("provider rate, units and min_profit must not be negative")
    denominator = amount_d * rate_d * 1000
    return _ceil_div(amount_n * rate_n * units * MICRO + profit * denominator, denominator)


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


def ruled_max_upstream_price(
    confirmed_micro: int,
    rate: Decimal,
    markup_percent: Decimal,
    places: int = 4,
    *,
    fixed: bool = False,
    min_profit: int | None = None,
    current: Decimal | None = None,
) -> Decimal:
    """max_upstream_price() when an admin's rules apply: the highest provider price whose
    ruled_otp_price() stays within what the user confirmed, floored to `places`.

    With a markup: floor(confirmed / (rate x (1 + markup/100))), and with a minimum profit
    also at most floor((confirmed - min_profit) / rate). With a fixed price the markup plays no
    part: floor((confirmed - min_profit) / rate), or without a minimum profit
    floor(confirmed / rate) (the shop never pays more than it is paid); never below `current`,
    the price the offer was shown at (a fixed price below cost is the owner's choice)."""
    confirmed = _integer("confirmed_micro", confirmed_micro)
    places = _integer("places", places)
    profit = 0 if min_profit is None else _integer("min_profit", min_profit)
    if confirmed < 0 or profit < 0:
        raise ValueError("confirmed_micro and min_profit must not be negative")
    rate_n, rate_d = _ratio("rate", rate)
    if rate_n <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    scale = 10**places
    # floor((confirmed - profit) / rate), in units of 10^-places of the provider's currency
    by_cost = max(0, confirmed - profit) * rate_d * scale // (MICRO * rate_n)
    if fixed:
        units = by_cost
    else:
        factor_n, factor_d = _factor(rate, markup_percent)
        units = confirmed * factor_d * scale // (MICRO * factor_n)
        if min_profit is not None:
            units = min(units, by_cost)
    result = floor_decimal(Decimal(units).scaleb(-places), places)
    if fixed and current is not None and current > result:
        return current
    return result
