"""OtpCatalog: what can be bought, merged across OTP providers, in the store's prices.

`refresh()` (a scheduler job, never a button press) fetches every provider's offers concurrently
and builds an immutable index with every list a screen shows already sorted; the readers
(`countries()`, `services()`, `offers()`, `countries_for_service()`) only look things up and
slice. A provider that fails keeps its previous offers. `to_json()`/`load_json()` keep a snapshot
of the upstream offers (not of our prices) in the database, so a restart shows the catalog before
the first refresh and re-prices it with the markups of the moment. After a markup or rate change
(`catalog.rates[name] = ...`, or whatever the price rule reads), `rebuild()` re-prices without
fetching.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any, Generic, Literal, NamedTuple, Protocol, TypeGuard, TypeVar

from services.money import CENT, MAX_ADMIN_AMOUNT, MICRO, to_decimal
from services.pricing import otp_price
from services.providers import tables
from services.providers.base import OFFER_FIELDS, OfferRow, OtpOffer, OtpOffers, OtpProvider

log = logging.getLogger(__name__)

T = TypeVar("T")
SortBy = Literal["name", "price"]
SNAPSHOT_VERSION = 1
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


@dataclass(frozen=True, slots=True)
class RefreshReport:
    ok: tuple[str, ...]
    failed: Mapping[str, str]  # provider -> error type and message (keys already redacted)
    offers: int  # (country, service, provider) offers in stock after the refresh


# An OtpOffer in stock, kept as a plain tuple of its fields in order (an OtpOffers row): ~50k
# pydantic models would hold ~50 MB for nothing, and a plain tuple of str/int/Decimal is
# untracked by the cyclic GC.
_Row = OfferRow
_row_of = attrgetter(*OFFER_FIELDS)


@dataclass(slots=True)
class _Source:
    """The last good answer of one provider."""

    rows: tuple[_Row, ...] = ()
    fetched_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Index:
    """Everything the readers need, sorted at build time. Immutable: swapped in one assignment."""

    offers: Mapping[tuple[str, str], tuple[Offer, ...]]
    countries: Mapping[str, tuple[CountryItem, ...]]  # "name:en", "name:ru", "price"
    services: Mapping[tuple[str, SortBy], tuple[ServiceItem, ...]]  # (iso, sort)
    service_countries: Mapping[tuple[str, str], tuple[CountryItem, ...]]  # (slug, sort key)
    country_info: Mapping[str, CountryItem]
    service_names: Mapping[str, str]
    all_services: tuple[str, ...]  # slugs by display name

    @classmethod
    def empty(cls) -> _Index:
        return cls({}, {}, {}, {}, {}, {}, ())


def paginate(items: Sequence[T], page: int, per_page: int) -> Page[T]:
    """One page of a list (0-based); an out-of-range page number shows the nearest page."""
    if per_page <= 0:
        raise ValueError("per_page must be positive")
    total = len(items)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(page, 0), pages - 1)
    start = page * per_page
    return Page(items=items[start : start + per_page], page=page, pages=pages, total=total)


class OtpCatalog:
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
        self.providers: dict[str, OtpProvider] = {p.name: p for p in providers}
        missing = sorted(set(self.providers) - set(rates))
        if missing:
            raise ValueError(f"no rate for provider(s): {', '.join(missing)}")
        self.rates = {name: to_decimal(rates[name]) for name in self.providers}  # no floats
        rule = price_rule.markup_for if hasattr(price_rule, "markup_for") else price_rule
        self._markup_for: MarkupFn = rule
        self.price_step = price_step
        self.fetch_timeout_s = fetch_timeout_s
        self.build_in_thread = build_in_thread
        self._sources: dict[str, _Source] = {name: _Source() for name in self.providers}
        self._index = _Index.empty()
        self._lock = asyncio.Lock()
        self.built_at: datetime | None = None
        self.excluded: set[str] = set()  # providers an admin switched off: kept, not sold

    def set_price_rule(self, price_rule: PriceRule | MarkupFn) -> None:
        """A new markup rule; takes effect at the next rebuild()."""
        rule = price_rule.markup_for if hasattr(price_rule, "markup_for") else price_rule
        self._markup_for = rule

    # --- refresh -------------------------------------------------------------------------

    async def refresh(self) -> RefreshReport:
        """Fetch every provider at once and rebuild; a failing provider keeps its last offers."""
        async with self._lock:
            names = list(self.providers)
            results = await asyncio.gather(*(self._fetch(name) for name in names))
            failed: dict[str, str] = {}
            for name, result in zip(names, results, strict=True):
                source = self._sources[name]
                if isinstance(result, BaseException):
                    source.error = f"{type(result).__name__}: {result}"
                    failed[name] = source.error
                    log.warning(
                        "catalog: %s offers failed, keeping %d previous: %s",
                        name,
                        len(source.rows),
                        source.error,
                    )
                else:
                    source.rows, source.fetched_at, source.error = result, _now(), None
            del results
            await self.rebuild()
            ok = tuple(name for name in names if name not in failed)
            return RefreshReport(ok=ok, failed=failed, offers=self.offer_count())

    async def _fetch(self, name: str) -> tuple[_Row, ...] | Exception:
        try:
            offers = await asyncio.wait_for(self.providers[name].offers(), self.fetch_timeout_s)
            if self.build_in_thread:
                return await asyncio.to_thread(_rows_from, offers)
            return _rows_from(offers)
        except Exception as exc:  # noqa: BLE001 - refresh() logs it; the others go on
            return exc

    async def rebuild(self) -> None:
        """Re-price the offers already held (after a markup or rate change), no fetching."""
        sources = {
            name: source.rows
            for name, source in self._sources.items()
            if name not in self.excluded
        }
        rates = dict(self.rates)
        if self.build_in_thread:
            index = await asyncio.to_thread(self._build, sources, rates)
        else:
            index = self._build(sources, rates)
        self._index, self.built_at = index, _now()

    def _build(
        self, sources: Mapping[str, Sequence[_Row]], rates: Mapping[str, Decimal]
    ) -> _Index:
        cells, country_names, service_names = self._price_all(sources, rates)
        return _index_from(cells, country_names, service_names)

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
                if previous is None or _offer_order(offer) < _offer_order(previous):
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
        return self._index.countries.get(_country_key(sort, lang), ())

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
        return self._index.service_countries.get((service, _country_key(sort, lang)), ())

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

    def provider_status(self) -> dict[str, dict[str, object]]:
        """Per provider: offers held, when they were fetched, the last error (admin screen)."""
        return {
            name: {
                "offers": len(source.rows),
                "fetched_at": source.fetched_at,
                "error": source.error,
            }
            for name, source in self._sources.items()
        }

    # --- snapshot --------------------------------------------------------------------------

    def to_json(self) -> str:
        """The upstream offers of every provider (not our prices), compact; prices as strings."""
        providers = {
            name: {
                "fetched_at": source.fetched_at.isoformat(),
                "offers": [
                    _snapshot_row(row)
                    for row in source.rows
                    if type(row[3]) is int and _is_price(row[2])  # what a snapshot can hold
                ],
            }
            for name, source in self._sources.items()
            if source.fetched_at is not None
        }
        snapshot = {"v": SNAPSHOT_VERSION, "providers": providers}
        return json.dumps(snapshot, ensure_ascii=False, separators=(",", ":"))

    async def load_json(self, data: str | bytes) -> int:
        """Take a snapshot's offers for the providers still configured (unless they fetched
        something newer since), then rebuild with today's rates and markups. Returns how many
        providers were loaded; an unreadable snapshot loads nothing and is logged."""
        try:
            loaded = self._read_snapshot(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("catalog: ignoring unreadable snapshot: %s", exc)
            return 0
        async with self._lock:
            count = 0
            for name, (fetched_at, rows) in loaded.items():
                source = self._sources[name]
                if source.fetched_at is None or source.fetched_at < fetched_at:
                    source.rows, source.fetched_at = rows, fetched_at
                    count += 1
            await self.rebuild()
            return count

    def _read_snapshot(self, data: str | bytes) -> dict[str, tuple[datetime, tuple[_Row, ...]]]:
        snapshot = json.loads(data)
        if snapshot.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {snapshot.get('v')!r}")
        return {
            name: (
                _parse_time(entry["fetched_at"]),
                tuple(_row_from_snapshot(row) for row in entry["offers"]),
            )
            for name, entry in snapshot["providers"].items()
            if name in self._sources
        }

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


# --- building the index ----------------------------------------------------------------------


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


def _offer_order(offer: Offer) -> tuple[int, int, str]:
    return (offer.user_price_micro, -offer.stock, offer.provider)


def _country_key(sort: SortBy, lang: str) -> str:
    if sort == "price":
        return "price"
    return "name:ru" if lang == "ru" else "name:en"


def _country_item(iso: str, names: Mapping[str, str]) -> CountryItem:
    info = tables.countries().get(iso)
    if info is not None:
        return CountryItem(iso, info.name_en, info.name_ru, info.flag, 0, 0)
    name = names.get(iso) or iso  # unknown code: the provider's own name, or the code as-is
    return CountryItem(iso, name, name, "🏳", 0, 0)


def _index_from(
    cells: dict[tuple[str, str], list[Offer]],
    country_names: Mapping[str, str],
    service_names: Mapping[str, str],
) -> _Index:
    """Sorts once here so that readers never sort: name orders come from walking the globally
    sorted slugs/countries (no per-country sort), price orders from a stable sort on an int."""
    offers: dict[tuple[str, str], tuple[Offer, ...]] = {}
    per_service: dict[str, list[tuple[str, int, int]]] = {}  # slug -> (iso, stock, price)
    for (iso, slug), cell in cells.items():
        if len(cell) > 1:
            cell.sort(key=_offer_order)
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

    info: dict[str, CountryItem] = {}
    services: dict[tuple[str, SortBy], tuple[ServiceItem, ...]] = {}
    for iso, items in per_country.items():
        base = _country_item(iso, country_names)
        stock = sum(map(_STOCK, items))
        info[iso] = base._replace(stock=stock, min_price_micro=min(map(_PRICE, items)))
        services[(iso, "name")] = tuple(items)
        services[(iso, "price")] = tuple(sorted(items, key=_PRICE))

    countries = _country_orders(info)
    service_countries: dict[tuple[str, str], tuple[CountryItem, ...]] = {}
    for slug, rows in per_service.items():
        own = {iso: _with_totals(info[iso], stock, price) for iso, stock, price in rows}
        for key, ordered in _country_orders(own, countries).items():
            service_countries[(slug, key)] = ordered
    return _Index(
        offers=offers,
        countries=countries,
        services=services,
        service_countries=service_countries,
        country_info=info,
        service_names=names,
        all_services=slug_order,
    )


def _with_totals(item: CountryItem, stock: int, price: int) -> CountryItem:
    return CountryItem(item.iso, item.name_en, item.name_ru, item.flag, stock, price)


_STOCK = itemgetter(2)  # ServiceItem.stock
_PRICE = itemgetter(3)  # ServiceItem.min_price_micro
_COUNTRY_PRICE = itemgetter(5)  # CountryItem.min_price_micro


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


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)
