"""OtpCatalog (merge, prices, order, failures, snapshot, a 5sim-sized list) and the demo provider
that feeds it when no upstream is configured."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import logging
import re
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest
from sqlalchemy import update

from bench.catalog import generate_price_list, parse_prices
from db.engine import Database
from db.migrate import upgrade
from db.models import CatalogSnapshot
from services import catalog as catalog_module
from services.catalog import MarkupRule, Offer, OtpCatalog, paginate
from services.catalog_refresh import gc_paused
from services.catalog_store import OTP, SnapshotSync, load_snapshot
from services.money import loads
from services.pricing import otp_price, otp_pricer
from services.providers.base import OtpOffer, OtpProvider, OtpPurchase, OtpState, OtpStatus
from services.providers.config import ProviderConfig
from services.providers.demo import DEMO_SOLD_OUT, DemoOtpProvider
from services.providers.errors import (
    BadRequest,
    InvalidState,
    NoNumbers,
    OrderNotFound,
    PriceTooHigh,
    Unavailable,
)

D = Decimal
RUB = D("0.011")


def offer(
    country: str,
    service: str,
    price: str,
    stock: int = 100,
    *,
    native_country: str | None = None,
    country_name: str | None = None,
    service_name: str | None = None,
) -> OtpOffer:
    return OtpOffer(
        country=country,
        service=service,
        price=D(price),
        stock=stock,
        native_country=native_country or country.lower(),
        native_service=service,
        country_name=country_name,
        service_name=service_name,
    )


class FakeOtp(OtpProvider):
    """An in-memory upstream: `items` is what offers() answers; `fail` makes it raise."""

    kind = "fake"

    def __init__(self, name: str, currency: str, items: list[OtpOffer]) -> None:
        self.name = name
        self.currency = currency
        self.items = items
        self.fail: Exception | None = None
        self.hang = False
        self.calls = 0
        self.before: Callable[[], object] | None = None

    async def offers(self, country: str | None = None) -> list[OtpOffer]:
        self.calls += 1
        if self.before is not None:
            await self.before()  # type: ignore[misc]
        if self.hang:
            await asyncio.sleep(30)
        if self.fail is not None:
            raise self.fail
        return list(self.items)

    async def balance(self) -> Decimal:
        return D(0)

    async def buy(
        self, country: str, service: str, *, max_price: Decimal | None = None, client_ref: str
    ) -> OtpPurchase:
        raise NotImplementedError

    async def status(self, order_id: str) -> OtpStatus:
        raise NotImplementedError

    async def cancel(self, order_id: str) -> None:
        raise NotImplementedError


def two_providers() -> tuple[FakeOtp, FakeOtp]:
    usd = FakeOtp(
        "tv",
        "USD",
        [
            offer("RU", "telegram", "0.30", 50),
            offer("RU", "whatsapp", "0.90", 10),
            offer("US", "telegram", "1.00", 5),
            offer("GB", "telegram", "0.70", 0),  # out of stock: never shown
        ],
    )
    rub = FakeOtp(
        "5sim",
        "RUB",
        [
            offer("RU", "telegram", "20", 300),  # 20 x 0.011 x 1.2 = 0.264 -> $0.27
            offer("RU", "google", "4", 1000),  # 0.0528 -> $0.06
            offer("IN", "telegram", "12.34", 7),  # 0.162888 -> $0.17
        ],
    )
    return usd, rub


def catalog_of(*providers: OtpProvider, markup: str = "20", **kwargs: object) -> OtpCatalog:
    rates = {"tv": D(1), "5sim": RUB, "demo": D(1), "a": D(1), "b": D(1)}
    return OtpCatalog(
        providers,
        rates={p.name: rates[p.name] for p in providers},
        price_rule=MarkupRule(default=D(markup)),
        **kwargs,  # type: ignore[arg-type]
    )


def slugs(items: Sequence[object]) -> list[str]:
    return [item.slug for item in items]  # type: ignore[attr-defined]


def isos(items: Sequence[object]) -> list[str]:
    return [item.iso for item in items]  # type: ignore[attr-defined]


# --- merge, prices, order ------------------------------------------------------------------


async def test_merge_of_two_providers_cheapest_first_with_exact_prices() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    report = await catalog.refresh()

    assert report.ok == ("tv", "5sim")
    assert report.failed == {}
    assert report.offers == 6
    offers = catalog.offers("RU", "telegram")
    # 5sim: 20 RUB -> $0.27; tv: $0.30 x 1.2 = $0.36
    assert offers == (
        Offer("5sim", 270_000, D("20"), 300, RUB, D("20"), "ru", "telegram"),
        Offer("tv", 360_000, D("0.30"), 50, D(1), D("20"), "ru", "telegram"),
    )
    assert catalog.best_offer("RU", "telegram") == offers[0]
    assert catalog.offers("IN", "telegram")[0].user_price_micro == 170_000
    assert catalog.offers("RU", "google")[0].user_price_micro == 60_000
    assert catalog.offers("GB", "telegram") == ()  # stock 0
    assert catalog.best_offer("GB", "telegram") is None
    assert catalog.offers("XX", "nothing") == ()


async def test_countries_and_services_lists() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    await catalog.refresh()

    countries = catalog.countries()
    assert isos(countries) == ["IN", "RU", "US"]  # by English name; GB has no stock
    russia = catalog.country("RU")
    assert russia is not None
    assert (russia.name_en, russia.name_ru, russia.flag) == ("Russia", "Россия", "🇷🇺")
    assert russia.stock == 50 + 10 + 300 + 1000
    assert russia.min_price_micro == 60_000
    assert isos(catalog.countries("price")) == ["RU", "IN", "US"]  # 0.06, 0.17, 1.20
    by_ru = [c.name("ru") for c in catalog.countries(lang="ru")]
    assert by_ru[:2] == ["Индия", "Россия"]
    assert by_ru[2].startswith("США")

    services = catalog.services("RU")
    assert slugs(services) == ["google", "telegram", "whatsapp"]
    assert [(s.name, s.stock, s.min_price_micro) for s in services] == [
        ("Google", 1000, 60_000),
        ("Telegram", 350, 270_000),
        ("WhatsApp", 10, 1_080_000),
    ]
    assert slugs(catalog.services("RU", "price")) == ["google", "telegram", "whatsapp"]
    assert catalog.services("GB") == ()
    assert list(catalog.all_services()) == ["google", "telegram", "whatsapp"]


async def test_service_first_index() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    await catalog.refresh()

    by_price = catalog.countries_for_service("telegram")
    assert [(c.iso, c.stock, c.min_price_micro) for c in by_price] == [
        ("IN", 7, 170_000),
        ("RU", 350, 270_000),
        ("US", 5, 1_200_000),
    ]
    assert isos(catalog.countries_for_service("telegram", "name")) == ["IN", "RU", "US"]
    assert isos(catalog.countries_for_service("google")) == ["RU"]
    assert catalog.countries_for_service("nothing") == ()


async def test_equal_prices_prefer_more_stock() -> None:
    a = FakeOtp("a", "USD", [offer("RU", "telegram", "1.00", 5)])
    b = FakeOtp("b", "USD", [offer("RU", "telegram", "1.00", 500)])
    catalog = catalog_of(a, b)
    await catalog.refresh()
    assert [o.provider for o in catalog.offers("RU", "telegram")] == ["b", "a"]


async def test_one_provider_two_native_ids_for_one_iso_keeps_the_cheapest() -> None:
    # handler_api has "USA" (187) and "USA (virtual)" (12): both are ISO US.
    a = FakeOtp(
        "a",
        "USD",
        [
            offer("US", "telegram", "2.00", 5, native_country="187"),
            offer("US", "telegram", "0.50", 9, native_country="12"),
        ],
    )
    catalog = catalog_of(a, markup="0")
    await catalog.refresh()
    offers = catalog.offers("US", "telegram")
    assert len(offers) == 1
    assert (offers[0].native_country, offers[0].user_price_micro) == ("12", 500_000)


async def test_markup_rule_per_provider_and_per_item_with_exact_micro() -> None:
    usd, rub = two_providers()
    rule = MarkupRule(
        default=D("20"),
        providers={"5sim": D("50")},
        items={("RU", "telegram"): D("0")},
    )
    catalog = OtpCatalog([usd, rub], rates={"tv": D(1), "5sim": RUB}, price_rule=rule)
    await catalog.refresh()
    # item markup 0 beats everything: 20 x 0.011 = 0.22; tv 0.30
    assert [
        (o.provider, o.user_price_micro, o.markup_percent)
        for o in catalog.offers("RU", "telegram")
    ] == [
        ("5sim", 220_000, D("0")),
        ("tv", 300_000, D("0")),
    ]
    # provider markup 50%: 12.34 x 0.011 x 1.5 = 0.20361 -> $0.21
    assert catalog.offers("IN", "telegram")[0].user_price_micro == 210_000
    # default 20% for tv elsewhere: 0.90 x 1.2 = 1.08
    assert catalog.offers("RU", "whatsapp")[0].user_price_micro == 1_080_000


@pytest.mark.parametrize(
    ("rate", "markup", "step"),
    [("0.011", "20", 10_000), ("1", "0", 10_000), ("0.0137", "33.3", 1), ("95.5", "-99.9", 500)],
)
def test_otp_pricer_prices_as_otp_price(rate: str, markup: str, step: int) -> None:
    """The catalog prices through pricing.otp_pricer() (the factor reduced once per rate and
    markup): to the micro-unit what otp_price() gives, for whole, 2-dp, tiny and huge prices."""
    price = otp_pricer(D(rate), D(markup), step)
    samples = [D(n) / 100 for n in range(0, 20_001, 37)]
    samples += [D("1e-9"), D("123456789.123456789"), D("1E+3"), D("4"), D("0.30")]
    for value in samples:
        assert price(value) == otp_price(value, D(rate), D(markup), step), value
    with pytest.raises(ValueError):
        price(D("-1"))
    with pytest.raises(TypeError):
        price(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        otp_pricer(D(rate), D("-100"), step)


async def test_plain_callable_rule_and_rebuild_reprices_without_fetching() -> None:
    usd, rub = two_providers()
    markups = {"value": D("20")}
    catalog = OtpCatalog(
        [usd, rub],
        rates={"tv": D(1), "5sim": RUB},
        price_rule=lambda provider, country, service: markups["value"],
    )
    await catalog.refresh()
    assert catalog.offers("US", "telegram")[0].user_price_micro == 1_200_000
    markups["value"] = D("7.5")
    await catalog.rebuild()
    assert catalog.offers("US", "telegram")[0].user_price_micro == 1_080_000  # 1.075 up
    assert (usd.calls, rub.calls) == (1, 1)


async def test_price_step_for_micro_precision_store() -> None:
    rub = FakeOtp("5sim", "RUB", [offer("RU", "telegram", "0.1453")])
    catalog = catalog_of(rub, price_step=1)
    await catalog.refresh()
    assert catalog.offers("RU", "telegram")[0].user_price_micro == 1918  # 1917.96 up


def test_missing_or_float_rate_is_refused() -> None:
    usd, rub = two_providers()
    with pytest.raises(ValueError, match="5sim"):
        OtpCatalog([usd, rub], rates={"tv": D(1)}, price_rule=MarkupRule(default=D(20)))
    with pytest.raises(TypeError):
        OtpCatalog(
            [usd, rub],
            rates={"tv": D(1), "5sim": 0.011},  # type: ignore[dict-item]
            price_rule=MarkupRule(default=D(20)),
        )


async def test_readers_never_fetch() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    assert catalog.countries() == ()  # empty before the first refresh, and no fetching
    await catalog.refresh()
    for _ in range(5):
        catalog.countries()
        catalog.services("RU")
        catalog.offers("RU", "telegram")
        catalog.countries_for_service("telegram")
        catalog.page(catalog.services("RU"), 0, 10)
    assert (usd.calls, rub.calls) == (1, 1)


# --- failures ----------------------------------------------------------------------------------


async def test_failing_provider_keeps_previous_offers_and_others_update(caplog) -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    await catalog.refresh()

    rub.fail = Unavailable("5sim is down", provider="5sim")
    usd.items = [offer("RU", "telegram", "0.10", 1)]  # the working one changes its prices
    with caplog.at_level(logging.WARNING, logger="services.catalog"):
        report = await catalog.refresh()

    assert report.ok == ("tv",)
    assert report.failed == {"5sim": "Unavailable: 5sim is down"}
    assert "5sim offers failed, keeping 3 previous" in caplog.text
    assert [(o.provider, o.user_price_micro) for o in catalog.offers("RU", "telegram")] == [
        ("tv", 120_000),
        ("5sim", 270_000),
    ]
    assert catalog.offers("RU", "whatsapp") == ()  # tv no longer sells it
    assert catalog.offers("IN", "telegram")[0].provider == "5sim"  # kept from before
    status = catalog.provider_status()
    assert status["5sim"]["error"] == "Unavailable: 5sim is down"
    assert status["tv"]["error"] is None

    rub.fail = None
    report = await catalog.refresh()
    assert report.failed == {}
    assert catalog.provider_status()["5sim"]["error"] is None


async def test_provider_failing_from_the_start_breaks_nothing() -> None:
    usd, rub = two_providers()
    rub.fail = RuntimeError("boom")
    catalog = catalog_of(usd, rub)
    report = await catalog.refresh()
    assert report.failed == {"5sim": "RuntimeError: boom"}
    assert isos(catalog.countries()) == ["RU", "US"]


def _raw_offer(country: str, service: str, price: object, stock: object) -> OtpOffer:
    """An offer as the fast parsers build it: no pydantic validation (NaN, str stock...)."""
    return OtpOffer.model_construct(
        country=country,
        service=service,
        price=price,
        stock=stock,
        native_country=country.lower(),
        native_service=service,
        country_name=None,
        service_name=None,
    )


async def test_bad_prices_and_counts_drop_only_their_offer(caplog) -> None:
    usd, rub = two_providers()
    usd.items = [
        *usd.items,
        offer("RU", "google", "-0.5"),  # negative: otp_price raised and emptied everything
        offer("RU", "viber", "0"),  # free: would reach a Buy button for $0.00
        offer("US", "viber", "1e30"),  # absurd
        offer("DE", "telegram", "0.00000001"),  # tiny but positive: one cent, fine
        _raw_offer("IN", "viber", D("NaN"), 5),
        _raw_offer("IN", "whatsapp", D("sNaN"), 5),
        _raw_offer("FR", "viber", D("1"), -3),
        _raw_offer("FR", "telegram", D("1"), "12"),
        _raw_offer("FR", "whatsapp", D("1"), 2.5),
        _raw_offer("FR", "google", 1.5, 3),  # a float price
    ]
    catalog = catalog_of(usd, rub)
    with caplog.at_level(logging.WARNING, logger="services.catalog"):
        report = await catalog.refresh()

    assert report.failed == {}
    # Every good offer of both providers is still sold, at its exact price.
    assert [(o.provider, o.user_price_micro) for o in catalog.offers("RU", "telegram")] == [
        ("5sim", 270_000),
        ("tv", 360_000),
    ]
    assert [(o.provider, o.user_price_micro) for o in catalog.offers("RU", "google")] == [
        ("5sim", 60_000)
    ]
    assert catalog.offers("RU", "whatsapp")[0].user_price_micro == 1_080_000
    assert catalog.offers("US", "telegram")[0].user_price_micro == 1_200_000
    assert catalog.offers("DE", "telegram")[0].user_price_micro == 10_000
    for country, service in [
        ("RU", "viber"),
        ("US", "viber"),
        ("IN", "viber"),
        ("IN", "whatsapp"),
        ("FR", "viber"),
        ("FR", "telegram"),
        ("FR", "whatsapp"),
        ("FR", "google"),
    ]:
        assert catalog.offers(country, service) == (), (country, service)
    assert "FR" not in isos(catalog.countries())
    assert all(s.min_price_micro > 0 for iso in ("RU", "US", "IN") for s in catalog.services(iso))
    assert report.offers == 7
    # One line per refresh for the provider that sent them, none for the other.
    dropped = [r.getMessage() for r in caplog.records if "unusable" in r.getMessage()]
    assert len(dropped) == 1, dropped
    assert "tv: dropped 9 offers" in dropped[0]
    assert "5sim" not in dropped[0]

    # The snapshot stays readable (a str stock or a float price cannot poison it).
    restored = catalog_of(*two_providers())
    assert await restored.load_json(catalog.to_json()) == 2
    assert restored.offer_count() == 7
    assert restored.offers("RU", "viber") == ()

    # A reprice (markup change) keeps dropping them, without raising.
    caplog.clear()
    catalog.set_price_rule(MarkupRule(default=D("0")))
    await catalog.rebuild()
    assert catalog.offers("RU", "viber") == ()
    assert catalog.offers("RU", "telegram")[0].user_price_micro == 220_000  # 20 x 0.011


def append_offer(columns: dict, country: str, service: str, price: str, stock: object) -> None:
    """One more offer in a version 2 snapshot's columns of one provider."""
    columns["places"].append([country, country.lower(), None])
    columns["products"].append([service, service, None])
    columns["prices"].append(price)
    columns["place"].append(len(columns["places"]) - 1)
    columns["product"].append(len(columns["products"]) - 1)
    columns["price"].append(len(columns["prices"]) - 1)
    columns["stock"].append(stock)


