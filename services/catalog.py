"""OtpCatalog: what can be bought, merged across OTP providers, in the store's prices.

`refresh()` (a scheduler job, never a button press) fetches every provider's offers concurrently
and builds an immutable index with every list a screen shows already sorted; the readers
(`countries()`, `services()`, `offers()`, `countries_for_service()`) only look things up and
slice. A provider that fails keeps its previous offers. `to_json()`/`load_json()` keep a snapshot
of the upstream offers (not of our prices) in the database, so a restart shows the catalog before
the first refresh and re-prices it with the markups of the moment. After a markup or rate change
(`catalog.rates[name] = ...`, or whatever the price rule reads), `rebuild()` re-prices without
fetching.

The refresh loop and the snapshot are RefreshingCatalog's (catalog_refresh.py, shared with the
SMM catalog); the index and its rows are catalog_index.py's. This module prices the offers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import compress, repeat
from operator import attrgetter
from typing import Any, Protocol, TypeGuard, TypeVar

from services.catalog_index import (
    CatalogIndex,
    Cell,
    CountryItem,
    Offer,
    Page,
    ServiceItem,
    SortBy,
    country_key,
    index_from,
    new_offer,
    offer_order,
    paginate,
)
from services.catalog_refresh import RefreshingCatalog, RefreshReport, gc_paused, utc_now
from services.catalog_rules import CatalogRules, RuleSet
from services.money import CENT, MAX_ADMIN_AMOUNT, MICRO, to_decimal
from services.pricing import otp_pricer, ruled_max_upstream_price, ruled_otp_price
from services.providers import tables
from services.providers.base import OFFER_FIELDS, OfferRow, OtpOffer, OtpOffers, OtpProvider

__all__ = [
    "MAX_OFFER_PRICE_MICRO",
    "SNAPSHOT_VERSION",
    "CountryItem",
    "MarkupFn",
    "MarkupRule",
    "Offer",
    "OtpCatalog",
    "Page",
    "PriceRule",
    "RefreshReport",
    "ServiceItem",
    "SortBy",
    "paginate",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
# The highest store price an offer may have (a billion units, like the admin amount guard):
# anything above is a broken upstream value, dropped rather than sold or stored.
MAX_OFFER_PRICE_MICRO = MAX_ADMIN_AMOUNT * MICRO


class PriceRule(Protocol):
    """Which markup applies to one provider's (country, service). Called for every offer at each
    refresh, possibly from a worker thread: it must only read memory (no I/O, no awaits)."""

    def markup_for(self, provider_name: str, country: str, service: str) -> Decimal: ...


MarkupFn = Callable[[str, str, str], Decimal]


@dataclass(frozen=True)
class MarkupRule:
    """The settings-based rule: a per-(country, service) markup (admin) > a per-provider markup >
    the default (MARKUP_PERCENT)."""

    default: Decimal
    providers: Mapping[str, Decimal] = field(default_factory=dict)
    items: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)

    def markup_for(self, provider_name: str, country: str, service: str) -> Decimal:
        item = self.items.get((country, service)) if self.items else None
        if item is not None:
            return item
        return self.providers.get(provider_name, self.default)


# The OTP snapshot's version: 2 stores each provider's offers as columns (see _snapshot_columns);
# 1, a JSON array per offer, is still read.
SNAPSHOT_VERSION = 2

# An OtpOffer in stock, kept as a plain tuple of its fields in order (an OtpOffers row): ~50k
# pydantic models would hold ~50 MB for nothing, and a plain tuple of str/int/Decimal is
# untracked by the cyclic GC.
_Row = OfferRow
_row_of = attrgetter(*OFFER_FIELDS)


class OtpCatalog(RefreshingCatalog[OtpProvider, Sequence[OtpOffer], _Row]):
    log = log
    label = "catalog"
    items_name = "offers"
    snapshot_version = SNAPSHOT_VERSION
    readable_versions = frozenset({1, SNAPSHOT_VERSION})

    def __init__(
        self,
        providers: Iterable[OtpProvider],
        *,
        rates: Mapping[str, Decimal],
        price_rule: PriceRule | MarkupFn,
        price_step: int = CENT,
        fetch_timeout_s: float | None = 60.0,
        build_in_thread: bool = True,
        rules: CatalogRules | None = None,
    ) -> None:
        """`rates[provider.name]` is the value of one unit of its currency in the store currency;
        `price_step` the store currency's smallest unit in micro (CENT for USD); `rules` an
        admin's hidden items, fixed prices, minimum profit and names (services/catalog_rules.py),
        read at each build."""
        super().__init__(providers, rates=rates, fetch_timeout_s=fetch_timeout_s)
        self.set_price_rule(price_rule)
        self.price_step = price_step
        self.build_in_thread = build_in_thread
        self.rules = rules if rules is not None else CatalogRules()
        self._index = CatalogIndex.empty()
        # (price step, minimum profit) -> (upstream price, rate, markup) -> store price, of
        # the last build
        self._prices: dict[
            tuple[int, int | None], dict[tuple[Decimal, Decimal, Decimal], int]
        ] = {}
        # One build at a time: a build that read `excluded` before a later one must not
        # replace the later one's index when its thread happens to finish last.
        self._build_lock = asyncio.Lock()

    def set_price_rule(self, price_rule: PriceRule | MarkupFn) -> None:
        """A new markup rule; takes effect at the next rebuild()."""
        rule = price_rule.markup_for if hasattr(price_rule, "markup_for") else price_rule
        self._markup_for: MarkupFn = rule

    # --- refresh (the loop is RefreshingCatalog's) ---------------------------------------

    def _download(self, provider: OtpProvider) -> Awaitable[Sequence[OtpOffer]]:
        return provider.offers()

    async def _keep(self, fetched: Sequence[OtpOffer]) -> tuple[_Row, ...]:
        if self.build_in_thread:
            return await asyncio.to_thread(_rows_from, fetched)
        return _rows_from(fetched)

    async def _reindex(self) -> None:
        await self.rebuild()

    def _sold_count(self) -> int:
        return self.offer_count()

    async def rebuild(self) -> None:
        """Re-price the offers already held (after a markup or rate change), no fetching."""
        async with self._build_lock:
            sources = {
                name: source.items
                for name, source in self._sources.items()
                if name not in self.excluded
            }
            rates = dict(self.rates)
            if self.build_in_thread:
                index = await asyncio.to_thread(self._build, sources, rates)
            else:
                index = self._build(sources, rates)
            self._index, self.built_at = index, utc_now()

    def _build(
        self, sources: Mapping[str, Sequence[_Row]], rates: Mapping[str, Decimal]
    ) -> CatalogIndex:
        rules = self.rules.current
        with gc_paused():
            bests, country_names, service_names = self._price_all(sources, rates, rules)
            index = index_from(bests, country_names, service_names, rules.service_names)
            _cheapest_cost_first(index, rules)
            return index

    def _price_all(
        self,
        sources: Mapping[str, Sequence[_Row]],
        rates: Mapping[str, Decimal],
        rules: RuleSet | None = None,
    ) -> tuple[list[dict[Cell, Offer]], dict[str, str], dict[str, str]]:
        """Every provider's offers priced: per provider its best offer per (country, service),
        without what an admin hid, at an admin's fixed price where there is one."""
        rules = rules if rules is not None else self.rules.current
        step, floor = self.price_step, rules.otp_min_profit
        pricing = _Pricing(self._markup_for, step, self._prices.get((step, floor), {}), floor)
        bests = [pricing.best_offers(name, rows, rates[name]) for name, rows in sources.items()]
        self._prices = {(step, floor): pricing.prices}  # only what this build used
        bests = [_ruled(best, rules, step) for best in bests]
        return bests, pricing.country_names, pricing.service_names

    def max_upstream_price(
        self, country: str, service: str, confirmed: int, offer: Offer
    ) -> Decimal:
        """The most `offer`'s provider may charge for a number of (country, service) sold at
        `confirmed` (pricing.ruled_max_upstream_price() under this moment's rules)."""
        rules = self.rules.current
        return ruled_max_upstream_price(
            confirmed,
            offer.rate,
            offer.markup_percent,
            fixed=(country, service) in rules.otp_fixed,
            min_profit=rules.otp_min_profit,
            current=offer.upstream_price,
        )

    # --- readers (no I/O, no sorting) ------------------------------------------------------

    def countries(self, sort: SortBy = "name", lang: str = "en") -> Sequence[CountryItem]:
        """Countries with anything in stock: by name in `lang`, or cheapest first."""
        return self._index.countries.get(country_key(sort, lang), ())

    def services(self, country: str, sort: SortBy = "name") -> Sequence[ServiceItem]:
        return self._index.services.get((country, sort), ())

    def offers(self, country: str, service: str) -> Sequence[Offer]:
        """Cheapest first (then most stock); only offers in stock."""
        return self._index.offers.get((country, service), ())

    def best_offer(self, country: str, service: str) -> Offer | None:
        offers = self.offers(country, service)
        return offers[0] if offers else None

    def countries_for_service(
        self, service: str, sort: SortBy = "price", lang: str = "en"
    ) -> Sequence[CountryItem]:
        """Service first: the countries selling it, with their best price and total stock."""
        return self._index.service_countries(service, country_key(sort, lang))

    def country(self, iso: str) -> CountryItem | None:
        return self._index.country_info.get(iso)

    def country_name(self, iso: str, lang: str = "en") -> str:
        item = self._index.country_info.get(iso)
        if item is not None:
            return item.name(lang)
        info = tables.country(iso)
        return info.name_ru if lang == "ru" else info.name_en

    def service_name(self, slug: str) -> str:
        return (
            self._index.service_names.get(slug)
            or self.rules.current.service_names.get(slug)
            or tables.service_name(slug)
        )

    def all_services(self) -> Sequence[str]:
        """Slugs of every service in stock somewhere, by display name."""
        return self._index.all_services

    def search_countries(self, query: str, lang: str = "en") -> list[CountryItem]:
        """Countries whose name (either language) or ISO code contains `query`."""
        needle = query.strip().casefold()
        return [
            item
            for item in self.countries("name", lang)
            if needle in item.name_en.casefold()
            or needle in item.name_ru.casefold()
            or needle == item.iso.casefold()
        ]

    def search_services(self, country: str, query: str) -> list[ServiceItem]:
        needle = query.strip().casefold()
        return [
            item
            for item in self.services(country)
            if needle in item.name.casefold() or needle in item.slug
        ]

    @staticmethod
    def page(items: Sequence[T], page: int, per_page: int) -> Page[T]:
        return paginate(items, page, per_page)

    def lists(self, country: str | None = None, service: str | None = None) -> bool:
        """Whether any provider's last price list has that country, service or both, sold or
        not (switched off, hidden): an admin's rule about something else is likely a typo."""
        return any(
            (country is None or row[0] == country) and (service is None or row[1] == service)
            for source in self._sources.values()
            for row in source.items
        )

    def offer_count(self) -> int:
        return sum(map(len, self._index.offers.values()))

    # --- snapshot (prices as strings; the rest is RefreshingCatalog's) ----------------------

    def _snapshot_items(self, items: tuple[_Row, ...]) -> dict[str, list[Any]]:
        return _snapshot_columns(items)

    def _items_from_snapshot(self, values: Any, version: int) -> tuple[_Row, ...]:
        if version == 1:
            return tuple(_row_from_snapshot(row) for row in values)
        return _rows_from_columns(values)

    @classmethod
    async def from_json(
        cls,
        data: str | bytes,
        providers: Iterable[OtpProvider],
        *,
        rates: Mapping[str, Decimal],
        price_rule: PriceRule | MarkupFn,
        **kwargs: object,
    ) -> OtpCatalog:
        catalog = cls(providers, rates=rates, price_rule=price_rule, **kwargs)  # type: ignore[arg-type]
        await catalog.load_json(data)
        return catalog


