"""Toolvico SMM adapter (`/smm`) against the fake Toolvico server over real HTTP."""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

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
    NotSupported,
    OrderNotFound,
    OutcomeUnknown,
    ProviderBalanceLow,
    ProviderError,
    Unavailable,
    UnreadableOrder,
)
from services.providers.toolvico import ToolvicoSmmProvider
from tests.fakes.toolvico import FakeToolvico

KEY = "tv-smm-key-3e8b51d07a"
LINK = "https://instagram.com/user"


def open_provider(fake: FakeToolvico, **overrides: Any) -> ToolvicoSmmProvider:
    values: dict[str, Any] = {
        "name": "toolvico-smm",
        "kind": "toolvico",
        "base_url": fake.url,
        "api_key": KEY,
        "timeout_s": 0.5,
        **overrides,
    }
    provider = ToolvicoSmmProvider(ProviderConfig(**values))
    provider.http.backoff_s = 0.001
    return provider


@pytest.fixture
async def fake() -> AsyncIterator[FakeToolvico]:
    async with FakeToolvico(api_key=KEY) as server:
        yield server


@pytest.fixture
async def provider(fake: FakeToolvico) -> AsyncIterator[ToolvicoSmmProvider]:
    async with open_provider(fake) as adapter:
        yield adapter


async def raises(coro: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await coro
    exc = info.value
    assert KEY not in "".join(traceback.format_exception(exc))
    assert exc.raw is None or KEY not in exc.raw
    return exc


def order(quantity: int = 500, service_id: str = "1", **extra: Any) -> SmmOrderRequest:
    return SmmOrderRequest(service_id=service_id, link=LINK, quantity=quantity, **extra)


# --- flags, balance ----------------------------------------------------------------------------


async def test_flags_and_missing_features(
    provider: ToolvicoSmmProvider, fake: FakeToolvico
) -> None:
    assert provider.kind == "toolvico"
    assert (provider.supports_refill, provider.supports_cancel) == (False, False)
    assert (provider.supports_batch_status, provider.max_batch) == (False, 1)
    assert provider.http.rate_limit_per_min == 60
    for call in (provider.refill("15"), provider.refill_status("1"), provider.cancel(["15"])):
        assert type(await raises(call)) is NotSupported
    assert sum(fake.calls.values()) == 0


async def test_balance(provider: ToolvicoSmmProvider, fake: FakeToolvico) -> None:
    balance = await provider.balance()
    assert str(balance) == "12.450000"
    [request] = fake.requests_for("balance", api="smm")
    assert (request.method, request.api_key) == ("GET", KEY)


# --- services ----------------------------------------------------------------------------------


async def test_services_seed(provider: ToolvicoSmmProvider) -> None:
    services = await provider.services()
    assert services == [
        SmmService(
            service_id="1",
            name="Followers",
            category="Instagram",
            type=SmmServiceType.DEFAULT,
            rate=Decimal("1.08"),
            min=50,
            max=10000,
            refill=False,
            cancel=False,
            dripfeed=False,
            description=None,
        )
    ]
    assert str(services[0].rate) == "1.08"  # the seed's JSON number, never through a float


async def test_services_strings_numbers_and_filtering(
    provider: ToolvicoSmmProvider, fake: FakeToolvico
) -> None:
    def svc(sid: Any, rate: Any = "1.00", **extra: Any) -> dict[str, Any]:
        return {"service_id": sid, "name": f"S{sid}", "category": "TG",
                "rate_usd_per_1000": rate, "min": 10, "max": 500, **extra}  # fmt: skip

    fake.smm_services = [
        svc(2, "0.540000", min="10", max="500", description="Fast"),
        svc("3", Decimal("0.000123"), type="default"),
        svc("4", 2),
        svc("5", type="Package"),
        svc("6", type="Subscriptions"),
        svc("7", "abc"),
        svc("8", "0"),
        svc("9", min="x"),
        svc("10", min=600),
        {"name": "no id", "rate_usd_per_1000": "1", "min": 1, "max": 2},
    ]
    services = {s.service_id: s for s in await provider.services()}
    assert list(services) == ["2", "3", "4"]
    assert (str(services["2"].rate), services["2"].min, services["2"].max) == ("0.540000", 10, 500)
    assert services["2"].description == "Fast"
    assert str(services["3"].rate) == "0.000123"
    assert services["4"].rate == Decimal(2)


# --- add ---------------------------------------------------------------------------------------


async def test_add_seed(provider: ToolvicoSmmProvider, fake: FakeToolvico) -> None:
    assert await provider.add(order(), client_ref="ours-1") == "15"
    [request] = fake.requests_for("place_order", api="smm")
    assert request.method == "POST"
    assert request.query == {"action": "place_order"}
    assert request.body == {"service_id": "1", "link": LINK, "quantity": 500}
    assert request.api_key == KEY
    assert fake.smm_orders["15"].charged == Decimal("0.54")
    assert fake.wallet == Decimal("11.91")


@pytest.mark.parametrize(
    "request_",
    [
        order(runs=2, interval=30),
        SmmOrderRequest(service_id="1", type=SmmServiceType.PACKAGE, link=LINK),
        SmmOrderRequest(service_id="1", type="custom_comments", link=LINK, comments=["a"]),
        SmmOrderRequest(service_id="1", type="poll", link=LINK, quantity=50, answer_number=1),
        SmmOrderRequest(service_id="1", type="mentions", link=LINK, quantity=50, usernames=["a"]),
    ],
)
async def test_add_other_types_not_supported(
    provider: ToolvicoSmmProvider, fake: FakeToolvico, request_: SmmOrderRequest
) -> None:
    assert type(await raises(provider.add(request_, client_ref="o"))) is NotSupported
    assert fake.calls["smm:place_order"] == 0


@pytest.mark.parametrize("kind", ["hang", "drop"])
async def test_add_lost_answer_is_outcome_unknown(
    provider: ToolvicoSmmProvider, fake: FakeToolvico, kind: str
) -> None:
    fake.add_fault(kind, api="smm", action="place_order", after=True)  # type: ignore[arg-type]
    assert type(await raises(provider.add(order(), client_ref="o"))) is OutcomeUnknown
    assert fake.calls["smm:place_order"] == 1
    assert list(fake.smm_orders) == ["15"]  # placed upstream all the same


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [
        ("html", 200, None),
        ("empty", 200, None),
        ("html", 502, None),
        ("raw", 200, '{"success": true, "data": {"charged": 0.54}}'),
    ],
)
async def test_add_unreadable_answer_is_outcome_unknown(
    provider: ToolvicoSmmProvider, fake: FakeToolvico, kind: str, status: int, body: str | None
) -> None:
    fake.add_fault(kind, api="smm", action="place_order", status=status, body=body)  # type: ignore[arg-type]
    assert type(await raises(provider.add(order(), client_ref="o"))) is OutcomeUnknown
    assert fake.calls["smm:place_order"] == 1