async def test_bad_prices_in_a_snapshot_drop_only_their_offer() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    await catalog.refresh()
    snapshot = json.loads(catalog.to_json())
    columns = snapshot["providers"]["tv"]["offers"]
    append_offer(columns, "RU", "viber", "-1", 5)
    append_offer(columns, "US", "viber", "0", 5)
    append_offer(columns, "GB", "viber", "1", -5)
    restored = catalog_of(*two_providers())
    assert await restored.load_json(json.dumps(snapshot)) == 2
    assert restored.offer_count() == catalog.offer_count()
    assert restored.offers("RU", "viber") == ()
    assert restored.offers("US", "viber") == ()
    assert restored.offers("GB", "viber") == ()
    assert restored.offers("RU", "telegram") == catalog.offers("RU", "telegram")


async def test_bad_prices_in_a_version_1_snapshot_drop_only_their_offer() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    await catalog.refresh()
    snapshot = json.loads(version_1(catalog))
    snapshot["providers"]["tv"]["offers"].append(["RU", "viber", "-1", 5, "ru", "viber"])
    snapshot["providers"]["tv"]["offers"].append(["US", "viber", "0", 5, "us", "viber"])
    snapshot["providers"]["tv"]["offers"].append(["GB", "viber", "1", -5, "gb", "viber"])
    restored = catalog_of(*two_providers())
    assert await restored.load_json(json.dumps(snapshot)) == 2
    assert restored.offer_count() == catalog.offer_count()
    assert restored.offers("RU", "viber") == ()
    assert restored.offers("US", "viber") == ()
    assert restored.offers("GB", "viber") == ()


