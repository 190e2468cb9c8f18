from decimal import Decimal

import pytest

from services.money import CENT, MICRO
from services.pricing import (
    max_upstream_price,
    otp_price,
    partial_refund,
    smm_rate_per_1000,
    smm_total,
)

D = Decimal

# --- otp_price -------------------------------------------------------------------------------


def test_otp_price_small_rub_price_rounds_up_to_one_cent() -> None:
    # 0.1453 RUB x 0.011 x 1.2 = 0.00191796 USD -> 1917.96 micro -> up to the cent: $0.01
    assert otp_price(D("0.1453"), D("0.011"), D("20")) == 10_000


def test_otp_price_exact_micro_value_with_micro_step() -> None:
    # Same product, stepped to the micro-unit only: 1917.96 -> 1918 (up, never 1917).
    assert otp_price(D("0.1453"), D("0.011"), D("20"), step=1) == 1918


@pytest.mark.parametrize(
    ("price", "rate", "markup", "expected"),
    [
        (D("12.34"), D("0.011"), D("20"), 170_000),  # 0.162888 -> $0.17
        (D("4"), D("0.011"), D("20"), 60_000),  # 0.0528 -> $0.06
        (D("1.00"), D("1"), D("0"), 1_000_000),  # exact: no rounding at all
        (D("0.50"), D("1"), D("20"), 600_000),  # 0.60 exact
        (D("0.7"), D("1"), D("33.3333"), 940_000),  # 0.93333331 -> 0.94
        (D("1"), D("1"), D("-50"), 500_000),  # a negative markup (a discount) works too
        (D("0"), D("0.011"), D("20"), 0),
        (5, D("1"), 0, 5_000_000),  # ints are exact and accepted
    ],
)
def test_otp_price_exact_values(price: Decimal, rate: Decimal, markup: Decimal, expected: int):
    assert otp_price(price, rate, markup) == expected


def test_otp_price_rounds_up_by_one_micro_above_a_cent() -> None:
    # 1.000001 USD: one micro above a dollar must cost the next cent, not the dollar.
    assert otp_price(D("1.000001"), D("1"), D("0")) == 1_010_000
    # And one micro below stays at the dollar.
    assert otp_price(D("0.999999"), D("1"), D("0")) == 1_000_000


def test_otp_price_no_intermediate_rounding() -> None:
    # 31 significant digits: Decimal's default 28-digit context would round the product down
    # to exactly $1.00; the exact product is a hair above, so the price is the next cent.
    rate = D("1.000000000000000000000000000001")
    assert otp_price(D("1"), rate, D("0")) == 1_010_000


def test_otp_price_other_step() -> None:
    # A currency without cents (step = one whole unit): 0.0528 -> 1 unit
    assert otp_price(D("4"), D("0.011"), D("20"), step=MICRO) == MICRO