async def test_add_refusals(fake: FakeToolvico, provider: ToolvicoSmmProvider) -> None:
    too_few = await raises(provider.add(order(quantity=10), client_ref="o"))
    assert type(too_few) is BadRequest
    assert "Quantity must be between 50 and 10000" in str(too_few)
    assert type(await raises(provider.add(order(service_id="99"), client_ref="o"))) is BadRequest
    fake.wallet = Decimal("0.10")
    assert type(await raises(provider.add(order(), client_ref="o"))) is ProviderBalanceLow
    fake.fail(503, api="smm", action="place_order")
    assert type(await raises(provider.add(order(), client_ref="o"))) is Unavailable
    fake.fail(429, api="smm", action="place_order", retry_after="60")
    limited = await raises(provider.add(order(), client_ref="o"))
    assert type(limited) is Unavailable and limited.retry_after_s == 60.0
    assert fake.calls["smm:place_order"] == 5
    assert fake.smm_orders == {}
    async with open_provider(fake, api_key="wrong-key-0000") as wrong:
        assert type(await raises(wrong.add(order(), client_ref="o"))) is AuthError


# --- status ------------------------------------------------------------------------------------


async def test_status_seed(provider: ToolvicoSmmProvider, fake: FakeToolvico) -> None:
    order_id = await provider.add(order(), client_ref="o")
    fake.set_smm_order(order_id, status="Partial", remains=157, start_count=3572)
    assert await provider.status(order_id) == SmmOrderStatus(
        state=SmmOrderState.PARTIAL, remains=157, start_count=3572
    )
    [request] = fake.requests_for("order_status", api="smm")
    assert (request.method, request.query) == (
        "GET",
        {"action": "order_status", "order_id": order_id},
    )