async def test_hanging_provider_times_out_and_the_other_is_served() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub, fetch_timeout_s=0.2)
    await catalog.refresh()
    rub.hang = True
    report = await catalog.refresh()
    assert list(report.failed) == ["5sim"]
    assert report.failed["5sim"].startswith("TimeoutError")
    assert catalog.offers("RU", "google")[0].provider == "5sim"


async def test_providers_are_fetched_concurrently() -> None:
    usd, rub = two_providers()
    barrier = asyncio.Barrier(2)

    async def meet() -> None:
        await asyncio.wait_for(barrier.wait(), 2)  # only passes if both are in flight at once

    usd.before = rub.before = meet
    catalog = catalog_of(usd, rub)
    report = await catalog.refresh()
    assert report.failed == {}


# --- names, unknown codes, pages, search -----------------------------------------------------


async def test_unknown_codes_are_kept_as_is() -> None:
    p = FakeOtp(
        "a",
        "USD",
        [
            offer("fivesim:atlantis", "telegram", "1", country_name="atlantis"),
            offer("ZZ", "brandnewapp", "1"),
            offer("smsactivate:250", "zz9", "1", service_name="Zeta Nine"),
        ],
    )
    catalog = catalog_of(p)
    await catalog.refresh()
    atlantis = catalog.country("fivesim:atlantis")
    assert atlantis is not None
    assert (atlantis.name_en, atlantis.name_ru) == ("atlantis", "atlantis")
    zz = catalog.country("ZZ")
    assert zz is not None
    assert zz.name_en == "ZZ"
    assert catalog.service_name("brandnewapp") == "brandnewapp"
    assert catalog.service_name("zz9") == "Zeta Nine"
    assert [(s.slug, s.name) for s in catalog.services("smsactivate:250")] == [
        ("zz9", "Zeta Nine")
    ]
    assert catalog.country_name("QQ") == "QQ"  # not even in the catalog
    assert catalog.country_name("RU", "ru") == "Россия"


