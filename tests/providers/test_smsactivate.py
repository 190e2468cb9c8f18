"""SMS-Activate-compatible handler_api adapter against the fake host (docs/protocols.md §2)."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.providers.base import OtpActiveOrder, OtpOffer, OtpState, OtpStatus
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
from services.providers.smsactivate import SmsActivateProvider, expires_at
from tests.fakes.smsactivate import FakeSmsActivate

KEY = "sa-test-key-5b1f0c9e7d"


def make_provider(url: str, *, api_key: str = KEY, **config: Any) -> SmsActivateProvider:
    cfg = ProviderConfig(
        name="sa", kind="smsactivate", base_url=url, api_key=api_key, timeout_s=0.5, **config
    )
    # verify=False only skips building a CA bundle per test (~50 ms each): the fake is plain HTTP.
    provider = SmsActivateProvider(cfg, transport=httpx.AsyncHTTPTransport(verify=False))
    provider.http.backoff_s = 0.001
    return provider


@asynccontextmanager
async def running(
    provider_config: dict[str, Any] | None = None, **fake_options: Any
) -> AsyncIterator[tuple[FakeSmsActivate, SmsActivateProvider]]:
    async with (
        FakeSmsActivate(api_key=KEY, **fake_options) as fake,
        make_provider(fake.url, **(provider_config or {})) as provider,
    ):
        yield fake, provider


@pytest.fixture
async def fake() -> AsyncIterator[FakeSmsActivate]:
    async with FakeSmsActivate(api_key=KEY) as server:
        yield server


@pytest.fixture
async def provider(fake: FakeSmsActivate) -> AsyncIterator[SmsActivateProvider]:
    async with make_provider(fake.url) as adapter:
        yield adapter


def assert_no_key(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    assert KEY not in text
    assert KEY not in repr(exc)
    raw = getattr(exc, "raw", None)
    assert raw is None or KEY not in raw


# --- balance, tokens ---------------------------------------------------------------------------


async def test_balance(provider: SmsActivateProvider, fake: FakeSmsActivate) -> None:
    assert await provider.balance() == Decimal("92.20")
    params = fake.calls[-1][1]
    assert params["action"] == "getBalance"
    assert params["api_key"] == KEY


async def test_balance_strips_bom_and_whitespace(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.reply("getBalance", "\ufeff ACCESS_BALANCE:12.3456 \r\n")
    assert await provider.balance() == Decimal("12.3456")


async def test_user_agent_is_explicit(provider: SmsActivateProvider) -> None:
    assert not provider.http.client.headers["User-Agent"].startswith("python-httpx")


async def test_query_in_base_url_is_kept(fake: FakeSmsActivate) -> None:
    async with make_provider(fake.url + "?lang=en") as adapter:
        assert await adapter.balance() == Decimal("92.20")
    params = fake.calls[-1][1]
    assert (params["lang"], params["action"], params["api_key"]) == ("en", "getBalance", KEY)


ERROR_TOKENS: list[tuple[str, type[ProviderError], str]] = [
    ("NO_NUMBERS", NoNumbers, "NO_NUMBERS"),
    ("NO_BALANCE", ProviderBalanceLow, "NO_BALANCE on"),
    ("NO_BALANCE_FORWARD", ProviderBalanceLow, "NO_BALANCE_FORWARD"),
    ("BAD_KEY", AuthError, "BAD_KEY"),
    ("API_KEY_NOT_VALID", AuthError, "API_KEY_NOT_VALID"),
    ("BANNED:'2025-1-2 3-4-5'", AuthError, "banned until '2025-1-2 3-4-5'"),
    ("CHANNELS_LIMIT", AuthError, "CHANNELS_LIMIT"),
    ("ACCOUNT_INACTIVE", AuthError, "ACCOUNT_INACTIVE"),
    ("BAD_ACTION", NotSupported, "BAD_ACTION"),
    ("NO_ACTION", NotSupported, "NO_ACTION"),
    ("BAD_SERVICE", BadRequest, "BAD_SERVICE"),
    ("WRONG_SERVICE", BadRequest, "WRONG_SERVICE"),
    ("BAD_COUNTRY", BadRequest, "BAD_COUNTRY"),
    ("WRONG_COUNTRY", BadRequest, "WRONG_COUNTRY"),
    ("BAD_STATUS", InvalidState, "BAD_STATUS"),
    ("INCORECT_STATUS", InvalidState, "INCORECT_STATUS"),
    ("NO_ACTIVATION", OrderNotFound, "NO_ACTIVATION on"),
    ("WRONG_ACTIVATION_ID", OrderNotFound, "WRONG_ACTIVATION_ID"),
    ("EARLY_CANCEL_DENIED", EarlyCancel, "EARLY_CANCEL_DENIED"),
    ("WRONG_MAX_PRICE:0.25", PriceTooHigh, "WRONG_MAX_PRICE"),
    ("OTP_RECEIVED", InvalidState, "OTP_RECEIVED"),
    ("NEW_OTP_RECEIVED", InvalidState, "NEW_OTP_RECEIVED"),
    ("ACTIVATION_NOT_ACTIVE", InvalidState, "ACTIVATION_NOT_ACTIVE"),
    ("FREE_CANCELLATION_EXPIRED", InvalidState, "FREE_CANCELLATION_EXPIRED"),
    ("ORDER_ALREADY_EXISTS", OutcomeUnknown, "ORDER_ALREADY_EXISTS"),
    ("ERROR_SQL", Unavailable, "ERROR_SQL"),
    ("SERVER_ERROR", Unavailable, "SERVER_ERROR"),
    ("\ufeffNO_NUMBERS\r\n", NoNumbers, "NO_NUMBERS"),
]


@pytest.mark.parametrize(("body", "error", "message"), ERROR_TOKENS)
async def test_error_tokens(
    provider: SmsActivateProvider,
    fake: FakeSmsActivate,
    body: str,
    error: type[ProviderError],
    message: str,
) -> None:
    fake.reply("getBalance", body, times=10)
    with pytest.raises(ProviderError) as info:
        await provider.balance()
    assert type(info.value) is error
    assert message in str(info.value)
    # Upstream faults are retried (reads only); every other token is final at once.
    assert fake.requests["getBalance"] == (3 if error is Unavailable else 1)


@pytest.mark.parametrize(
    ("body", "min_price"),
    [
        ("WRONG_MAX_PRICE:0.25", Decimal("0.25")),
        ("WRONG_MAX_PRICE:0.1453", Decimal("0.1453")),
        ("WRONG_MAX_PRICE", None),
        ('{"title":"WRONG_MAX_PRICE","details":"x","info":{"min":0.1234}}', Decimal("0.1234")),
        ('{"title":"WRONG_MAX_PRICE","info":{"min":"2"}}', Decimal("2")),
    ],
)
async def test_wrong_max_price_min(
    provider: SmsActivateProvider, fake: FakeSmsActivate, body: str, min_price: Decimal | None
) -> None:
    fake.reply("getNumberV2", body, status=400 if body.startswith("{") else 200)
    with pytest.raises(PriceTooHigh) as info:
        await provider.buy("RU", "telegram", max_price=Decimal("0.1"), client_ref="o1")
    assert info.value.min_price == min_price
    assert not isinstance(info.value.min_price, float)


@pytest.mark.parametrize(
    "body",
    [
        "NO_BALANCE_LOW",  # NO_BALANCE followed by more name: not NO_BALANCE
        "NO_NUMBERSX",
        "BAD_KEYS",
        "ACCESS_BALANCE",
        "ACCESS_BALANCE:abc",
        "ACCESS_BALANCEX:1",
        "SOMETHING_NEW",
        "",
        "<html><body>Just a moment...</body></html>",
        "   \ufeff  ",
    ],
)
async def test_unknown_bodies_are_bad_response(
    provider: SmsActivateProvider, fake: FakeSmsActivate, body: str
) -> None:
    fake.reply("getBalance", body)
    with pytest.raises(BadResponse) as info:
        await provider.balance()
    assert info.value.raw == body.strip(" \ufeff")
    assert fake.requests["getBalance"] == 1


# --- offers ------------------------------------------------------------------------------------


def offer(country: str, service: str, price: str, stock: int, cid: str, code: str, **kw: Any):
    return OtpOffer(
        country=country,
        service=service,
        price=Decimal(price),
        stock=stock,
        native_country=cid,
        native_service=code,
        **kw,
    )


async def test_offers_map_ids_and_keep_unknown(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.set_price("999", "zzq", "1.5", 2)
    fake.set_price("0", "fj", "0.3", 1)
    fake.set_price("0", "lq", "0.4", 1)
    offers = sorted(await provider.offers(), key=lambda o: (o.native_country, o.native_service))
    assert offers == [
        offer("RU", "potato", "0.3", 1, "0", "fj"),
        offer("RU", "lq", "0.4", 1, "0", "lq"),  # second code of one slug keeps its own key
        offer("RU", "telegram", "0.1453", 120, "0", "tg"),
        offer("RU", "whatsapp", "0.0165", 3, "0", "wa"),
        offer("smsactivate:12", "telegram", "0.11", 7, "12", "tg", country_name="USA (virtual)"),
        offer("US", "telegram", "0.25", 40, "187", "tg"),
        offer("smsactivate:999", "zzq", "1.5", 2, "999", "zzq"),
    ]
    assert all(type(o.price) is Decimal for o in offers)


async def test_offers_for_one_country(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    assert await provider.offers("US") == [offer("US", "telegram", "0.25", 40, "187", "tg")]
    assert fake.calls[-1][1]["country"] == "187"
    virtual = await provider.offers("smsactivate:12")
    assert [(o.country, o.native_country) for o in virtual] == [("smsactivate:12", "12")]
    assert await provider.offers("ZZ") == []  # no id for it: nothing asked
    assert fake.requests["getPrices"] == 2


async def test_offers_empty_object_is_nothing_in_stock(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.clear_prices()
    assert await provider.offers() == []
    assert await provider.offers("RU") == []


async def test_offers_string_prices() -> None:
    async with running(prices_as_strings=True) as (_, provider):
        offers = {(o.country, o.service): o for o in await provider.offers()}
    assert offers[("RU", "telegram")].price == Decimal("0.1453")
    assert offers[("RU", "whatsapp")].price == Decimal("0.0165")


async def test_offers_broken_json_is_bad_response(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.reply("getPrices", '{"0": {"tg": ')
    with pytest.raises(BadResponse):
        await provider.offers()


async def test_country_overrides_win() -> None:
    overrides = {"999": "DE", "12": "US"}
    async with running({"country_overrides": overrides}) as (fake, provider):
        fake.set_price("999", "tg", "0.5", 5)
        fake.set_price("43", "tg", "0.6", 6)
        offers = {o.native_country: o.country for o in await provider.offers()}
        assert offers == {
            "0": "RU",
            "12": "US",  # the override picks id 12 for US
            "187": "smsactivate:187",
            "999": "DE",
            "43": "smsactivate:43",
        }
        purchase = await provider.buy("DE", "telegram", client_ref="o-de")
        assert fake.calls[-1][1]["country"] == "999"
        assert fake.activations[purchase.order_id].country == "999"
        await provider.buy("US", "telegram", client_ref="o-us")
        assert fake.calls[-1][1]["country"] == "12"


async def test_a_non_ascii_country_override_is_kept_as_text() -> None:
    """ "²".isdigit() is True but int("²") raises: the override still loads, sorted last."""
    overrides = {"²": "DE", "999": "DE", "12": "US"}
    async with running({"country_overrides": overrides}) as (fake, provider):
        fake.set_price("999", "tg", "0.5", 5)
        await provider.offers()
        await provider.buy("DE", "telegram", client_ref="o-de")
        assert fake.calls[-1][1]["country"] == "999"


# --- buy ---------------------------------------------------------------------------------------


async def test_buy_v2(provider: SmsActivateProvider, fake: FakeSmsActivate) -> None:
    purchase = await provider.buy(
        "RU", "telegram", max_price=Decimal("0.20"), client_ref="order-17"
    )
    assert purchase.order_id == "2000000001"
    assert purchase.phone == "+79990000001"
    assert purchase.price == Decimal("0.1453")
    assert purchase.expires_at is None  # no activationEndTime outside HeroSMS
    action, params = fake.calls[-1]
    assert action == "getNumberV2"
    assert (params["service"], params["country"]) == ("tg", "0")
    assert (params["orderId"], params["maxPrice"]) == ("order-17", "0.20")
    assert fake.requests["getNumber"] == 0
    assert fake.activations["2000000001"].order_id == "order-17"
    assert fake.balance == Decimal("92.20") - Decimal("0.1453")


async def test_buy_without_max_price_sends_none(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    await provider.buy("US", "telegram", client_ref="o2")
    assert "maxPrice" not in fake.calls[-1][1]
    assert fake.calls[-1][1]["country"] == "187"


async def test_buy_duplicate_order_id_is_outcome_unknown(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    first = await provider.buy("RU", "telegram", client_ref="same")
    with pytest.raises(OutcomeUnknown):
        await provider.buy("RU", "telegram", client_ref="same")
    assert len(fake.activations) == 1
    assert fake.requests["getNumber"] == 0  # never "falls back" to a second purchase
    active = await provider.active_orders()
    assert [o.order_id for o in active] == [first.order_id]


async def test_buy_legacy_host_falls_back_and_remembers() -> None:
    async with running(legacy=True) as (fake, provider):
        first = await provider.buy("RU", "telegram", max_price=Decimal("1"), client_ref="a")
        assert (fake.requests["getNumberV2"], fake.requests["getNumber"]) == (1, 1)
        assert fake.calls[-1][1]["maxPrice"] == "1"
        assert "orderId" not in fake.calls[-1][1]
        second = await provider.buy("RU", "whatsapp", client_ref="b")
        assert (fake.requests["getNumberV2"], fake.requests["getNumber"]) == (1, 2)
    assert (first.order_id, first.phone, first.price) == ("2000000001", "+79990000001", None)
    assert (second.order_id, second.phone) == ("2000000002", "+79990000002")
    assert provider.has_v2 is False


@pytest.mark.parametrize("token", ["BAD_ACTION", "NO_ACTION"])
async def test_v2_not_supported_tokens_fall_back(
    provider: SmsActivateProvider, fake: FakeSmsActivate, token: str
) -> None:
    fake.reply("getNumberV2", token)
    purchase = await provider.buy("RU", "telegram", client_ref="x")
    assert purchase.order_id == "2000000001"
    assert fake.requests["getNumber"] == 1


@pytest.mark.parametrize(
    ("body", "order_id", "phone", "price"),
    [
        ("ACCESS_NUMBER:123:79990001122", "123", "+79990001122", None),
        ("ACCESS_NUMBER:123:+79990001122\n", "123", "+79990001122", None),
        ("ACCESS_NUMBER:77:7999:0001", "77", "+7999:0001", None),  # split(':', 2)
        (
            '{"activationId":555,"phoneNumber":79991112233,"activationCost":0.1453,'
            '"currency":840,"countryCode":"0","canGetAnotherSms":true,'
            '"activationTime":"2024-05-01 12:00:00","activationOperator":"any"}',
            "555",
            "+79991112233",
            Decimal("0.1453"),
        ),
        (
            '{"activationId":"556","phoneNumber":"79991112234","activationCost":"1.50"}',
            "556",
            "+79991112234",
            Decimal("1.50"),
        ),
        (
            '{"activationId":557,"phoneNumber":"+447700900123","activationCost":3}',
            "557",
            "+447700900123",
            Decimal(3),
        ),
    ],
)
async def test_buy_answer_shapes(
    provider: SmsActivateProvider,
    fake: FakeSmsActivate,
    body: str,
    order_id: str,
    phone: str,
    price: Decimal | None,
) -> None:
    fake.reply("getNumberV2", body)
    purchase = await provider.buy("RU", "telegram", client_ref="r")
    assert (purchase.order_id, purchase.phone, purchase.price) == (order_id, phone, price)


@pytest.mark.parametrize(
    "body",
    [
        "ACCESS_NUMBER:123",
        "ACCESS_NUMBER::7999",
        '{"activationId":1}',
        '{"phoneNumber":"7999"}',
        "[]",
        "",
        "<html>oops</html>",
        "SOMETHING",
    ],
)
async def test_buy_unreadable_answer_is_outcome_unknown(
    provider: SmsActivateProvider, fake: FakeSmsActivate, body: str
) -> None:
    """The request reached the host: a number may have been bought, so never a plain failure."""
    fake.reply("getNumberV2", body)
    with pytest.raises(OutcomeUnknown):
        await provider.buy("RU", "telegram", client_ref="r")
    assert fake.requests["getNumberV2"] == 1
    assert fake.requests["getNumber"] == 0


async def test_buy_refusals_from_the_fake(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    with pytest.raises(PriceTooHigh) as price:
        await provider.buy("RU", "telegram", max_price=Decimal("0.1"), client_ref="p")
    assert price.value.min_price == Decimal("0.1453")
    fake.set_stock("0", "wa", 0)
    with pytest.raises(NoNumbers):
        await provider.buy("RU", "whatsapp", client_ref="n")
    with pytest.raises(NoNumbers):
        await provider.buy("DE", "telegram", client_ref="n2")
    with pytest.raises(BadRequest) as bad:
        await provider.buy("RU", "no-such-service", client_ref="s")
    assert type(bad.value) is BadRequest
    fake.balance = Decimal("0.01")
    with pytest.raises(ProviderBalanceLow):
        await provider.buy("RU", "telegram", client_ref="b")
    assert fake.activations == {}
    assert fake.requests["getNumber"] == 0


async def test_buy_unknown_country_sends_nothing(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    with pytest.raises(BadRequest):
        await provider.buy("ZZ", "telegram", client_ref="z")
    assert sum(fake.requests.values()) == 0


async def test_buy_wrong_key() -> None:
    async with (
        FakeSmsActivate(api_key=KEY) as fake,
        make_provider(fake.url, api_key="sa-other-key-0000") as provider,
    ):
        with pytest.raises(AuthError) as info:
            await provider.buy("RU", "telegram", client_ref="k")
    assert "sa-other-key-0000" not in str(info.value)


async def test_buy_hang_is_outcome_unknown_sent_once() -> None:
    async with running() as (fake, provider):
        fake.inject("hang", action="getNumberV2")
        with pytest.raises(OutcomeUnknown) as info:
            await provider.buy("RU", "telegram", client_ref="h1")
        assert (fake.requests["getNumberV2"], fake.requests["getNumber"]) == (1, 0)
        assert_no_key(info.value)
        # The number was bought behind the lost answer: the order list shows it.
        active = await provider.active_orders()
        assert [(o.order_id, o.phone) for o in active] == [("2000000001", "+79990000001")]


async def test_legacy_buy_hang_sends_exactly_one_get_number() -> None:
    async with running(legacy=True) as (fake, provider):
        fake.inject("hang", action="getNumber")
        with pytest.raises(OutcomeUnknown):
            await provider.buy("RU", "telegram", client_ref="h2")
        assert fake.requests["getNumber"] == 1
        assert len(fake.activations) == 1


async def test_buy_dropped_connection_is_outcome_unknown(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.inject("drop", action="getNumberV2")
    with pytest.raises(OutcomeUnknown) as info:
        await provider.buy("RU", "telegram", client_ref="d")
    assert fake.requests["getNumberV2"] == 1
    assert_no_key(info.value)


@pytest.mark.parametrize("fault", ["500", "html", "empty"])
async def test_buy_faults_are_never_retried(
    provider: SmsActivateProvider, fake: FakeSmsActivate, fault: str
) -> None:
    fake.inject(fault, action="getNumberV2", times=5)
    with pytest.raises(OutcomeUnknown):
        await provider.buy("RU", "telegram", client_ref="f")
    assert fake.requests["getNumberV2"] == 1
    assert fake.requests["getNumber"] == 0


@pytest.mark.parametrize("body", ["ERROR_SQL", "SERVER_ERROR"])
async def test_buy_upstream_fault_token_not_retried(
    provider: SmsActivateProvider, fake: FakeSmsActivate, body: str
) -> None:
    fake.reply("getNumberV2", body, times=5)
    with pytest.raises(Unavailable):
        await provider.buy("RU", "telegram", client_ref="e")
    assert (fake.requests["getNumberV2"], fake.requests["getNumber"]) == (1, 0)


async def test_buy_429_is_unavailable(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.inject("429", action="getNumberV2", retry_after=9)
    with pytest.raises(Unavailable) as info:
        await provider.buy("RU", "telegram", client_ref="r")
    assert info.value.retry_after_s == 9.0
    assert fake.requests["getNumberV2"] == 1


async def test_buy_connection_refused_is_unavailable() -> None:
    async with FakeSmsActivate(api_key=KEY) as fake:
        url = fake.url
    async with make_provider(url) as provider:
        with pytest.raises(Unavailable) as info:
            await provider.buy("RU", "telegram", client_ref="c")
    assert_no_key(info.value)


# --- HeroSMS -----------------------------------------------------------------------------------


async def test_hero_buy_expiry_and_shapes() -> None:
    async with running(hero=True, clock_tz=timezone(timedelta(hours=3))) as (_, provider):
        before = datetime.now(UTC)
        purchase = await provider.buy("RU", "telegram", client_ref="h")
        after = datetime.now(UTC)
    assert (purchase.order_id, purchase.phone) == ("2000000001", "+79990000001")
    assert purchase.price == Decimal("0.1453")
    assert purchase.expires_at is not None
    # The host writes Moscow wall-clock times: the lifetime, not the zone, is what counts.
    lower = before + timedelta(seconds=1200) - timedelta(seconds=1)
    assert lower <= purchase.expires_at <= after + timedelta(seconds=1200)


def test_expires_at_zones() -> None:
    now = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    naive = {"activationTime": "2024-05-01 12:00:00", "activationEndTime": "2024-05-01 12:20:00"}
    assert expires_at(naive, now) == datetime(2024, 5, 1, 9, 20, tzinfo=UTC)
    aware = {"activationEndTime": "2024-05-01T12:20:00+03:00"}
    assert expires_at(aware, now) == datetime(2024, 5, 1, 9, 20, tzinfo=UTC)
    only_end = {"activationEndTime": "2024-05-01 12:20:00"}
    assert expires_at(only_end, now) == datetime(2024, 5, 1, 12, 20, tzinfo=UTC)
    stamp = {"activationEndTime": 1714555200}
    assert expires_at(stamp, now) == datetime(2024, 5, 1, 9, 20, tzinfo=UTC)
    assert expires_at({"activationTime": "2024-05-01 12:00:00"}, now) is None
    assert expires_at({"activationEndTime": "soon"}, now) is None


HERO_ERRORS: list[tuple[int, dict[str, Any], type[ProviderError]]] = [
    (401, {"title": "BAD_KEY", "details": "Invalid API key"}, AuthError),
    (402, {"title": "NO_BALANCE", "details": "Not enough funds"}, ProviderBalanceLow),
    (403, {"title": "BANNED", "info": {"banned_until": "2025-01-02 03:04:05"}}, AuthError),
    (404, {"title": "NO_ACTIVATION"}, OrderNotFound),
    (404, {"title": "WRONG_ACTIVATION_ID"}, OrderNotFound),
    (400, {"title": "BAD_SERVICE"}, BadRequest),
    (422, {"title": "WRONG_COUNTRY"}, BadRequest),
    (409, {"title": "BAD_STATUS"}, InvalidState),
    (409, {"title": "OTP_RECEIVED"}, InvalidState),
    (409, {"title": "NEW_OTP_RECEIVED"}, InvalidState),
    (409, {"title": "ACTIVATION_NOT_ACTIVE"}, InvalidState),
    (409, {"title": "FREE_CANCELLATION_EXPIRED"}, InvalidState),
    (409, {"title": "EARLY_CANCEL_DENIED"}, EarlyCancel),
    (400, {"title": "BAD_ACTION"}, NotSupported),
    (503, {"title": "SERVER_ERROR"}, Unavailable),
    (500, {"title": "ERROR_SQL"}, Unavailable),
    (404, {"title": "Not Found"}, BadResponse),  # an unknown title
    (400, {"message": "bad"}, BadResponse),
    (418, {"title": ""}, BadResponse),
]


@pytest.mark.parametrize(("status", "body", "error"), HERO_ERRORS)
async def test_hero_problem_bodies(
    provider: SmsActivateProvider,
    fake: FakeSmsActivate,
    status: int,
    body: dict[str, Any],
    error: type[ProviderError],
) -> None:
    fake.reply("setStatus", body, status=status, times=10)
    with pytest.raises(ProviderError) as info:
        await provider.cancel("2000000001")
    assert type(info.value) is error
    if body.get("title") == "BANNED":
        assert "2025-01-02 03:04:05" in str(info.value)


async def test_hero_error_status_codes_from_the_fake() -> None:
    async with running(hero=True, early_cancel_s=60) as (fake, provider):
        with pytest.raises(PriceTooHigh) as price:
            await provider.buy("RU", "telegram", max_price=Decimal("0.1"), client_ref="x")
        assert price.value.min_price == Decimal("0.1453")
        purchase = await provider.buy("RU", "telegram", client_ref="y")
        with pytest.raises(EarlyCancel):
            await provider.cancel(purchase.order_id)
        with pytest.raises(OrderNotFound):
            await provider.status("1")
        fake.set_stock("0", "wa", 0)
        with pytest.raises(NoNumbers):  # HeroSMS: NO_NUMBERS is an HTTP 200 text
            await provider.buy("RU", "whatsapp", client_ref="z")
        fake.balance = Decimal(0)
        with pytest.raises(ProviderBalanceLow):
            await provider.buy("RU", "telegram", client_ref="w")


async def test_hero_204_finish_and_cancel_are_success() -> None:
    async with running(hero=True) as (fake, provider):
        first = await provider.buy("RU", "telegram", client_ref="one")
        fake.deliver_sms(first.order_id, "4242")
        assert await provider.status(first.order_id) == OtpStatus(state=OtpState.CODE, code="4242")
        await provider.finish(first.order_id)
        assert fake.activations[first.order_id].state == "finished"
        second = await provider.buy("RU", "telegram", client_ref="two")
        await provider.cancel(second.order_id)
        assert fake.activations[second.order_id].state == "cancelled"
        assert fake.balance == Decimal("92.20") - Decimal("0.1453")
        with pytest.raises(InvalidState):  # HeroSMS: 409 ACTIVATION_NOT_ACTIVE
            await provider.cancel(second.order_id)


async def test_empty_200_on_finish_is_not_success(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.reply("setStatus", "")
    with pytest.raises(BadResponse):
        await provider.finish("2000000001")


async def test_hero_active_orders_paged() -> None:
    async with running(hero=True) as (fake, provider):
        fake.set_stock("0", "tg", 500)
        for _ in range(130):
            fake.create()
        fake.deliver_sms("2000000130", "9:9", "Code 9:9")
        orders = await provider.active_orders()
        assert len(orders) == 130
        assert fake.requests["getActiveActivations"] == 2
        assert [c[1]["start"] for c in fake.calls if c[0] == "getActiveActivations"] == [
            "0",
            "100",
        ]
        last = orders[-1]
        assert last.order_id == "2000000130"
        assert last.status == OtpStatus(state=OtpState.CODE, code="9:9", text="Code 9:9")
        assert orders[0].status == OtpStatus(state=OtpState.WAITING)


# --- status, cancel, finish, another SMS -------------------------------------------------------

STATUS_BODIES: list[tuple[str, OtpStatus]] = [
    ("STATUS_WAIT_CODE", OtpStatus(state=OtpState.WAITING)),
    ("STATUS_WAIT_RESEND", OtpStatus(state=OtpState.WAITING)),
    ("STATUS_WAIT_RETRY:123456", OtpStatus(state=OtpState.WAITING)),
    ("STATUS_WAIT_RETRY:12:34", OtpStatus(state=OtpState.WAITING)),
    ("STATUS_OK:123456", OtpStatus(state=OtpState.CODE, code="123456")),
    ("STATUS_OK:12:34:56", OtpStatus(state=OtpState.CODE, code="12:34:56")),
    ("STATUS_OK: 'G-123456'", OtpStatus(state=OtpState.CODE, code="G-123456")),
    ("STATUS_OK:Your code: 5555", OtpStatus(state=OtpState.CODE, code="Your code: 5555")),
    ("\ufeffSTATUS_OK:777\r\n", OtpStatus(state=OtpState.CODE, code="777")),
    ("STATUS_CANCEL", OtpStatus(state=OtpState.CANCELLED)),
    ("ACCESS_CANCEL", OtpStatus(state=OtpState.CANCELLED)),  # Tiger
]


@pytest.mark.parametrize(("body", "expected"), STATUS_BODIES)
async def test_status_tokens(
    provider: SmsActivateProvider, fake: FakeSmsActivate, body: str, expected: OtpStatus
) -> None:
    fake.reply("getStatus", body)
    assert await provider.status("2000000001") == expected
    assert fake.calls[-1][1]["id"] == "2000000001"


@pytest.mark.parametrize("body", ["STATUS_WAIT", "STATUS_WAITING", "STATUS_OKAY:1", "OK", ""])
async def test_status_unknown_is_bad_response(
    provider: SmsActivateProvider, fake: FakeSmsActivate, body: str
) -> None:
    fake.reply("getStatus", body)
    with pytest.raises(BadResponse):
        await provider.status("1")


async def test_another_sms_cycle(provider: SmsActivateProvider, fake: FakeSmsActivate) -> None:
    purchase = await provider.buy("RU", "telegram", client_ref="c")
    oid = purchase.order_id
    assert await provider.status(oid) == OtpStatus(state=OtpState.WAITING)
    fake.deliver_sms(oid, "11:11")
    assert await provider.status(oid) == OtpStatus(state=OtpState.CODE, code="11:11")
    with pytest.raises(InvalidState):  # BAD_STATUS: a code is in, cancel is over
        await provider.cancel(oid)
    await provider.request_another_sms(oid)
    assert fake.calls[-1][1]["status"] == "3"
    assert await provider.status(oid) == OtpStatus(state=OtpState.WAITING)  # STATUS_WAIT_RETRY
    fake.deliver_sms(oid, "22222")
    assert await provider.status(oid) == OtpStatus(state=OtpState.CODE, code="22222")
    await provider.finish(oid)
    assert fake.activations[oid].set_statuses == ["8", "3", "6"]
    assert fake.activations[oid].state == "finished"
    assert await provider.status(oid) == OtpStatus(state=OtpState.CANCELLED)  # STATUS_CANCEL


async def test_resend_token_host() -> None:
    async with running(retry_token="STATUS_WAIT_RESEND") as (fake, provider):
        purchase = await provider.buy("RU", "telegram", client_ref="c")
        fake.deliver_sms(purchase.order_id, "1")
        await provider.request_another_sms(purchase.order_id)
        assert await provider.status(purchase.order_id) == OtpStatus(state=OtpState.WAITING)


async def test_cancel_flow(provider: SmsActivateProvider, fake: FakeSmsActivate) -> None:
    purchase = await provider.buy("RU", "telegram", client_ref="c")
    await provider.cancel(purchase.order_id)
    assert fake.calls[-1][1]["status"] == "8"
    assert fake.balance == Decimal("92.20")
    await provider.cancel(purchase.order_id)  # ACCESS_CANCEL_ALREADY is fine
    assert await provider.status(purchase.order_id) == OtpStatus(state=OtpState.CANCELLED)
    with pytest.raises(InvalidState):
        await provider.finish(purchase.order_id)


async def test_cancel_tokens_longest_first(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.reply("setStatus", "ACCESS_CANCEL_ALREADY")
    await provider.cancel("1")
    fake.reply("setStatus", "ACCESS_CANCEL")
    await provider.cancel("1")
    fake.reply("setStatus", "ACCESS_CANCELLED_SOMEHOW")
    with pytest.raises(BadResponse):
        await provider.cancel("1")
    fake.reply("setStatus", "ACCESS_CANCEL")
    with pytest.raises(BadResponse):  # not the answer to a finish
        await provider.finish("1")
    fake.reply("setStatus", "ACCESS_READY")
    with pytest.raises(BadResponse):
        await provider.request_another_sms("1")


async def test_early_cancel() -> None:
    async with running(early_cancel_s=60) as (fake, provider):
        purchase = await provider.buy("RU", "telegram", client_ref="c")
        with pytest.raises(EarlyCancel):
            await provider.cancel(purchase.order_id)
        assert fake.activations[purchase.order_id].state == "waiting"
        assert fake.requests["setStatus"] == 1


async def test_expired_and_tiger_cancel_token() -> None:
    async with running(status_cancel_token="ACCESS_CANCEL") as (fake, provider):
        purchase = await provider.buy("RU", "telegram", client_ref="c")
        fake.expire(purchase.order_id)
        assert await provider.status(purchase.order_id) == OtpStatus(state=OtpState.CANCELLED)
        assert fake.balance == Decimal("92.20")


async def test_lifetime_ends_activation() -> None:
    async with running(lifetime_s=0) as (_, provider):
        purchase = await provider.buy("RU", "telegram", client_ref="c")
        assert await provider.status(purchase.order_id) == OtpStatus(state=OtpState.CANCELLED)
        assert await provider.active_orders() == []


async def test_unknown_ids(provider: SmsActivateProvider) -> None:
    with pytest.raises(OrderNotFound) as info:
        await provider.status("42")
    assert "NO_ACTIVATION" in str(info.value)
    with pytest.raises(OrderNotFound) as info:
        await provider.cancel("abc")
    assert "WRONG_ACTIVATION_ID" in str(info.value)


async def test_finish_before_code_is_invalid_state(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    purchase = await provider.buy("RU", "telegram", client_ref="c")
    with pytest.raises(InvalidState):
        await provider.finish(purchase.order_id)
    with pytest.raises(InvalidState):
        await provider.request_another_sms(purchase.order_id)


def test_features() -> None:
    assert SmsActivateProvider.kind == "smsactivate"
    assert SmsActivateProvider.supports_another_sms is True
    assert SmsActivateProvider.supports_order_list is True
    assert SmsActivateProvider.supports_finish is True


# --- active orders -----------------------------------------------------------------------------


async def test_active_orders(provider: SmsActivateProvider, fake: FakeSmsActivate) -> None:
    assert await provider.active_orders() == []  # NO_ACTIVATIONS, not NO_ACTIVATION
    first = await provider.buy("RU", "telegram", client_ref="a")
    second = await provider.buy("US", "telegram", client_ref="b")
    fake.deliver_sms(second.order_id, "111", "Telegram code 111")
    fake.deliver_sms(second.order_id, "222", "Telegram code 222")
    orders = await provider.active_orders()
    created = fake.activations[first.order_id].created_at.replace(microsecond=0)
    assert orders == [
        OtpActiveOrder(
            order_id=first.order_id,
            phone=first.phone,
            country="RU",
            service="telegram",
            created_at=created,
            status=OtpStatus(state=OtpState.WAITING),
        ),
        OtpActiveOrder(
            order_id=second.order_id,
            phone=second.phone,
            country="US",
            service="telegram",
            created_at=fake.activations[second.order_id].created_at.replace(microsecond=0),
            status=OtpStatus(state=OtpState.CODE, code="222", text="Telegram code 222"),
        ),
    ]


async def test_active_orders_host_without_paging(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.set_stock("0", "tg", 500)
    for _ in range(105):
        fake.create()
    orders = await provider.active_orders()
    assert len({o.order_id for o in orders}) == len(orders) == 105
    # A page longer than the limit asked for means the host ignores paging: one call, not a
    # second one that would fetch (and parse) the whole list again (found by bench/poller.py).
    assert fake.requests["getActiveActivations"] == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"status":"success","activeActivations":[]}', []),
        ('{"status":"success","data":[]}', []),
        ('{"status":"error","error":"NO_ACTIVATIONS"}', []),
        ("NO_ACTIVATIONS\n", []),
        (
            '{"status":"success","activeActivations":[{"activationId":9,"phoneNumber":"7900",'
            '"serviceCode":"zzq","countryCode":"999","orderId":"ref-1","smsCode":"1:2"}]}',
            [
                OtpActiveOrder(
                    order_id="9",
                    phone="+7900",
                    country="smsactivate:999",
                    service="zzq",
                    client_ref="ref-1",
                    status=OtpStatus(state=OtpState.CODE, code="1:2"),
                )
            ],
        ),
    ],
)
async def test_active_orders_shapes(
    provider: SmsActivateProvider,
    fake: FakeSmsActivate,
    body: str,
    expected: list[OtpActiveOrder],
) -> None:
    fake.reply("getActiveActivations", body)
    assert await provider.active_orders() == expected


@pytest.mark.parametrize(
    "body",
    [
        '{"status":"success","activeActivations":[{"phoneNumber":"7900"}]}',
        '{"status":"success"',
        '{"status":"weird"}',
        "NO_ACTIVATIONSS",
    ],
)
async def test_active_orders_unreadable(
    provider: SmsActivateProvider, fake: FakeSmsActivate, body: str
) -> None:
    fake.reply("getActiveActivations", body)
    with pytest.raises(BadResponse):
        await provider.active_orders()


async def test_active_statuses_are_the_order_lists_statuses(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    """The poller's lean reading of the list says what active_orders() says of each status."""
    assert await provider.active_statuses() == {}
    first = await provider.buy("RU", "telegram", client_ref="a")
    second = await provider.buy("US", "telegram", client_ref="b")
    fake.deliver_sms(second.order_id, "111", "Telegram code 111")
    fake.deliver_sms(second.order_id, "222", "Telegram code 222")
    statuses = await provider.active_statuses()
    assert statuses == {
        first.order_id: OtpStatus(state=OtpState.WAITING),
        second.order_id: OtpStatus(state=OtpState.CODE, code="222", text="Telegram code 222"),
    }
    assert statuses == {o.order_id: o.status for o in await provider.active_orders()}


