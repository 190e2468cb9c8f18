"""The OTP catalog's read side: the rows a screen shows, the immutable index they are looked up
in, and how that index is built from priced offers (pure: no I/O, no prices computed here).

Everything is sorted once, at build time, so that readers only look up and slice (`paginate`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
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
    """Everything the readers need, sorted at build time. Immutable: swapped in one assignment."""

    offers: Mapping[tuple[str, str], tuple[Offer, ...]]
    countries: Mapping[str, tuple[CountryItem, ...]]  # "name:en", "name:ru", "price"
    services: Mapping[tuple[str, SortBy], tuple[ServiceItem, ...]]  # (iso, sort)
    service_countries: Mapping[tuple[str, str], tuple[CountryItem, ...]]  # (slug, sort key)
    country_info: Mapping[str, CountryItem]
    service_names: Mapping[str, str]
    all_services: tuple[str, ...]  # slugs by display name

    @classmethod
    def empty(cls) -> CatalogIndex:
        return cls({}, {}, {}, {}, {}, {}, ())


def offer_order(offer: Offer) -> tuple[int, int, str]:
    """Cheapest first, then most stock, then by provider name."""
    return (offer.user_price_micro, -offer.stock, offer.provider)


def country_key(sort: SortBy, lang: str) -> str:
    """The key of one country order in CatalogIndex.countries / service_countries."""
    if sort == "price":
        return "price"
    return "name:ru" if lang == "ru" else "name:en"


# --- building the index ----------------------------------------------------------------------

_ServiceRow = tuple[str, int, int]  # (iso, stock, best price) of one service in one country
_STOCK = itemgetter(2)  # ServiceItem.stock
_PRICE = itemgetter(3)  # ServiceItem.min_price_micro
_COUNTRY_PRICE = itemgetter(5)  # CountryItem.min_price_micro


def index_from(
    cells: dict[tuple[str, str], list[Offer]],
    country_names: Mapping[str, str],
    service_names: Mapping[str, str],
) -> CatalogIndex:
    """Sorts once here so that readers never sort: name orders come from walking the globally
    sorted slugs/countries (no per-country sort), price orders from a stable sort on an int.
    `cells` holds every provider's offers per (country, service); it is sorted in place."""
    offers, per_service = _sorted_offers(cells)
    names, slug_order, per_country = _services_by_name(per_service, service_names)
    info, services = _country_rows(per_country, country_names)
    countries = _country_orders(info)
    return CatalogIndex(
        offers=offers,
        countries=countries,
        services=services,
        service_countries=_service_countries(per_service, info, countries),
        country_info=info,
        service_names=names,
        all_services=slug_order,
    )


def _sorted_offers(
    cells: dict[tuple[str, str], list[Offer]],
) -> tuple[dict[tuple[str, str], tuple[Offer, ...]], dict[str, list[_ServiceRow]]]:
    """Each cell's offers best first, and per service slug its (iso, stock, price) rows."""
    offers: dict[tuple[str, str], tuple[Offer, ...]] = {}
    per_service: dict[str, list[_ServiceRow]] = {}
    for (iso, slug), cell in cells.items():
        if len(cell) > 1:
            cell.sort(key=offer_order)
            stock = sum(offer.stock for offer in cell)
        else:
            stock = cell[0].stock
        offers[(iso, slug)] = tuple(cell)
        row = (iso, stock, cell[0].user_price_micro)
        rows = per_service.get(slug)
        if rows is None:
            per_service[slug] = [row]
        else:
            rows.append(row)
    return offers, per_service


def _services_by_name(
    per_service: Mapping[str, list[_ServiceRow]], service_names: Mapping[str, str]
) -> tuple[dict[str, str], tuple[str, ...], dict[str, list[ServiceItem]]]:
    """Display names, the slugs by display name, and per country its services in that order."""
    names = {
        slug: tables.service_names().get(slug) or service_names.get(slug) or slug
        for slug in per_service
    }
    slug_order = tuple(sorted(names, key=lambda slug: (names[slug].casefold(), slug)))
    per_country: dict[str, list[ServiceItem]] = {}
    for slug in slug_order:
        name = names[slug]
        for iso, stock, price in per_service[slug]:
            item = ServiceItem(slug, name, stock, price)
            items = per_country.get(iso)
            if items is None:
                per_country[iso] = [item]
            else:
                items.append(item)
    return names, slug_order, per_country


def _country_rows(
    per_country: Mapping[str, list[ServiceItem]], country_names: Mapping[str, str]
) -> tuple[dict[str, CountryItem], dict[tuple[str, SortBy], tuple[ServiceItem, ...]]]:
    """Each country with its totals, and its services by name and cheapest first."""
    info: dict[str, CountryItem] = {}
    services: dict[tuple[str, SortBy], tuple[ServiceItem, ...]] = {}
    for iso, items in per_country.items():
        base = _country_item(iso, country_names)
        stock = sum(map(_STOCK, items))
        info[iso] = base._replace(stock=stock, min_price_micro=min(map(_PRICE, items)))
        services[(iso, "name")] = tuple(items)
        services[(iso, "price")] = tuple(sorted(items, key=_PRICE))
    return info, services


def _service_countries(
    per_service: Mapping[str, list[_ServiceRow]],
    info: Mapping[str, CountryItem],
    countries: Mapping[str, tuple[CountryItem, ...]],
) -> dict[tuple[str, str], tuple[CountryItem, ...]]:
    """Per (slug, country order): the countries selling that service, with its own totals."""
    service_countries: dict[tuple[str, str], tuple[CountryItem, ...]] = {}
    for slug, rows in per_service.items():
        own = {iso: _with_totals(info[iso], stock, price) for iso, stock, price in rows}
        for key, ordered in _country_orders(own, countries).items():
            service_countries[(slug, key)] = ordered
    return service_countries


def _country_item(iso: str, names: Mapping[str, str]) -> CountryItem:
    info = tables.countries().get(iso)
    if info is not None:
        return CountryItem(iso, info.name_en, info.name_ru, info.flag, 0, 0)
    name = names.get(iso) or iso  # unknown code: the provider's own name, or the code as-is
    return CountryItem(iso, name, name, "🏳", 0, 0)


def _with_totals(item: CountryItem, stock: int, price: int) -> CountryItem:
    return CountryItem(item.iso, item.name_en, item.name_ru, item.flag, stock, price)


def _country_orders(
    items: Mapping[str, CountryItem],
    orders: Mapping[str, tuple[CountryItem, ...]] | None = None,
) -> dict[str, tuple[CountryItem, ...]]:
    """By English name, by Russian name, cheapest first. With `orders` (the global country
    orders), a subset is ordered by walking them instead of sorting again."""
    if orders is None:
        values = list(items.values())
        by_en = sorted(values, key=lambda c: (c.name_en.casefold(), c.iso))
        by_ru = sorted(values, key=lambda c: (c.name_ru.casefold(), c.iso))
    else:
        by_en = [items[c.iso] for c in orders["name:en"] if c.iso in items]
        by_ru = [items[c.iso] for c in orders["name:ru"] if c.iso in items]
    return {
        "name:en": tuple(by_en),
        "name:ru": tuple(by_ru),
        "price": tuple(sorted(by_en, key=_COUNTRY_PRICE)),
    }