def test_paginate() -> None:
    items = list(range(23))
    first = paginate(items, 0, 10)
    assert (list(first.items), first.page, first.pages, first.total) == (list(range(10)), 0, 3, 23)
    assert (first.has_prev, first.has_next) == (False, True)
    last = paginate(items, 2, 10)
    assert (list(last.items), last.has_next) == ([20, 21, 22], False)
    assert paginate(items, 99, 10).page == 2  # clamped
    assert paginate(items, -3, 10).page == 0
    empty = paginate([], 5, 10)
    assert (list(empty.items), empty.page, empty.pages, empty.total) == ([], 0, 1, 0)
    with pytest.raises(ValueError):
        paginate(items, 0, 0)
    assert OtpCatalog.page(items, 1, 10).items == list(range(10, 20))


async def test_search() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    await catalog.refresh()
    assert isos(catalog.search_countries("ind")) == ["IN"]
    assert isos(catalog.search_countries("росс")) == ["RU"]
    assert isos(catalog.search_countries("us")) == ["RU", "US"]  # "Russia" contains "us"
    assert slugs(catalog.search_services("RU", "TELE")) == ["telegram"]
    assert catalog.search_services("RU", "zzz") == []


# --- snapshot ------------------------------------------------------------------------------


def version_1(catalog: OtpCatalog) -> str:
    """The catalog's snapshot as main wrote it before version 2: an array per offer."""
    providers = {}
    for name, source in catalog._sources.items():
        if source.fetched_at is None:
            continue
        offers = []
        for country, service, price, stock, native_c, native_s, c_name, s_name in source.items:
            values = [country, service, str(price), stock, native_c, native_s]
            offers.append([*values, c_name, s_name] if c_name or s_name else values)
        providers[name] = {"fetched_at": source.fetched_at.isoformat(), "offers": offers}
    return json.dumps({"v": 1, "providers": providers})


