"""5sim adapter against the fake 5sim server (its literal example bodies, docs/protocols.md §3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.money import loads
from services.providers import fivesim, tables
from services.providers.base import OtpActiveOrder, OtpOffer, OtpPurchase, OtpState, OtpStatus
from services.providers.config import ProviderConfig
from services.providers.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    InvalidState,
    NoNumbers,
    OrderNotFound,
    OutcomeUnknown,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
)
from services.providers.fivesim import FiveSimProvider, parse_prices
from tests.fakes.fivesim import (
    BAN_BODY,
    BUY_BODY,
    CANCEL_BODY,
    CHECK_BODY,
    FINISH_BODY,
    FIRST_ORDER_ID,
    ORDERS_BODY,
    PRICES_COUNTRY_PRODUCT_BODY,
    FakeFiveSim,
    big_price_list,
)

KEY = "fivesim-secret-jwt-0123456789abcdef"
NOW = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)

PRICES = """{
  "russia": {
    "telegram": {
      "beeline": {"cost": 8, "count": 0, "rate": 99.99},
      "mts": {"cost": 12.5, "count": 10, "rate": 99.99},
      "virtual15": {"cost": 9.99, "count": 3}
    },
    "vkontakte": {"beeline": {"cost": 21, "count": 5, "rate": 99.99}},
    "1688": {"matrix": {"cost": 4, "count": 0, "rate": 99.99}}
  },
  "england": {"whatsapp": {"virtual4": {"cost": 0.35, "count": 100, "rate": 50}}},
  "atlantis": {"telegram": {"virtual1": {"cost": 1.10, "count": 1}}}
}"""


def make_provider(url: str, *, key: str = KEY, timeout_s: float = 2.0) -> FiveSimProvider:
    config = ProviderConfig(
        name="fs", kind="fivesim", base_url=url, api_key=key, currency="RUB", timeout_s=timeout_s
    )
    provider = FiveSimProvider(config)
    provider.http.backoff_s = 0.01
    return provider


@pytest.fixture
async def fake() -> AsyncIterator[FakeFiveSim]:
    async with FakeFiveSim(token=KEY, prices=PRICES) as server:
        server.now = lambda: NOW
        yield server


@pytest.fixture
async def provider(fake: FakeFiveSim) -> AsyncIterator[FiveSimProvider]:
    async with make_provider(fake.url) as adapter:
        yield adapter


async def buy_one(provider: FiveSimProvider, service: str = "telegram") -> OtpPurchase:
    return await provider.buy("RU", service, client_ref="ord-1")


# --- account and catalog ---------------------------------------------------------------------


async def test_declares_its_features() -> None:
    async with make_provider("http://127.0.0.1:9/v1") as provider:
        assert provider.kind == "fivesim"
        assert (provider.supports_ban, provider.supports_order_list) == (True, True)
        assert (provider.supports_finish, provider.supports_another_sms) == (True, False)
        assert (provider.name, provider.currency) == ("fs", "RUB")


async def test_balance_from_seed_profile_with_bearer_and_accept(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    assert await provider.balance() == Decimal("100")
    seen = fake.seen[-1]
    assert (seen.path, seen.authorization, seen.accept) == (
        "/v1/user/profile",
        f"Bearer {KEY}",
        "application/json",
    )
    fake.balance = Decimal("12.34")
    balance = await provider.balance()
    assert balance == Decimal("12.34") and isinstance(balance, Decimal)


async def test_offers_from_the_seed_price_list() -> None:
    async with FakeFiveSim() as seed_fake, make_provider(seed_fake.url) as seed_provider:
        offers = await seed_provider.offers()
    # beeline 4 (1260) + lycamobile 4 (935); matrix has count 0
    assert offers == [
        OtpOffer(
            country="RU",
            service="1688",
            price=Decimal(4),
            stock=2195,
            native_country="russia",
            native_service="1688",
        )
    ]


async def test_offers_cheapest_operator_in_stock_and_unknown_country(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    offers = await provider.offers()
    assert offers == [
        OtpOffer(
            country="RU",
            service="telegram",
            price=Decimal("9.99"),
            stock=13,
            native_country="russia",
            native_service="telegram",
        ),
        OtpOffer(
            country="RU",
            service="vkontakte",
            price=Decimal("21"),
            stock=5,
            native_country="russia",
            native_service="vkontakte",
        ),
        OtpOffer(
            country="GB",
            service="whatsapp",
            price=Decimal("0.35"),
            stock=100,
            native_country="england",
            native_service="whatsapp",
        ),
        OtpOffer(
            country="fivesim:atlantis",
            service="telegram",
            price=Decimal("1.10"),
            stock=1,
            native_country="atlantis",
            native_service="telegram",
            country_name="atlantis",
        ),
    ]
    assert all(type(offer.price) is Decimal for offer in offers)
    assert str(offers[3].price) == "1.10"  # parsed from the text, not through a float
    assert fake.seen[-1].query == {}


async def test_offers_for_one_country(fake: FakeFiveSim, provider: FiveSimProvider) -> None:
    gb = await provider.offers("GB")
    assert [(o.country, o.service, o.price, o.stock) for o in gb] == [
        ("GB", "whatsapp", Decimal("0.35"), 100)
    ]
    assert fake.seen[-1].query == {"country": "england"}
    unknown = await provider.offers("fivesim:atlantis")
    assert [(o.country, o.price) for o in unknown] == [("fivesim:atlantis", Decimal("1.10"))]
    assert fake.seen[-1].query == {"country": "atlantis"}
    before = fake.hits["prices"]
    assert await provider.offers("ZZ") == []
    assert fake.hits["prices"] == before  # no 5sim name for ZZ: nothing to ask


async def test_offers_all_operators_out_of_stock_gives_nothing(fake: FakeFiveSim) -> None:
    fake.set_prices(PRICES_COUNTRY_PRODUCT_BODY)
    async with make_provider(fake.url) as provider:
        assert await provider.offers() == []


async def test_big_price_list_parsed_exactly(fake: FakeFiveSim) -> None:
    text = big_price_list(countries=30, products=120)
    fake.set_prices(text)
    expected = {}
    iso = tables.fivesim_country_iso()
    for country, products in loads(text).items():
        for product, operators in products.items():
            live = [op for op in operators.values() if op["count"] > 0]
            if live:
                key = (iso.get(country) or f"fivesim:{country}", product)
                expected[key] = (min(op["cost"] for op in live), sum(op["count"] for op in live))
    async with make_provider(fake.url) as provider:
        offers = await provider.offers()
    assert len(offers) == len(expected) > 1000
    assert {(o.country, o.service): (o.price, o.stock) for o in offers} == expected
    assert offers[0].model_dump()["native_service"] == offers[0].service


def test_parse_prices_skips_junk_values() -> None:
    data = (
        '{"russia": {"a": {"x": {"cost": "7.5", "count": 2}, "y": {"cost": 1, "count": "9"}},'
        ' "b": {"x": {"cost": NaN, "count": 4}}, "c": [], "d": {"x": null}}, "usa": 5}'
    )
    assert [(o.service, o.price, o.stock) for o in parse_prices(data)] == [
        ("a", Decimal("7.5"), 2)
    ]


def test_parse_prices_a_free_or_negative_operator_is_not_the_cheapest() -> None:
    """An operator at 0 or below would win "cheapest" and sell the product for nothing: it is
    skipped and the product sells at its real operators' price (the catalog refuses the rest)."""
    data = (
        '{"russia": {"a": {"free": {"cost": 0, "count": 5}, "x": {"cost": 2.5, "count": 3}},'
        ' "b": {"neg": {"cost": -1, "count": 5}, "x": {"cost": "0.0", "count": 1}},'
        ' "c": {"x": {"cost": 1e30, "count": 1}}}}'
    )
    assert [(o.service, o.price, o.stock) for o in parse_prices(data)] == [
        ("a", Decimal("2.5"), 3),
        ("c", Decimal("1e30"), 1),  # absurd, but a number: OtpCatalog drops it when pricing
    ]


