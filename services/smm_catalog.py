"""SmmCatalog: the SMM services for sale, merged across SMM providers, in the store's prices.

`refresh()` (a scheduler job, never a button press) fetches every provider's services at once and
builds an immutable index: categories (merged by name across providers) -> services, each with
the user's rate per 1000 computed once (ceil to the micro-unit; it is shown and charged as is).
A provider that fails keeps its previous services. Readers only look things up. `to_json()` /
`load_json()` keep the upstream services (not our prices) in the database, so a restarted bot
sells before its first refresh, re-priced with the markups of the moment.

Keys are short hashes (category name; provider + service id) so they fit in callback data.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from pydantic import ValidationError

from services.catalog import Page, RefreshReport, paginate
from services.money import to_decimal
from services.pricing import smm_rate_per_1000
from services.providers.base import SmmProvider, SmmService, SmmServiceType

log = logging.getLogger(__name__)
T = TypeVar("T")

SNAPSHOT_VERSION = 1
SmmMarkupFn = Callable[[str, str, str], Decimal]  # (provider, category, service id) -> percent
# The types the order flow collects every field of; anything else is hidden, never half-offered.
OFFERED_TYPES = frozenset(
    {
        SmmServiceType.DEFAULT,
        SmmServiceType.PACKAGE,
        SmmServiceType.CUSTOM_COMMENTS,
        SmmServiceType.POLL,
        SmmServiceType.MENTIONS,
    }
)


@dataclass(frozen=True, slots=True)
class SmmItem:
    """One sellable service with everything an order snapshots."""

    key: str
    provider: str
    service_id: str
    name: str
    category: str
    category_key: str
    type: SmmServiceType
    upstream_rate: Decimal  # per 1000 (a Package: per package), provider currency
    currency: str
    rate: Decimal  # one provider-currency unit in the store currency
    markup_percent: Decimal
    rate_per_1000: int  # the user's, micro (a Package: the package's price)
    min: int
    max: int
    refill: bool  # the service allows it AND the protocol has it
    cancel: bool
    dripfeed: bool
    description: str | None
    demo: bool

    @property
    def per_package(self) -> bool:
        return self.type is SmmServiceType.PACKAGE


@dataclass(frozen=True, slots=True)
class SmmCategory:
    key: str
    name: str
    services: int
    min_rate_per_1000: int
    demo: bool


@dataclass(frozen=True, slots=True)
class _Index:
    categories: tuple[SmmCategory, ...]
    by_category: Mapping[str, tuple[SmmItem, ...]]
    items: Mapping[str, SmmItem]

    @classmethod
    def empty(cls) -> _Index:
        return cls((), {}, {})


@dataclass(slots=True)
class _Source:
    services: tuple[SmmService, ...] = ()
    fetched_at: datetime | None = None
    error: str | None = None


def short_key(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode(), usedforsecurity=False).hexdigest()[:10]


def _category_key(name: str) -> str:
    return short_key(" ".join(name.casefold().split()))


class SmmCatalog:
    def __init__(
        self,
        providers: Iterable[SmmProvider],
        *,
        rates: Mapping[str, Decimal],
        markup_for: SmmMarkupFn,
        fetch_timeout_s: float | None = 60.0,
    ) -> None:
        self.providers: dict[str, SmmProvider] = {p.name: p for p in providers}
        missing = sorted(set(self.providers) - set(rates))
        if missing:
            raise ValueError(f"no rate for provider(s): {', '.join(missing)}")
        self.rates = {name: to_decimal(rates[name]) for name in self.providers}
        self.markup_for = markup_for
        self.fetch_timeout_s = fetch_timeout_s
        self._sources: dict[str, _Source] = {name: _Source() for name in self.providers}
        self._index = _Index.empty()
        self._lock = asyncio.Lock()
        self.built_at: datetime | None = None
        self.excluded: set[str] = set()  # providers an admin switched off: kept, not sold

    # --- refresh -------------------------------------------------------------------------

    async def refresh(self) -> RefreshReport:
        """Fetch every provider at once and rebuild; a failing provider keeps its services."""
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
                        "smm catalog: %s services failed, keeping %d previous: %s",
                        name,
                        len(source.services),
                        source.error,
                    )
                else:
                    source.services, source.fetched_at, source.error = result, _now(), None
            self.rebuild()
            ok = tuple(name for name in names if name not in failed)
            return RefreshReport(ok=ok, failed=failed, offers=self.service_count())

    async def _fetch(self, name: str) -> tuple[SmmService, ...] | Exception:
        try:
            services = await asyncio.wait_for(
                self.providers[name].services(), self.fetch_timeout_s
            )
            return tuple(services)
        except Exception as exc:  # noqa: BLE001 - refresh() logs it; the others go on
            return exc

    def rebuild(self) -> None:
        """Re-price the services already held (after a markup or rate change), no fetching."""
        items: list[SmmItem] = []
        for name, source in self._sources.items():
            if name in self.excluded:
                continue
            provider = self.providers[name]
            for service in source.services:
                item = self._item(provider, service)
                if item is not None:
                    items.append(item)
        self._index, self.built_at = _index_from(items), _now()

    def _item(self, provider: SmmProvider, service: SmmService) -> SmmItem | None:
        if service.type not in OFFERED_TYPES:
            return None
        rate = self.rates[provider.name]
        markup = self.markup_for(provider.name, service.category, service.service_id)
        try:
            user_rate = smm_rate_per_1000(service.rate, rate, markup)
        except (TypeError, ValueError) as exc:
            log.warning(
                "smm catalog: cannot price %s/%s: %s", provider.name, service.service_id, exc
            )
            return None
        if user_rate <= 0:
            return None
        is_package = service.type is SmmServiceType.PACKAGE
        return SmmItem(
            key=short_key(provider.name, service.service_id),
            provider=provider.name,
            service_id=service.service_id,
            name=service.name,
            category=service.category,
            category_key=_category_key(service.category),
            type=service.type,
            upstream_rate=service.rate,
            currency=provider.currency,
            rate=rate,
            markup_percent=markup,
            rate_per_1000=user_rate,
            min=1 if is_package else max(1, service.min),
            max=1 if is_package else service.max,
            refill=service.refill and provider.supports_refill,
            cancel=service.cancel and provider.supports_cancel,
            dripfeed=service.dripfeed and service.type is SmmServiceType.DEFAULT,
            description=service.description,
            demo=provider.is_demo,
        )

    # --- readers -------------------------------------------------------------------------

    def categories(self) -> Sequence[SmmCategory]:
        return self._index.categories

    def category(self, key: str) -> SmmCategory | None:
        return next((c for c in self._index.categories if c.key == key), None)

    def services(self, category_key: str) -> Sequence[SmmItem]:
        return self._index.by_category.get(category_key, ())

    def item(self, key: str) -> SmmItem | None:
        return self._index.items.get(key)

    def service_count(self) -> int:
        return len(self._index.items)

    @property
    def is_demo(self) -> bool:
        return any(p.is_demo for p in self.providers.values())

    @staticmethod
    def page(items: Sequence[T], page: int, per_page: int) -> Page[T]:
        return paginate(items, page, per_page)

    def provider_status(self) -> dict[str, dict[str, object]]:
        return {
            name: {
                "services": len(source.services),
                "fetched_at": source.fetched_at,
                "error": source.error,
            }
            for name, source in self._sources.items()
        }

    # --- snapshot ------------------------------------------------------------------------

    def to_json(self) -> str:
        providers = {
            name: {
                "fetched_at": source.fetched_at.isoformat(),
                "services": [service.model_dump(mode="json") for service in source.services],
            }
            for name, source in self._sources.items()
            if source.fetched_at is not None
        }
        return json.dumps(
            {"v": SNAPSHOT_VERSION, "providers": providers},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    async def load_json(self, data: str | bytes) -> int:
        """Take a snapshot's services for the providers still configured (unless they fetched
        something newer since). Returns how many providers were loaded."""
        try:
            loaded = self._read_snapshot(data)
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            log.warning("smm catalog: ignoring unreadable snapshot: %s", exc)
            return 0
        async with self._lock:
            count = 0
            for name, (fetched_at, services) in loaded.items():
                source = self._sources[name]
                if source.fetched_at is None or source.fetched_at < fetched_at:
                    source.services, source.fetched_at = services, fetched_at
                    count += 1
            self.rebuild()
            return count

    def _read_snapshot(
        self, data: str | bytes
    ) -> dict[str, tuple[datetime, tuple[SmmService, ...]]]:
        snapshot = json.loads(data, parse_float=Decimal)
        if snapshot.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {snapshot.get('v')!r}")
        result = {}
        for name, entry in snapshot["providers"].items():
            if name not in self._sources:
                continue
            fetched_at = datetime.fromisoformat(entry["fetched_at"])
            if fetched_at.tzinfo is None:
                fetched_at = fetched_at.replace(tzinfo=UTC)
            services = tuple(SmmService.model_validate(s) for s in entry["services"])
            result[name] = (fetched_at, services)
        return result


def _index_from(items: list[SmmItem]) -> _Index:
    grouped: dict[str, list[SmmItem]] = {}
    names: dict[str, str] = {}
    by_key: dict[str, SmmItem] = {}
    for item in items:
        if item.key in by_key:
            continue  # a panel listing one id twice: the first wins
        by_key[item.key] = item
        grouped.setdefault(item.category_key, []).append(item)
        names.setdefault(item.category_key, item.category)
    categories = tuple(
        sorted(
            (
                SmmCategory(
                    key=key,
                    name=names[key],
                    services=len(group),
                    min_rate_per_1000=min(i.rate_per_1000 for i in group),
                    demo=any(i.demo for i in group),
                )
                for key, group in grouped.items()
            ),
            key=lambda c: (c.name.casefold(), c.key),
        )
    )
    return _Index(
        categories=categories,
        by_category={key: tuple(group) for key, group in grouped.items()},
        items=by_key,
    )


def _now() -> datetime:
    return datetime.now(UTC)