def same_catalog(a: OtpCatalog, b: OtpCatalog) -> None:
    assert a.offer_count() == b.offer_count()
    for lang in ("en", "ru"):
        for sort in ("name", "price"):
            assert a.countries(sort, lang) == b.countries(sort, lang)  # type: ignore[arg-type]
            for slug in a.all_services():
                ours = a.countries_for_service(slug, sort, lang)  # type: ignore[arg-type]
                assert ours == b.countries_for_service(slug, sort, lang)  # type: ignore[arg-type]
    for country in a.countries():
        assert a.services(country.iso) == b.services(country.iso)
        assert a.services(country.iso, "price") == b.services(country.iso, "price")
        for item in a.services(country.iso):
            assert a.offers(country.iso, item.slug) == b.offers(country.iso, item.slug)
            assert a.service_name(item.slug) == b.service_name(item.slug)


async def test_snapshot_round_trip_reprices_with_current_markups() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    await catalog.refresh()
    snapshot = catalog.to_json()
    assert json.loads(snapshot)["v"] == 2
    assert "0.30" in snapshot  # prices kept as text, never floats
    assert "GB" not in snapshot  # out-of-stock offers are not kept

    usd2, rub2 = two_providers()
    restored = await OtpCatalog.from_json(
        snapshot,
        [usd2, rub2],
        rates={"tv": D(1), "5sim": RUB},
        price_rule=MarkupRule(default=D(20)),
    )
    assert (usd2.calls, rub2.calls) == (0, 0)
    for country in ("RU", "US", "IN"):
        assert restored.services(country) == catalog.services(country)
        for item in catalog.services(country):
            assert restored.offers(country, item.slug) == catalog.offers(country, item.slug)
    assert restored.countries() == catalog.countries()
    assert restored.countries_for_service("telegram") == catalog.countries_for_service("telegram")

    cheaper = catalog_of(*two_providers(), markup="0")
    assert await cheaper.load_json(snapshot) == 2
    assert cheaper.offers("US", "telegram")[0].user_price_micro == 1_000_000


async def test_snapshot_keeps_unknown_names_and_ignores_unconfigured_providers() -> None:
    p = FakeOtp("a", "USD", [offer("fivesim:atlantis", "x1", "1.5", country_name="atlantis")])
    catalog = catalog_of(p)
    await catalog.refresh()
    snapshot = catalog.to_json()

    other = FakeOtp("b", "USD", [])
    restored = catalog_of(other)
    assert await restored.load_json(snapshot) == 0
    assert restored.countries() == ()

    again = catalog_of(FakeOtp("a", "USD", []))
    assert await again.load_json(snapshot) == 1
    assert again.country_name("fivesim:atlantis") == "atlantis"
    assert again.offers("fivesim:atlantis", "x1")[0].upstream_price == D("1.5")


async def test_snapshot_older_than_a_fetch_is_not_applied() -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    await catalog.refresh()
    old = catalog.to_json()
    usd.items = [offer("US", "telegram", "3.00", 1)]
    await catalog.refresh()
    assert await catalog.load_json(old) == 0
    assert catalog.offers("US", "telegram")[0].upstream_price == D("3.00")


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "not json",
        "[]",
        '{"v": 99, "providers": {}}',
        '{"v": 1}',
        '{"v": 1, "providers": {"tv": {"fetched_at": "2024-01-01T00:00:00+00:00", '
        '"offers": [["RU", "telegram", 0.3, 1, "ru", "telegram"]]}}}',  # a float price
        '{"v": 1, "providers": {"tv": {"fetched_at": "2024-01-01T00:00:00+00:00", '
        '"offers": [["RU", "telegram", "NaN", 1, "ru", "telegram"]]}}}',
        '{"v": 1, "providers": {"tv": {"fetched_at": "yesterday", "offers": []}}}',
        '{"v": 1, "providers": {"tv": {"fetched_at": "2024-01-01T00:00:00+00:00", '
        '"offers": [["RU"]]}}}',
    ],
)
async def test_unreadable_snapshot_loads_nothing(junk: str, caplog) -> None:
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    with caplog.at_level(logging.WARNING, logger="services.catalog"):
        assert await catalog.load_json(junk) == 0
    assert "unreadable snapshot" in caplog.text
    assert catalog.countries() == ()


_FETCHED = '"fetched_at": "2024-01-01T00:00:00+00:00"'
_PLACES = '"places": [["RU", "ru", null]], "products": [["telegram", "telegram", null]]'


def _columns(
    prices: str = '["0.3"]', place: str = "[0]", price: str = "[0]", stock: str = "[1]"
) -> str:
    columns = f'"prices": {prices}, "place": {place}, "product": [0], "price": {price}'
    offers = f'{{{_PLACES}, {columns}, "stock": {stock}}}'
    return f'{{"v": 2, "providers": {{"tv": {{{_FETCHED}, "offers": {offers}}}}}}}'