def test_parse_prices_products_and_operators_named_cost_or_count() -> None:
    body = (
        '{"russia": {"cost": {"x": {"cost": 2, "count": 1}},'
        ' "count": {"cost": {"cost": 3.50, "count": 4, "rate": 1.5}, "y": {"count": 0}}},'
        ' "count": {"z": {"cost": {"cost": 1, "count": 1}}}}'
    )
    offers = parse_prices(body)
    assert [(o.country, o.service, o.price, o.stock) for o in offers] == [
        ("RU", "cost", Decimal(2), 1),
        ("RU", "count", Decimal("3.50"), 4),
        ("fivesim:count", "z", Decimal(1), 1),
    ]


@pytest.mark.parametrize("body", ["{broken", "[1, 2]", "", "5"])
def test_parse_prices_refuses_what_is_not_a_price_list(body: str) -> None:
    with pytest.raises(ValueError):
        parse_prices(body)


def test_parsed_offers_are_plain_rows_and_still_behave() -> None:
    offers = parse_prices(
        b'{"russia": {"a": {"x": {"cost": 1, "count": 1}}, "b": {"x": {"cost": 2, "count": 2}}}}'
    )
    # No model is kept per offer (50k of them would hold ~50 MB): plain tuples, which the
    # catalog takes as they are; reading an item gives a validated OtpOffer.
    assert [type(row) for row in offers.rows] == [tuple, tuple]
    a, b = offers
    assert type(a) is OtpOffer and offers == [a, b] and offers[:1] == [a]
    validated = OtpOffer(
        country="RU",
        service="a",
        price=Decimal(1),
        stock=1,
        native_country="russia",
        native_service="a",
        country_name=None,
    )
    assert a == validated and a.model_fields_set == validated.model_fields_set
    assert a.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    copied = a.model_copy(update={"stock": 9})
    assert (copied.stock, a.stock, b.stock) == (9, 1, 2)
    assert a.model_copy(deep=True) == a
    with pytest.raises(ValueError):
        a.stock = 5  # type: ignore[misc]  # still frozen


