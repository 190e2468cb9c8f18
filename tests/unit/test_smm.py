"""SMM pieces without a bot: input checks, the package price, the catalog, the demo panel."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from bot.settings import ProviderConfig, Settings
from services.providers.base import SmmOrderRequest, SmmOrderState, SmmServiceType
from services.providers.demo import DemoSmmProvider
from services.providers.errors import InvalidState, OrderNotFound
from services.smm import (
    BadInput,
    SmmDraft,
    check_link,
    parse_comments,
    parse_quantity,
    parse_runs,
    parse_usernames,
    price_of,
)
from services.smm_catalog import SmmCatalog

TOKEN = "123456:TEST-TOKEN-abcdefghijklmnop"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def demo(clock: Clock | None = None, name: str = "demo") -> DemoSmmProvider:
    config = ProviderConfig(name=name, kind="demo")
    return DemoSmmProvider(config, step_s=5, clock=clock or Clock())


async def catalog_of(*providers, markup: str = "20", rate: str = "1") -> SmmCatalog:
    catalog = SmmCatalog(
        providers,
        rates={p.name: Decimal(rate) for p in providers},
        markup_for=lambda _p, _c, _s: Decimal(markup),
    )
    await catalog.refresh()
    return catalog


def item_named(catalog: SmmCatalog, name: str):
    return next(
        item
        for category in catalog.categories()
        for item in catalog.services(category.key)
        if item.name == name
    )


# --- input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["https://instagram.com/p/abc", "http://t.me/channel/5", " https://youtu.be/x?t=1 "],
)
def test_links_that_are_accepted(text: str) -> None:
    assert check_link(text) == text.strip()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "link_empty"),
        ("   ", "link_empty"),
        ("instagram.com/p/abc", "link_not_url"),
        ("javascript:alert(1)", "link_not_url"),
        ("ftp://host.com/x", "link_not_url"),
        ("https://localhost/x", "link_not_url"),
        ("https://host.com:99999/x", "link_not_url"),
        ("https://a b.com/", "link_not_url"),
        ("@channel", "link_not_url"),
        ("https://x.com/" + "a" * 1990, "link_too_long"),
    ],
)
def test_links_that_are_refused(text: str, code: str) -> None:
    with pytest.raises(BadInput) as info:
        check_link(text)
    assert info.value.code == code


async def test_quantity_comments_usernames_and_runs() -> None:
    catalog = await catalog_of(demo())
    likes = item_named(catalog, "Likes · DEMO")  # 20..20000
    assert parse_quantity(" 1 000 ", likes) == 1000
    for text, code in [("19", "quantity_range"), ("20001", "quantity_range"), ("1e3", "")]:
        with pytest.raises(BadInput) as info:
            parse_quantity(text, likes)
        assert info.value.code == (code or "quantity_not_number")
        assert info.value.params == {"min": 20, "max": 20000}
    comments = item_named(catalog, "Custom comments · DEMO")  # 1..100
    assert parse_comments("great\n\n  nice  \n", comments) == ("great", "nice")
    with pytest.raises(BadInput) as info:
        parse_comments("\n".join(["x"] * 101), comments)
    assert (info.value.code, info.value.params["count"]) == ("comments_count", 101)
    assert parse_usernames("@one two,three") == ("@one", "two", "three")
    with pytest.raises(BadInput):
        parse_usernames("not a <name>")
    assert parse_runs("3") == 3
    with pytest.raises(BadInput):
        parse_runs("1")


async def test_a_quantity_never_exceeds_what_the_quantity_column_holds() -> None:
    """A panel may announce max 10^11; PostgreSQL's INTEGER column refuses anything above
    2**31 - 1 (the order would fail in the middle of its transaction): it is out of range."""
    catalog = await catalog_of(demo())
    likes = dataclasses.replace(item_named(catalog, "Likes · DEMO"), max=10**11)
    assert parse_quantity(str(2**31 - 1), likes) == 2**31 - 1
    with pytest.raises(BadInput) as info:
        parse_quantity(str(2**31), likes)
    assert info.value.code == "quantity_range"
    assert info.value.params == {"min": 20, "max": 2**31 - 1}


# --- money ---------------------------------------------------------------------------------------


async def test_the_users_rate_is_computed_once_and_the_total_from_it() -> None:
    catalog = await catalog_of(demo(), markup="17", rate="0.9")
    followers = item_named(catalog, "Followers · DEMO")  # 0.90 USD per 1000
    # 0.90 x 0.9 x 1.17 = 0.94770 -> 947_700 micro (exact); total for 333: ceil(315_584.1).
    assert followers.rate_per_1000 == 947_700
    assert price_of(followers, 333) == 315_585
    assert price_of(followers, 333, runs=3) == 946_753  # ceil(947_700 x 999 / 1000)
    assert (followers.upstream_rate, followers.rate, followers.markup_percent) == (
        Decimal("0.90"),
        Decimal("0.9"),
        Decimal("17"),
    )


async def test_a_package_costs_its_rate_once() -> None:
    catalog = await catalog_of(demo())
    pack = item_named(catalog, "Starter pack · DEMO")  # 2.50 USD a package
    assert pack.per_package and (pack.min, pack.max) == (1, 1)
    assert pack.rate_per_1000 == 3_000_000
    assert price_of(pack, 1) == 3_000_000


# --- catalog -------------------------------------------------------------------------------------


async def test_categories_merge_across_providers_and_flags_follow_the_protocol() -> None:
    first, second = demo(name="a"), demo(name="b")
    second.supports_refill = False  # as a JSON panel
    catalog = await catalog_of(first, second)
    names = [c.name for c in catalog.categories()]
    assert names == ["Instagram", "Telegram", "YouTube"]
    instagram = catalog.categories()[0]
    assert instagram.services == 6  # 3 from each provider, one category
    by_provider = {
        item.provider: item
        for item in catalog.services(instagram.key)
        if item.name == "Followers · DEMO"
    }
    assert by_provider["a"].refill is True and by_provider["b"].refill is False
    assert by_provider["a"].key != by_provider["b"].key and len(by_provider["a"].key) == 10


async def test_the_snapshot_restores_the_catalog_with_todays_markup() -> None:
    catalog = await catalog_of(demo())
    data = catalog.to_json()
    fresh = SmmCatalog(
        [demo()], rates={"demo": Decimal(1)}, markup_for=lambda _p, _c, _s: Decimal(50)
    )
    assert await fresh.load_json(data) == 1
    assert fresh.service_count() == catalog.service_count() == 8
    assert item_named(fresh, "Likes · DEMO").rate_per_1000 == 450_000  # 0.30 x 1.5
    assert await fresh.load_json("{broken") == 0


def test_smm_providers_fall_back_to_the_demo_and_share_a_toolvico_account() -> None:
    assert [p.kind for p in Settings(_env_file=None, bot_token=TOKEN).smm_providers] == ["demo"]
    entries = [
        {"name": "five", "kind": "fivesim", "base_url": "http://x/v1"},
        {"name": "tv1", "kind": "toolvico", "base_url": "http://t/api/v1", "api_key": "k"},
        {"name": "tv2", "kind": "toolvico", "base_url": "http://t/api/v1/", "api_key": "k"},
        {"name": "panel", "kind": "smmpanel", "base_url": "http://p/api/v2", "api_key": "p"},
    ]
    settings = Settings(_env_file=None, bot_token=TOKEN, providers=entries)
    assert [p.name for p in settings.smm_providers] == ["tv1", "panel"]


# --- the demo panel --------------------------------------------------------------------------


async def test_the_demo_panel_moves_orders_along_and_refunds_through_status() -> None:
    clock = Clock()
    panel = demo(clock)
    request = SmmOrderRequest(service_id="1", link="https://instagram.com/x", quantity=100)
    order_id = await panel.add(request, client_ref="1")
    assert (await panel.status(order_id)).state is SmmOrderState.PENDING
    clock.now = 7.5
    halfway = await panel.status(order_id)
    assert halfway.state is SmmOrderState.IN_PROGRESS and halfway.remains == 50
    with pytest.raises(InvalidState):
        await panel.refill(order_id)  # not completed yet
    clock.now = 10
    done = await panel.status(order_id)
    assert (done.state, done.remains) == (SmmOrderState.COMPLETED, 0)
    refill_id = await panel.refill(order_id)
    assert await panel.refill_status(refill_id) == "pending"
    clock.now = 15
    assert await panel.refill_status(refill_id) == "completed"

    second = await panel.add(request, client_ref="2")
    assert (await panel.cancel([second]))[second] is True
    assert (await panel.status(second)).state is SmmOrderState.CANCELLED
    answer = await panel.cancel([second])
    assert isinstance(answer[second], InvalidState)
    assert isinstance((await panel.statuses(["nope"]))["nope"], OrderNotFound)


def test_a_draft_survives_the_fsm_storage() -> None:
    draft = SmmDraft(service="abc", link="https://x.com", quantity=5, comments=("a", "b"))
    assert SmmDraft.from_data(draft.to_data()) == draft
    assert SmmServiceType.PACKAGE.value == "package"