@pytest.mark.parametrize(
    "junk",
    [
        _columns(prices="[0.3]"),  # a float price
        _columns(prices='["NaN"]'),
        _columns(prices='["Infinity"]'),
        _columns(prices='["zero"]'),
        _columns(place="[1]"),  # no such place
        _columns(place="[-1]"),  # would wrap around
        _columns(price="[true]"),
        _columns(stock="[true]"),
        _columns(stock='["5"]'),
        _columns(stock="[1, 2]"),  # columns of different lengths
        _columns().replace('["RU", "ru", null]', '["RU", 7, null]'),
        _columns().replace('["telegram", "telegram", null]', '["telegram", "telegram", 5]'),
        _columns().replace('"v": 2', '"v": 3'),
        _columns().replace('"v": 2', '"v": true'),
        _columns().replace('"stock": [1]', '"stock": null'),
    ],
)
async def test_unreadable_version_2_snapshot_loads_nothing(junk: str, caplog) -> None:
    catalog = catalog_of(*two_providers())
    assert await catalog.load_json(_columns()) == 1  # the well-formed one is read
    assert catalog.offers("RU", "telegram")[0].upstream_price == D("0.3")
    fresh = catalog_of(*two_providers())
    with caplog.at_level(logging.WARNING, logger="services.catalog"):
        assert await fresh.load_json(junk) == 0
    assert "unreadable snapshot" in caplog.text
    assert fresh.countries() == ()


async def test_a_version_1_snapshot_still_loads_as_the_same_catalog() -> None:
    """A snapshot written before the upgrade (version 1) gives the catalog a version 2 one does."""
    usd, rub = two_providers()
    rub.items.append(offer("fivesim:atlantis", "x1", "1.5", 4, country_name="atlantis"))
    usd.items.append(offer("ZZ", "zz9", "2", 3, service_name="Zeta Nine"))
    catalog = catalog_of(usd, rub)
    await catalog.refresh()
    old, new = catalog_of(*two_providers()), catalog_of(*two_providers())
    assert await old.load_json(version_1(catalog)) == 2
    assert await new.load_json(catalog.to_json()) == 2
    same_catalog(old, catalog)
    same_catalog(new, catalog)
    assert new.country_name("fivesim:atlantis") == "atlantis"
    assert new.service_name("zz9") == "Zeta Nine"


async def test_snapshot_holds_each_distinct_value_once() -> None:
    rub = FakeOtp("5sim", "RUB", [offer("RU", f"app{i}", "4", 10 + i) for i in range(50)])
    catalog = catalog_of(rub)
    await catalog.refresh()
    columns = json.loads(catalog.to_json())["providers"]["5sim"]["offers"]
    assert columns["places"] == [["RU", "ru", None]]
    assert columns["prices"] == ["4"]
    assert len(columns["products"]) == 50
    assert columns["stock"] == [10 + i for i in range(50)]


async def test_snapshot_through_the_database(database_url: str) -> None:
    """The lease holder saves; another process follows with SnapshotSync; a restarted one
    loads an old (version 1) snapshot left in the database by the previous release."""
    db = Database(database_url)
    await upgrade(db)
    try:
        usd, rub = two_providers()
        catalog = catalog_of(usd, rub)
        await catalog.refresh()
        await SnapshotSync(db, catalog).save()
        follower = catalog_of(*two_providers())
        assert await SnapshotSync(db, follower).sync()
        same_catalog(follower, catalog)

        async with db.write() as session:
            await session.execute(
                update(CatalogSnapshot)
                .where(CatalogSnapshot.kind == OTP)
                .values(data=version_1(catalog))
            )
        restarted = catalog_of(*two_providers())
        assert await load_snapshot(db, restarted) is not None
        same_catalog(restarted, catalog)
    finally:
        await db.dispose()


async def test_a_float_price_equal_to_a_priced_one_is_still_dropped() -> None:
    """Prices are remembered by value, and Decimal("1.5") == 1.5: a float must not borrow the
    price of an equal Decimal (main sold it when the Decimal came first in the same build)."""
    good = OtpOffer.model_construct(
        country="RU",
        service="a",
        price=D("1.5"),
        stock=1,
        native_country="ru",
        native_service="a",
    )
    bad = OtpOffer.model_construct(
        country="US", service="a", price=1.5, stock=1, native_country="us", native_service="a"
    )
    catalog = catalog_of(FakeOtp("tv", "USD", [good, bad]))
    await catalog.refresh()
    assert catalog.offers("RU", "a")[0].user_price_micro == 1_800_000
    assert catalog.offers("US", "a") == ()
    await catalog.refresh()  # and not from the last build's prices either
    assert catalog.offers("US", "a") == ()


async def test_a_refresh_reprices_only_what_changed(monkeypatch) -> None:
    priced: list[object] = []
    real = catalog_module._user_price

    def counting(price, pricer):  # type: ignore[no-untyped-def]
        priced.append(price)
        return real(price, pricer)

    monkeypatch.setattr(catalog_module, "_user_price", counting)
    usd, rub = two_providers()
    catalog = catalog_of(usd, rub)
    await catalog.refresh()
    assert len(priced) == 6  # every distinct (price, rate, markup) once
    priced.clear()
    await catalog.refresh()
    assert priced == []
    usd.items[0] = offer("RU", "telegram", "0.31", 50)
    await catalog.refresh()
    assert priced == [D("0.31")]
    assert catalog.offers("RU", "telegram")[0].user_price_micro == 270_000  # 5sim's, cheaper
    assert catalog.offers("RU", "telegram")[1].user_price_micro == 380_000  # 0.31 x 1.2 -> 0.372
    priced.clear()
    catalog.set_price_rule(MarkupRule(default=D(0)))
    await catalog.rebuild()  # a new markup: every price again
    assert len(priced) == 6
    assert catalog.offers("RU", "telegram")[1].user_price_micro == 310_000