@pytest.mark.parametrize("bad", [0.1453, 1.0, True, "0.1453", None])
def test_otp_price_refuses_floats_and_non_decimals(bad: object) -> None:
    with pytest.raises(TypeError):
        otp_price(bad, D("0.011"), D("20"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        otp_price(D("1"), bad, D("20"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        otp_price(D("1"), D("0.011"), bad)  # type: ignore[arg-type]


def test_otp_price_refuses_float_step() -> None:
    with pytest.raises(TypeError):
        otp_price(D("1"), D("1"), D("0"), step=10_000.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("price", "rate", "markup"),
    [
        (D("-1"), D("1"), D("0")),
        (D("1"), D("0"), D("0")),
        (D("1"), D("-1"), D("0")),
        (D("1"), D("1"), D("-100")),
        (D("NaN"), D("1"), D("0")),
        (D("1"), D("Infinity"), D("0")),
    ],
)
def test_otp_price_refuses_nonsense(price: Decimal, rate: Decimal, markup: Decimal) -> None:
    with pytest.raises(ValueError):
        otp_price(price, rate, markup)


def test_otp_price_never_below_the_exact_value() -> None:
    for cents in range(1, 2000, 7):
        price = D(cents) / 100
        result = otp_price(price, D("0.011"), D("20"))
        exact_micro = price * D("0.011") * D("1.2") * MICRO
        assert result % CENT == 0
        assert result >= exact_micro
        assert result - exact_micro < CENT


# --- SMM -----------------------------------------------------------------------------------


def test_smm_rate_per_1000_ceil_to_micro() -> None:
    # 0.90 USD per 1000 x 1.2 = 1.08 exactly
    assert smm_rate_per_1000(D("0.90"), D("1"), D("20")) == 1_080_000
    # 0.0123 x 1.15 = 0.014145 exactly; x 0.011 (RUB) = 0.000155595 -> 155.595 micro -> 156
    assert smm_rate_per_1000(D("0.0123"), D("0.011"), D("15")) == 156
    assert smm_rate_per_1000(D("0.0123"), D("1"), D("15")) == 14_145


def test_smm_rate_refuses_float() -> None:
    with pytest.raises(TypeError):
        smm_rate_per_1000(0.9, D("1"), D("20"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "quantity", "runs", "expected"),
    [
        (1_080_000, 1000, 1, 1_080_000),
        (1_080_000, 500, 1, 540_000),
        (1_080_000, 1, 1, 1080),
        (1_080_001, 1, 1, 1081),  # 1080.001 -> up
        (156, 100, 1, 16),  # 15.6 -> 16
        (156, 100, 3, 47),  # drip-feed: 46.8 -> 47 (not 3 x 16 = 48)
        (1_000_000, 0, 1, 0),
    ],
)
def test_smm_total(rate: int, quantity: int, runs: int, expected: int) -> None:
    assert smm_total(rate, quantity, runs) == expected


def test_smm_total_refuses_floats_and_nonsense() -> None:
    with pytest.raises(TypeError):
        smm_total(1.5, 100)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        smm_total(100, 10.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        smm_total(100, 10, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        smm_total(100, -1)
    with pytest.raises(ValueError):
        smm_total(100, 10, 0)


# --- partial refund ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paid", "remains", "quantity", "expected"),
    [
        (1_080_000, 157, 1000, 169_560),
        (1_000_000, 1, 3, 333_333),  # floor, never up
        (1_000_000, 2, 3, 666_666),
        (1_000_000, 0, 1000, 0),
        (1_000_000, 1000, 1000, 1_000_000),
        (1_000_000, -5, 1000, 0),  # negative remains clamps to nothing
        (1_000_000, 5000, 1000, 1_000_000),  # remains > quantity: never more than paid
        (0, 500, 1000, 0),
    ],
)
def test_partial_refund(paid: int, remains: int, quantity: int, expected: int) -> None:
    assert partial_refund(paid, remains, quantity) == expected


def test_partial_refund_refuses_floats_and_nonsense() -> None:
    with pytest.raises(TypeError):
        partial_refund(1_000_000.0, 1, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        partial_refund(1_000_000, 1.0, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        partial_refund(1_000_000, 1, 0)
    with pytest.raises(ValueError):
        partial_refund(-1, 1, 3)


# --- fallback max price ----------------------------------------------------------------------


def test_max_upstream_price_exact() -> None:
    # $0.17 confirmed; 0.17 / (0.011 x 1.2) = 12.87878... RUB -> floor to 4 dp
    assert max_upstream_price(170_000, D("0.011"), D("20")) == D("12.8787")
    assert str(max_upstream_price(170_000, D("0.011"), D("20"))) == "12.8787"
    # exact division stays exact: $1.20 at rate 1, markup 20 -> 1.0000
    assert max_upstream_price(1_200_000, D("1"), D("20")) == D("1")
    assert str(max_upstream_price(0, D("0.011"), D("20"))) == "0.0000"
    assert max_upstream_price(170_000, D("0.011"), D("20"), places=2) == D("12.87")


def test_max_upstream_price_round_trips_within_the_confirmed_price() -> None:
    rate, markup = D("0.011"), D("20")
    for cents in range(1, 3000, 13):
        confirmed = cents * CENT
        ceiling = max_upstream_price(confirmed, rate, markup)
        assert otp_price(ceiling, rate, markup) <= confirmed
        # and it is the highest such price at 4 dp
        assert otp_price(ceiling + D("0.0001"), rate, markup, step=1) > confirmed


def test_max_upstream_price_refuses_floats() -> None:
    with pytest.raises(TypeError):
        max_upstream_price(170_000.0, D("0.011"), D("20"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        max_upstream_price(170_000, 0.011, D("20"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        max_upstream_price(170_000, D("0.011"), 20.0)  # type: ignore[arg-type]
