"""The shop owner's console as a service: which providers sell (switched on and off by an admin),
the markups, re-pricing both catalogs after either changes, and each provider's balance and
health for /providers.

Whether a provider is switched off lives in the database (`provider_settings`); this service
loads it at start-up, writes it, keeps this process's copy and pushes it to both catalogs, which
keep an excluded provider's offers but do not sell them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from db.engine import Database
from services import admin
from services.catalog import OtpCatalog
from services.health import HEALTH, HealthSnapshot, ProviderHealth
from services.markups import Markups
from services.money import to_decimal
from services.provider_watch import in_store_currency
from services.providers.base import OtpProvider, SmmProvider
from services.providers.errors import ProviderError
from services.smm_catalog import SmmCatalog

BALANCE_TIMEOUT_S = 15.0


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
    ) -> None:
        self.db = db
        self.otp_providers = otp_providers
        self.smm_providers = smm_providers
        self.otp_catalog = otp_catalog
        self.smm_catalog = smm_catalog
        self.markups = markups
        self.rates = dict(rates)
        self.store_currency = store_currency
        self.health = health
        self._disabled: frozenset[str] = frozenset()  # this process's copy of the database's

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

    async def load(self) -> None:
        """At start-up: the admins' markups and provider switches, into both catalogs (the
        offers themselves come with the next refresh or snapshot)."""
        await self.markups.load(self.db)
        switches = await admin.provider_switches(self.db)
        self._disabled = frozenset(name for name, enabled in switches.items() if not enabled)
        self._push()

    async def set_provider_enabled(self, name: str, enabled: bool) -> None:
        await admin.set_provider_enabled(self.db, name, enabled)
        self._disabled = self._disabled - {name} if enabled else self._disabled | {name}
        await self.reprice()

    # --- markups -------------------------------------------------------------------------

    async def set_markup(self, scope: str, key: str, value: Decimal | None) -> None:
        """Store (or with None, remove) one markup and re-price at once."""
        await self.markups.set(self.db, scope, key, value)
        await self.reprice()

    async def reprice(self) -> None:
        """Markups or provider switches changed: rebuild both catalogs from what they hold."""
        self._push()
        await self.otp_catalog.rebuild()
        self.smm_catalog.rebuild()

    def _push(self) -> None:
        self.otp_catalog.excluded = set(self._disabled)
        self.smm_catalog.excluded = set(self._disabled)

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