async def test_a_price_rule_failing_for_one_offer_drops_only_it() -> None:
    def rule(provider: str, country: str, service: str) -> Decimal:
        if (country, service) == ("RU", "whatsapp"):
            raise ValueError("broken rule")
        return D(-100) if (country, service) == ("US", "telegram") else D(20)

    catalog = catalog_of(*two_providers())
    catalog.set_price_rule(rule)
    await catalog.rebuild()
    await catalog.refresh()
    assert catalog.offers("RU", "whatsapp") == ()
    assert catalog.offers("US", "telegram") == ()  # -100 %: refused by the formula
    assert catalog.offers("RU", "telegram")[0].user_price_micro == 270_000
    assert catalog.offer_count() == 4


def test_gc_pauses_nest_and_restore_the_collector() -> None:
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still runs
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


# --- a 5sim-sized price list -----------------------------------------------------------------


def _fivesim_parser() -> Callable[[bytes], list[OtpOffer]]:
    fivesim = pytest.importorskip("services.providers.fivesim")
    parse = getattr(fivesim, "parse_prices", None)
    if parse is None:
        pytest.skip("services.providers.fivesim has no parse_prices yet")
    first = next(iter(inspect.signature(parse).parameters.values()))
    if "Mapping" in str(first.annotation) or "dict" in str(first.annotation):
        return lambda body: parse(loads(body))
    return parse


@pytest.fixture(scope="module")
def price_list() -> bytes:
    return generate_price_list()


def _expected_cells(body: bytes) -> dict[tuple[str, str], tuple[int, int]]:
    """Independently of any parser: (country name, product) -> (user price, stock) for every
    product with stock, at rate 0.011 and markup 20."""
    result = {}
    for country, products in json.loads(body, parse_float=Decimal).items():
        for product, operators in products.items():
            in_stock = [op for op in operators.values() if op["count"] > 0]
            if in_stock:
                cost = min(D(op["cost"]) for op in in_stock)
                stock = sum(op["count"] for op in in_stock)
                result[(country, product)] = (otp_price(cost, RUB, D(20)), stock)
    return result


@pytest.mark.parametrize("parser", ["test", "fivesim"])
async def test_5sim_sized_price_list(price_list: bytes, parser: str) -> None:
    assert 8_000_000 < len(price_list) < 10_000_000
    text = price_list.decode()
    assert re.search(r'"cost":\d+\.\d{2},', text)  # JSON numbers with 2 dp
    assert re.search(r'"cost":\d+,', text)  # and whole numbers, as in the seed

    parse = parse_prices if parser == "test" else _fivesim_parser()

    class FiveSimSized(FakeOtp):
        async def offers(self, country: str | None = None) -> list[OtpOffer]:
            self.calls += 1
            return parse(price_list)

    provider = FiveSimSized("5sim", "RUB", [])
    catalog = catalog_of(provider)
    report = await catalog.refresh()
    assert report.failed == {}

    expected = _expected_cells(price_list)
    data = json.loads(price_list)
    assert len(data) == 180
    assert report.offers == len(expected)
    assert len(catalog.countries()) == 180
    assert len(catalog.all_services()) == 300

    iso_of = {c: (catalog_iso(catalog, c)) for c in data}
    assert iso_of["russia"] == "RU"
    assert iso_of["atlantis"] == "fivesim:atlantis"
    assert catalog.country_name("fivesim:atlantis") == "atlantis"
    assert catalog.service_name("newapp3") == "newapp3"

    # every in-stock product has exactly the expected price and stock
    for (country, product), (price, stock) in expected.items():
        (best,) = catalog.offers(iso_of[country], product)
        assert (best.user_price_micro, best.stock) == (price, stock), (country, product)
        assert best.native_country == country

    # a page of 10 services for Russia, by name, straight from the index
    page = catalog.page(catalog.services("RU"), 1, 10)
    names = [item.name.casefold() for item in catalog.services("RU")]
    assert names == sorted(names)
    assert len(page.items) == 10
    assert page.total == sum(1 for (c, _p) in expected if c == "russia")
    prices = [item.min_price_micro for item in catalog.services("RU", "price")]
    assert prices == sorted(prices)
    telegram = catalog.countries_for_service("telegram")
    assert [c.min_price_micro for c in telegram] == sorted(c.min_price_micro for c in telegram)

    snapshot = catalog.to_json()
    assert len(snapshot) < 1_500_000  # ~2.8 MB as an array per offer (version 1)
    restored = await OtpCatalog.from_json(
        snapshot,
        [FakeOtp("5sim", "RUB", [])],
        rates={"5sim": RUB},
        price_rule=MarkupRule(default=D(20)),
    )
    assert restored.offer_count() == report.offers
    same_catalog(restored, catalog)


def catalog_iso(catalog: OtpCatalog, native_country: str) -> str:
    for item in catalog.countries():
        offers = catalog.offers(item.iso, catalog.services(item.iso)[0].slug)
        if offers[0].native_country == native_country:
            return item.iso
    raise AssertionError(f"{native_country} not in the catalog")