async def test_active_statuses_refuse_an_item_without_an_id(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    """Skipping it could close an order that exists: the whole list is refused."""
    body = '{"status":"success","activeActivations":[{"smsCode":"1"}]}'
    fake.reply("getActiveActivations", body)
    with pytest.raises(BadResponse):
        await provider.active_statuses()


# --- reads under faults ------------------------------------------------------------------------


async def test_read_500_retried_then_unavailable(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.inject("500", action="getBalance", times=10)
    with pytest.raises(Unavailable) as info:
        await provider.balance()
    assert fake.requests["getBalance"] == 3
    assert_no_key(info.value)


async def test_read_500_once_then_ok(provider: SmsActivateProvider, fake: FakeSmsActivate) -> None:
    fake.inject("500", action="getStatus")
    purchase = await provider.buy("RU", "telegram", client_ref="c")
    assert await provider.status(purchase.order_id) == OtpStatus(state=OtpState.WAITING)
    assert fake.requests["getStatus"] == 2


async def test_read_dropped_connection_is_retried(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.inject("drop", action="getBalance")
    assert await provider.balance() == Decimal("92.20")
    assert fake.requests["getBalance"] == 2


async def test_read_429_not_retried(provider: SmsActivateProvider, fake: FakeSmsActivate) -> None:
    fake.inject("429", action="getPrices", retry_after=7)
    with pytest.raises(Unavailable) as info:
        await provider.offers()
    assert info.value.retry_after_s == 7.0
    assert fake.requests["getPrices"] == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, "ERROR_SQL"), (503, {"title": "SERVER_ERROR"})],  # 503 without Retry-After
)
async def test_read_fault_tokens_are_retried(
    provider: SmsActivateProvider, fake: FakeSmsActivate, status: int, body: str | dict[str, Any]
) -> None:
    fake.reply("getBalance", body, status=status)
    assert await provider.balance() == Decimal("92.20")
    assert fake.requests["getBalance"] == 2


