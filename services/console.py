"""The shop owner's console as a service: which providers sell (switched on and off by an admin),
the markups, the catalog rules (services/catalog_rules.py), the providers' exchange rates,
re-pricing both catalogs after any of them changes, and each provider's balance and health for
/providers.

Whether a provider is switched off and its run-time rate (/rate) live in the database
(`provider_settings`), like the markups and the catalog rules; this service loads them at
start-up, writes them, keeps this process's copy and pushes it to both catalogs, which keep an
excluded provider's offers but do not sell them. `sync()` (every process, every poll interval)
reads them again and re-prices when another process changed any of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from db.engine import Database
from db.models import MarkupSetting, ProviderSetting, utcnow
from db.upsert import upsert
from services import admin
from services.auto_switch import SWITCHES
from services.catalog import OtpCatalog
from services.catalog_rules import (
    CATEGORY,
    COUNTRY,
    OTP_ITEM,
    SERVICE,
    SMM_ITEM,
    CatalogRules,
    RuleRow,
)
from services.health import HEALTH, HealthSnapshot, ProviderHealth
from services.markups import Markups
from services.money import to_decimal
from services.provider_watch import in_store_currency
from services.providers.base import OtpProvider, SmmProvider
from services.providers.errors import ProviderError
from services.smm_catalog import SmmCatalog

BALANCE_TIMEOUT_S = 15.0
MAX_RATE = Decimal(1_000_000)  # one provider-currency unit worth more is a typo


class RateError(ValueError):
    """Not a rate: a positive decimal (at most 10 places, at most MAX_RATE)."""


def parse_rate(text: str) -> Decimal:
    """`0.011`, `1`, `92.5`: a positive plain decimal; anything else raises RateError."""
    if len(text) > 24 or not text.isascii():
        raise RateError(text)
    head, dot, tail = text.partition(".")
    if not head.isdigit() or (dot and not tail.isdigit()) or len(tail) > 10:
        raise RateError(text)
    value = Decimal(text)
    if not 0 < value <= MAX_RATE:
        raise RateError(text)
    return value


@dataclass(frozen=True, slots=True)
class _Shared:
    """What every process must agree on, as read from the database (compared by sync())."""

    markups: tuple[tuple[str, str, str], ...]
    providers: tuple[tuple[str, bool, str | None], ...]
    rules: tuple[RuleRow, ...]
    auto_off: tuple[tuple[str, str, datetime | None], ...] = ()  # services/auto_switch.py


@dataclass(frozen=True, slots=True)
class ProviderBalance:
    """A provider's balance as read now: in its own currency and, when that differs from the
    store's (or its rate is not 1), in store micro-units too; or why it could not be read."""

    currency: str
    value: Decimal | None = None
    in_store: int | None = None
    error: str | None = None  # the exception's type name


@dataclass(frozen=True, slots=True)
class ProviderRow:
    name: str
    kind: str
    enabled: bool
    balance: ProviderBalance
    health: HealthSnapshot
    auto_off: str | None = None  # switched off automatically: why ("no-balance", "failures")
    auto_off_at: datetime | None = None