# --- pricing -------------------------------------------------------------------------------


_PriceKey = tuple[Decimal, Decimal, Decimal]  # (upstream price, rate, markup)


class _Pricing:
    """One build's pricing of every provider's rows.

    Many offers share a price, and a refresh mostly brings the prices of the last one: a store
    price is computed once per (upstream price, rate, markup) and taken from the last build's
    `known` prices when it was there, so a refresh re-prices only what changed.

    A provider's rows are priced column-wise (map and zip, no Python code per offer but the
    price rule) when they are all well-formed, as an adapter's and a snapshot's are; anything
    unusual (a bad price, stock or markup, two native ids for one cell) sends the provider's
    rows through the row-by-row path, which drops and logs the bad ones."""

    def __init__(
        self,
        markup_for: MarkupFn,
        step: int,
        known: Mapping[_PriceKey, int],
        min_profit: int | None = None,
    ) -> None:
        self.markup_for = markup_for
        self.step = step
        self.known = known
        self.min_profit = min_profit  # every price at least cost + this (an admin's /minprofit)
        self.prices: dict[_PriceKey, int] = {}  # what this build used: next build's `known`
        self._pricers: dict[tuple[Decimal, Decimal], Callable[[Decimal], int]] = {}
        self.country_names: dict[str, str] = {}
        self.service_names: dict[str, str] = {}

    def best_offers(self, provider: str, rows: Sequence[_Row], rate: Decimal) -> dict[Cell, Offer]:
        best = self._columnwise(provider, rows, rate) if rows else {}
        return self._row_by_row(provider, rows, rate) if best is None else best

    def _columnwise(
        self, provider: str, rows: Sequence[_Row], rate: Decimal
    ) -> dict[Cell, Offer] | None:
        """The offers of well-formed rows, or None when any row needs the careful path."""
        countries, services, upstream, stocks, native_c, native_s, c_names, s_names = zip(
            *rows, strict=True
        )
        if not set(map(type, stocks)) <= {int} or min(stocks) <= 0:  # no bool, none sold out
            return None
        if not set(map(type, upstream)) <= {Decimal}:
            return None
        try:
            markups = list(map(self.markup_for, repeat(provider), countries, services))
            keys = list(zip(upstream, repeat(rate), markups, strict=False))
            for key in set(keys).difference(self.prices):  # sNaN cannot even be hashed
                self.prices[key] = self._price(key)
        except (ArithmeticError, TypeError, ValueError):
            return None
        user_prices = list(map(self.prices.__getitem__, keys))
        if min(user_prices) <= 0:
            return None
        fields = (repeat(provider), user_prices, upstream, stocks, repeat(rate), markups)
        offers = map(new_offer, zip(*fields, native_c, native_s, strict=False))
        best = dict(zip(zip(countries, services, strict=True), offers, strict=True))
        if len(best) != len(rows):  # two native ids for one cell: keep the cheapest, below
            return None
        for country, name in compress(zip(countries, c_names, strict=True), c_names):
            self.country_names.setdefault(country, name)
        for service, name in compress(zip(services, s_names, strict=True), s_names):
            self.service_names.setdefault(service, name)
        return best

    def _row_by_row(self, provider: str, rows: Sequence[_Row], rate: Decimal) -> dict[Cell, Offer]:
        best: dict[Cell, Offer] = {}
        dropped: list[_Row] = []
        for row in rows:
            country, service, price, stock, native_c, native_s, c_name, s_name = row
            if type(stock) is not int or stock <= 0:  # also refuses bool
                if type(stock) is not int or stock < 0:  # sold out is fine, not a bad count
                    dropped.append(row)
                continue
            if type(price) is not Decimal:  # a float equal to a known price must not pass
                dropped.append(row)
                continue
            try:
                markup = self.markup_for(provider, country, service)
                key = (price, rate, markup)
                user_price = self.prices.get(key)
                if user_price is None:
                    user_price = self.prices[key] = self._price(key)
            except (ArithmeticError, TypeError, ValueError):  # sNaN cannot even be hashed
                dropped.append(row)
                continue
            if user_price <= 0:
                dropped.append(row)
                continue
            offer = new_offer(
                (provider, user_price, price, stock, rate, markup, native_c, native_s)
            )
            cell = (country, service)
            previous = best.get(cell)
            # Two native ids can map to one ISO code (handler_api "USA" and "USA (virtual)"):
            # keep the provider's cheapest.
            if previous is None or offer_order(offer) < offer_order(previous):
                best[cell] = offer
            if c_name:
                self.country_names.setdefault(country, c_name)
            if s_name:
                self.service_names.setdefault(service, s_name)
        _log_dropped(provider, dropped)
        return best

    def _price(self, key: _PriceKey) -> int:
        known = self.known.get(key)
        if known is not None:
            return known
        price, rate, markup = key
        pricer = self._pricers.get((rate, markup))
        if pricer is None:  # a bad rate or markup raises here: the caller drops the offer
            pricer = self._pricers[(rate, markup)] = otp_pricer(
                rate, markup, self.step, self.min_profit
            )
        return _user_price(price, pricer)