async def test_read_fault_with_retry_after_is_left_to_the_caller(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.reply("getBalance", {"title": "SERVER_ERROR"}, status=503, headers={"Retry-After": "30"})
    with pytest.raises(Unavailable) as info:
        await provider.balance()
    assert info.value.retry_after_s == 30.0
    assert fake.requests["getBalance"] == 1


async def test_read_429_without_retry_after_not_retried(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    fake.reply("getBalance", "", status=429, times=3)
    with pytest.raises(Unavailable) as info:
        await provider.balance()
    assert info.value.retry_after_s is None
    assert fake.requests["getBalance"] == 1


async def test_read_hang_is_unavailable(
    provider: SmsActivateProvider, fake: FakeSmsActivate
) -> None:
    provider.http.read_attempts = 1
    fake.inject("hang", action="getBalance")
    with pytest.raises(Unavailable):
        await provider.balance()
    assert fake.requests["getBalance"] == 1


@pytest.mark.parametrize("fault", ["html", "empty"])
async def test_read_unreadable_is_bad_response(
    provider: SmsActivateProvider, fake: FakeSmsActivate, fault: str
) -> None:
    fake.inject(fault, action="getBalance")
    with pytest.raises(BadResponse) as info:
        await provider.balance()
    assert fake.requests["getBalance"] == 1
    assert_no_key(info.value)
    if fault == "html":
        assert info.value.raw is not None
        assert "502 Bad Gateway" in info.value.raw
        assert "api_key=***" in info.value.raw  # the echoed URL is kept, the key masked


@pytest.mark.parametrize("fault", ["500", "html", "empty", "429", "hang", "drop"])
async def test_api_key_never_in_errors(fault: str) -> None:
    async with running() as (fake, provider):
        provider.http.read_attempts = 1  # retries are tested above; keep the hang case short
        fake.inject(fault, times=10)
        with pytest.raises(ProviderError) as read:
            await provider.balance()
        assert_no_key(read.value)
        with pytest.raises(ProviderError) as buy:
            await provider.buy("RU", "telegram", client_ref=f"k-{fault}")
        assert_no_key(buy.value)


async def test_api_key_not_in_auth_error(fake: FakeSmsActivate) -> None:
    other = "sa-wrong-key-1234567"
    async with make_provider(fake.url, api_key=other) as provider:
        with pytest.raises(AuthError) as info:
            await provider.balance()
    text = "".join(traceback.format_exception(info.value))
    assert other not in text
    assert fake.calls[-1][1]["api_key"] == other