class AdminConsole:
    def __init__(
        self,
        db: Database,
        *,
        otp_providers: Mapping[str, OtpProvider],
        smm_providers: Mapping[str, SmmProvider],
        otp_catalog: OtpCatalog,
        smm_catalog: SmmCatalog,
        markups: Markups,
        rates: Mapping[str, Decimal],
        store_currency: str,
        health: ProviderHealth = HEALTH,
        rules: CatalogRules | None = None,
    ) -> None:
        self.db = db
        self.otp_providers = otp_providers
        self.smm_providers = smm_providers
        self.otp_catalog = otp_catalog
        self.smm_catalog = smm_catalog
        self.markups = markups
        self.env_rates = dict(rates)  # PROVIDERS `rate`
        self.rate_overrides: dict[str, Decimal] = {}  # /rate, this process's copy
        self.rules = rules if rules is not None else otp_catalog.rules
        otp_catalog.rules = smm_catalog.rules = self.rules  # one copy, read by both builds
        self.store_currency = store_currency
        self.health = health
        self._disabled: frozenset[str] = frozenset()  # this process's copy of the database's
        self._auto_off: dict[str, tuple[str, datetime | None]] = {}  # switched off by itself
        self._shared: _Shared | None = None  # what load() or sync() last read
        # An automatic switch committed in this process: sell (or stop) at once, not at the
        # next sync.
        self._syncs: set[asyncio.Task[bool]] = set()
        # One sync or re-price at a time: a sync that read the switches before a later one
        # must not apply its older copy after it (a provider switched back on would vanish
        # from the catalog until the next sync).
        self._lock = asyncio.Lock()
        db.subscribe(SWITCHES, self._switched)

    # --- providers -----------------------------------------------------------------------

    @property
    def providers(self) -> dict[str, OtpProvider | SmmProvider]:
        """Every provider by name, OTP then SMM (an SMM account of the same name wins)."""
        return {**self.otp_providers, **self.smm_providers}

    @property
    def disabled(self) -> frozenset[str]:
        return self._disabled

    def is_enabled(self, name: str) -> bool:
        return name not in self._disabled

    def auto_off(self, name: str) -> tuple[str, datetime | None] | None:
        """Why and since when a provider is switched off automatically (None: it is not)."""
        return self._auto_off.get(name)

    def _switched(self) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self.sync())
        except RuntimeError:  # no loop: the next sync picks it up
            return
        self._syncs.add(task)
        task.add_done_callback(self._syncs.discard)

    async def load(self) -> None:
        """At start-up: the admins' markups, provider switches and rates and the catalog
        rules, into both catalogs (the offers themselves come with the next refresh or
        snapshot)."""
        self._apply(await self._read_shared())
        self._push()

    async def sync(self) -> bool:
        """Every process, every poll interval: read the markups, switches, rates and catalog
        rules again, and re-price at once when another process changed any of them. True when
        something changed."""
        async with self._lock:
            shared = await self._read_shared()
            if shared == self._shared:
                return False
            self._apply(shared)
            await self._reprice()
            return True

    async def _read_shared(self) -> _Shared:
        async with self.db.read() as session:
            markups = await session.execute(
                select(MarkupSetting.scope, MarkupSetting.key, MarkupSetting.percent)
            )
            providers = (
                await session.execute(
                    select(
                        ProviderSetting.name,
                        ProviderSetting.enabled,
                        ProviderSetting.rate,
                        ProviderSetting.auto_off_reason,
                        ProviderSetting.auto_off_at,
                    )
                )
            ).all()
            markup_rows = tuple(sorted((s, k, p) for s, k, p in markups))
            provider_rows = tuple(sorted((n, bool(e), r) for n, e, r, _, _ in providers))
            auto_off = tuple(sorted((n, why, at) for n, _, _, why, at in providers if why))
        rules = await self.rules.read(self.db)
        return _Shared(markup_rows, provider_rows, rules, auto_off)

    def _apply(self, shared: _Shared) -> None:
        self.markups.replace(shared.markups)
        self._auto_off = {name: (why, at) for name, why, at in shared.auto_off}
        self._disabled = frozenset(
            name for name, enabled, _ in shared.providers if not enabled or name in self._auto_off
        )
        overrides: dict[str, Decimal] = {}
        for name, _, rate in shared.providers:
            if rate and name in self.env_rates:
                try:
                    overrides[name] = parse_rate(rate)
                except (RateError, ArithmeticError):
                    continue
        self.rate_overrides = overrides
        self.rules.apply(shared.rules)
        self._shared = shared

    async def set_provider_enabled(self, name: str, enabled: bool) -> None:
        """An admin's switch: on also clears an automatic off (the admin's word wins)."""
        async with self._lock:
            await admin.set_provider_enabled(self.db, name, enabled)
            if enabled:
                self._auto_off.pop(name, None)
            self._disabled = self._disabled - {name} if enabled else self._disabled | {name}
            await self._reprice()

    # --- rates ---------------------------------------------------------------------------

    @property
    def rates(self) -> dict[str, Decimal]:
        """Each provider's rate now: an admin's /rate over its PROVIDERS `rate`."""
        return {**self.env_rates, **self.rate_overrides}

    async def set_rate(self, name: str, rate: Decimal | None) -> None:
        """Store (or with None, remove) a provider's run-time rate and re-price at once. A
        price a customer already confirmed is kept (its quote); a new one uses this rate."""
        values = {
            "name": name,
            "rate": None if rate is None else str(rate),
            "updated_at": utcnow(),
        }
        async with self._lock:  # a sync that read the old rate cannot apply it after this
            async with self.db.write() as session:
                await upsert(
                    session, ProviderSetting, values, keys=["name"], update=["rate", "updated_at"]
                )
            if rate is None:
                self.rate_overrides.pop(name, None)
            else:
                self.rate_overrides[name] = rate
            await self._reprice()

    # --- catalog rules -------------------------------------------------------------------

    async def set_rule(
        self, rule: str, scope: str, key: str, value: str | None, admin_id: int | None = None
    ) -> None:
        """Store (or with None, remove) one catalog rule and re-price at once."""
        await self.rules.set(self.db, rule, scope, key, value, admin_id)
        await self.reprice()

    def lists(self, scope: str, key: str) -> bool:
        """Whether a rule's item (scope and key as services/catalog_rules.py writes them) is in
        any provider's last list, sold or not."""
        if scope == COUNTRY:
            return self.otp_catalog.lists(country=key)
        if scope == SERVICE:
            return self.otp_catalog.lists(service=key)
        if scope == OTP_ITEM:
            country, _, service = key.partition("|")
            return self.otp_catalog.lists(country, service)
        if scope == SMM_ITEM:
            provider, _, service_id = key.partition("|")
            return self.smm_catalog.lists(provider, service_id)
        if scope == CATEGORY:
            return self.smm_catalog.lists(category=key)
        return True

    # --- markups -------------------------------------------------------------------------

    async def set_markup(self, scope: str, key: str, value: Decimal | None) -> None:
        """Store (or with None, remove) one markup and re-price at once."""
        await self.markups.set(self.db, scope, key, value)
        await self.reprice()

    async def reprice(self) -> None:
        """Markups or provider switches changed: rebuild both catalogs from what they hold."""
        async with self._lock:
            await self._reprice()

    async def _reprice(self) -> None:
        self._push()
        await self.otp_catalog.rebuild()
        self.smm_catalog.rebuild()

    def _push(self) -> None:
        self.otp_catalog.excluded = set(self._disabled)
        self.smm_catalog.excluded = set(self._disabled)
        rates = self.rates
        for catalog in (self.otp_catalog, self.smm_catalog):
            for name in catalog.rates:
                if name in rates:
                    catalog.rates[name] = rates[name]

    # --- /providers ----------------------------------------------------------------------

    async def provider_rows(self) -> list[ProviderRow]:
        """Every provider with its balance (all fetched at once) and last hour's health."""
        providers = self.providers
        balances = await asyncio.gather(*(self.balance(p) for p in providers.values()))
        return [
            ProviderRow(
                name=name,
                kind=provider.kind,
                enabled=self.is_enabled(name),
                balance=balance,
                health=self.health.snapshot(name),
                auto_off=(self._auto_off.get(name) or (None, None))[0],
                auto_off_at=(self._auto_off.get(name) or (None, None))[1],
            )
            for (name, provider), balance in zip(providers.items(), balances, strict=True)
        ]

    async def balance(self, provider: OtpProvider | SmmProvider) -> ProviderBalance:
        currency = provider.currency
        try:
            value = to_decimal(await asyncio.wait_for(provider.balance(), BALANCE_TIMEOUT_S))
        except (ProviderError, TimeoutError, TypeError, ValueError) as exc:
            return ProviderBalance(currency, error=type(exc).__name__)
        rate = self.rates.get(provider.name, Decimal(1))
        if currency.upper() == self.store_currency.upper() and rate == 1:
            return ProviderBalance(currency, value)
        return ProviderBalance(currency, value, in_store_currency(value, rate))
