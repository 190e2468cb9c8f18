"""The reseller API's handler_api answers, byte for byte, and its building blocks: key hashing,
the id mapping both ways, money in answers, the rate limit."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.api import errors
from services.api.handler_api import (
    active_item,
    balance_text,
    country_id,
    country_key,
    dumps,
    error_reply,
    order_id,
    parse_max_price,
    service_code,
    service_slug,
    status_text,
    v2_number,
)
from services.api.keys import KEY_BYTES, Client, hash_key, new_key
from services.api.ratelimit import RateLimits
from services.api.shop import OtpOrder, charge_keys, check_ref, client_ref

CREATED = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def order(**changes) -> OtpOrder:
    values = {
        "id": 17,
        "status": "waiting",
        "country": "RU",
        "service": "telegram",
        "price": 180_000,
        "phone": "+79990000001",
        "code": None,
        "sms_text": None,
        "created_at": CREATED,
        "expires_at": datetime(2026, 11, 26, 10, 20, 0, tzinfo=UTC),
        "client_ref": None,
        "can_another_sms": True,
    }
    values.update(changes)
    return OtpOrder(**values)


def test_a_key_is_32_random_bytes_url_safe_and_stored_as_sha256() -> None:
    key = new_key()
    assert len(key) == 43 and key.replace("-", "").replace("_", "").isalnum()
    assert KEY_BYTES == 32 and new_key() != key
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert len(hash_key(key)) == 64


@pytest.mark.parametrize(
    ("micro", "text"),
    [(12_300_000, "12.30"), (0, "0.00"), (9_999, "0.00"), (10_005_000, "10.00"), (5, "0.00")],
)
def test_balance_has_two_decimals_rounded_down(micro: int, text: str) -> None:
    assert balance_text(micro) == text


def test_json_writes_decimals_as_numbers_never_floats() -> None:
    assert dumps({"cost": Decimal("0.180000"), "n": 3, "z": Decimal(0)}) == (
        '{"cost":0.18,"n":3,"z":0}'
    )
    assert dumps({"p": Decimal("10.000000"), "s": "é", "l": [None, True]}) == (
        '{"p":10,"s":"é","l":[null,true]}'
    )
    with pytest.raises(TypeError):
        dumps(0.1)


@pytest.mark.parametrize(
    ("changes", "answer"),
    [
        ({}, "STATUS_WAIT_CODE"),
        ({"status": "buying"}, "STATUS_WAIT_CODE"),
        ({"status": "received", "code": "12:34"}, "STATUS_OK:12:34"),
        ({"status": "finished", "code": "1234"}, "STATUS_CANCEL"),
        ({"status": "cancelled"}, "STATUS_CANCEL"),
        ({"status": "expired"}, "STATUS_CANCEL"),
        ({"status": "failed"}, "STATUS_CANCEL"),
    ],
)
def test_get_status_answers(changes: dict, answer: str) -> None:
    assert status_text(order(**changes)) == answer


@pytest.mark.parametrize(
    ("error", "token"),
    [
        (errors.NoSuchOrder(), "NO_ACTIVATION"),
        (errors.Refused(), "BAD_KEY"),
        (errors.BadService(), "BAD_SERVICE"),
        (errors.BadCountry(), "BAD_COUNTRY"),
        (errors.NoStock(), "NO_NUMBERS"),
        (errors.TooManyOpen(10), "NO_NUMBERS"),
        (errors.Limited(), "NO_NUMBERS"),
        (errors.NoMoney(0), "NO_BALANCE"),
        (errors.PriceAbove(180_000), "WRONG_MAX_PRICE:0.18"),
        (errors.DuplicateRef(3), "ORDER_ALREADY_EXISTS"),
        (errors.TooEarly(60), "EARLY_CANCEL_DENIED"),
        (errors.AlreadyClosed(), "ACCESS_CANCEL_ALREADY"),
        (errors.WrongState(), "BAD_STATUS"),
        (errors.Pending(3), "ERROR_SQL"),
        (errors.Unavailable(), "ERROR_SQL"),
    ],
)
def test_refusals_are_the_protocol_tokens_with_http_200(error, token: str) -> None:
    reply = error_reply(error)
    assert (reply.status, reply.body, reply.content_type) == (200, token, "text/plain")


def test_get_number_v2_and_the_active_list_as_the_protocol_shows_them() -> None:
    assert dumps(v2_number(order(client_ref="ref-1"), "USD")) == (
        '{"activationId":17,"phoneNumber":"79990000001","activationCost":0.18,'
        '"currency":840,"countryCode":"0","canGetAnotherSms":true,'
        '"activationTime":"2026-11-26 10:00:00","activationEndTime":"2026-11-26 10:20:00",'
        '"activationOperator":"any","orderId":"ref-1"}'
    )
    item = active_item(order(status="received", code="5555", sms_text="code 5555"), "USD")
    assert item["smsCode"] == ["5555"] and item["smsText"] == ["code 5555"]
    assert (item["serviceCode"], item["activationStatus"], item["orderId"]) == ("tg", "2", None)


def test_country_ids_and_service_codes_map_both_ways() -> None:
    assert (country_id("RU"), country_key("0")) == ("0", "RU")
    assert (country_id("US"), country_key("187")) == ("187", "US")
    assert country_key("12") == "smsactivate:12"  # USA (virtual): its own key, not the US
    assert country_id("smsactivate:12") == "12"
    assert country_key("x") is None and country_key("9" * 40) is None
    assert (service_code("telegram"), service_slug("tg")) == ("tg", "telegram")
    assert service_slug("zz-unknown") == "zz-unknown"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("17", 17), ("0017", 17), ("", None), ("-1", None), ("1e3", None), ("9" * 20, None)],
)
def test_activation_ids_from_outside(raw: str, expected: int | None) -> None:
    assert order_id({"id": raw}) == expected


def test_max_price() -> None:
    assert parse_max_price("0.1833") == 183_300
    assert parse_max_price(None) is None and parse_max_price(" ") is None
    for junk in ("nan", "inf", "-1", "abc", "1e99"):
        with pytest.raises(ValueError):
            parse_max_price(junk)


def test_client_refs_make_the_ledger_key() -> None:
    client = Client(key_id=4, user_id=1001, push_codes=False)
    assert charge_keys(client, "ref-7") == ("api:4:ref-7", "api:4:ref-7")
    confirm, ledger = charge_keys(client, None)
    assert confirm.startswith("api:4:#") and ledger is None
    assert client_ref("api:4:ref-7") == "ref-7" and client_ref(confirm) is None
    assert client_ref("1001:tok") is None
    assert check_ref("") is None and check_ref("a.b:c_d-1") == "a.b:c_d-1"
    for bad in ("bad ref", "x" * 41, "ключ", "a#b"):
        with pytest.raises(errors.BadRef):
            check_ref(bad)


async def test_rate_limit_is_per_key_and_endpoint_over_a_minute() -> None:
    limits = RateLimits(3)
    assert [await limits.check(1, "a") for _ in range(3)] == [None, None, None]
    assert await limits.check(1, "a") in (59, 60)  # until the oldest leaves the minute
    assert await limits.check(1, "b") is None and await limits.check(2, "a") is None
    assert await RateLimits(0).check(1, "a") is None  # 0 = no limit


async def test_two_api_processes_share_one_limit_through_redis(redis_url: str) -> None:
    """REDIS_URL set: each process's RateLimits counts in Redis, so N processes behind one
    address allow the rate once, not N times."""
    endpoint = f"test:{uuid.uuid4().hex}"
    first, second = RateLimits(3, redis_url), RateLimits(3, redis_url)
    try:
        assert await first.check(7, endpoint) is None
        assert await second.check(7, endpoint) is None
        assert await first.check(7, endpoint) is None
        assert await second.check(7, endpoint) in (59, 60)
        assert await first.check(7, endpoint) in (59, 60)
        assert await second.check(8, endpoint) is None  # another key
    finally:
        await first.aclose()
        await second.aclose()


async def test_redis_out_of_reach_lets_the_request_through(caplog) -> None:
    limits = RateLimits(1, "redis://127.0.0.1:1/0")  # nothing listens there
    assert await limits.check(1, "a") is None
    assert await limits.check(1, "a") is None
    await limits.aclose()
    assert "rate limit store out of reach, request let through" in caplog.text
