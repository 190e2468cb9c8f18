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
from operator import attrgetter
from typing import Any, Protocol, TypeGuard, TypeVar

from services.catalog_index import (
    CatalogIndex,
    CountryItem,
    Offer,
    Page,
    ServiceItem,
    SortBy,
    country_key,
    index_from,
    offer_order,
    paginate,
)
from services.catalog_refresh import SNAPSHOT_VERSION, RefreshingCatalog, RefreshReport, utc_now
from services.money import CENT, MAX_ADMIN_AMOUNT, MICRO, to_decimal
from services.pricing import otp_price
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


# An OtpOffer in stock, kept as a plain tuple of its fields in order (an OtpOffers row): ~50k
# pydantic models would hold ~50 MB for nothing, and a plain tuple of str/int/Decimal is
# untracked by the cyclic GC.
_Row = OfferRow
_row_of = attrgetter(*OFFER_FIELDS)


class OtpCatalog(RefreshingCatalog[OtpProvider, Sequence[OtpOffer], _Row]):
    log = log
    label = "catalog"
    items_name = "offers"

    def __init__(
        self,
        providers: Iterable[OtpProvider],
        *,
        rates: Mapping[str, Decimal],
        price_rule: PriceRule | MarkupFn,
        price_step: int = CENT,
        fetch_timeout_s: float | None = 60.0,
        build_in_thread: bool = True,
    ) -> None:
        """`rates[provider.name]` is the value of one unit of its currency in the store currency;
        `price_step` the store currency's smallest unit in micro (CENT for USD)."""
        super().__init__(providers, rates=rates, fetch_timeout_s=fetch_timeout_s)
        self.set_price_rule(price_rule)
        self.price_step = price_step
        self.build_in_thread = build_in_thread
        self._index = CatalogIndex.empty()

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
        cells, country_names, service_names = self._price_all(sources, rates)
        return index_from(cells, country_names, service_names)

    def _price_all(
        self, sources: Mapping[str, Sequence[_Row]], rates: Mapping[str, Decimal]
    ) -> tuple[dict[tuple[str, str], list[Offer]], dict[str, str], dict[str, str]]:
        """Every offer priced and grouped by (country, service), one per provider."""
        cells: dict[tuple[str, str], list[Offer]] = {}
        country_names: dict[str, str] = {}
        service_names: dict[str, str] = {}
        prices: dict[tuple[Decimal, Decimal, Decimal], int] = {}  # many offers share a price
        markup_for, step = self._markup_for, self.price_step
        for provider, rows in sources.items():
            rate = rates[provider]
            best: dict[tuple[str, str], Offer] = {}
            dropped: list[_Row] = []
            for row in rows:
                country, service, price, stock, native_c, native_s, c_name, s_name = row
                if type(stock) is not int or stock <= 0:  # also refuses bool
                    if type(stock) is not int or stock < 0:  # sold out is fine, not a bad count
                        dropped.append(row)
                    continue
                try:
                    markup = markup_for(provider, country, service)
                    user_price = prices.get((price, rate, markup))
                    if user_price is None:
                        user_price = _user_price(price, rate, markup, step)
                        prices[(price, rate, markup)] = user_price
                except (ArithmeticError, TypeError, ValueError):  # sNaN cannot even be hashed
                    dropped.append(row)
                    continue
                if user_price <= 0:
                    dropped.append(row)
                    continue
                offer = Offer(provider, user_price, price, stock, rate, markup, native_c, native_s)
                key = (country, service)
                previous = best.get(key)
                # Two native ids can map to one ISO code (handler_api "USA" and "USA (virtual)"):
                # keep the provider's cheapest.
                if previous is None or offer_order(offer) < offer_order(previous):
                    best[key] = offer
                if c_name:
                    country_names.setdefault(country, c_name)
                if s_name:
                    service_names.setdefault(service, s_name)
            _log_dropped(provider, dropped)
            _add_offers(cells, best)
        return cells, country_names, service_names

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
        return self._index.service_countries.get((service, country_key(sort, lang)), ())

    def country(self, iso: str) -> CountryItem | None:
        return self._index.country_info.get(iso)

    def country_name(self, iso: str, lang: str = "en") -> str:
        item = self._index.country_info.get(iso)
        if item is not None:
            return item.name(lang)
        info = tables.country(iso)
        return info.name_ru if lang == "ru" else info.name_en

    def service_name(self, slug: str) -> str:
        return self._index.service_names.get(slug) or tables.service_name(slug)

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

    def offer_count(self) -> int:
        return sum(len(offers) for offers in self._index.offers.values())

    # --- snapshot (prices as strings; the rest is RefreshingCatalog's) ----------------------

    def _snapshot_items(self, items: tuple[_Row, ...]) -> list[Any]:
        return [
            _snapshot_row(row)
            for row in items
            if type(row[3]) is int and _is_price(row[2])  # what a snapshot can hold
        ]

    def _items_from_snapshot(self, values: list[Any]) -> tuple[_Row, ...]:
        return tuple(_row_from_snapshot(row) for row in values)

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


def _user_price(price: object, rate: Decimal, markup: Decimal, step: int) -> int:
    """The store price of one upstream price, or 0 when it must not be sold: an upstream price
    that is not a positive finite Decimal (free, negative, NaN, a float), or a store price above
    MAX_OFFER_PRICE_MICRO (`1e30` from a broken upstream would overflow the database)."""
    if not _is_price(price) or price <= 0:
        return 0
    user_price = otp_price(price, rate, markup, step)
    return user_price if 0 < user_price <= MAX_OFFER_PRICE_MICRO else 0


def _is_price(value: object) -> TypeGuard[Decimal]:
    return type(value) is Decimal and value.is_finite()


def _add_offers(
    cells: dict[tuple[str, str], list[Offer]], best: Mapping[tuple[str, str], Offer]
) -> None:
    """One provider's best offer per (country, service) added to every provider's."""
    for key, offer in best.items():
        cell = cells.get(key)
        if cell is None:
            cells[key] = [offer]
        else:
            cell.append(offer)


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


def _snapshot_row(row: _Row) -> list[object]:
    values: list[object] = [*row[:6]]
    values[2] = str(row[2])
    if row[6] or row[7]:
        values += [row[6], row[7]]
    return values


def _row_from_snapshot(values: list[Any]) -> _Row:  # one JSON array of a snapshot file
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