def _ruled(best: dict[Cell, Offer], rules: RuleSet, step: int) -> dict[Cell, Offer]:
    """One provider's best offers without the hidden ones, at the fixed prices."""
    if rules.hides_otp:
        hidden = rules.otp_hidden
        best = {cell: offer for cell, offer in best.items() if not hidden(*cell)}
    for cell, fixed in rules.otp_fixed.items():
        offer = best.get(cell)
        if offer is None:
            continue
        try:
            price = ruled_otp_price(
                offer.upstream_price,
                offer.rate,
                offer.markup_percent,
                step,
                fixed=fixed,
                min_profit=rules.otp_min_profit,
            )
        except (ArithmeticError, TypeError, ValueError):
            continue
        if 0 < price <= MAX_OFFER_PRICE_MICRO:
            best[cell] = offer._replace(user_price_micro=price)
    return best


def _cheapest_cost_first(index: CatalogIndex, rules: RuleSet) -> None:
    """At a fixed price several providers sell a cell at one price: ask the one it costs the
    shop least first (then the most stock), not merely the one with the most stock."""
    offers = index.offers
    for cell in rules.otp_fixed:
        cell_offers = offers.get(cell)
        if cell_offers is not None and len(cell_offers) > 1:
            offers[cell] = tuple(sorted(cell_offers, key=_fixed_order))  # type: ignore[index]