# --- the demo provider -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def demo(clock: Clock | None = None, **kwargs: object) -> DemoOtpProvider:
    return DemoOtpProvider(
        ProviderConfig(name="demo", kind="demo"),
        code_delay_s=10,
        clock=clock or Clock(),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_demo_offers_and_catalog() -> None:
    provider = demo()
    assert (provider.kind, provider.is_demo, provider.currency) == ("demo", True, "USD")
    assert await provider.balance() == D("1000000.00")
    offers = {(o.country, o.service): o for o in await provider.offers()}
    assert offers[("US", "telegram")].price == D("1.20")  # 0.80 x 1.50
    assert offers[("IN", "google")].price == D("0.16")
    assert offers[DEMO_SOLD_OUT].stock == 0
    assert {o.country for o in await provider.offers("RU")} == {"RU"}

    catalog = catalog_of(provider)
    await catalog.refresh()
    assert isos(catalog.countries()) == ["BR", "DE", "IN", "RU", "GB", "US"]
    assert catalog.offers(*DEMO_SOLD_OUT) == ()
    assert catalog.offers("US", "telegram")[0].user_price_micro == 1_440_000  # 1.20 x 1.2


async def test_demo_buy_code_after_delay_then_finish() -> None:
    clock = Clock()
    provider = demo(clock)
    bought = await provider.buy("US", "telegram", client_ref="o1")
    assert re.fullmatch(r"\+155501\d\d", bought.phone)
    assert bought.price == D("1.20")
    assert bought.expires_at is not None
    assert (await provider.status(bought.order_id)).state is OtpState.WAITING

    clock.now += 9.9
    assert (await provider.status(bought.order_id)) == OtpStatus(state=OtpState.WAITING)
    with pytest.raises(InvalidState):
        await provider.finish(bought.order_id)  # no code yet

    clock.now += 0.1
    status = await provider.status(bought.order_id)
    assert status.state is OtpState.CODE
    assert status.code is not None
    assert re.fullmatch(r"\d{5,6}", status.code)
    assert status.text == f"Your DEMO code is {status.code}"
    with pytest.raises(InvalidState):
        await provider.cancel(bought.order_id)  # has sms

    await provider.finish(bought.order_id)
    assert (await provider.status(bought.order_id)).state is OtpState.FINISHED
    await provider.finish(bought.order_id)  # again: a no-op


async def test_demo_cancel_and_another_sms() -> None:
    clock = Clock()
    provider = demo(clock)
    first = await provider.buy("GB", "whatsapp", client_ref="o1")
    second = await provider.buy("DE", "google", client_ref="o2")
    assert first.order_id != second.order_id
    assert first.phone.startswith("+4455501")

    await provider.cancel(first.order_id)  # at once: the demo has no cancel delay
    assert (await provider.status(first.order_id)).state is OtpState.CANCELLED
    with pytest.raises(InvalidState):
        await provider.cancel(first.order_id)
    clock.now += 60
    assert (await provider.status(first.order_id)).state is OtpState.CANCELLED  # no late code

    with pytest.raises(InvalidState):
        await provider.request_another_sms(first.order_id)
    old = await provider.status(second.order_id)
    assert old.state is OtpState.CODE
    await provider.request_another_sms(second.order_id)
    clock.now += 5
    assert await provider.status(second.order_id) == old  # the old code until the new one
    clock.now += 5
    new = await provider.status(second.order_id)
    assert new.state is OtpState.CODE
    assert new.code != old.code


async def test_demo_active_orders_and_restart_forgets() -> None:
    clock = Clock()
    provider = demo(clock)
    a = await provider.buy("RU", "telegram", client_ref="ref-a")
    b = await provider.buy("BR", "tiktok", client_ref="ref-b")
    await provider.cancel(b.order_id)
    active = await provider.active_orders()
    assert [(o.order_id, o.client_ref, o.country, o.service) for o in active] == [
        (a.order_id, "ref-a", "RU", "telegram")
    ]
    assert active[0].status == OtpStatus(state=OtpState.WAITING)

    restarted = demo(clock)
    with pytest.raises(OrderNotFound):
        await restarted.status(a.order_id)
    with pytest.raises(OrderNotFound):
        await restarted.cancel(a.order_id)
    assert await restarted.active_orders() == []
    with pytest.raises(OrderNotFound):
        await provider.status("12345")


async def test_demo_refusals() -> None:
    provider = demo()
    with pytest.raises(NoNumbers):
        await provider.buy(*DEMO_SOLD_OUT, client_ref="o1")
    with pytest.raises(PriceTooHigh) as exc:
        await provider.buy("US", "telegram", max_price=D("1.19"), client_ref="o2")
    assert exc.value.min_price == D("1.20")
    await provider.buy("US", "telegram", max_price=D("1.20"), client_ref="o3")
    with pytest.raises(BadRequest):
        await provider.buy("US", "telegram", client_ref="o3")  # same client_ref twice
    with pytest.raises(BadRequest):
        await provider.buy("ZZ", "telegram", client_ref="o4")
    with pytest.raises(BadRequest):
        await provider.buy("US", "nosuchapp", client_ref="o5")

    provider.set_stock("US", "telegram", 0)
    with pytest.raises(NoNumbers):
        await provider.buy("US", "telegram", client_ref="o6")
    stocked = demo(stock={DEMO_SOLD_OUT: 5, ("RU", "google"): 0})
    await stocked.buy(*DEMO_SOLD_OUT, client_ref="o7")
    with pytest.raises(NoNumbers):
        await stocked.buy("RU", "google", client_ref="o8")


async def test_demo_forgets_orders_a_day_after_their_lifetime() -> None:
    clock = Clock()
    provider = demo(clock)
    old = await provider.buy("US", "google", client_ref="o1")
    clock.now += 1200 + 86400 + 1
    new = await provider.buy("US", "google", client_ref="o2")
    assert (await provider.status(new.order_id)).state is OtpState.WAITING
    with pytest.raises(OrderNotFound):
        await provider.status(old.order_id)


async def test_demo_orders_expire_without_a_code() -> None:
    clock = Clock()
    provider = demo(clock, lifetime_s=30)
    provider.code_delay_s = 60  # the code would come after the lifetime
    bought = await provider.buy("IN", "discord", client_ref="o1")
    clock.now += 30
    assert (await provider.status(bought.order_id)).state is OtpState.EXPIRED
    with pytest.raises(InvalidState):
        await provider.cancel(bought.order_id)
