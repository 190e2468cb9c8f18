"""Toolvico OTP adapter against the fake Toolvico server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.money import loads
from services.providers.base import OtpOffer, OtpPurchase, OtpState, OtpStatus
from services.providers.config import ProviderConfig
from services.providers.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    EarlyCancel,
    InvalidState,
    NoNumbers,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    PriceTooHigh,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
)
from services.providers.toolvico import OFFER_STOCK, ToolvicoOtpProvider, service_slug
from tests.fakes import toolvico as seed
from tests.fakes.toolvico import FakeToolvico

KEY = "tv-key-5f3a9c1e77d0"


def make_config(fake: FakeToolvico, **overrides: Any) -> ProviderConfig:
    values: dict[str, Any] = {
        "name": "toolvico1",
        "kind": "toolvico",
        "base_url": fake.url,
        "api_key": KEY,
        "timeout_s": 2.0,
    }
    values.update(overrides)
    return ProviderConfig(**values)


@pytest.fixture
async def fake() -> AsyncIterator[FakeToolvico]:
    async with FakeToolvico(api_key=KEY) as server:
        yield server


def open_provider(fake: FakeToolvico, **overrides: Any) -> ToolvicoOtpProvider:
    provider = ToolvicoOtpProvider(make_config(fake, **overrides))
    provider.http.backoff_s = 0.001  # keep read retries fast
    return provider


@pytest.fixture
async def provider(fake: FakeToolvico) -> AsyncIterator[ToolvicoOtpProvider]:
    async with open_provider(fake) as p:
        yield p


async def raise_of(coro: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await coro
    return info.value


# --- the fake serves the seed's literal bodies ------------------------------------------------


async def test_fake_answers_with_the_seed_literals(fake: FakeToolvico) -> None:
    headers = {"X-API-Key": KEY}
    async with httpx.AsyncClient(base_url=fake.url + "/", headers=headers) as client:

        async def get(path: str) -> str:
            return (await client.get(path)).text

        async def post(path: str, body: dict) -> str:
            return (await client.post(path, json=body)).text

        assert loads(await get("otp?action=balance")) == loads(seed.SEED_BALANCE)
        assert loads(await get("smm?action=balance")) == loads(seed.SEED_BALANCE)
        assert loads(await get("otp?action=countries&type=1")) == loads(seed.SEED_OTP_COUNTRIES)
        services = await get("otp?action=services&country_id=61&type=1")
        assert loads(services) == loads(seed.SEED_OTP_SERVICES_61)
        assert '"your_price_usd": 0.040000' in services  # a JSON number, 6 dp, as in the seed
        buy = {"service_id": "306343", "country_id": "61", "type": 1}
        assert loads(await post("otp?action=buy_number", buy)) == loads(seed.SEED_OTP_BUY)
        assert loads(await post("otp?action=cancel", {"order_id": 42})) == loads(
            seed.SEED_OTP_CANCEL
        )
        await post("otp?action=buy_number", buy)
        fake.deliver_code("43", "123456")
        status = await get("otp?action=get_status&order_id=43")
        assert loads(status) == loads(seed.SEED_OTP_STATUS)
        assert loads(await get("smm?action=services")) == loads(seed.SEED_SMM_SERVICES)
        order = {"service_id": "1", "link": "https://instagram.com/user", "quantity": 500}
        placed = await post("smm?action=place_order", order)
        assert loads(placed) == loads(seed.SEED_SMM_PLACE_ORDER)
        assert '"charged": 0.540000' in placed
        fake.set_smm_order("15", status="Partial", remains=157, start_count=3572)
        status = await get("smm?action=order_status&order_id=15")
        assert loads(status) == loads(seed.SEED_SMM_ORDER_STATUS)


# --- happy paths ------------------------------------------------------------------------------


async def test_balance_is_an_exact_decimal_and_the_key_goes_in_the_header(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    balance = await provider.balance()
    assert balance == Decimal("12.45")
    assert str(balance) == "12.450000"
    (request,) = fake.requests_for("balance")
    assert request.api_key == KEY
    assert "api_key" not in request.query and KEY not in str(request.query)


async def test_offers_map_countries_and_services_to_catalog_keys(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    offers = await provider.offers()
    assert sorted(offers, key=lambda o: (o.country, o.service)) == [
        OtpOffer(
            country="IN",
            service="telegram",
            price=Decimal("0.120000"),
            stock=OFFER_STOCK,
            native_country="21",
            native_service="306350",
            country_name="India",
            service_name="Telegram",
        ),
        OtpOffer(
            country="IN",
            service="whatsapp",
            price=Decimal("0.250000"),
            stock=OFFER_STOCK,
            native_country="21",
            native_service="306351",
            country_name="India",
            service_name="WhatsApp",
        ),
        OtpOffer(
            country="PK",
            service="discord",
            price=Decimal("0.040000"),
            stock=OFFER_STOCK,
            native_country="61",
            native_service="306343",
            country_name="Pakistan",
            service_name="discord",
        ),
    ]
    assert [r.query for r in fake.requests_for("countries")] == [
        {"action": "countries", "type": "1"}
    ]
    assert sorted(r.query["country_id"] for r in fake.requests_for("services")) == ["21", "61"]
    assert all(r.query["type"] == "1" for r in fake.requests_for("services"))


async def test_offers_for_one_country_fetch_only_that_country(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    offers = await provider.offers("PK")
    assert [(o.country, o.service, o.price) for o in offers] == [
        ("PK", "discord", Decimal("0.040000"))
    ]
    assert [r.query["country_id"] for r in fake.requests_for("services")] == ["61"]
    assert await provider.offers("ZZ") == []
    assert len(fake.requests_for("services")) == 1


async def test_prices_as_strings_and_json_numbers_are_exact(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    fake.set_services(
        "61",
        [
            {"service_id": "1", "name": "Telegram", "your_price_usd": "0.123456"},
            {"service_id": "2", "name": "WhatsApp", "your_price_usd": Decimal("0.100000")},
            {"service_id": "3", "name": "Viber", "your_price_usd": 2},
            {"service_id": 4, "name": "Discord", "your_price_usd": Decimal("0.000001")},
        ],
    )
    offers = {o.service: o for o in await provider.offers("PK")}
    assert offers["telegram"].price == Decimal("0.123456")
    assert str(offers["whatsapp"].price) == "0.100000"  # parsed from the text, not via float
    assert offers["viber"].price == Decimal(2)
    assert str(offers["discord"].price) == "0.000001"
    assert offers["discord"].native_service == "4"  # numeric ids become strings


async def test_unknown_names_are_kept_and_labels_map_to_slugs(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    fake.set_countries([{"id": 77, "name": "Atlantis"}, {"id": "5", "name": "USA"}])
    fake.set_services(
        "77",
        [
            {"service_id": "9", "name": "Some App", "your_price_usd": "1.5"},
            {"service_id": "10", "name": "VK", "your_price_usd": "0.5"},
            {"service_id": "11", "name": "LINE Messenger", "your_price_usd": "0.5"},
        ],
    )
    fake.set_services("5", [{"service_id": "12", "name": "Google", "your_price_usd": "0.5"}])
    keys = {(o.country, o.service) for o in await provider.offers()}
    assert keys == {
        ("toolvico:77", "someapp"),
        ("toolvico:77", "vkontakte"),
        ("toolvico:77", "line"),
        ("US", "google"),
    }
    assert service_slug("discord", "1") == "discord"
    assert service_slug("  ", "306343") == "toolvico:306343"


async def test_bad_catalog_rows_are_skipped_and_the_cheapest_duplicate_wins(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    fake.set_services(
        "61",
        [
            {"name": "no id", "your_price_usd": "1"},
            {"service_id": "1", "name": "Telegram", "your_price_usd": "abc"},
            {"service_id": "3", "name": "telegram", "your_price_usd": "0.20"},
            {"service_id": "2", "name": "Telegram", "your_price_usd": "0.30"},
            {"service_id": "4", "name": "Viber", "your_price_usd": "0"},
        ],
    )
    offers = await provider.offers("PK")
    assert [(o.service, o.native_service, o.price) for o in offers] == [
        ("telegram", "3", Decimal("0.20"))
    ]


async def test_server_type_is_sent_as_type(fake: FakeToolvico) -> None:
    fake.set_countries([{"id": "61", "name": "Pakistan"}], server_type=3)
    fake.set_services(
        "61",
        [{"service_id": "7", "name": "discord", "your_price_usd": "0.05"}],
        server_type=3,
    )
    async with open_provider(fake, server_type=3) as provider:
        purchase = await provider.buy("PK", "discord", client_ref="o1")
    assert purchase.order_id == "42"
    assert fake.requests_for("countries")[0].query["type"] == "3"
    assert fake.requests_for("services")[0].query["type"] == "3"
    assert fake.requests_for("buy_number")[0].body == {
        "service_id": "7",
        "country_id": "61",
        "type": 3,
    }


async def test_buy_sends_the_seed_body_and_returns_the_purchase(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    await provider.offers()
    purchase = await provider.buy("PK", "discord", client_ref="our-1")
    assert purchase == OtpPurchase(order_id="42", phone="+923001234567")
    (request,) = fake.requests_for("buy_number")
    assert request.method == "POST"
    assert request.body == {"service_id": "306343", "country_id": "61", "type": 1}
    assert fake.wallet == Decimal("12.41")
    assert len(fake.requests_for("services")) == 2  # the cached catalog was used


async def test_buy_without_a_catalog_fetches_the_country_first(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    purchase = await provider.buy("IN", "telegram", client_ref="our-1")
    assert purchase.phone == "+919801234567"
    assert [r.query["country_id"] for r in fake.requests_for("services")] == ["21"]
    assert fake.requests_for("buy_number")[0].body["service_id"] == "306350"


async def test_buy_with_max_price_reprices_and_refuses_above_it(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    await provider.offers()
    fake.set_services(
        "61", [{"service_id": "306343", "name": "discord", "your_price_usd": "0.09"}]
    )
    exc = await raise_of(provider.buy("PK", "discord", max_price=Decimal("0.05"), client_ref="r"))
    assert isinstance(exc, PriceTooHigh)
    assert exc.min_price == Decimal("0.09")
    assert fake.calls["otp:buy_number"] == 0
    purchase = await provider.buy("PK", "discord", max_price=Decimal("0.09"), client_ref="r")
    assert purchase.order_id == "42"


async def test_refreshing_one_country_keeps_the_others_cached(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    await provider.offers()
    await provider.offers("PK")
    await provider.buy("IN", "whatsapp", client_ref="r")
    assert [r.query["country_id"] for r in fake.requests_for("services")].count("21") == 1
    assert fake.requests_for("buy_number")[0].body["service_id"] == "306351"


async def test_buy_of_something_not_sold_is_no_numbers_without_a_buy(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    exc = await raise_of(provider.buy("PK", "telegram", client_ref="r"))
    assert type(exc) is NoNumbers
    assert fake.calls["otp:buy_number"] == 0


async def test_status_waiting_code_and_cancelled(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    first = await provider.buy("PK", "discord", client_ref="a")
    second = await provider.buy("PK", "discord", client_ref="b")
    assert await provider.status(first.order_id) == OtpStatus(state=OtpState.WAITING)
    fake.deliver_code(first.order_id, "123456")
    assert await provider.status(first.order_id) == OtpStatus(state=OtpState.CODE, code="123456")
    fake.expire(second.order_id)
    assert await provider.status(second.order_id) == OtpStatus(state=OtpState.CANCELLED)
    assert fake.requests_for("get_status")[0].query == {"action": "get_status", "order_id": "42"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"status":"received","code":123456}', OtpStatus(state=OtpState.CODE, code="123456")),
        ('{"status":"Received","code":" 0042 "}', OtpStatus(state=OtpState.CODE, code="0042")),
        ('{"status":"canceled"}', OtpStatus(state=OtpState.CANCELLED)),
    ],
)
async def test_status_variants(
    fake: FakeToolvico, provider: ToolvicoOtpProvider, data: str, expected: OtpStatus
) -> None:
    fake.add_fault("raw", action="get_status", body=f'{{"success":true,"data":{data}}}')
    assert await provider.status("42") == expected


@pytest.mark.parametrize(
    "data", ['{"status":"received"}', '{"status":"received","code":""}', '{"status":"done"}', "{}"]
)
async def test_status_that_cannot_be_read_is_bad_response(
    fake: FakeToolvico, provider: ToolvicoOtpProvider, data: str
) -> None:
    fake.add_fault("raw", action="get_status", body=f'{{"success":true,"data":{data}}}')
    exc = await raise_of(provider.status("42"))
    assert type(exc) is BadResponse
    assert exc.raw == repr(loads(data))


async def test_cancel_refunds_and_sends_an_integer_id(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    purchase = await provider.buy("PK", "discord", client_ref="a")
    await provider.cancel(purchase.order_id)
    assert fake.requests_for("cancel")[0].body == {"order_id": 42}
    assert fake.wallet == Decimal("12.45")
    assert (await provider.status(purchase.order_id)).state is OtpState.CANCELLED


@pytest.mark.parametrize("order_id", ["²", "٤٢"])
async def test_cancel_of_a_non_ascii_id_is_sent_as_text(
    fake: FakeToolvico, provider: ToolvicoOtpProvider, order_id: str
) -> None:
    """An id typed into /adopt: "²".isdigit() is True, int("²") raises, and "٤٢" is not 42."""
    assert type(await raise_of(provider.cancel(order_id))) is OrderNotFound
    assert fake.requests_for("cancel")[0].body == {"order_id": order_id}


async def test_cancel_too_early_is_early_cancel_with_the_wait(fake: FakeToolvico) -> None:
    fake.min_cancel_wait_s = 120
    async with open_provider(fake) as provider:
        purchase = await provider.buy("PK", "discord", client_ref="a")
        exc = await raise_of(provider.cancel(purchase.order_id))
        assert type(exc) is EarlyCancel
        assert exc.retry_after_s == 120.0
        fake.advance(121)
        await provider.cancel(purchase.order_id)
    assert fake.otp_orders["42"].status == "cancelled"


async def test_cancel_after_a_code_or_twice_is_invalid_state(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    first = await provider.buy("PK", "discord", client_ref="a")
    second = await provider.buy("PK", "discord", client_ref="b")
    fake.deliver_code(first.order_id, "1111")
    assert type(await raise_of(provider.cancel(first.order_id))) is InvalidState
    await provider.cancel(second.order_id)
    assert type(await raise_of(provider.cancel(second.order_id))) is InvalidState


async def test_cancel_answer_without_refund_is_invalid_state(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    fake.add_fault("raw", action="cancel", body='{"success":true,"data":{"refunded":false}}')
    assert type(await raise_of(provider.cancel("42"))) is InvalidState


async def test_unknown_order_is_order_not_found(provider: ToolvicoOtpProvider) -> None:
    assert type(await raise_of(provider.status("999"))) is OrderNotFound
    assert type(await raise_of(provider.cancel("999"))) is OrderNotFound


# --- HTTP status codes (error envelopes) -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "call", "expected"),
    [
        (401, "Invalid or missing API key", "balance", AuthError),
        (402, "Insufficient wallet balance", "buy", ProviderBalanceLow),
        (403, "API access not enabled", "offers", AuthError),
        (404, "Order not found", "status", OrderNotFound),
        (404, "Order not found", "cancel", OrderNotFound),
        (404, "Service not found", "buy", BadRequest),
        (503, "Provider unavailable", "buy", Unavailable),
        (503, "No numbers available", "buy", NoNumbers),
        (503, "Out of stock", "buy", NoNumbers),
        (500, "Internal server error", "status", Unavailable),
        (502, "Bad gateway", "balance", Unavailable),
        (400, "Invalid type", "offers", BadRequest),
    ],
)
async def test_http_status_mapping(
    fake: FakeToolvico,
    provider: ToolvicoOtpProvider,
    status: int,
    error: str,
    call: str,
    expected: type[ProviderError],
) -> None:
    await provider.offers("PK")
    fake.fail(status, error, times=None)
    calls = {
        "balance": provider.balance,
        "offers": provider.offers,
        "buy": lambda: provider.buy("PK", "discord", client_ref="r"),
        "status": lambda: provider.status("42"),
        "cancel": lambda: provider.cancel("42"),
    }
    exc = await raise_of(calls[call]())
    assert type(exc) is expected
    assert exc.provider == "toolvico1"
    assert error in str(exc) and f"HTTP {status}" in str(exc)
    assert exc.raw == f'{{"success": false, "error": "{error}"}}'


@pytest.mark.parametrize(("header", "expected"), [("17", 17.0), (None, 60.0)])
async def test_429_is_unavailable_with_retry_after(
    fake: FakeToolvico, provider: ToolvicoOtpProvider, header: str | None, expected: float
) -> None:
    fake.fail(429, "Rate limit exceeded", action="balance", retry_after=header)
    exc = await raise_of(provider.balance())
    assert type(exc) is Unavailable
    assert exc.retry_after_s == expected
    assert exc.retryable


async def test_503_carries_retry_after_when_sent(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    fake.fail(503, action="get_status", retry_after="30")
    exc = await raise_of(provider.status("42"))
    assert type(exc) is Unavailable and exc.retry_after_s == 30.0


async def test_real_refusals_from_the_simulator(fake: FakeToolvico) -> None:
    async with open_provider(fake, api_key="wrong-key-0000") as provider:
        assert type(await raise_of(provider.balance())) is AuthError
    async with open_provider(fake) as provider:
        fake.api_enabled = False
        assert type(await raise_of(provider.balance())) is AuthError
        fake.api_enabled = True
        fake.wallet = Decimal("0.01")
        assert type(await raise_of(provider.buy("PK", "discord", client_ref="r"))) is (
            ProviderBalanceLow
        )
        fake.wallet = Decimal(10)
        fake.set_no_numbers("306343", status=503)
        assert type(await raise_of(provider.buy("PK", "discord", client_ref="r"))) is NoNumbers
        fake.set_no_numbers("306343", status=200)
        assert type(await raise_of(provider.buy("PK", "discord", client_ref="r"))) is NoNumbers
        fake.restock("306343")
        assert (await provider.buy("PK", "discord", client_ref="r")).order_id == "42"
    assert fake.wallet == Decimal("9.96")
    assert fake.calls["otp:buy_number"] == 4


# --- error envelope with HTTP 200 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "call", "expected"),
    [
        ("Insufficient balance", "buy", ProviderBalanceLow),
        ("Your wallet balance is too low", "buy", ProviderBalanceLow),
        ("No numbers available", "buy", NoNumbers),
        ("Service out of stock", "buy", NoNumbers),
        ("Number not available for this service", "buy", NoNumbers),
        ("Please wait 2 minutes before cancelling", "cancel", EarlyCancel),
        ("Minimum waiting period not reached", "cancel", EarlyCancel),
        ("Order not found", "status", OrderNotFound),
        ("Order not found", "cancel", OrderNotFound),
        ("Only waiting orders can be cancelled", "cancel", InvalidState),
        ("Invalid API key", "balance", AuthError),
        ("Something went wrong", "buy", BadRequest),
        ("Something went wrong", "balance", BadRequest),
    ],
)
async def test_error_envelope_with_http_200_is_an_error(
    fake: FakeToolvico,
    provider: ToolvicoOtpProvider,
    error: str,
    call: str,
    expected: type[ProviderError],
) -> None:
    await provider.offers("PK")
    fake.fail(200, error, times=None)
    calls = {
        "balance": provider.balance,
        "buy": lambda: provider.buy("PK", "discord", client_ref="r"),
        "status": lambda: provider.status("42"),
        "cancel": lambda: provider.cancel("42"),
    }
    exc = await raise_of(calls[call]())
    assert type(exc) is expected
    assert error in str(exc)


async def test_early_cancel_reads_the_wait_from_the_text(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    fake.fail(200, "Please wait 2 minutes before cancelling", action="cancel")
    exc = await raise_of(provider.cancel("42"))
    assert isinstance(exc, EarlyCancel) and exc.retry_after_s == 120.0
    fake.fail(400, "Minimum waiting period not reached", action="cancel", retry_after="45")
    exc = await raise_of(provider.cancel("42"))
    assert isinstance(exc, EarlyCancel) and exc.retry_after_s == 45.0
    fake.fail(400, "Minimum waiting period not reached", action="cancel")
    exc = await raise_of(provider.cancel("42"))
    assert isinstance(exc, EarlyCancel) and exc.retry_after_s is None


# --- bodies that are not envelopes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "body", "expected"),
    [
        ("html", 200, None, BadResponse),
        ("empty", 200, None, BadResponse),
        ("raw", 200, '{"balance": "1.00"}', BadResponse),
        ("raw", 200, '{"success": true, "data": []}', BadResponse),
        ("raw", 200, '{"success": true}', BadResponse),
        ("raw", 200, '{"success": "yes", "data": {}}', BadResponse),
        ("raw", 200, "OK", BadResponse),
        ("raw", 404, "Not Found", BadResponse),
        ("html", 502, None, Unavailable),
        ("empty", 500, None, Unavailable),
        ("empty", 401, None, AuthError),
        ("html", 403, None, AuthError),
        ("empty", 402, None, ProviderBalanceLow),
        ("raw", 200, '{"success": true, "data": {"currency": "USD"}}', BadResponse),
        ("raw", 200, '{"success":true,"data":{"wallet_balance":null}}', BadResponse),
    ],
)
async def test_unreadable_bodies_on_a_read(
    fake: FakeToolvico,
    provider: ToolvicoOtpProvider,
    kind: str,
    status: int,
    body: str | None,
    expected: type[ProviderError],
) -> None:
    fake.add_fault(kind, action="balance", status=status, body=body)  # type: ignore[arg-type]
    exc = await raise_of(provider.balance())
    assert type(exc) is expected
    if kind == "html":
        assert exc.raw == seed.HTML_BODY
    if kind == "empty":
        assert exc.raw == ""
    assert fake.calls["otp:balance"] == 1  # an answer, even a bad one, is not retried


@pytest.mark.parametrize(
    ("kind", "status", "body", "expected"),
    [
        ("html", 200, None, OutcomeUnknown),
        ("empty", 200, None, OutcomeUnknown),
        ("raw", 200, '{"success": true, "data": {"status": "waiting"}}', OutcomeUnknown),
        ("html", 502, None, OutcomeUnknown),
        ("raw", 404, "Not Found", BadResponse),
        ("empty", 429, None, Unavailable),
        ("empty", 401, None, AuthError),
    ],
)
async def test_unreadable_answer_to_a_buy_may_have_bought(
    fake: FakeToolvico,
    provider: ToolvicoOtpProvider,
    kind: str,
    status: int,
    body: str | None,
    expected: type[ProviderError],
) -> None:
    await provider.offers("PK")
    fake.add_fault(kind, action="buy_number", status=status, body=body)  # type: ignore[arg-type]
    exc = await raise_of(provider.buy("PK", "discord", client_ref="r"))
    assert type(exc) is expected
    assert fake.calls["otp:buy_number"] == 1


# --- transport faults -------------------------------------------------------------------------


async def test_buy_hang_is_outcome_unknown_after_exactly_one_request(fake: FakeToolvico) -> None:
    async with open_provider(fake, timeout_s=0.5) as provider:
        await provider.offers("PK")
        fake.add_fault("hang", action="buy_number", after=True)
        exc = await raise_of(provider.buy("PK", "discord", client_ref="r"))
    assert type(exc) is OutcomeUnknown
    assert fake.calls["otp:buy_number"] == 1
    assert list(fake.otp_orders) == ["42"]  # the number was bought upstream all the same


async def test_buy_dropped_connection_is_outcome_unknown(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    await provider.offers("PK")
    fake.add_fault("drop", action="buy_number", after=True)
    exc = await raise_of(provider.buy("PK", "discord", client_ref="r"))
    assert type(exc) is OutcomeUnknown
    assert fake.calls["otp:buy_number"] == 1


async def test_buy_to_a_closed_port_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ProviderConfig(
        name="tv", kind="toolvico", base_url=f"http://127.0.0.1:{port}/api/v1", api_key=KEY
    )
    async with ToolvicoOtpProvider(config) as provider:
        provider._offers[("PK", "discord")] = OtpOffer(
            country="PK",
            service="discord",
            price=Decimal("0.04"),
            stock=1,
            native_country="61",
            native_service="306343",
        )
        exc = await raise_of(provider.buy("PK", "discord", client_ref="r"))
    assert type(exc) is Unavailable  # nothing was sent: safe to try elsewhere


async def test_reads_are_retried_after_a_dropped_connection(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    fake.add_fault("drop", action="balance")
    assert await provider.balance() == Decimal("12.45")
    assert fake.calls["otp:balance"] == 2
    fake.add_fault("drop", action="balance", times=None)
    exc = await raise_of(provider.balance())
    assert type(exc) is Unavailable
    assert fake.calls["otp:balance"] == 2 + provider.http.read_attempts


async def test_cancel_is_sent_once_and_a_lost_answer_is_unavailable(
    fake: FakeToolvico, provider: ToolvicoOtpProvider
) -> None:
    purchase = await provider.buy("PK", "discord", client_ref="r")
    fake.add_fault("drop", action="cancel", after=True)
    exc = await raise_of(provider.cancel(purchase.order_id))
    assert type(exc) is Unavailable
    assert fake.calls["otp:cancel"] == 1
    assert (await provider.status(purchase.order_id)).state is OtpState.CANCELLED


# --- rate limits ------------------------------------------------------------------------------


async def test_default_rate_limit_is_60_per_minute_per_endpoint(
    provider: ToolvicoOtpProvider,
) -> None:
    assert provider.http.rate_limit_per_min == 60


async def test_client_never_sends_more_than_the_limit_to_one_endpoint(
    fake: FakeToolvico,
) -> None:
    async with open_provider(fake, rate_limit_per_min=12) as provider:
        for _ in range(2):  # 12/min allows a burst of 2, then one every 6 s
            assert await provider.balance() == Decimal("12.45")
        burst = provider.http._limiters["balance"]
        assert burst.max_rate == 2
        assert not burst.has_capacity()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(provider.balance(), 0.3)  # the next one waits its turn
        assert fake.calls["otp:balance"] == 2
        # Another endpoint has its own allowance.
        assert len(await provider.offers("PK")) == 1
        assert provider.http._limiters["countries"].has_capacity()


async def test_server_side_429_from_the_enforced_limit(fake: FakeToolvico) -> None:
    fake.rate_limit = 2
    async with open_provider(fake) as provider:
        await provider.balance()
        await provider.balance()
        exc = await raise_of(provider.balance())
        assert type(exc) is Unavailable
        assert exc.retry_after_s is not None and 0 < exc.retry_after_s <= 60
        assert len(await provider.offers("PK")) == 1  # counted per endpoint
    assert fake.calls["otp:balance"] == 3


# --- features Toolvico lacks ------------------------------------------------------------------


async def test_missing_features_raise_not_supported(provider: ToolvicoOtpProvider) -> None:
    assert provider.kind == "toolvico"
    assert not provider.supports_finish
    assert not provider.supports_another_sms
    assert not provider.supports_order_list
    assert not provider.supports_ban
    for call in (
        provider.finish("42"),
        provider.request_another_sms("42"),
        provider.ban("42"),
        provider.active_orders(),
    ):
        assert type(await raise_of(call)) is NotSupported


# --- secrets ----------------------------------------------------------------------------------


async def test_api_key_never_appears_in_errors(fake: FakeToolvico) -> None:
    async with open_provider(fake, timeout_s=0.5) as provider:
        await provider.offers("PK")
        errors = []
        fake.fail(401, f"Invalid API key {KEY}", action="balance")
        errors.append(await raise_of(provider.balance()))
        fake.fail(200, f"key {KEY} has no numbers", action="buy_number")
        errors.append(await raise_of(provider.buy("PK", "discord", client_ref="r")))
        fake.add_fault("raw", action="balance", body=f"<p>{KEY}</p>")
        errors.append(await raise_of(provider.balance()))
        fake.add_fault("hang", action="buy_number")
        errors.append(await raise_of(provider.buy("PK", "discord", client_ref="r")))
        fake.add_fault("drop", action="get_status", times=None)
        errors.append(await raise_of(provider.status("42")))
    assert [type(e) for e in errors] == [
        AuthError,
        NoNumbers,
        BadResponse,
        OutcomeUnknown,
        Unavailable,
    ]
    for exc in errors:
        assert KEY not in str(exc)
        assert KEY not in repr(exc)
        assert KEY not in (exc.raw or "")
    assert "***" in str(errors[0]) and "***" in (errors[2].raw or "")


async def test_default_base_url_and_trailing_slash() -> None:
    config = ProviderConfig(name="tv", kind="toolvico", api_key=KEY)
    async with ToolvicoOtpProvider(config) as provider:
        assert str(provider.http.client.base_url) == "https://toolvico.com/api/v1/"
        assert provider.http.client.headers["X-API-Key"] == KEY
    config = ProviderConfig(
        name="tv", kind="toolvico", base_url="http://127.0.0.1:1/api/v1/", api_key=KEY
    )
    async with ToolvicoOtpProvider(config) as provider:
        request = provider.http.client.build_request("GET", "/otp")
        assert str(request.url) == "http://127.0.0.1:1/api/v1/otp"