def _fixed_order(offer: Offer) -> tuple[int, Decimal, int, str]:
    return (
        offer.user_price_micro,
        offer.upstream_price * offer.rate,
        -offer.stock,
        offer.provider,
    )


def _user_price(price: object, pricer: Callable[[Decimal], int]) -> int:
    """The store price of one upstream price (`pricer`: pricing.otp_pricer() of its rate and
    markup), or 0 when it must not be sold: an upstream price that is not a positive finite
    Decimal (free, negative, NaN, a float), or a store price above MAX_OFFER_PRICE_MICRO (`1e30`
    from a broken upstream would overflow the database)."""
    if not _is_price(price) or price <= 0:
        return 0
    user_price = pricer(price)
    return user_price if 0 < user_price <= MAX_OFFER_PRICE_MICRO else 0


def _is_price(value: object) -> TypeGuard[Decimal]:
    return type(value) is Decimal and value.is_finite()


def _log_dropped(provider: str, rows: Sequence[_Row]) -> None:
    if not rows:
        return
    country, service, price, stock = rows[0][:4]
    log.warning(
        "catalog: %s: dropped %d offers with an unusable price or stock (first: %s/%s, "
        "price %r, stock %r)",
        provider,
        len(rows),
        country,
        service,
        price,
        stock,
    )


