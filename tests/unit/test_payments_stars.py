"""Stars arithmetic, invoice payloads and the payment settings."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.settings import SettingsError, load_settings
from services.payments.stars import payment_id_of, quote, worth

TOKEN = "123456:TEST-TOKEN-abcdefghijklmnop"


def settings(**values):
    return load_settings(_env_file=None, bot_token=TOKEN, **values)


@pytest.mark.parametrize(
    ("amount", "rate", "stars", "credit"),
    [
        (5_000_000, "0.02", 250, 5_000_000),  # exact
        (5_000_000, "0.013", 385, 5_005_000),  # 384.6 -> 385 Stars, worth a little more
        (1_000_000, "0.013", 77, 1_001_000),
        (10_000, "0.02", 1, 20_000),  # a cent: one Star at least
        (12_500_000, "0.02", 625, 12_500_000),
    ],
)
def test_stars_round_up_and_credit_what_they_are_worth(amount, rate, stars, credit) -> None:
    offer = quote(amount, Decimal(rate))
    assert (offer.amount, offer.stars, offer.credit) == (amount, stars, credit)
    assert offer.credit >= offer.amount  # the customer never gets less than asked


def test_worth_rounds_down_to_the_micro_unit() -> None:
    assert worth(3, Decimal("0.0000003")) == 0
    assert worth(7, Decimal("0.1234567")) == 864_196  # 0.8641969 -> 0.864196


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("topup:1", 1),
        ("topup:123456789", 123_456_789),
        ("topup:1234567890", None),  # would not fit PostgreSQL's INTEGER
        ("topup:", None),
        ("topup:-1", None),
        ("topup:1 ", None),
        ("topup:١٢", None),  # non-ASCII digits
        ("other:1", None),
        ("", None),
    ],
)
def test_payment_id_of(payload, expected) -> None:
    assert payment_id_of(payload) == expected


def test_payments_are_off_by_default() -> None:
    s = settings()
    assert (s.stars_enabled, s.stars_rate) == (False, None)
    assert (s.topup_min, s.topup_max) == (Decimal(1), Decimal(1000))


def test_stars_need_a_rate() -> None:
    with pytest.raises(SettingsError, match="Invalid setting STARS_RATE: must be set when"):
        settings(stars_enabled=True)
    assert settings(stars_enabled=True, stars_rate="0.013").stars_rate == Decimal("0.013")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("stars_rate", 0.013, "STARS_RATE: must be written as text"),
        ("stars_rate", "0", "STARS_RATE: must be a positive number"),
        ("stars_rate", "NaN", "STARS_RATE: Input should be a finite number"),
        ("topup_min", "-1", "TOPUP_MIN: must be a positive amount"),
        ("topup_max", "0.5", "TOPUP_MAX: must not be below TOPUP_MIN"),
    ],
)
def test_bad_payment_settings_name_the_key(key, value, message) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(**{key: value})
