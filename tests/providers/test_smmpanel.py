"""SMM panel adapters (the form protocol and its JSON variant) against the fake panel."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.money import loads
from services.providers.base import (
    SmmOrderRequest,
    SmmOrderState,
    SmmOrderStatus,
    SmmService,
    SmmServiceType,
)
from services.providers.config import ProviderConfig
from services.providers.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    InvalidState,
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
    UnreadableOrder,
)
from services.providers.smmpanel import SmmPanelProvider
from services.providers.smmpanel_json import SmmPanelJsonProvider
from tests.fakes import smmpanel as seed
from tests.fakes.smmpanel import FakeSmmPanel

KEY = "smm-test-key-7c4e19b2a0"
LINK = "https://instagram.com/p/abc123"

FORM, JSON = "form", "json"

# Services with every offered type (and cancel allowed), beside the seed's.
TYPED_SERVICES: list[dict[str, Any]] = [
    {"service": 1, "name": "Followers", "type": "Default", "category": "IG", "rate": "0.90",
     "min": "50", "max": "10000", "refill": True, "cancel": True, "dripfeed": True},
    {"service": 3, "name": "Pack", "type": "Package", "category": "IG", "rate": "2.5",
     "min": "1", "max": "1", "cancel": True},
    {"service": 4, "name": "Comments", "type": "Custom Comments", "category": "IG",
     "rate": "8", "min": "1", "max": "1500"},
    {"service": 5, "name": "Poll votes", "type": "Poll", "category": "TG", "rate": "0.5",
     "min": "10", "max": "5000"},
    {"service": 6, "name": "Mentions", "type": "Mentions", "category": "IG", "rate": "3",
     "min": "10", "max": "1000"},
]  # fmt: skip


def make_provider(
    url: str, variant: str, *, api_key: str = KEY, **config: Any
) -> SmmPanelProvider:
    kind = "smmpanel_json" if variant == JSON else "smmpanel"
    cls = SmmPanelJsonProvider if variant == JSON else SmmPanelProvider
    cfg = ProviderConfig(
        name="panel1", kind=kind, base_url=url, api_key=api_key, timeout_s=0.5, **config
    )
    provider = cls(cfg, transport=httpx.AsyncHTTPTransport(verify=False))
    provider.http.backoff_s = 0.001
    return provider


@pytest.fixture(params=[FORM, JSON])
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def fake(variant: str) -> AsyncIterator[FakeSmmPanel]:
    async with FakeSmmPanel(api_key=KEY, json_api=variant == JSON) as server:
        yield server


@pytest.fixture
async def provider(fake: FakeSmmPanel, variant: str) -> AsyncIterator[SmmPanelProvider]:
    async with make_provider(fake.url, variant) as adapter:
        yield adapter


@pytest.fixture
async def form_fake() -> AsyncIterator[FakeSmmPanel]:
    async with FakeSmmPanel(api_key=KEY) as server:
        yield server


@pytest.fixture
async def form(form_fake: FakeSmmPanel) -> AsyncIterator[SmmPanelProvider]:
    async with make_provider(form_fake.url, FORM) as adapter:
        yield adapter


@pytest.fixture
async def json_fake() -> AsyncIterator[FakeSmmPanel]:
    async with FakeSmmPanel(api_key=KEY, json_api=True) as server:
        yield server


@pytest.fixture
async def jsonp(json_fake: FakeSmmPanel) -> AsyncIterator[SmmPanelProvider]:
    async with make_provider(json_fake.url, JSON) as adapter:
        yield adapter


def wire(variant: str, **values: Any) -> dict[str, Any]:
    """What the fake receives: form fields are strings, the JSON body keeps numbers."""
    if variant == FORM:
        return {k: str(v) for k, v in values.items()}
    return values


def first_id(variant: str) -> str:
    return "123" if variant == JSON else "23501"


def assert_no_key(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    assert KEY not in text
    assert KEY not in repr(exc)
    raw = getattr(exc, "raw", None)
    assert raw is None or KEY not in raw


async def raises(coro: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await coro
    assert_no_key(info.value)
    return info.value


# --- the fake serves the seeds' literal bodies -------------------------------------------------


async def test_fake_form_answers_with_seed_literals(form_fake: FakeSmmPanel) -> None:
    async def post(**data: str) -> Any:
        async with httpx.AsyncClient() as client:
            response = await client.post(form_fake.url, data={"key": KEY, **data})
        return loads(response.text)

    assert await post(action="services") == loads(seed.SEED_SERVICES)
    assert await post(action="balance") == loads(seed.SEED_BALANCE)
    add = await post(action="add", service="1", link=LINK, quantity="100")
    assert add == loads(seed.SEED_ADD)
    form_fake.set_order("23501", status="Partial", remains=157, start_count=3572, charge="0.27819")
    status = await post(action="status", order="23501")
    assert status == loads(seed.SEED_STATUS)
    form_fake.set_order("1", status="Partial", remains=157, start_count=3572, charge="0.27819")
    form_fake.set_order("100", status="In progress", remains=10, start_count=234, charge="1.44219")
    assert await post(action="status", orders="1,10,100") == loads(seed.SEED_MULTI_STATUS)
    form_fake.set_order("23501", status="Completed")
    assert await post(action="refill", order="23501") == loads(seed.SEED_REFILL)
    form_fake.set_refill("1", "Completed")
    assert await post(action="refill_status", refill="1") == loads(seed.SEED_REFILL_STATUS)


async def test_fake_json_answers_with_seed_literals(json_fake: FakeSmmPanel) -> None:
    async def post(body: dict[str, Any]) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient() as client:
            response = await client.post(json_fake.url, json=body, headers=headers)
        return response.status_code, loads(response.text)

    assert await post({"action": "services"}) == (200, loads(seed.JSON_SEED_SERVICES))
    assert await post({"action": "balance"}) == (200, loads(seed.JSON_SEED_BALANCE))
    add = {"action": "add", "service": 1, "link": LINK, "quantity": 100, "interval": 60}
    assert await post(add) == (200, loads(seed.JSON_SEED_ADD))
    json_fake.set_order("123", status="In progress", remains=50, start_count=50, charge="0")
    json_fake.set_order("124", status="Completed", remains=0, start_count=100, charge="0")
    status = await post({"action": "status", "orders": "123,124,125"})
    assert status == (200, loads(seed.JSON_SEED_STATUS))
    json_fake.set_order("123", status="Pending", charge="10.0")
    cancel = await post({"action": "cancel", "orders": "123,124"})
    assert cancel == (200, loads(seed.JSON_SEED_CANCEL))
    assert await post({}) == (422, loads(seed.JSON_SEED_VALIDATION))
    assert await post({"action": "refill", "order": "123"}) == (
        400,
        loads(seed.JSON_SEED_INVALID_ACTION),
    )


# --- flags, balance, auth ----------------------------------------------------------------------


async def test_capability_flags(form: SmmPanelProvider, jsonp: SmmPanelProvider) -> None:
    assert (form.kind, form.supports_refill, form.supports_cancel) == ("smmpanel", True, True)
    assert (form.supports_batch_status, form.max_batch) == (True, 100)
    assert (jsonp.kind, jsonp.supports_refill, jsonp.supports_cancel) == (
        "smmpanel_json",
        False,
        True,
    )
    assert (jsonp.supports_batch_status, jsonp.max_batch) == (True, 100)


@pytest.mark.parametrize(
    ("variant", "expected"), [(FORM, "100.84292"), (JSON, "100.0")], indirect=["variant"]
)
async def test_balance(
    provider: SmmPanelProvider, fake: FakeSmmPanel, variant: str, expected: str
) -> None:
    balance = await provider.balance()
    assert str(balance) == expected  # exact digits: parsed from text, never through a float
    assert fake.calls_for("balance")[-1].params == wire(variant, key=KEY, action="balance")


async def test_balance_as_number_or_string(provider: SmmPanelProvider, fake: FakeSmmPanel) -> None:
    fake.reply("balance", '{"balance": 12.34567891, "currency": "EUR"}')
    assert str(await provider.balance()) == "12.34567891"
    fake.reply("balance", '{"balance": "7", "currency": "USD"}')
    assert await provider.balance() == Decimal(7)
    fake.reply("balance", '{"currency": "USD"}')
    assert isinstance(await raises(provider.balance()), BadResponse)


async def test_form_encoding(form: SmmPanelProvider, form_fake: FakeSmmPanel) -> None:
    await form.balance()
    call = form_fake.calls_for("balance")[-1]
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in call.headers
    assert call.params == {"key": KEY, "action": "balance"}


async def test_json_sends_key_in_body_and_bearer_header(
    jsonp: SmmPanelProvider, json_fake: FakeSmmPanel
) -> None:
    await jsonp.balance()
    await jsonp.services()
    for call in json_fake.calls:
        assert call.headers["Content-Type"] == "application/json"
        assert call.headers["Authorization"] == f"Bearer {KEY}"
        assert call.params["key"] == KEY


@pytest.mark.parametrize("mode", ["body", "bearer"])
async def test_json_works_with_either_auth(mode: str) -> None:
    async with (
        FakeSmmPanel(api_key=KEY, json_api=True, json_auth=mode) as fake,
        make_provider(fake.url, JSON) as provider,
    ):
        assert await provider.balance() == Decimal("100.0")


async def test_wrong_key_is_auth_error(fake: FakeSmmPanel, variant: str) -> None:
    async with make_provider(fake.url, variant, api_key="wrong-key-123456") as provider:
        error = await raises(provider.balance())
    assert type(error) is AuthError
    assert fake.requests["balance"] == 1


async def test_json_401_message_body_is_auth_error(
    jsonp: SmmPanelProvider, json_fake: FakeSmmPanel
) -> None:
    json_fake.reply("balance", '{"message": "Unauthenticated."}', status=401)
    error = await raises(jsonp.balance())
    assert type(error) is AuthError
    assert "Unauthenticated." in str(error)


# --- services ----------------------------------------------------------------------------------


async def test_services_seed_form(form: SmmPanelProvider) -> None:
    services = await form.services()
    assert services == [
        SmmService(
            service_id="1",
            name="Followers",
            category="First Category",
            type=SmmServiceType.DEFAULT,
            rate=Decimal("0.90"),
            min=50,
            max=10000,
            refill=True,
            cancel=False,
            dripfeed=False,
            description="Some Description",
        ),
        SmmService(
            service_id="2",
            name="Comments",
            category="Second Category",
            type=SmmServiceType.CUSTOM_COMMENTS,
            rate=Decimal("8"),
            min=10,
            max=1500,
            refill=False,
            cancel=False,
            dripfeed=False,
            description="Some Description",
        ),
    ]
    assert [str(s.rate) for s in services] == ["0.90", "8"]


async def test_services_seed_json(jsonp: SmmPanelProvider) -> None:
    services = await jsonp.services()
    assert services == [
        SmmService(
            service_id="1",
            name="Example Service 1000 votes",
            category="Votes",
            type=SmmServiceType.DEFAULT,
            rate=Decimal("10.0"),
            min=1,
            max=50000,
            refill=False,
            cancel=True,
            dripfeed=False,
            description=None,
        )
    ]
    assert str(services[0].rate) == "10.0"


async def test_services_strings_numbers_and_type_filter(
    provider: SmmPanelProvider, fake: FakeSmmPanel
) -> None:
    def svc(sid: Any, type_: Any = "Default", **extra: Any) -> dict[str, Any]:
        entry = {"service": sid, "name": f"S{sid}", "category": "C", "rate": "1", "min": 1,
                 "max": 10, **extra}  # fmt: skip
        if type_ is not None:
            entry["type"] = type_
        return entry

    fake.set_services(
        [
            svc(1, "default", rate=Decimal("0.0123"), min="50", max="10000"),
            svc("2", "DEFAULT", rate=3, min="100", max=Decimal("500.0")),
            svc(3, "Package", rate="2.50", refill="1", cancel=1, dripfeed="true"),
            svc(4, "custom comments", refill=0, cancel="0", dripfeed=False),
            svc(5, "Poll"),
            svc(6, "Mentions"),
            svc(7, "Mentions with usernames"),
            svc(8, None),  # no type: Default
            svc(9, "Subscriptions"),
            svc(10, "SEO"),
            svc(11, "Mentions with Hashtags"),
            svc(12, "Custom Comments Package"),
            svc(13, "Mentions Custom List"),
            svc(14, "Web Traffic"),
            svc(15, rate="abc"),
            svc(16, min="x"),
            svc(17, rate="0"),
            svc(18, min=100, max=10),
            svc(19, rate="1.5", max="10.5"),
            {"name": "no id", "type": "Default", "rate": "1", "min": 1, "max": 2},
            "not an object",
            svc(20, 7),
            svc(21, "In_Progress"),
        ]
    )
    services = {s.service_id: s for s in await provider.services()}
    assert {k: v.type for k, v in services.items()} == {
        "1": SmmServiceType.DEFAULT,
        "2": SmmServiceType.DEFAULT,
        "3": SmmServiceType.PACKAGE,
        "4": SmmServiceType.CUSTOM_COMMENTS,
        "5": SmmServiceType.POLL,
        "6": SmmServiceType.MENTIONS,
        "7": SmmServiceType.MENTIONS,
        "8": SmmServiceType.DEFAULT,
    }
    one, two, three, four = services["1"], services["2"], services["3"], services["4"]
    assert (str(one.rate), one.min, one.max) == ("0.0123", 50, 10000)
    assert (str(two.rate), two.min, two.max) == ("3", 100, 500)
    assert (str(three.rate), three.refill, three.cancel, three.dripfeed) == (
        "2.50",
        True,
        True,
        True,
    )
    assert (four.refill, four.cancel, four.dripfeed) == (False, False, False)
    assert all(isinstance(s.rate, Decimal) for s in services.values())


async def test_services_not_a_list(provider: SmmPanelProvider, fake: FakeSmmPanel) -> None:
    fake.reply("services", '{"services": []}')
    assert isinstance(await raises(provider.services()), BadResponse)


# --- add ---------------------------------------------------------------------------------------


async def test_add_default(provider: SmmPanelProvider, fake: FakeSmmPanel, variant: str) -> None:
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    order_id = await provider.add(request, client_ref="our-1")
    assert order_id == first_id(variant)
    assert fake.calls_for("add")[-1].params == wire(
        variant, key=KEY, action="add", service=1, link=LINK, quantity=100
    )
    rate = Decimal("10.0") if variant == JSON else Decimal("0.90")
    assert fake.orders[order_id].charge == rate * 100 / 1000
    assert fake.requests["add"] == 1


async def test_add_every_type_sends_its_fields(
    provider: SmmPanelProvider, fake: FakeSmmPanel, variant: str
) -> None:
    fake.set_services(TYPED_SERVICES)
    cases: list[tuple[SmmOrderRequest, dict[str, Any]]] = [
        (
            SmmOrderRequest(service_id="1", link=LINK, quantity=200, runs=5, interval=60),
            {"service": 1, "link": LINK, "quantity": 200, "runs": 5, "interval": 60},
        ),
        (
            SmmOrderRequest(service_id="3", type=SmmServiceType.PACKAGE, link=LINK),
            {"service": 3, "link": LINK},
        ),
        (
            SmmOrderRequest(
                service_id="4",
                type=SmmServiceType.CUSTOM_COMMENTS,
                link=LINK,
                comments=["good pic", "great photo", ":)"],
            ),
            {"service": 4, "link": LINK, "comments": "good pic\ngreat photo\n:)"},
        ),
        (
            SmmOrderRequest(
                service_id="5", type=SmmServiceType.POLL, link=LINK, quantity=50, answer_number=2
            ),
            {"service": 5, "link": LINK, "quantity": 50, "answer_number": 2},
        ),
        (
            SmmOrderRequest(
                service_id="6",
                type=SmmServiceType.MENTIONS,
                link=LINK,
                quantity=20,
                usernames=["alice", " bob "],
            ),
            {"service": 6, "link": LINK, "quantity": 20, "usernames": "alice\nbob"},
        ),
    ]
    for request, expected in cases:
        order_id = await provider.add(request, client_ref="ours")
        assert fake.calls_for("add")[-1].params == wire(variant, key=KEY, action="add", **expected)
        assert fake.orders[order_id].params == wire(variant, **expected)
    orders = list(fake.orders.values())
    assert [o.quantity for o in orders] == [200, 1, 3, 50, 20]
    assert orders[0].charge == Decimal("0.90") * 200 * 5 / 1000  # drip-feed: quantity x runs
    assert fake.requests["add"] == len(cases)


@pytest.mark.parametrize(
    "values",
    [
        {"link": LINK},  # default without quantity
        {"link": LINK, "quantity": 0},
        {"link": " ", "quantity": 10},
        {"link": LINK, "quantity": 10, "runs": 2},  # runs without interval
        {"link": LINK, "quantity": 10, "interval": 5},
        {"link": LINK, "quantity": 10, "runs": 0, "interval": 5},
        {"link": LINK, "type": "package", "runs": 2, "interval": 5},
        {"link": LINK, "type": "custom_comments"},
        {"link": LINK, "type": "custom_comments", "comments": ["a", ""]},
        {"link": LINK, "type": "custom_comments", "comments": ["a\nb"]},
        {"link": LINK, "type": "custom_comments", "comments": ["a", "b"], "quantity": 3},
        {"link": LINK, "type": "poll", "quantity": 10},
        {"link": LINK, "type": "poll", "quantity": 10, "answer_number": 0},
        {"link": LINK, "type": "mentions", "quantity": 10},
        {"link": LINK, "type": "mentions", "quantity": 10, "usernames": [" "]},
        {"link": LINK, "type": "mentions", "usernames": ["a"]},
    ],
)
def test_order_request_validation(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SmmOrderRequest(service_id="1", **values)


def test_order_request_quantity() -> None:
    comments = SmmOrderRequest(
        service_id="4", type=SmmServiceType.CUSTOM_COMMENTS, link=LINK, comments=["a", "b"]
    )
    assert comments.quantity == 2
    assert SmmOrderRequest(service_id="1", link=LINK, quantity=70).quantity == 70
    assert SmmOrderRequest(service_id="3", type="package", link=LINK).quantity is None


async def test_add_hang_is_outcome_unknown_sent_once(
    provider: SmmPanelProvider, fake: FakeSmmPanel
) -> None:
    fake.inject("hang", action="add")
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    error = await raises(provider.add(request, client_ref="ours"))
    assert type(error) is OutcomeUnknown
    assert fake.requests["add"] == 1
    assert len(fake.orders) == 1  # the panel did place it


async def test_add_drop_is_outcome_unknown_sent_once(
    provider: SmmPanelProvider, fake: FakeSmmPanel
) -> None:
    fake.inject("drop", action="add")
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    error = await raises(provider.add(request, client_ref="ours"))
    assert type(error) is OutcomeUnknown
    assert fake.requests["add"] == 1
    assert len(fake.orders) == 1


@pytest.mark.parametrize("fault", ["500", "html", "empty"])
async def test_add_unreadable_answer_is_outcome_unknown(
    provider: SmmPanelProvider, fake: FakeSmmPanel, fault: str
) -> None:
    fake.inject(fault, action="add")
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    error = await raises(provider.add(request, client_ref="ours"))
    assert type(error) is OutcomeUnknown
    assert fake.requests["add"] == 1


@pytest.mark.parametrize("body", ["{}", '{"order": null}', '{"order": ""}', "[]"])
async def test_add_answer_without_id_is_outcome_unknown(
    provider: SmmPanelProvider, fake: FakeSmmPanel, body: str
) -> None:
    fake.reply("add", body)
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    assert type(await raises(provider.add(request, client_ref="o"))) is OutcomeUnknown


async def test_add_429_is_unavailable(provider: SmmPanelProvider, fake: FakeSmmPanel) -> None:
    fake.inject("429", action="add", retry_after=7)
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    error = await raises(provider.add(request, client_ref="o"))
    assert type(error) is Unavailable
    assert error.retry_after_s == 7.0
    assert fake.requests["add"] == 1


async def test_json_add_order_key_variants(
    jsonp: SmmPanelProvider, json_fake: FakeSmmPanel
) -> None:
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=10)
    json_fake.reply("add", '{"order_id": "777", "order": 777}')
    assert await jsonp.add(request, client_ref="o") == "777"
    json_fake.reply("add", '{"order": 778}')
    assert await jsonp.add(request, client_ref="o") == "778"


async def test_form_add_ignores_order_id_key(
    form: SmmPanelProvider, form_fake: FakeSmmPanel
) -> None:
    form_fake.reply("add", '{"order_id": 5}')
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    assert type(await raises(form.add(request, client_ref="o"))) is OutcomeUnknown


# docs/protocols.md §4.5, plus the JSON variant's texts; case variants included.
ERROR_STRINGS: list[tuple[str, type[ProviderError], bool]] = [
    ("Invalid API key", AuthError, False),
    ("invalid api KEY", AuthError, False),
    ("Incorrect request", BadRequest, False),
    ("Incorrect service ID", BadRequest, False),
    ("Not enough funds on balance", ProviderBalanceLow, False),
    ("NOT ENOUGH FUNDS ON BALANCE", ProviderBalanceLow, False),
    ("neworder.error.not_enough_funds", ProviderBalanceLow, False),
    ("Quantity less than minimal 50", BadRequest, False),
    ("Quantity more than maximum 10000", BadRequest, False),
    ("neworder.error.min_quantity", BadRequest, False),
    ("neworder.error.max_quantity", BadRequest, False),
    (seed.ERR_LINK_BUSY, BadRequest, True),
    ("neworder.error.link_duplicate", BadRequest, True),
    ("neworder.error.link", BadRequest, False),
    ("Bad link", BadRequest, False),
    ("Unauthorized access to order status", AuthError, False),
    ("Invalid action", NotSupported, False),
    ("Something nobody documented", BadRequest, False),
]


@pytest.mark.parametrize(("text", "error", "retry_later"), ERROR_STRINGS)
async def test_add_error_strings(
    provider: SmmPanelProvider,
    fake: FakeSmmPanel,
    variant: str,
    text: str,
    error: type[ProviderError],
    retry_later: bool,
) -> None:
    # Form panels answer errors with HTTP 200, the JSON variant with a 4xx: the body decides.
    fake.error_for("add", text, status=400 if variant == JSON else 200)
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    raised = await raises(provider.add(request, client_ref="o"))
    assert type(raised) is error
    assert text in str(raised)
    assert ("retry later" in str(raised)) is retry_later
    assert fake.requests["add"] == 1


@pytest.mark.parametrize(("text", "error", "retry_later"), ERROR_STRINGS)
async def test_read_error_strings_are_not_retried(
    provider: SmmPanelProvider,
    fake: FakeSmmPanel,
    text: str,
    error: type[ProviderError],
    retry_later: bool,
) -> None:
    fake.error_for("services", text, times=5)
    assert type(await raises(provider.services())) is error
    assert fake.requests["services"] == 1


async def test_add_refusals_from_the_fake_panel(variant: str) -> None:
    async with (
        FakeSmmPanel(
            api_key=KEY, json_api=variant == JSON, balance="0.05", reject_duplicate_links=True
        ) as fake,
        make_provider(fake.url, variant) as provider,
    ):
        low = 1 if variant == JSON else 50
        high = 50000 if variant == JSON else 10000

        async def add(service: str, quantity: int, link: str = LINK) -> ProviderError:
            request = SmmOrderRequest(service_id=service, link=link, quantity=quantity)
            return await raises(provider.add(request, client_ref="o"))

        assert type(await add("99", 100)) is BadRequest  # Incorrect service ID
        if low > 1:
            assert type(await add("1", low - 1)) is BadRequest
        too_many = await add("1", high + 1)
        assert type(too_many) is BadRequest
        assert f"Quantity more than maximum {high}" in str(too_many)
        assert type(await add("1", 1000)) is ProviderBalanceLow
        fake.balance = Decimal(1000)
        order_id = await provider.add(
            SmmOrderRequest(service_id="1", link=LINK, quantity=100), client_ref="o"
        )
        busy = await add("1", 100)
        assert type(busy) is BadRequest and "retry later" in str(busy)
        fake.set_order(order_id, status="Completed")
        await provider.add(
            SmmOrderRequest(service_id="1", link=LINK, quantity=100), client_ref="o"
        )


async def test_json_validation_errors_are_bad_request(
    jsonp: SmmPanelProvider, json_fake: FakeSmmPanel
) -> None:
    json_fake.reply("add", seed.JSON_SEED_VALIDATION, status=422)
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=10)
    error = await raises(jsonp.add(request, client_ref="o"))
    assert type(error) is BadRequest
    assert "action: The action field is required." in str(error)
    json_fake.reply(
        "status", '{"errors": {"orders": ["The orders field is required."]}}', status=422
    )
    assert type((await jsonp.statuses(["1"]))["1"]) is BadRequest


async def test_add_readable_error_with_5xx_is_a_refusal(
    provider: SmmPanelProvider, fake: FakeSmmPanel
) -> None:
    fake.error_for("add", "Service is under maintenance", status=503)
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    assert type(await raises(provider.add(request, client_ref="o"))) is Unavailable
    assert fake.requests["add"] == 1


# --- status ------------------------------------------------------------------------------------


async def test_status_single_form_uses_order(
    form: SmmPanelProvider, form_fake: FakeSmmPanel
) -> None:
    form_fake.set_order("23501", status="Partial", remains=157, start_count=3572, charge="0.27819")
    result = await form.statuses(["23501"])
    assert result == {
        "23501": SmmOrderStatus(
            state=SmmOrderState.PARTIAL,
            charge=Decimal("0.27819"),
            start_count=3572,
            remains=157,
            currency="USD",
        )
    }
    assert form_fake.calls_for("status")[-1].params == {
        "key": KEY,
        "action": "status",
        "order": "23501",
    }
    assert await form.status("23501") == result["23501"]


async def test_status_single_json_uses_orders(
    jsonp: SmmPanelProvider, json_fake: FakeSmmPanel
) -> None:
    json_fake.set_order("123", status="In progress", remains=50, start_count=50, charge="0")
    assert await jsonp.status("123") == SmmOrderStatus(
        state=SmmOrderState.IN_PROGRESS, charge=Decimal(0), start_count=50, remains=50,
        currency="USD",
    )  # fmt: skip
    assert json_fake.calls_for("status")[-1].params == {
        "key": KEY,
        "action": "status",
        "orders": "123",
    }


async def test_status_seed_batch_form(form: SmmPanelProvider, form_fake: FakeSmmPanel) -> None:
    form_fake.reply("status", seed.SEED_MULTI_STATUS)
    result = await form.statuses(["1", "10", "100"])
    assert result["1"] == SmmOrderStatus(
        state=SmmOrderState.PARTIAL, charge=Decimal("0.27819"), start_count=3572, remains=157,
        currency="USD",
    )  # fmt: skip
    assert type(result["10"]) is OrderNotFound
    assert result["100"] == SmmOrderStatus(
        state=SmmOrderState.IN_PROGRESS, charge=Decimal("1.44219"), start_count=234, remains=10,
        currency="USD",
    )  # fmt: skip
    assert form_fake.calls_for("status")[-1].params["orders"] == "1,10,100"


async def test_status_seed_batch_json(jsonp: SmmPanelProvider, json_fake: FakeSmmPanel) -> None:
    json_fake.reply("status", seed.JSON_SEED_STATUS)
    result = await jsonp.statuses(["123", "124", "125"])
    assert result["123"] == SmmOrderStatus(
        state=SmmOrderState.IN_PROGRESS, charge=Decimal(0), start_count=50, remains=50,
        currency="USD",
    )  # fmt: skip
    assert result["124"] == SmmOrderStatus(
        state=SmmOrderState.COMPLETED, charge=Decimal(0), start_count=100, remains=0,
        currency="USD",
    )  # fmt: skip
    assert type(result["125"]) is OrderNotFound  # left out of the answer


async def test_status_150_ids_in_two_calls(provider: SmmPanelProvider, fake: FakeSmmPanel) -> None:
    ids = [str(1000 + i) for i in range(150)]
    for i, order_id in enumerate(ids[:140]):
        fake.set_order(order_id, status="Completed" if i % 2 else "Pending", remains=0)
    result = await provider.statuses([*ids, "1000", "1001"])  # duplicates asked once
    assert list(result) == ids
    assert fake.status_ids == [100, 50]
    assert fake.requests["status"] == 2
    calls = fake.calls_for("status")
    assert calls[0].params["orders"] == ",".join(ids[:100])
    assert calls[1].params["orders"] == ",".join(ids[100:])
    assert result["1000"].state is SmmOrderState.PENDING  # type: ignore[union-attr]
    assert result["1001"].state is SmmOrderState.COMPLETED  # type: ignore[union-attr]
    assert all(type(result[i]) is OrderNotFound for i in ids[140:])
    assert await provider.statuses([]) == {}
    assert fake.requests["status"] == 2


STATUS_WORDS: list[tuple[str, SmmOrderState]] = [
    ("Pending", SmmOrderState.PENDING),
    ("pending", SmmOrderState.PENDING),
    ("PENDING", SmmOrderState.PENDING),
    ("Processing", SmmOrderState.IN_PROGRESS),
    ("processing", SmmOrderState.IN_PROGRESS),
    ("In progress", SmmOrderState.IN_PROGRESS),
    ("In Progress", SmmOrderState.IN_PROGRESS),
    ("in progress", SmmOrderState.IN_PROGRESS),
    ("in_progress", SmmOrderState.IN_PROGRESS),
    (" IN  PROGRESS ", SmmOrderState.IN_PROGRESS),
    ("Completed", SmmOrderState.COMPLETED),
    ("completed", SmmOrderState.COMPLETED),
    ("Partial", SmmOrderState.PARTIAL),
    ("partial", SmmOrderState.PARTIAL),
    ("Canceled", SmmOrderState.CANCELLED),
    ("canceled", SmmOrderState.CANCELLED),
    ("Cancelled", SmmOrderState.CANCELLED),
    ("cancelled", SmmOrderState.CANCELLED),
    ("Refunded", SmmOrderState.CANCELLED),
    ("refunded", SmmOrderState.CANCELLED),
]


async def test_every_status_word(provider: SmmPanelProvider, fake: FakeSmmPanel) -> None:
    ids = [str(500 + i) for i in range(len(STATUS_WORDS))]
    for order_id, (word, _) in zip(ids, STATUS_WORDS, strict=True):
        fake.set_order(order_id, status=word, remains=0)
    result = await provider.statuses(ids)
    assert {i: r.state for i, r in result.items()} == {  # type: ignore[union-attr]
        i: state for i, (_, state) in zip(ids, STATUS_WORDS, strict=True)
    }
    assert fake.requests["status"] == 1


async def test_status_entries_values_and_per_id_errors(
    provider: SmmPanelProvider, fake: FakeSmmPanel
) -> None:
    fake.reply(
        "status",
        {
            "1": {"status": "Partial", "remains": "-5", "charge": "0.5", "start_count": ""},
            "2": {
                "status": "Partial",
                "remains": 2000,
                "charge": Decimal("1.25"),
                "currency": "usd",
            },
            "3": {"status": "Completed"},
            "4": {"error": "Incorrect order ID"},
            "5": {"error": "incorrect ORDER id"},
            "6": "garbage",
            "7": {"status": "Exploded", "remains": "1"},
            "8": {"status": "Partial", "remains": "lots"},
            "9": {"status": "Pending", "remains": "n/a", "start_count": "x", "charge": "?"},
            "10": {"error": "Invalid API key"},
        },
    )
    ids = [str(i) for i in range(1, 12)]
    result = await provider.statuses(ids)
    assert result["1"] == SmmOrderStatus(
        state=SmmOrderState.PARTIAL, charge=Decimal("0.5"), start_count=None, remains=-5
    )
    assert result["2"] == SmmOrderStatus(
        state=SmmOrderState.PARTIAL, charge=Decimal("1.25"), remains=2000, currency="USD"
    )
    assert result["3"] == SmmOrderStatus(state=SmmOrderState.COMPLETED)
    assert type(result["4"]) is OrderNotFound
    assert type(result["5"]) is OrderNotFound
    assert type(result["6"]) is BadResponse
    # One order the bot cannot act on (the poller flags it for the admins), not garbage.
    assert type(result["7"]) is UnreadableOrder and result["7"].word == "Exploded"
    assert type(result["8"]) is UnreadableOrder and result["8"].word == "Partial"
    assert result["9"] == SmmOrderStatus(state=SmmOrderState.PENDING)
    assert type(result["10"]) is AuthError
    assert type(result["11"]) is OrderNotFound
    assert fake.requests["status"] == 1


async def test_status_top_level_errors(provider: SmmPanelProvider, fake: FakeSmmPanel) -> None:
    fake.error_for("status", "Incorrect order ID")
    result = await provider.statuses(["1", "2"])
    assert [type(result[i]) for i in ("1", "2")] == [OrderNotFound, OrderNotFound]
    fake.error_for("status", "Invalid API key")
    result = await provider.statuses(["1", "2"])
    assert [type(result[i]) for i in ("1", "2")] == [AuthError, AuthError]
    assert result["1"] is result["2"]
    with pytest.raises(OrderNotFound):
        await provider.status("424242")  # the fake does not know it


async def test_status_500_retried_then_unavailable(
    provider: SmmPanelProvider, fake: FakeSmmPanel
) -> None:
    fake.set_order("1", status="Completed")
    fake.inject("500", action="status", times=3)
    result = await provider.statuses(["1", "2"])
    assert [type(result[i]) for i in ("1", "2")] == [Unavailable, Unavailable]
    assert fake.requests["status"] == 3
    fake.inject("500", action="status", times=2)
    result = await provider.statuses(["1"])
    assert result["1"].state is SmmOrderState.COMPLETED  # type: ignore[union-attr]
    assert fake.requests["status"] == 6


async def test_read_500_retried_then_unavailable(
    provider: SmmPanelProvider, fake: FakeSmmPanel
) -> None:
    fake.inject("500", action="services", times=5)
    assert type(await raises(provider.services())) is Unavailable
    assert fake.requests["services"] == 3
    fake.error_for("balance", "Internal error", status=502, times=2)
    assert await provider.balance() > 0
    assert fake.requests["balance"] == 3


async def test_read_429_not_retried(provider: SmmPanelProvider, fake: FakeSmmPanel) -> None:
    fake.inject("429", action="balance", retry_after=3)
    error = await raises(provider.balance())
    assert type(error) is Unavailable
    assert error.retry_after_s == 3.0
    assert fake.requests["balance"] == 1


@pytest.mark.parametrize("fault", ["html", "empty"])
@pytest.mark.parametrize("action", ["services", "balance", "status"])
async def test_html_and_empty_bodies_are_bad_response(
    provider: SmmPanelProvider, fake: FakeSmmPanel, fault: str, action: str
) -> None:
    fake.inject(fault, action=action)
    if action == "status":
        error = (await provider.statuses(["1"]))["1"]
        assert isinstance(error, ProviderError)
        assert_no_key(error)
    else:
        error = await raises(getattr(provider, action)())
    assert type(error) is BadResponse
    if fault == "html":
        assert error.raw is not None and error.raw.startswith("<html>")
        assert "action=" + action in error.raw  # kept, with the echoed key masked
    else:
        assert not error.raw
    assert fake.requests[action] == 1


async def test_read_hang_retried_then_unavailable(
    provider: SmmPanelProvider, fake: FakeSmmPanel
) -> None:
    fake.inject("hang", action="balance", times=3)
    assert type(await raises(provider.balance())) is Unavailable
    assert fake.requests["balance"] == 3


# --- refill ------------------------------------------------------------------------------------


async def test_refill_and_refill_status(form: SmmPanelProvider, form_fake: FakeSmmPanel) -> None:
    order_id = await form.add(
        SmmOrderRequest(service_id="1", link=LINK, quantity=100), client_ref="o"
    )
    early = await raises(form.refill(order_id))
    assert type(early) is InvalidState
    form_fake.set_order(order_id, status="Completed")
    refill_id = await form.refill(order_id)
    assert refill_id == "1"
    assert form_fake.calls_for("refill")[-1].params == {
        "key": KEY,
        "action": "refill",
        "order": order_id,
    }
    assert await form.refill_status(refill_id) == "pending"
    assert form_fake.calls_for("refill_status")[-1].params == {
        "key": KEY,
        "action": "refill_status",
        "refill": "1",
    }
    for word, expected in [("In Progress", "in progress"), ("Completed", "completed"),
                           ("REJECTED", "rejected")]:  # fmt: skip
        form_fake.set_refill(refill_id, word)
        assert await form.refill_status(refill_id) == expected
    assert type(await raises(form.refill_status("999"))) is OrderNotFound
    assert type(await raises(form.refill("424242"))) is OrderNotFound


async def test_refill_disabled_service(form: SmmPanelProvider, form_fake: FakeSmmPanel) -> None:
    form_fake.set_order("77", service_id="2", status="Completed")  # seed service 2: refill false
    error = await raises(form.refill("77"))
    assert type(error) is InvalidState
    assert "Refill is disabled" in str(error)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"refill": 5}', "5"),
        ('{"refill": "12"}', "12"),
        ('[{"order": 1, "refill": 9}]', "9"),
        ('{"refill": {"error": "Incorrect order ID"}}', OrderNotFound),
        ('[{"order": 1, "refill": {"error": "Refill already requested"}}]', InvalidState),
        ('{"refill": null}', BadResponse),
        ('{"status": "ok"}', BadResponse),
    ],
)
async def test_refill_answers(
    form: SmmPanelProvider, form_fake: FakeSmmPanel, body: str, expected: Any
) -> None:
    form_fake.reply("refill", body)
    if isinstance(expected, str):
        assert await form.refill("1") == expected
    else:
        assert type(await raises(form.refill("1"))) is expected


async def test_refill_lost_answer_is_unavailable(
    form: SmmPanelProvider, form_fake: FakeSmmPanel
) -> None:
    form_fake.set_order("1", status="Completed")
    form_fake.inject("drop", action="refill")
    assert type(await raises(form.refill("1"))) is Unavailable
    assert form_fake.requests["refill"] == 1


async def test_json_has_no_refill(jsonp: SmmPanelProvider, json_fake: FakeSmmPanel) -> None:
    assert type(await raises(jsonp.refill("123"))) is NotSupported
    assert type(await raises(jsonp.refill_status("1"))) is NotSupported
    assert json_fake.requests["refill"] == json_fake.requests["refill_status"] == 0


# --- cancel ------------------------------------------------------------------------------------


async def test_cancel_accepted_and_refused(
    provider: SmmPanelProvider, fake: FakeSmmPanel, variant: str
) -> None:
    fake.set_services(TYPED_SERVICES)
    request = SmmOrderRequest(service_id="1", link=LINK, quantity=100)
    running = await provider.add(request, client_ref="a")
    done = await provider.add(request, client_ref="b")
    no_cancel = await provider.add(
        SmmOrderRequest(service_id="4", type="custom_comments", link=LINK, comments=["x"]),
        client_ref="c",
    )
    fake.set_order(done, status="Completed")
    before = fake.balance
    result = await provider.cancel([running, done, "999", no_cancel, running])
    assert list(result) == [running, done, "999", no_cancel]
    assert result[running] is True
    assert type(result[done]) is InvalidState
    assert "Order already completed" in str(result[done])
    assert type(result["999"]) is OrderNotFound
    assert type(result[no_cancel]) is InvalidState
    assert fake.calls_for("cancel")[-1].params == wire(
        variant, key=KEY, action="cancel", orders=f"{running},{done},999,{no_cancel}"
    )
    assert fake.balance == before + Decimal("0.09")  # the panel refunded the cancelled order
    assert (await provider.status(running)).state is SmmOrderState.CANCELLED


async def test_cancel_json_seed_answer(jsonp: SmmPanelProvider, json_fake: FakeSmmPanel) -> None:
    json_fake.reply("cancel", seed.JSON_SEED_CANCEL)
    result = await jsonp.cancel(["123", "124"])
    assert result["123"] is True
    assert type(result["124"]) is InvalidState


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[{"order": 9, "cancel": 0}]', False),
        ('[{"order": "9", "cancel": "1"}]', True),
        ('[{"order": 9, "cancel": true}]', True),
        ('{"cancel": 1}', True),
        ('[{"order": 9, "cancel": "maybe"}]', BadResponse),
        ('[{"order": 8, "cancel": 1}]', BadResponse),  # 9 is not in the answer
        ('{"status": "ok"}', BadResponse),
        ('{"error": "Incorrect order ID"}', OrderNotFound),
        ('{"error": "Invalid action"}', NotSupported),
    ],
)
async def test_cancel_answers(
    provider: SmmPanelProvider, fake: FakeSmmPanel, body: str, expected: Any
) -> None:
    fake.reply("cancel", body)
    result = (await provider.cancel(["9"]))["9"]
    if isinstance(expected, bool):
        assert result is expected
    else:
        assert type(result) is expected


async def test_cancel_batches_and_lost_answer(
    provider: SmmPanelProvider, fake: FakeSmmPanel
) -> None:
    ids = [str(i) for i in range(1, 151)]
    result = await provider.cancel(ids)
    assert fake.requests["cancel"] == 2
    assert all(type(result[i]) is OrderNotFound for i in ids)
    fake.inject("drop", action="cancel")
    result = await provider.cancel(["1"])
    assert type(result["1"]) is Unavailable
    assert fake.requests["cancel"] == 3
    assert await provider.cancel([]) == {}


# --- secrets -----------------------------------------------------------------------------------


async def test_api_key_never_in_errors(provider: SmmPanelProvider, fake: FakeSmmPanel) -> None:
    fake.error_for("balance", f"Invalid API key {KEY}")
    fake.inject("html", action="services")  # the page echoes the request, key included
    fake.reply("add", f"<html>{KEY}</html>")
    errors = [
        await raises(provider.balance()),
        await raises(provider.services()),
        await raises(
            provider.add(SmmOrderRequest(service_id="1", link=LINK, quantity=100), client_ref="o")
        ),
    ]
    assert [type(e) for e in errors] == [AuthError, BadResponse, OutcomeUnknown]
    assert all("***" in (e.raw or "") for e in errors)