# --- snapshot rows ---------------------------------------------------------------------------


def _rows_from(offers: Iterable[OtpOffer]) -> tuple[_Row, ...]:
    """Sold-out offers are left out; a stock that is not a count (negative, not an int) is kept
    for _price_all() to drop and report (comparing it here could fail the whole provider).
    An adapter's OtpOffers are rows already: no model is made for them."""
    rows: Iterable[_Row] = offers.rows if isinstance(offers, OtpOffers) else map(_row_of, offers)
    return tuple(row for row in rows if type(row[3]) is not int or row[3] != 0)


def _row_from_snapshot(values: list[Any]) -> _Row:  # one offer of a version 1 snapshot
    country, service, price, stock, native_country, native_service, *names = values
    country_name, service_name = [*names, None, None][:2]
    texts = (country, service, native_country, native_service)
    if not all(isinstance(text, str) for text in texts) or not isinstance(price, str):
        raise TypeError("snapshot codes and prices must be strings")
    if isinstance(stock, bool) or not isinstance(stock, int):
        raise TypeError("snapshot stock must be an integer")
    for name in (country_name, service_name):
        if name is not None and not isinstance(name, str):
            raise TypeError("snapshot names must be strings")
    return (
        country,
        service,
        to_decimal(price),
        stock,
        native_country,
        native_service,
        country_name,
        service_name,
    )


