"""SmmCatalog: the SMM services for sale, merged across SMM providers, in the store's prices.

`refresh()` (a scheduler job, never a button press) fetches every provider's services at once and
builds an immutable index: categories (merged by name across providers) -> services, each with
the user's rate per 1000 computed once (ceil to the micro-unit; it is shown and charged as is).
A provider that fails keeps its previous services. Readers only look things up. `to_json()` /
`load_json()` keep the upstream services (not our prices) in the database, so a restarted bot
sells before its first refresh, re-priced with the markups of the moment.

Keys are short hashes (category name; provider + service id) so they fit in callback data.
The refresh loop and the snapshot are RefreshingCatalog's (catalog_refresh.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from services.catalog_index import Page, paginate
from services.catalog_refresh import RefreshingCatalog, utc_now
from services.catalog_rules import CatalogRules, RuleSet, category_name_key
from services.pricing import ruled_smm_rate
from services.providers.base import SmmProvider, SmmService, SmmServiceType

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    min_profit: int | None = None  # an admin's /minprofit smm: the order's floor over cost

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


def short_key(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode(), usedforsecurity=False).hexdigest()[:10]


def _category_key(name: str) -> str:
    return short_key(" ".join(name.casefold().split()))


class SmmCatalog(RefreshingCatalog[SmmProvider, Sequence[SmmService], SmmService]):
    log = log
    label = "smm catalog"
    items_name = "services"

    def __init__(
        self,
        providers: Iterable[SmmProvider],
        *,
        rates: Mapping[str, Decimal],
        markup_for: SmmMarkupFn,
        fetch_timeout_s: float | None = 60.0,
        rules: CatalogRules | None = None,
    ) -> None:
        super().__init__(providers, rates=rates, fetch_timeout_s=fetch_timeout_s)
        self.markup_for = markup_for
        self.rules = rules if rules is not None else CatalogRules()  # an admin's (/hide, ...)
        self._index = _Index.empty()

    # --- refresh (the loop is RefreshingCatalog's) ---------------------------------------

    def _download(self, provider: SmmProvider) -> Awaitable[Sequence[SmmService]]:
        return provider.services()

    async def _keep(self, fetched: Sequence[SmmService]) -> tuple[SmmService, ...]:
        return tuple(fetched)

    async def _reindex(self) -> None:
        self.rebuild()

    def _sold_count(self) -> int:
        return self.service_count()

    def rebuild(self) -> None:
        """Re-price the services already held (after a markup or rate change), no fetching."""
        items: list[SmmItem] = []
        rules = self.rules.current
        for name, source in self._sources.items():
            if name in self.excluded:
                continue
            provider = self.providers[name]
            for service in source.items:
                item = self._item(provider, service, rules)
                if item is not None:
                    items.append(item)
        self._index, self.built_at = _index_from(items), utc_now()

    def _item(
        self, provider: SmmProvider, service: SmmService, rules: RuleSet | None = None
    ) -> SmmItem | None:
        if service.type not in OFFERED_TYPES:
            return None
        rules = rules if rules is not None else self.rules.current
        own = (provider.name, service.service_id)
        if rules.smm_hidden(provider.name, service.service_id, service.category):
            return None
        rate = self.rates[provider.name]
        markup = self.markup_for(provider.name, service.category, service.service_id)
        try:
            user_rate = ruled_smm_rate(service.rate, rate, markup, fixed=rules.smm_fixed.get(own))
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
            name=rules.smm_names.get(own) or service.name,
            category=rules.category_name(service.category),
            category_key=_category_key(service.category),  # the panel's: renaming keeps it
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
            min_profit=rules.smm_min_profit,
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

    def lists(
        self, provider: str | None = None, service_id: str | None = None, category: str = ""
    ) -> bool:
        """Whether any panel's last service list has that service or category (given as
        category_name_key()), sold or not: an admin's rule about something else is likely a
        typo."""
        for name, source in self._sources.items():
            if provider is not None and name != provider:
                continue
            for service in source.items:
                if service_id is not None and service.service_id != service_id:
                    continue
                if category and category_name_key(service.category) != category:
                    continue
                return True
        return False

    def service_count(self) -> int:
        return len(self._index.items)

    @property
    def is_demo(self) -> bool:
        return any(p.is_demo for p in self.providers.values())

    @staticmethod
    def page(items: Sequence[T], page: int, per_page: int) -> Page[T]:
        return paginate(items, page, per_page)

    # --- snapshot (services as pydantic dumps; the rest is RefreshingCatalog's) -------------

    def _snapshot_items(self, items: tuple[SmmService, ...]) -> list[Any]:
        return [service.model_dump(mode="json") for service in items]

    def _items_from_snapshot(self, values: Any, version: int) -> tuple[SmmService, ...]:
        return tuple(SmmService.model_validate(s) for s in values)

    def _loads(self, data: str | bytes) -> Any:
        return json.loads(data, parse_float=Decimal)


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