async def test_statuses_one_call_per_id(provider: ToolvicoSmmProvider, fake: FakeToolvico) -> None:
    first = await provider.add(order(), client_ref="a")
    second = await provider.add(order(100), client_ref="b")
    fake.set_smm_order(second, status="Completed", remains=0, start_count=10)
    result = await provider.statuses([first, second, "999", first])
    assert list(result) == [first, second, "999"]
    assert result[first] == SmmOrderStatus(state=SmmOrderState.PENDING, remains=500, start_count=0)
    assert result[second] == SmmOrderStatus(
        state=SmmOrderState.COMPLETED, remains=0, start_count=10
    )
    assert type(result["999"]) is OrderNotFound
    assert fake.calls["smm:order_status"] == 3
    assert await provider.statuses([]) == {}


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("Pending", SmmOrderState.PENDING),
        ("pending", SmmOrderState.PENDING),
        ("Processing", SmmOrderState.IN_PROGRESS),
        ("In progress", SmmOrderState.IN_PROGRESS),
        ("In Progress", SmmOrderState.IN_PROGRESS),
        ("in progress", SmmOrderState.IN_PROGRESS),
        ("Completed", SmmOrderState.COMPLETED),
        ("Partial", SmmOrderState.PARTIAL),
        ("Canceled", SmmOrderState.CANCELLED),
        ("Cancelled", SmmOrderState.CANCELLED),
        ("Refunded", SmmOrderState.CANCELLED),
        ("refunded", SmmOrderState.CANCELLED),
    ],
)
async def test_status_words(
    provider: ToolvicoSmmProvider, fake: FakeToolvico, word: str, state: SmmOrderState
) -> None:
    order_id = await provider.add(order(), client_ref="o")
    fake.set_smm_order(order_id, status=word)
    assert (await provider.status(order_id)).state is state


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"status": "Exploded"}', UnreadableOrder),  # one order the bot cannot act on
        ('{"remains": 5}', UnreadableOrder),
        ('{"status": "Partial", "remains": "157", "start_count": "3572", "charge": "0.1"}', None),
    ],
)
async def test_status_answers(
    provider: ToolvicoSmmProvider, fake: FakeToolvico, data: str, expected: Any
) -> None:
    body = '{"success": true, "data": ' + data + "}"
    fake.add_fault("raw", api="smm", action="order_status", body=body)
    result = (await provider.statuses(["15"]))["15"]
    if expected is None:
        assert result == SmmOrderStatus(
            state=SmmOrderState.PARTIAL, remains=157, start_count=3572, charge=Decimal("0.1")
        )
    else:
        assert type(result) is expected


async def test_statuses_stop_after_a_refusal_that_repeats(fake: FakeToolvico) -> None:
    async with open_provider(fake, api_key="wrong-key-0000") as wrong:
        result = await wrong.statuses(["1", "2", "3"])
    assert [type(result[i]) for i in "123"] == [AuthError, AuthError, AuthError]
    assert fake.calls["smm:order_status"] == 1
    fake.fail(429, api="smm", action="order_status", retry_after="30")
    async with open_provider(fake) as provider:
        result = await provider.statuses(["1", "2"])
    assert [type(result[i]) for i in "12"] == [Unavailable, Unavailable]
    assert result["2"].retry_after_s == 30.0  # type: ignore[union-attr]
    assert fake.calls["smm:order_status"] == 2


async def test_status_faults(provider: ToolvicoSmmProvider, fake: FakeToolvico) -> None:
    order_id = await provider.add(order(), client_ref="o")
    fake.fail(500, api="smm", action="order_status")
    fake.add_fault("html", api="smm", action="order_status")
    fake.add_fault("empty", api="smm", action="order_status")
    fake.add_fault("drop", api="smm", action="order_status")  # a read: retried
    results = [(await provider.statuses([order_id]))[order_id] for _ in range(4)]
    assert [type(r) for r in results] == [Unavailable, BadResponse, BadResponse, SmmOrderStatus]
    assert fake.calls["smm:order_status"] == 5


async def test_hang_on_status_retried_then_unavailable(
    provider: ToolvicoSmmProvider, fake: FakeToolvico
) -> None:
    fake.add_fault("hang", api="smm", action="order_status", times=None)
    result = (await provider.statuses(["15"]))["15"]
    assert type(result) is Unavailable
    assert fake.calls["smm:order_status"] == provider.http.read_attempts
