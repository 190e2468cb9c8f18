from __future__ import annotations

from decimal import Decimal

import pytest

from services.markups import parse_percent


@pytest.mark.parametrize(
    ("text", "value"),
    [("25", "25"), ("12.5", "12.5"), ("-10", "-10"), ("30%", "30"), ("0", "0"), ("7.25", "7.25")],
)
def test_a_percent_is_plain_ascii_decimal(text: str, value: str) -> None:
    assert parse_percent(text) == Decimal(value)


@pytest.mark.parametrize(
    "text",
    ["²", "1²", "٣٠", "1.2.3", "--5", "5-", "-", ".", "", "1e3", "NaN", "12.345", "-51", "10001"],
)
def test_anything_else_is_a_value_error(text: str) -> None:
    """Unicode digits pass str.isdigit() and then break Decimal(): a ValueError, never a crash."""
    with pytest.raises(ValueError):
        parse_percent(text)
