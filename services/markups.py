"""Markups: what the shop adds over a provider's price, and which one wins.

An admin's setting for one item > an admin's setting for one provider > the provider's
`markup_percent` in PROVIDERS > an admin's global setting > MARKUP_PERCENT from `.env`.
The catalogs ask `otp_markup` / `smm_markup` for every offer when they (re)build, so a change
applies as soon as they are rebuilt, without fetching anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import delete, select

from db.engine import Database
from db.models import MarkupSetting, utcnow
from db.upsert import upsert

GLOBAL, PROVIDER, OTP_ITEM, SMM_ITEM = "global", "provider", "otp", "smm"
MIN_MARKUP, MAX_MARKUP = Decimal(-50), Decimal(10_000)
_PERCENT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
K = TypeVar("K")


@dataclass
class Markups:
    env_default: Decimal
    configured: dict[str, Decimal] = field(default_factory=dict)  # PROVIDERS markup_percent
    global_override: Decimal | None = None
    providers: dict[str, Decimal] = field(default_factory=dict)
    otp_items: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    smm_items: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    @property
    def default(self) -> Decimal:
        return self.global_override if self.global_override is not None else self.env_default

    def provider_markup(self, provider: str) -> Decimal:
        if provider in self.providers:
            return self.providers[provider]
        return self.configured.get(provider, self.default)

    def otp_markup(self, provider: str, country: str, service: str) -> Decimal:
        item = self.otp_items.get((country, service))
        return item if item is not None else self.provider_markup(provider)

    def smm_markup(self, provider: str, category: str, service_id: str) -> Decimal:
        item = self.smm_items.get((provider, service_id))
        return item if item is not None else self.provider_markup(provider)

    async def load(self, db: Database) -> None:
        async with db.read() as session:
            rows = (await session.execute(select(MarkupSetting))).scalars().all()
        self.replace((row.scope, row.key, row.percent) for row in rows)

    def replace(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """Take these (scope, key, percent text) rows as the admins' settings, all of them."""
        self.global_override = None
        self.providers, self.otp_items, self.smm_items = {}, {}, {}
        for scope, key, percent in rows:
            self._apply(scope, key, Decimal(percent))

    def _apply(self, scope: str, key: str, value: Decimal | None) -> None:
        if scope == GLOBAL:
            self.global_override = value
            return
        if scope == PROVIDER:
            _put(self.providers, key, value)
            return
        first, _, second = key.partition("|")  # "country|service" or "provider|service id"
        _put(self.otp_items if scope == OTP_ITEM else self.smm_items, (first, second), value)

    async def set(self, db: Database, scope: str, key: str, value: Decimal | None) -> None:
        """Store (or with None, remove) one setting; the caller rebuilds the catalogs."""
        async with db.write() as session:
            if value is None:
                await session.execute(
                    delete(MarkupSetting).where(
                        MarkupSetting.scope == scope, MarkupSetting.key == key
                    )
                )
            else:
                await upsert(
                    session,
                    MarkupSetting,
                    {"scope": scope, "key": key, "percent": str(value), "updated_at": utcnow()},
                    keys=["scope", "key"],
                    update=["percent", "updated_at"],
                )
        self._apply(scope, key, value)


def _put(target: dict[K, Decimal], key: K, value: Decimal | None) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def parse_percent(text: str) -> Decimal:
    """'25', '12.5' or '-10' (a discount); anything else raises ValueError."""
    text = text.strip().removesuffix("%")
    # ASCII only: "²" and "٣٠" pass str.isdigit(), and Decimal() rejects or accepts them oddly.
    if len(text) > 12 or not _PERCENT.fullmatch(text):
        raise ValueError(text)
    value = Decimal(text)
    if not value.is_finite() or not MIN_MARKUP <= value <= MAX_MARKUP:
        raise ValueError(text)
    exponent = value.as_tuple().exponent  # an int: the value is finite
    if not isinstance(exponent, int) or exponent < -2:
        raise ValueError(text)
    return value