@pytest.mark.parametrize("body", ["{broken", "[1, 2]"])
async def test_unreadable_price_list_is_bad_response(
    fake: FakeFiveSim, provider: FiveSimProvider, body: str
) -> None:
    fake.set_fault("text", route="prices", body=body, status=200)
    with pytest.raises(BadResponse):
        await provider.offers()
    assert fake.hits["prices"] == 1


# --- buy ---------------------------------------------------------------------------------------


async def test_buy_sends_any_operator_with_max_price(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    purchase = await provider.buy("RU", "telegram", max_price=Decimal("10.00"), client_ref="o1")
    assert purchase == OtpPurchase(
        order_id=str(FIRST_ORDER_ID),
        phone="+79001631253",
        price=Decimal("9.99"),
        expires_at=NOW + timedelta(minutes=15),
    )
    seen = fake.seen[-1]
    assert (seen.path, seen.query) == (
        "/v1/user/buy/activation/russia/any/telegram",
        {"maxPrice": "10"},
    )
    assert fake.order(FIRST_ORDER_ID).operator == "virtual15"
    assert fake.balance == Decimal("90.01")


async def test_buy_parses_the_seed_literal_order(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    fake.set_fault("text", route="buy", body=BUY_BODY, status=200)
    purchase = await provider.buy("RU", "vkontakte", client_ref="o1")
    assert purchase == OtpPurchase(
        order_id="11631253",
        phone="+79000381454",
        price=Decimal(21),
        expires_at=datetime(2018, 10, 13, 8, 28, 38, 809469, tzinfo=UTC),
    )


async def test_buy_adds_plus_to_a_bare_phone(fake: FakeFiveSim, provider: FiveSimProvider) -> None:
    body = BUY_BODY.replace('"+79000381454"', '"79000381454"').replace('"price":21', '"price":4.5')
    fake.set_fault("text", route="buy", body=body, status=200)
    purchase = await buy_one(provider)
    assert (purchase.phone, purchase.price) == ("+79000381454", Decimal("4.5"))


async def test_buy_no_free_phones_with_http_200(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    fake.set_buy_no_numbers()
    with pytest.raises(NoNumbers) as info:
        await buy_one(provider)
    assert info.value.raw == "no free phones"
    assert fake.hits["buy"] == 1 and fake.orders == {}


async def test_buy_under_max_price_finds_no_number(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    with pytest.raises(NoNumbers):
        await provider.buy("RU", "telegram", max_price=Decimal("9.98"), client_ref="o1")
    assert fake.seen[-1].query == {"maxPrice": "9.98"}


async def test_buy_refusals_from_the_fake_state(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    with pytest.raises(BadRequest):
        await buy_one(provider, service="nosuchproduct")  # fake: `no product`
    fake.balance = Decimal("1")
    with pytest.raises(ProviderBalanceLow):
        await buy_one(provider)
    fake.rating = Decimal(0)
    with pytest.raises(AuthError):
        await buy_one(provider)


async def test_buy_unknown_country_is_refused_without_a_request(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    with pytest.raises(BadRequest):
        await provider.buy("ZZ", "telegram", client_ref="o1")
    assert fake.hits["buy"] == 0


async def test_buy_hang_is_outcome_unknown_after_exactly_one_request(
    fake: FakeFiveSim,
) -> None:
    fake.set_fault("hang", route="buy")
    async with make_provider(fake.url, timeout_s=0.5) as provider:
        with pytest.raises(OutcomeUnknown):
            await buy_one(provider)
        assert fake.hits["buy"] == 1
        # The order went through at 5sim: reconciliation finds it in the order list.
        fake.clear_faults()
        orders = await provider.active_orders()
    assert [(o.order_id, o.service) for o in orders] == [(str(FIRST_ORDER_ID), "telegram")]
    assert fake.hits["buy"] == 1


async def test_buy_dropped_connection_is_outcome_unknown(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    fake.set_fault("drop", route="buy")
    with pytest.raises(OutcomeUnknown):
        await buy_one(provider)
    assert fake.hits["buy"] == 1 and list(fake.orders) == [FIRST_ORDER_ID]


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [
        ("500", None, OutcomeUnknown),  # may have bought: reconcile, never resend
        ("html", 200, OutcomeUnknown),
        ("empty", 200, OutcomeUnknown),
        ("html", 502, OutcomeUnknown),
        ("html", 404, BadResponse),  # refused before buying
        ("503", None, Unavailable),  # 5sim's buy limit
        ("429", None, Unavailable),
    ],
)
async def test_buy_unreadable_answers(
    fake: FakeFiveSim,
    provider: FiveSimProvider,
    kind: str,
    status: int | None,
    error: type[ProviderError],
) -> None:
    fake.set_fault(kind, route="buy", status=status)
    with pytest.raises(error):
        await buy_one(provider)
    assert fake.hits["buy"] == 1


# --- errors ------------------------------------------------------------------------------------

ERROR_TEXTS = [
    ("no free phones", NoNumbers),
    ("not enough user balance", ProviderBalanceLow),
    ("not enough rating", AuthError),
    ("select country", BadRequest),
    ("select operator", BadRequest),
    ("bad country", BadRequest),
    ("bad operator", BadRequest),
    ("no product", BadRequest),
    ("country is incorrect", BadRequest),
    ("product is incorrect", BadRequest),
    ("server offline", Unavailable),
    ("internal error", Unavailable),
    ("record not found", OrderNotFound),
    ("order not found", OrderNotFound),
    ("order expired", InvalidState),
    ("order has sms", InvalidState),
    ("order no sms", InvalidState),
    ("hosting order", InvalidState),
]


@pytest.mark.parametrize(("text", "error"), ERROR_TEXTS)
async def test_every_error_text_on_buy(
    fake: FakeFiveSim, provider: FiveSimProvider, text: str, error: type[ProviderError]
) -> None:
    fake.set_error(text, route="buy", status=400)
    with pytest.raises(error) as info:
        await buy_one(provider)
    assert type(info.value) is error
    assert info.value.raw == text
    assert fake.hits["buy"] == 1


@pytest.mark.parametrize(("text", "error"), ERROR_TEXTS)
async def test_every_error_text_on_a_read_any_case(
    fake: FakeFiveSim, provider: FiveSimProvider, text: str, error: type[ProviderError]
) -> None:
    fake.set_error(f"{text.upper()}\n", route="check", status=200)
    with pytest.raises(error):
        await provider.status("123")
    assert fake.hits["check"] == 1  # a 200 error answer is not retried


async def test_wrong_key_is_401_with_empty_body(fake: FakeFiveSim) -> None:
    wrong = "wrong-key-abcdef-98765"
    async with make_provider(fake.url, key=wrong) as provider:
        with pytest.raises(AuthError) as info:
            await provider.balance()
    assert fake.hits["profile"] == 1
    assert wrong not in str(info.value) and KEY not in str(info.value)


@pytest.mark.parametrize("kind", ["html", "empty"])
async def test_html_or_empty_read_is_bad_response(
    fake: FakeFiveSim, provider: FiveSimProvider, kind: str
) -> None:
    fake.set_fault(kind, route="check")
    with pytest.raises(BadResponse) as info:
        await provider.status("123")
    if kind == "html":
        assert info.value.raw is not None and info.value.raw.startswith("<html>")
    else:
        assert info.value.raw is None
    assert fake.hits["check"] == 1


@pytest.mark.parametrize(
    "body", ['{"id": 1, "status": "WHAT"}', "[1, 2]", "{broken", "some new error"]
)
async def test_unknown_or_broken_json_is_bad_response(
    fake: FakeFiveSim, provider: FiveSimProvider, body: str
) -> None:
    fake.set_fault("text", route="check", body=body, status=200)
    with pytest.raises(BadResponse):
        await provider.status("1")


async def test_500_on_a_read_is_retried_then_unavailable(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    fake.set_fault("500", route="profile")
    with pytest.raises(Unavailable):
        await provider.balance()
    assert fake.hits["profile"] == provider.http.read_attempts == 3
    fake.clear_faults()
    fake.set_fault("html", route="profile", status=502, times=1)
    assert await provider.balance() == Decimal("100")
    assert fake.hits["profile"] == 5


@pytest.mark.parametrize("kind", ["429", "503"])
async def test_rate_limits_are_unavailable_and_not_hammered(
    fake: FakeFiveSim, provider: FiveSimProvider, kind: str
) -> None:
    fake.set_fault(kind, route="check")
    with pytest.raises(Unavailable) as info:
        await provider.status("1")
    assert info.value.retry_after_s == (1.0 if kind == "429" else None)
    assert fake.hits["check"] == 1


async def test_read_hang_is_retried_then_unavailable(fake: FakeFiveSim) -> None:
    fake.set_fault("hang", route="check")
    async with make_provider(fake.url, timeout_s=0.3) as provider:
        with pytest.raises(Unavailable):
            await provider.status("1")
    assert fake.hits["check"] == 3


async def test_bad_order_ids_never_reach_the_server(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    for bad in ("../profile", "", "12a", "١٢٣"):
        with pytest.raises(OrderNotFound):
            await provider.status(bad)
    assert fake.hits.total() == 0


# --- status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "with_sms", "expected"),
    [
        ("PENDING", False, OtpStatus(state=OtpState.WAITING)),
        ("RECEIVED", False, OtpStatus(state=OtpState.WAITING)),
        ("RECEIVED", True, OtpStatus(state=OtpState.CODE, code="5511", text="code 5511")),
        ("CANCELED", False, OtpStatus(state=OtpState.CANCELLED)),
        ("BANNED", False, OtpStatus(state=OtpState.CANCELLED)),
        ("TIMEOUT", False, OtpStatus(state=OtpState.EXPIRED)),
        ("FINISHED", False, OtpStatus(state=OtpState.FINISHED)),
        ("FINISHED", True, OtpStatus(state=OtpState.FINISHED, code="5511", text="code 5511")),
    ],
)
async def test_every_status_value(
    fake: FakeFiveSim,
    provider: FiveSimProvider,
    status: str,
    with_sms: bool,
    expected: OtpStatus,
) -> None:
    purchase = await buy_one(provider)
    if with_sms:
        fake.deliver_sms(purchase.order_id, "5511", "code 5511")
    fake.set_status(purchase.order_id, status)
    assert await provider.status(purchase.order_id) == expected
    assert fake.seen[-1].path == f"/v1/user/check/{purchase.order_id}"


@pytest.mark.parametrize(
    ("body", "state"),
    [
        (CHECK_BODY, OtpState.CODE),
        (FINISH_BODY, OtpState.FINISHED),
        (CANCEL_BODY, OtpState.CANCELLED),
        (BAN_BODY, OtpState.CANCELLED),
    ],
)
async def test_seed_literal_order_bodies(
    fake: FakeFiveSim, provider: FiveSimProvider, body: str, state: OtpState
) -> None:
    fake.set_fault("text", route="check", body=body, status=200)
    status = await provider.status("11631253")
    assert status.state is state
    if state in (OtpState.CODE, OtpState.FINISHED):
        assert status.code == "09363"
        assert status.text == "VK: 09363 - use this code to reclaim your suspended profile."
    else:
        assert status.code is None  # a refunded order never hands out its code


async def test_fresh_order_with_null_sms_is_waiting(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    fake.set_fault("text", route="check", body=BUY_BODY.replace("PENDING", "RECEIVED"), status=200)
    assert await provider.status("11631253") == OtpStatus(state=OtpState.WAITING)


async def test_received_with_empty_sms_entries_is_still_waiting(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    body = BUY_BODY.replace('"PENDING"', '"RECEIVED"').replace(
        '"sms":null', '"sms":[{"created_at":"2018-10-13T08:20:38Z","text":"","code":""}]'
    )
    fake.set_fault("text", route="check", body=body, status=200)
    assert await provider.status("11631253") == OtpStatus(state=OtpState.WAITING)


async def test_newest_sms_with_a_code_wins(fake: FakeFiveSim, provider: FiveSimProvider) -> None:
    purchase = await buy_one(provider)
    clock = [NOW]
    fake.now = lambda: clock[0]
    for code, text in (("111", "first 111"), ("222", "second 222"), ("", "no code here")):
        clock[0] += timedelta(seconds=30)
        fake.deliver_sms(purchase.order_id, code, text)
    status = await provider.status(purchase.order_id)
    assert status == OtpStatus(state=OtpState.CODE, code="222", text="second 222")


async def test_newest_is_by_time_not_by_list_position(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    body = """{"id": 7, "phone": "+79000381454", "product": "vkontakte", "price": 21,
      "status": "RECEIVED", "expires": "2018-10-13T08:28:38.809469028Z", "sms": [
        {"created_at":"2018-10-13T08:22:00.000000001Z","date":"2018-10-13T08:22:00Z",
         "sender":"VKcom","text":"VK: 77777","code":"77777"},
        {"created_at":"2018-10-13T08:20:38.809469028Z","date":"2018-10-13T08:19:38Z",
         "sender":"VKcom","text":"VK: 09363","code":"09363"}],
      "country":"russia"}"""
    fake.set_fault("text", route="check", body=body, status=200)
    assert (await provider.status("7")).code == "77777"


async def test_code_falls_back_to_the_newest_text(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    purchase = await buy_one(provider)
    clock = [NOW]
    fake.now = lambda: clock[0]
    for text in ("Your code: 4821", "Your code: 9930"):
        clock[0] += timedelta(seconds=5)
        fake.deliver_sms(purchase.order_id, "", text)
    status = await provider.status(purchase.order_id)
    assert status == OtpStatus(state=OtpState.CODE, code="Your code: 9930", text="Your code: 9930")


async def test_expiry_in_the_fake_reads_as_expired(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    purchase = await buy_one(provider)
    fake.expire(purchase.order_id)
    assert (await provider.status(purchase.order_id)).state is OtpState.EXPIRED
    assert fake.balance == Decimal("100")  # 5sim refunded itself
    with pytest.raises(InvalidState):
        await provider.cancel(purchase.order_id)  # `order expired`


async def test_status_of_an_unknown_order(fake: FakeFiveSim, provider: FiveSimProvider) -> None:
    with pytest.raises(OrderNotFound):
        await provider.status("999")
    assert fake.hits["check"] == 1  # a 404 with a known text is not retried


# --- cancel, finish, ban -----------------------------------------------------------------------


async def test_cancel_refunds_and_is_idempotent(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    purchase = await buy_one(provider)
    await provider.cancel(purchase.order_id)
    assert fake.order(purchase.order_id).status == "CANCELED"
    assert fake.balance == Decimal("100")
    await provider.cancel(purchase.order_id)  # already CANCELED: nothing to do
    assert fake.paths[f"/v1/user/cancel/{purchase.order_id}"] == 2
    with pytest.raises(InvalidState):
        await provider.finish(purchase.order_id)  # the order says CANCELED
    assert (await provider.status(purchase.order_id)).state is OtpState.CANCELLED


async def test_cancel_or_ban_after_an_sms_is_refused(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    purchase = await buy_one(provider)
    fake.deliver_sms(purchase.order_id, "1234")
    with pytest.raises(InvalidState) as info:
        await provider.cancel(purchase.order_id)
    assert info.value.raw == "order has sms"
    with pytest.raises(InvalidState):
        await provider.ban(purchase.order_id)
    await provider.finish(purchase.order_id)
    assert fake.order(purchase.order_id).status == "FINISHED"
    status = await provider.status(purchase.order_id)
    assert status == OtpStatus(state=OtpState.FINISHED, code="1234", text="Your code is 1234")


async def test_finish_without_sms_is_refused(fake: FakeFiveSim, provider: FiveSimProvider) -> None:
    purchase = await buy_one(provider)
    with pytest.raises(InvalidState) as info:
        await provider.finish(purchase.order_id)
    assert info.value.raw == "order no sms"


async def test_ban_refunds(fake: FakeFiveSim, provider: FiveSimProvider) -> None:
    purchase = await buy_one(provider)
    await provider.ban(purchase.order_id)
    assert fake.order(purchase.order_id).status == "BANNED"
    assert fake.balance == Decimal("100")
    assert (await provider.status(purchase.order_id)).state is OtpState.CANCELLED


async def test_actions_on_unknown_orders(fake: FakeFiveSim, provider: FiveSimProvider) -> None:
    for action in (provider.cancel, provider.finish, provider.ban):
        with pytest.raises(OrderNotFound):
            await action("424242")
    assert (fake.hits["cancel"], fake.hits["finish"], fake.hits["ban"]) == (1, 1, 1)


# --- order list --------------------------------------------------------------------------------


async def test_active_orders_maps_the_list(fake: FakeFiveSim, provider: FiveSimProvider) -> None:
    first = await buy_one(provider)
    second = await provider.buy("GB", "whatsapp", client_ref="o2")
    third = await buy_one(provider, service="vkontakte")
    fake.deliver_sms(first.order_id, "777", "code 777")
    await provider.cancel(third.order_id)
    orders = await provider.active_orders()
    assert orders == [
        OtpActiveOrder(
            order_id=third.order_id,
            phone=third.phone,
            country="RU",
            service="vkontakte",
            created_at=NOW,
            status=OtpStatus(state=OtpState.CANCELLED),
        ),
        OtpActiveOrder(
            order_id=second.order_id,
            phone="+449001631254",
            country="GB",
            service="whatsapp",
            created_at=NOW,
            status=OtpStatus(state=OtpState.WAITING),
        ),
        OtpActiveOrder(
            order_id=first.order_id,
            phone=first.phone,
            country="RU",
            service="telegram",
            created_at=NOW,
            status=OtpStatus(state=OtpState.CODE, code="777", text="code 777"),
        ),
    ]
    assert fake.seen[-1].query == {
        "category": "activation",
        "limit": "100",
        "offset": "0",
        "order": "id",
        "reverse": "true",
    }


async def test_active_orders_from_the_seed_literal_list(
    fake: FakeFiveSim, provider: FiveSimProvider
) -> None:
    fake.set_fault("text", route="orders", body=ORDERS_BODY, status=200)
    assert await provider.active_orders() == [
        OtpActiveOrder(
            order_id="53533933",
            phone="+79085895281",
            country="RU",
            service="aliexpress",
            created_at=datetime(2020, 6, 28, 16, 17, 43, 307041, tzinfo=UTC),
            status=OtpStatus(state=OtpState.CANCELLED),
        )
    ]
    fake.clear_faults()
    fake.set_fault("text", route="orders", body='{"Data":null,"Total":0}', status=200)
    assert await provider.active_orders() == []


async def test_active_orders_pages_through_recent_orders(
    fake: FakeFiveSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fivesim, "ORDERS_PAGE", 2)
    fake.now = lambda: datetime.now(UTC)
    async with make_provider(fake.url) as provider:
        bought = [await buy_one(provider) for _ in range(5)]
        orders = await provider.active_orders()
    assert [o.order_id for o in orders] == [p.order_id for p in reversed(bought)]
    assert [s.query["offset"] for s in fake.seen if s.route == "orders"] == ["0", "2", "4"]


async def test_active_orders_stop_at_old_orders(
    fake: FakeFiveSim, monkeypatch: pytest.MonkeyPatch, provider: FiveSimProvider
) -> None:
    monkeypatch.setattr(fivesim, "ORDERS_PAGE", 2)
    fake.now = lambda: datetime.now(UTC) - fivesim.ORDERS_LOOKBACK - timedelta(hours=1)
    for _ in range(5):
        await buy_one(provider)
    orders = await provider.active_orders()
    assert (len(orders), fake.hits["orders"]) == (2, 1)  # the first page is already too old


# --- secrets -----------------------------------------------------------------------------------


async def test_api_key_never_in_an_exception(fake: FakeFiveSim) -> None:
    errors: list[ProviderError] = []

    async def collect(call) -> None:
        try:
            await call
        except ProviderError as exc:
            errors.append(exc)

    async with make_provider(fake.url, timeout_s=0.3) as provider:
        fake.set_error(f"bad token {KEY}", route="buy", status=400, times=1)
        await collect(buy_one(provider))  # unknown text echoing the key: BadResponse
        fake.set_error(f"no free phones {KEY}", route="buy", status=200, times=1)
        await collect(buy_one(provider))
        fake.set_fault("html", route="check", body=f"<html>{KEY}</html>", times=1)
        await collect(provider.status("1"))
        fake.set_fault("hang", route="buy", times=1)
        await collect(buy_one(provider))
        fake.set_fault("500", route="profile", body=KEY, times=3)
        await collect(provider.balance())
        fake.set_fault("429", route="orders", body=KEY)
        await collect(provider.active_orders())
        await collect(provider.status("999"))
        fake.set_fault("drop", route="cancel")
        await collect(provider.cancel("1"))
    async with make_provider(fake.url, key="another-key-0000-1111") as wrong:
        await collect(wrong.balance())
    kinds = [type(e) for e in errors]
    assert kinds == [
        BadResponse,
        NoNumbers,
        BadResponse,
        OutcomeUnknown,
        Unavailable,
        Unavailable,
        OrderNotFound,
        Unavailable,
        AuthError,
    ]
    for exc in errors:
        for text in (str(exc), repr(exc), exc.raw or "", *map(str, exc.args)):
            assert KEY not in text
            assert "another-key-0000-1111" not in text
    assert "***" in (errors[0].raw or "")
