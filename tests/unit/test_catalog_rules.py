"""How a price is decided when several rules apply (docs/money.md): a fixed price instead of the
markup, a minimum profit over cost whichever rule gave the price, the rate under both; and the
catalog rules (hide, fix, floor, rename) applied by both catalogs' builds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.catalog import MarkupRule, OtpCatalog
from services.catalog_rules import (
    CATEGORY,
    COUNTRY,
    HIDE,
    MIN_PROFIT,
    OTP_ITEM,
    PRICE,
    RENAME,
    SERVICE,
    SMM_ITEM,
    CatalogRules,
    RuleSet,
    category_name_key,
)
from services.pricing import (
    CENT,
    max_upstream_price,
    otp_price,
    otp_pricer,
    ruled_max_upstream_price,
    ruled_otp_price,
    ruled_smm_rate,
    smm_floor,
    smm_rate_per_1000,
)
from services.providers.base import SmmService, SmmServiceType
from services.smm.drafts import price_of
from services.smm_catalog import SmmCatalog
from tests.unit.test_catalog import RUB, FakeOtp, offer, two_providers

D = Decimal


# --- the formulas ---------------------------------------------------------------------------


def test_without_rules_the_markup_price_is_unchanged() -> None:
    for price, rate, markup in [("0.1453", "1", "20"), ("12.5", "0.011", "20"), ("3", "2", "-10")]:
        args = (D(price), D(rate), D(markup))
        assert ruled_otp_price(*args) == otp_price(*args)
        assert otp_pricer(D(rate), D(markup))(D(price)) == otp_price(*args)


def test_a_fixed_price_replaces_the_markup_and_rounds_up_to_the_cent() -> None:
    # markup price would be $0.18; the fixed one wins whether higher or lower
    assert ruled_otp_price(D("0.1453"), D(1), D(20), fixed=500_000) == 500_000
    assert ruled_otp_price(D("0.1453"), D(1), D(20), fixed=100_000) == 100_000  # a loss: allowed
    assert ruled_otp_price(D("0.1453"), D(1), D(20), fixed=503_000) == 510_000
    assert ruled_otp_price(D("0.1453"), D(1), D(20), CENT // 100, fixed=503_000) == 503_000


def test_the_minimum_profit_floors_whichever_rule_gave_the_price() -> None:
    # markup: 0.1453 x 1.2 = $0.18 < 0.1453 + 0.10 = 0.2453 -> $0.25
    assert ruled_otp_price(D("0.1453"), D(1), D(20), min_profit=100_000) == 250_000
    # markup above the floor: kept ($0.18 > 0.1453 + 0.01)
    assert ruled_otp_price(D("0.1453"), D(1), D(20), min_profit=10_000) == 180_000
    # fixed below the floor: the floor ($0.05 < $0.25)
    assert ruled_otp_price(D("0.1453"), D(1), D(20), fixed=50_000, min_profit=100_000) == 250_000
    # fixed above the floor: the fixed price
    assert ruled_otp_price(D("0.1453"), D(1), D(20), fixed=900_000, min_profit=100_000) == 900_000
    # a discount (negative markup) never goes below cost with a minimum profit of 0
    assert ruled_otp_price(D("0.1453"), D(1), D(-50)) == 80_000
    assert ruled_otp_price(D("0.1453"), D(1), D(-50), min_profit=0) == 150_000
    # the same through the catalog's column-wise pricer
    assert otp_pricer(D(1), D(20), CENT, 100_000)(D("0.1453")) == 250_000
    assert otp_pricer(D(1), D(-50), CENT, 0)(D("0.1453")) == 150_000


def test_the_rate_is_under_every_rule() -> None:
    # 12.5 RUB at 0.011: cost 0.1375; 20 % -> $0.17; floor 0.1375 + 0.05 -> $0.19
    assert ruled_otp_price(D("12.5"), RUB, D(20)) == 170_000
    assert ruled_otp_price(D("12.5"), RUB, D(20), min_profit=50_000) == 190_000
    # a higher rate lifts the floor of a fixed price: 12.5 x 0.02 = 0.25 + 0.05 -> $0.30
    assert ruled_otp_price(D("12.5"), D("0.02"), D(20), fixed=200_000, min_profit=50_000) == (
        300_000
    )
    assert ruled_otp_price(D("12.5"), D("0.02"), D(20), fixed=200_000) == 200_000


def test_rules_refuse_floats_and_negative_profits() -> None:
    with pytest.raises(TypeError):
        ruled_otp_price(0.1453, D(1), D(20))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ruled_otp_price(D("0.1"), D(1), D(20), fixed=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ruled_otp_price(D("0.1"), D(1), D(20), min_profit=-1)


def test_the_max_upstream_price_keeps_every_rule_within_the_confirmed_price() -> None:
    # markup only: the existing formula
    assert ruled_max_upstream_price(180_000, D(1), D(20)) == max_upstream_price(
        180_000, D(1), D(20)
    )
    # markup and a minimum profit: the tighter of the two
    assert ruled_max_upstream_price(250_000, D(1), D(20), min_profit=100_000) == D("0.15")
    assert ruled_max_upstream_price(180_000, D(1), D(20), min_profit=10_000) == D("0.15")
    # fixed: the customer's price less the minimum profit, or the whole price (no loss)
    assert ruled_max_upstream_price(500_000, D(1), D(20), fixed=True) == D("0.5")
    assert ruled_max_upstream_price(500_000, D(1), D(20), fixed=True, min_profit=100_000) == D(
        "0.4"
    )
    assert ruled_max_upstream_price(500_000, RUB, D(20), fixed=True) == D("45.4545")
    # a fixed price below cost (no minimum profit) still lets the shown offer be bought
    assert ruled_max_upstream_price(100_000, D(1), D(20), fixed=True, current=D("0.1453")) == D(
        "0.1453"
    )
    # what each answers is never priced above the confirmed price
    for confirmed, fixed, profit in [(250_000, None, 100_000), (500_000, 500_000, 100_000)]:
        top = ruled_max_upstream_price(
            confirmed, D(1), D(20), fixed=fixed is not None, min_profit=profit
        )
        price = ruled_otp_price(top, D(1), D(20), fixed=fixed, min_profit=profit)
        assert price <= confirmed


def test_smm_fixed_rate_and_minimum_profit_per_order() -> None:
    assert ruled_smm_rate(D("0.917"), D(1), D(20)) == smm_rate_per_1000(D("0.917"), D(1), D(20))
    assert ruled_smm_rate(D("0.917"), D(1), D(20), fixed=2_000_000) == 2_000_000
    # 10 units at 0.917 per 1000: cost 0.00917, + $1 -> 1_009_170
    assert smm_floor(D("0.917"), D(1), 10, 1_000_000) == 1_009_170
    # 12.5 RUB per 1000 at 0.011, 777 units: 0.10684... + 0 -> ceil to the micro-unit
    assert smm_floor(D("12.5"), RUB, 777, 0) == 106_838


def smm_item(**changes: object):
    from tests.unit.test_smm_views import item as make_item

    return make_item(**changes)


def test_smm_price_of_uses_the_floor_only_when_it_is_higher() -> None:
    base = smm_item(rate_per_1000=1_100_400, upstream_rate=D("0.917"), rate=D(1))
    assert price_of(base, 777) == 855_011
    floored = smm_item(
        rate_per_1000=1_100_400, upstream_rate=D("0.917"), rate=D(1), min_profit=1_000_000
    )
    assert price_of(floored, 10) == 1_009_170  # cost + $1 beats 11_004
    assert price_of(floored, 5000) == 5_585_000  # 4.585 + 1 beats the rate's 5.502
    low = smm_item(
        rate_per_1000=1_100_400, upstream_rate=D("0.917"), rate=D(1), min_profit=500_000
    )
    assert price_of(low, 5000) == 5_502_000  # the rate's total beats 4.585 + 0.5
    package = smm_item(
        type=SmmServiceType.PACKAGE,
        rate_per_1000=2_000_000,
        upstream_rate=D("1.9"),
        rate=D(1),
        min_profit=500_000,
    )
    assert price_of(package, 1) == 2_400_000  # the package's cost 1.9 + 0.5


# --- the rule set -------------------------------------------------------------------------


def test_a_rule_set_from_rows_ignores_what_it_does_not_know() -> None:
    rules = RuleSet.from_rows(
        [
            (HIDE, COUNTRY, "KZ", "kz"),
            (HIDE, SERVICE, "whatsapp", "whatsapp"),
            (HIDE, OTP_ITEM, "RU|telegram", ""),
            (HIDE, SMM_ITEM, "panel|12", ""),
            (HIDE, CATEGORY, "instagram followers", "Instagram  Followers"),
            (PRICE, OTP_ITEM, "RU|telegram", "500000"),
            (PRICE, OTP_ITEM, "US|telegram", "junk"),  # unreadable: ignored
            (PRICE, OTP_ITEM, "GB|telegram", "0"),  # a free number: ignored
            (MIN_PROFIT, OTP_ITEM, "", "0"),
            (RENAME, SERVICE, "telegram", "TG"),
            (RENAME, CATEGORY, "instagram", "IG"),
            ("future", "rule", "x", "y"),
        ]
    )
    assert rules.otp_hidden("KZ", "telegram") and rules.otp_hidden("RU", "whatsapp")
    assert rules.otp_hidden("RU", "telegram") and not rules.otp_hidden("US", "telegram")
    assert rules.smm_hidden("panel", "12", "Anything")
    assert rules.smm_hidden("other", "1", "INSTAGRAM   followers")
    assert not rules.smm_hidden("other", "1", "Instagram")
    assert rules.otp_fixed == {("RU", "telegram"): 500_000}
    assert rules.otp_min_profit == 0 and rules.smm_min_profit is None
    assert rules.service_names == {"telegram": "TG"}
    assert rules.category_name("  Instagram ") == "IG"
    assert len(rules.rows) == 9  # the unreadable, the free and the unknown left out
    assert category_name_key(" Instagram\tFollowers ") == "instagram followers"


# --- the catalogs -------------------------------------------------------------------------


def ruled(rows: list[tuple[str, str, str, str]]) -> CatalogRules:
    rules = CatalogRules()
    rules.apply(rows)
    return rules


async def test_the_otp_catalog_hides_fixes_floors_and_renames() -> None:
    usd, rub = two_providers()
    rules = CatalogRules()
    catalog = OtpCatalog(
        [usd, rub],
        rates={"tv": D(1), "5sim": RUB},
        price_rule=MarkupRule(default=D(20)),
        build_in_thread=False,
        rules=rules,
    )
    await catalog.refresh()
    assert catalog.best_offer("RU", "telegram").user_price_micro == 270_000  # 5sim
    rules.apply(
        [
            (HIDE, COUNTRY, "IN", ""),
            (HIDE, OTP_ITEM, "RU|google", ""),
            (PRICE, OTP_ITEM, "RU|telegram", "500000"),
            (MIN_PROFIT, OTP_ITEM, "", "100000"),
            (RENAME, SERVICE, "telegram", "Telegram Premium"),
        ]
    )
    await catalog.rebuild()
    assert catalog.country("IN") is None
    assert [s.slug for s in catalog.services("RU")] == ["telegram", "whatsapp"]
    assert catalog.offers("RU", "google") == ()
    # fixed at $0.50 for both providers; the one that costs the shop less is asked first
    # (tv 0.30 USD vs 5sim 20 x 0.011 = 0.22 USD), whatever their stock
    telegram = catalog.offers("RU", "telegram")
    assert [(o.provider, o.user_price_micro) for o in telegram] == [
        ("5sim", 500_000),
        ("tv", 500_000),
    ]
    # the minimum profit: whatsapp 0.90 x 1.2 = 1.08 > 0.90 + 0.10; US telegram 1.00 + 0.10
    assert catalog.best_offer("RU", "whatsapp").user_price_micro == 1_080_000
    assert catalog.best_offer("US", "telegram").user_price_micro == 1_200_000
    assert catalog.service_name("telegram") == "Telegram Premium"
    assert catalog.services("RU")[0].name == "Telegram Premium"
    # the max price a provider is asked for under a fixed price and a minimum profit
    best = telegram[0]
    assert catalog.max_upstream_price("RU", "telegram", 500_000, best) == D("36.3636")
    rules.apply([])
    await catalog.rebuild()
    assert catalog.best_offer("RU", "telegram").user_price_micro == 270_000
    assert catalog.country("IN") is not None and catalog.service_name("telegram") == "Telegram"


async def test_a_fixed_price_below_the_floor_is_raised_per_provider() -> None:
    cheap = FakeOtp("a", "USD", [offer("RU", "telegram", "0.10", 5)])
    dear = FakeOtp("b", "USD", [offer("RU", "telegram", "0.40", 500)])
    rules = ruled(
        [(PRICE, OTP_ITEM, "RU|telegram", "300000"), (MIN_PROFIT, OTP_ITEM, "", "50000")]
    )
    catalog = OtpCatalog(
        [cheap, dear],
        rates={"a": D(1), "b": D(1)},
        price_rule=MarkupRule(default=D(20)),
        build_in_thread=False,
        rules=rules,
    )
    await catalog.refresh()
    assert [(o.provider, o.user_price_micro) for o in catalog.offers("RU", "telegram")] == [
        ("a", 300_000),
        ("b", 450_000),
    ]


class FakeSmm:
    kind = "fake"
    currency = "USD"
    is_demo = False
    supports_refill = True
    supports_cancel = True

    def __init__(self, name: str, services: list[SmmService]) -> None:
        self.name = name
        self.items = services

    async def services(self) -> list[SmmService]:
        return self.items


def smm_service(service_id: str, category: str, rate: str) -> SmmService:
    return SmmService(
        service_id=service_id,
        name=f"Service {service_id}",
        type=SmmServiceType.DEFAULT,
        category=category,
        rate=D(rate),
        min=10,
        max=5000,
    )


async def test_the_smm_catalog_hides_fixes_floors_and_renames() -> None:
    panel = FakeSmm(
        "panel",
        [
            smm_service("1", "Instagram", "0.917"),
            smm_service("2", "Instagram", "2"),
            smm_service("3", "YouTube Views", "1"),
        ],
    )
    rules = CatalogRules()
    catalog = SmmCatalog(
        [panel],  # type: ignore[list-item]
        rates={"panel": D(1)},
        markup_for=lambda *_: D(20),
        rules=rules,
    )
    await catalog.refresh()
    assert [c.name for c in catalog.categories()] == ["Instagram", "YouTube Views"]
    rules.apply(
        [
            (HIDE, SMM_ITEM, "panel|2", ""),
            (HIDE, CATEGORY, "youtube views", ""),
            (PRICE, SMM_ITEM, "panel|1", "2000000"),
            (MIN_PROFIT, SMM_ITEM, "", "1000000"),
            (RENAME, SMM_ITEM, "panel|1", "Fast followers"),
            (RENAME, CATEGORY, "instagram", "IG"),
        ]
    )
    catalog.rebuild()
    (category,) = catalog.categories()
    assert category.name == "IG" and category.services == 1
    (item,) = catalog.services(category.key)
    assert (item.name, item.rate_per_1000, item.min_profit) == (
        "Fast followers",
        2_000_000,
        1_000_000,
    )
    assert item.category == "IG"
    assert price_of(item, 777) == 1_712_509  # 0.712509 + 1 beats 2.00 x 777 / 1000
    assert price_of(item, 5000) == 10_000_000  # 2.00 x 5000 / 1000 beats 4.585 + 1
    assert price_of(item, 10) == 1_009_170  # 0.00917 + 1 beats 0.02
