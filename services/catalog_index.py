"""The OTP catalog's read side: the rows a screen shows, the immutable index they are looked up
in, and how that index is built from priced offers (pure: no I/O, no prices computed here).

Everything is sorted once, at build time, so that readers only look up and slice (`paginate`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from operator import itemgetter
from typing import Generic, Literal, NamedTuple, TypeVar

from services.providers import tables

T = TypeVar("T")
SortBy = Literal["name", "price"]


class Offer(NamedTuple):
    """One provider's offer for a (country, service), in the store's price (micro-units)."""

    provider: str
    user_price_micro: int
    upstream_price: Decimal  # provider currency
    stock: int
    rate: Decimal  # the snapshot an order keeps: rate and markup used for this price
    markup_percent: Decimal
    native_country: str
    native_service: str


class CountryItem(NamedTuple):
    """A country row: across all its services, or for one service (countries_for_service)."""

    iso: str
    name_en: str
    name_ru: str
    flag: str
    stock: int
    min_price_micro: int

    def name(self, lang: str = "en") -> str:
        return self.name_ru if lang == "ru" else self.name_en


class ServiceItem(NamedTuple):
    """A service row within one country."""

    slug: str
    name: str
    stock: int
    min_price_micro: int


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    page: int  # 0-based, clamped into range
    pages: int  # at least 1
    total: int

    @property
    def has_prev(self) -> bool:
        return self.page > 0

    @property
    def has_next(self) -> bool:
        return self.page + 1 < self.pages


def paginate(items: Sequence[T], page: int, per_page: int) -> Page[T]:
    """One page of a list (0-based); an out-of-range page number shows the nearest page."""
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    total = len(items)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(page, 0), pages - 1)
    start = page * per_page
    return Page(items=items[start : start + per_page], page=page, pages=pages, total=total)


@dataclass(frozen=True, slots=True)
class CatalogIndex:
    """Everything the readers need, sorted at build time. Immutable: swapped in one assignment.

    The one exception, `service_countries()`: a service's countries (300 lists of up to 180
    countries, each with that service's own totals, a fifth of a build) are sorted the first
    time that service is shown and kept for this index's life, so a build does not pay for
    services nobody opens before the next refresh."""

    offers: Mapping[tuple[str, str], tuple[Offer, ...]]
    countries: Mapping[str, tuple[CountryItem, ...]]  # "name:en", "name:ru", "price"
    services: Mapping[tuple[str, SortBy], tuple[ServiceItem, ...]]  # (iso, sort)
    service_rows: Mapping[str, Mapping[str, ServiceItem]]  # slug -> iso -> that service there
    country_info: Mapping[str, CountryItem]
    service_names: Mapping[str, str]
    all_services: tuple[str, ...]  # slugs by display name
    # slug -> its countries in each order of `countries` (filled by service_countries())
    _service_countries: dict[str, dict[str, tuple[CountryItem, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def empty(cls) -> CatalogIndex:
        return cls({}, {}, {}, {}, {}, {}, ())

    def service_countries(self, slug: str, key: str) -> tuple[CountryItem, ...]:
        """The countries selling `slug`, in the country order `key` (country_key())."""
        orders = self._service_countries.get(slug)
        if orders is None:
            rows = self.service_rows.get(slug)
            if rows is None:
                return ()
            # A race of two readers computes the same orders twice: harmless.
            orders = self._service_countries[slug] = _service_orders(rows, self)
        return orders.get(key, ())


def offer_order(offer: Offer) -> tuple[int, int, str]:
    """Cheapest first, then most stock, then by provider name."""
    return (offer.user_price_micro, -offer.stock, offer.provider)


def country_key(sort: SortBy, lang: str) -> str:
    """The key of one country order in CatalogIndex.countries / service_countries."""
    if sort == "price":
        return "price"
    return "name:ru" if lang == "ru" else "name:en"


# --- building the index ----------------------------------------------------------------------

Cell = tuple[str, str]  # (iso, slug)
_STOCK = itemgetter(2)  # ServiceItem.stock
_PRICE = itemgetter(3)  # ServiceItem.min_price_micro
_COUNTRY_PRICE = itemgetter(5)  # CountryItem.min_price_micro
# tuple.__new__ straight from C: a NamedTuple's own __new__ is a Python function, and a build
# makes ~50k of each (Offer in catalog.py, ServiceItem and CountryItem here).
new_offer = partial(tuple.__new__, Offer)
_new_service = partial(tuple.__new__, ServiceItem)
_new_country = partial(tuple.__new__, CountryItem)


def index_from(
    bests: Sequence[Mapping[Cell, Offer]],
    country_names: Mapping[str, str],
    service_names: Mapping[str, str],
    renamed: Mapping[str, str] | None = None,
) -> CatalogIndex:
    """Sorts once here so that readers never sort: name orders come from walking the globally
    sorted slugs/countries (no per-country sort), price orders from a stable sort on an int.
    `bests` holds each provider's best offer per (country, service); `renamed` an admin's
    names for services (/rename), over every other."""
    offers = _merged_offers(bests)
    names, slug_order, per_service = _services_by_name(offers, service_names, renamed or {})
    info, services = _country_rows(slug_order, per_service, country_names)
    countries = _country_orders(info)
    return CatalogIndex(
        offers=offers,
        countries=countries,
        services=services,
        service_rows=per_service,
        country_info=info,
        service_names=names,
        all_services=slug_order,
    )


def _merged_offers(bests: Sequence[Mapping[Cell, Offer]]) -> dict[Cell, tuple[Offer, ...]]:
    """Every provider's offer per cell, best first (one provider: nothing to merge or sort)."""
    if len(bests) == 1:
        return {cell: (offer,) for cell, offer in bests[0].items()}
    merged: dict[Cell, list[Offer]] = {}
    for best in bests:
        for cell, offer in best.items():
            offers = merged.get(cell)
            if offers is None:
                merged[cell] = [offer]
            else:
                offers.append(offer)
    return {
        cell: (offers[0],) if len(offers) == 1 else tuple(sorted(offers, key=offer_order))
        for cell, offers in merged.items()
    }


