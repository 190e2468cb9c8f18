"""The reseller API's SMM panel v2 and Toolvico answers, byte for byte in the seeds' shapes, and
their building blocks: service ids, order id lists, money in answers, the refusals' texts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from services.api import errors
from services.api import smm_v2 as v2
from services.api import toolvico as tv
from services.api.shop import OtpOrder
from services.api.smm import (
    BadLink,
    BadQuantity,
    BadRequest,
    OrderFailed,
    ResellerSmm,
    SmmApiOrder,
    order_ids,
    parse_order_id,
    service_id_of,
    service_key,
)

CREATED = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def smm_order(**changes) -> SmmApiOrder:
    values = {
        "id": 1,
        "status": "partial",
        "service_id": 1,
        "link": "https://x.com/a",
        "quantity": 777,
        "price": 278_190,
        "refunded": 0,
        "start_count": 3572,
        "remains": 157,
        "refill_status": None,
        "client_ref": None,
        "created_at": CREATED,
    }
    return SmmApiOrder(**{**values, **changes})


def test_service_ids_are_the_catalog_keys_as_numbers_both_ways() -> None:
    assert service_id_of("00000000ff") == 255
    assert service_key("255") == "00000000ff"
    assert service_key(255) == "00000000ff"
    assert service_key(service_id_of("a1b2c3d4e5")) == "a1b2c3d4e5"
    for junk in ("", "abc", "-1", "1e3", "²", "99999999999999999999", None, True, " "):
        assert service_key(junk) is None, junk
    assert service_key(str(16**10)) is None


def test_order_ids_and_lists() -> None:
    assert parse_order_id("42") == 42 and parse_order_id(42) == 42
    for junk in ("", "-1", "0", "1e3", "99999999999999999999", str(2**31), None, True, 1.5):
        assert parse_order_id(junk) is None, junk
    assert order_ids("1, 10,100,1") == ["1", "10", "100"]
    assert order_ids("") is None and order_ids(" , ") is None and order_ids(None) is None
    assert order_ids(",".join(str(n) for n in range(100))) is not None
    assert order_ids(",".join(str(n) for n in range(101))) is None


def test_api_rate_adds_the_markup_in_micro_units_rounded_up() -> None:
    smm = ResellerSmm(None, SimpleNamespace(catalog=None), markup_percent=Decimal(10))  # type: ignore[arg-type]
    assert smm.api_rate(1_100_400) == 1_210_440
    assert smm.api_rate(1) == 2  # 1.1 -> up
    assert ResellerSmm(None, None).api_rate(1_100_400) == 1_100_400  # type: ignore[arg-type]
    third = ResellerSmm(None, None, markup_percent=Decimal("33.3"))  # type: ignore[arg-type]
    assert third.api_rate(3) == 4 and isinstance(third.api_rate(3), int)


def test_v2_amounts_and_the_seed_shapes() -> None:
    assert v2.amount(278_190) == "0.27819"
    assert v2.amount(100_842_920) == "100.84292"
    assert v2.amount(10_000_000) == "10.00" and v2.amount(900_000) == "0.90"
    assert v2.amount(0) == "0.00"
    assert v2.dumps(v2.status_entry(smm_order(), "USD")) == (
        '{"charge": "0.27819", "start_count": "3572", "status": "Partial", "remains": "157", '
        '"currency": "USD"}'
    )
    pending = smm_order(status="placing", start_count=None, remains=None)
    assert v2.status_entry(pending, "USD")["remains"] == "777"
    assert v2.status_entry(pending, "USD")["status"] == "Pending"
    done = smm_order(status="completed", remains=None)
    assert v2.status_entry(done, "USD")["remains"] == "0"
    assert smm_order(status="in_progress").panel_status == "In progress"
    assert smm_order(status="cancelled").panel_status == "Canceled"
    assert smm_order(status="failed").panel_status == "Canceled"
    assert smm_order(status="unknown").panel_status == "Pending"


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (errors.Refused(), "Invalid API key"),
        (errors.NoSuchOrder(), "Incorrect order ID"),
        (errors.BadService(), "Incorrect service ID"),
        (errors.NoMoney(0), "Not enough funds on balance"),
        (BadLink(), "Bad link"),
        (BadRequest(), "Incorrect request"),
        (errors.BadRef(), "Incorrect request"),
        (BadQuantity(10, 5000, below=True), "Quantity less than minimal 10"),
        (BadQuantity(10, 5000, below=False), "Quantity more than maximum 5000"),
        (OrderFailed(1, "link_busy"), v2.ERR_LINK_BUSY),
        (OrderFailed(1, "bad_link"), "Bad link"),
        (OrderFailed(1, "provider_error"), v2.ERR_FAILED),
        (errors.Unavailable(), v2.ERR_BUSY),
        (errors.Limited(), v2.ERR_BUSY),
    ],
)
def test_v2_refusal_texts(exc: errors.ApiError, text: str) -> None:
    assert v2.error_text(exc) == text


def test_toolvico_money_and_envelopes() -> None:
    assert tv.render({"x": tv.six(40_000)}) == '{"x": 0.040000}'
    assert tv.six_text(12_450_000) == "12.450000"
    assert tv.render({"r": tv.rate_number(1_080_000)}) == '{"r": 1.08}'
    assert tv.render({"r": tv.rate_number(1_100_400)}) == '{"r": 1.1004}'
    assert tv.render({"r": tv.rate_number(2_000_000)}) == '{"r": 2.00}'
    assert tv.ok({"status": "waiting"}).body == '{"success": true, "data": {"status": "waiting"}}'
    reply = tv.fail(429, "Rate limit exceeded", {"Retry-After": "5"})
    assert (reply.status, reply.body, dict(reply.headers)) == (
        429,
        '{"success": false, "error": "Rate limit exceeded"}',
        {"Retry-After": "5"},
    )
    with pytest.raises(TypeError):
        tv.render(0.5)


@pytest.mark.parametrize(
    ("exc", "status", "text"),
    [
        (errors.Refused(), 401, "Invalid or missing API key"),
        (errors.NoMoney(0), 402, "Insufficient wallet balance"),
        (errors.NoSuchOrder(), 404, "Order not found"),
        (errors.BadService(), 404, "Service not found"),
        (errors.BadCountry(), 404, "Country not found"),
        (errors.NoStock(), 503, "No numbers available"),
        (errors.TooEarly(90), 400, "Please wait 90 seconds before cancelling this order"),
        (errors.AlreadyClosed(), 400, "Order is already cancelled"),
        (errors.WrongState(), 400, "Order already received a code and cannot be cancelled"),
        (BadQuantity(10, 5000, below=True), 400, "Quantity must be between 10 and 5000"),
        (OrderFailed(1, None), 503, "Provider unavailable"),
        (errors.Unavailable(), 503, "Provider unavailable"),
        (tv.Refusal(400, "link is required"), 400, "link is required"),
    ],
)
def test_toolvico_refusals(exc: errors.ApiError, status: int, text: str) -> None:
    reply = tv.error_reply(exc)
    assert (reply.status, reply.body) == (status, tv.render({"success": False, "error": text}))


def test_toolvico_otp_status_words() -> None:
    def otp(status: str, code: str | None = None) -> OtpOrder:
        return OtpOrder(
            17, status, "RU", "telegram", 180_000, "+79990000001", code, None, CREATED, None,
            None, False,
        )  # fmt: skip

    assert tv.otp_status(otp("buying")) == {"status": "waiting"}
    assert tv.otp_status(otp("waiting")) == {"status": "waiting"}
    assert tv.otp_status(otp("received", "123456")) == {"status": "received", "code": "123456"}
    assert tv.otp_status(otp("finished", "123456")) == {"status": "received", "code": "123456"}
    assert tv.otp_status(otp("expired")) == {"status": "cancelled"}
    assert tv.otp_status(otp("failed")) == {"status": "cancelled"}
    assert tv.smm_status(smm_order()) == {"status": "Partial", "remains": 157, "start_count": 3572}
