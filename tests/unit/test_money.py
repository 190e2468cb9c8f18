from decimal import Decimal

import pytest

from services.money import (
    AmountError,
    ceil_micro,
    format_money,
    loads,
    parse_amount,
    to_decimal,
)


@pytest.mark.parametrize(
    ("text", "micro"),
    [("1", 1_000_000), ("12.5", 12_500_000), ("0.000001", 1), ("50.00", 50_000_000)],
)
def test_parse_amount_accepts_plain_decimals(text: str, micro: int) -> None:
    assert parse_amount(text) == micro


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "0.0",
        "-5",
        "1e3",
        "NaN",
        "nan",
        "inf",
        "1,000",
        "1 000",
        "1.0000001",
        "abc",
        "",
        "+5",
        ".5",
        "5.",
        "1_000",
        "٥",
        "2000000000",
    ],
)
def test_parse_amount_refuses_junk(text: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text)


def test_to_decimal_refuses_float() -> None:
    with pytest.raises(TypeError):
        to_decimal(0.1)
    assert to_decimal("0.1") == Decimal("0.1")
    assert to_decimal(3) == Decimal(3)
    with pytest.raises(ValueError):
        to_decimal("NaN")


def test_loads_keeps_decimals() -> None:
    assert loads('{"price": 0.1}')["price"] == Decimal("0.1")


def test_ceil_micro_rounds_up_to_step() -> None:
    assert ceil_micro(Decimal("0.3501"), step=10_000) == 360_000
    assert ceil_micro(Decimal("0.35"), step=10_000) == 350_000
    assert ceil_micro(Decimal("0.0000001")) == 1


def test_format_money() -> None:
    assert format_money(12_500_000) == "$12.50"
    assert format_money(-1_000_000) == "-$1.00"
    assert format_money(3_500) == "$0.0035"
    assert format_money(1_000_000, "XYZ") == "1.00 XYZ"