def _services_by_name(
    offers: Mapping[Cell, tuple[Offer, ...]],
    service_names: Mapping[str, str],
    renamed: Mapping[str, str],
) -> tuple[dict[str, str], tuple[str, ...], dict[str, dict[str, ServiceItem]]]:
    """Display names, the slugs by display name, and per slug its row in each country selling
    it (stock summed over providers, the best price)."""
    slugs = {slug for _, slug in offers}
    known = tables.service_names()
    names = {
        slug: renamed.get(slug) or known.get(slug) or service_names.get(slug) or slug
        for slug in slugs
    }
    slug_order = tuple(sorted(names, key=lambda slug: (names[slug].casefold(), slug)))
    per_service: dict[str, dict[str, ServiceItem]] = {slug: {} for slug in slug_order}
    for (iso, slug), cell in offers.items():
        best = cell[0]
        stock = best.stock if len(cell) == 1 else sum(offer.stock for offer in cell)
        per_service[slug][iso] = _new_service((slug, names[slug], stock, best.user_price_micro))
    return names, slug_order, per_service


def _country_rows(
    slug_order: Sequence[str],
    per_service: Mapping[str, Mapping[str, ServiceItem]],
    country_names: Mapping[str, str],
) -> tuple[dict[str, CountryItem], dict[tuple[str, SortBy], tuple[ServiceItem, ...]]]:
    """Each country with its totals, and its services by name and cheapest first."""
    per_country: dict[str, list[ServiceItem]] = {}
    for slug in slug_order:  # so each country's services come out by name
        for iso, item in per_service[slug].items():
            items = per_country.get(iso)
            if items is None:
                per_country[iso] = [item]
            else:
                items.append(item)
    info: dict[str, CountryItem] = {}
    services: dict[tuple[str, SortBy], tuple[ServiceItem, ...]] = {}
    for iso, items in per_country.items():
        base = _country_item(iso, country_names)
        stock = sum(map(_STOCK, items))
        info[iso] = base._replace(stock=stock, min_price_micro=min(map(_PRICE, items)))
        services[(iso, "name")] = tuple(items)
        services[(iso, "price")] = tuple(sorted(items, key=_PRICE))
    return info, services


def _service_orders(
    rows: Mapping[str, ServiceItem], index: CatalogIndex
) -> dict[str, tuple[CountryItem, ...]]:
    """One service's countries, with its own totals, in each order of `index.countries` (sorted
    by each country's place there: no names compared)."""
    info = index.country_info
    own = {iso: _new_country(info[iso][:4] + item[2:]) for iso, item in rows.items()}
    orders: dict[str, tuple[CountryItem, ...]] = {}
    for key in ("name:en", "name:ru"):
        place = {item.iso: n for n, item in enumerate(index.countries[key])}
        orders[key] = tuple(map(own.__getitem__, sorted(own, key=place.__getitem__)))
    orders["price"] = tuple(sorted(orders["name:en"], key=_COUNTRY_PRICE))
    return orders


def _country_item(iso: str, names: Mapping[str, str]) -> CountryItem:
    info = tables.countries().get(iso)
    if info is not None:
        return CountryItem(iso, info.name_en, info.name_ru, info.flag, 0, 0)
    name = names.get(iso) or iso  # unknown code: the provider's own name, or the code as-is
    return CountryItem(iso, name, name, "🏳", 0, 0)


def _country_orders(items: Mapping[str, CountryItem]) -> dict[str, tuple[CountryItem, ...]]:
    """By English name, by Russian name, cheapest first (then by English name)."""
    values = list(items.values())
    by_en = sorted(values, key=lambda c: (c.name_en.casefold(), c.iso))
    by_ru = sorted(values, key=lambda c: (c.name_ru.casefold(), c.iso))
    return {
        "name:en": tuple(by_en),
        "name:ru": tuple(by_ru),
        "price": tuple(sorted(by_en, key=_COUNTRY_PRICE)),
    }