# --- snapshot columns (version 2) --------------------------------------------------------------
#
# One provider's offers as columns of equal length, each value an index into a table of the
# distinct values (a 5sim list repeats 180 countries, 300 products and ~15k prices over ~50k
# offers): {"places": [[country, native country, its name or null], ...], "products": [[service,
# native service, its name or null], ...], "prices": ["12.5", ...], "place": [0, 0, ...],
# "product": [0, 1, ...], "price": [3, 0, ...], "stock": [120, 7, ...]}. A third of the size of
# an array per offer, and read back with no Python code per offer (zip and map).

_COLUMNS = ("place", "product", "price", "stock")


def _snapshot_columns(rows: Iterable[_Row]) -> dict[str, list[Any]]:
    places: dict[tuple[str, str, str | None], int] = {}
    products: dict[tuple[str, str, str | None], int] = {}
    prices: dict[str, int] = {}
    columns: tuple[list[int], ...] = ([], [], [], [])
    place_of, product_of, price_of, stock_of = (column.append for column in columns)
    for country, service, price, stock, native_c, native_s, c_name, s_name in rows:
        if type(stock) is not int or not _is_price(price):  # what a snapshot can hold
            continue
        place_of(places.setdefault((country, native_c, c_name), len(places)))
        product_of(products.setdefault((service, native_s, s_name), len(products)))
        price_of(prices.setdefault(str(price), len(prices)))
        stock_of(stock)
    return {
        "places": [list(place) for place in places],
        "products": [list(product) for product in products],
        "prices": list(prices),
        **dict(zip(_COLUMNS, columns, strict=True)),
    }


def _rows_from_columns(values: dict[str, Any]) -> tuple[_Row, ...]:
    countries, native_countries, country_names = _table(values["places"])
    services, native_services, service_names = _table(values["products"])
    prices = _prices(values["prices"])
    place, product, price, stock = (values[name] for name in _COLUMNS)
    _indexes(place, len(countries))
    _indexes(product, len(services))
    _indexes(price, len(prices))
    if not _all_int(stock) or not len(place) == len(product) == len(price) == len(stock):
        raise TypeError("snapshot columns must be integers, all of one length")
    return tuple(
        zip(
            map(countries.__getitem__, place),
            map(services.__getitem__, product),
            map(prices.__getitem__, price),
            stock,
            map(native_countries.__getitem__, place),
            map(native_services.__getitem__, product),
            map(country_names.__getitem__, place),
            map(service_names.__getitem__, product),
            strict=True,
        )
    )


def _table(entries: list[Any]) -> tuple[list[str], list[str], list[str | None]]:
    """[[code, native code, name or null], ...] as three columns."""
    codes, natives, names = [], [], []
    for code, native, name in entries:
        if type(code) is not str or type(native) is not str:
            raise TypeError("snapshot codes must be strings")
        if name is not None and type(name) is not str:
            raise TypeError("snapshot names must be strings")
        codes.append(code)
        natives.append(native)
        names.append(name)
    return codes, natives, names


def _prices(texts: list[Any]) -> list[Decimal]:
    if not all(type(text) is str for text in texts):
        raise TypeError("snapshot prices must be strings")
    prices = list(map(Decimal, texts))  # decimal.InvalidOperation on junk
    if not all(map(Decimal.is_finite, prices)):
        raise ValueError("snapshot prices must be finite")
    return prices


def _indexes(column: list[Any], size: int) -> None:
    """Each value an index into a table of `size` (negative ones would wrap around)."""
    if not _all_int(column) or (column and (min(column) < 0 or max(column) >= size)):
        raise IndexError("snapshot index out of range")


def _all_int(column: list[Any]) -> bool:
    return type(column) is list and set(map(type, column)) <= {int}  # no bool, no float
