"""Catalog rules: what an admin hides, prices by hand, floors with a minimum profit, renames.

The rules are rows (`catalog_rules`); `CatalogRules` keeps this process's copy as an immutable
`RuleSet` that both catalogs consult when they (re)build, like the markups (services/markups.py).
`AdminConsole.sync()` re-reads the rows every poll interval, so a rule set by an admin in one
process is applied by every other within one interval.

Rules (`rule`, `scope`, `key` → `value`):

- hide: `country` ISO, `service` slug, `otp` "ISO|slug", `smm` "provider|service id",
  `category` a category's name (casefolded, spaces collapsed); value: the name as the admin
  typed it, for /catalog;
- price (a fixed price instead of the markup, micro-units): `otp` "ISO|slug" (one number),
  `smm` "provider|service id" (per 1000; a Package: the package);
- minprofit (micro-units): `otp` or `smm`, key "": a sale never costs less than its upstream
  cost + this (an OTP number; an SMM order);
- rename (the name customers see): `service` slug, `smm` "provider|service id", `category`
  a category's name as above.

How the rules combine into a price: docs/money.md, "How a price is decided".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from db.engine import Database
from db.models import CatalogRule, utcnow
from db.upsert import upsert

HIDE, PRICE, MIN_PROFIT, RENAME = "hide", "price", "minprofit", "rename"
COUNTRY, SERVICE, OTP_ITEM, SMM_ITEM, CATEGORY = "country", "service", "otp", "smm", "category"
MAX_NAME = 64  # a customer-facing name (a button's text)
_ISO = re.compile(r"[A-Za-z0-9]{1,8}")
_SLUG = re.compile(r"[a-z0-9_.+-]{1,64}")
_SERVICE_ID = re.compile(r"[^\s|]{1,64}")

Cell = tuple[str, str]
RuleRow = tuple[str, str, str, str]  # (rule, scope, key, value)


def category_name_key(name: str) -> str:
    """A category's name as rules know it: casefolded, runs of spaces as one."""
    return " ".join(name.casefold().split())


def otp_key(country: str, service: str) -> str:
    return f"{country}|{service}"


def smm_key(provider: str, service_id: str) -> str:
    return f"{provider}|{service_id}"


def country_code(text: str) -> str:
    """An ISO code as rules store it (upper case); ValueError unless it reads as one."""
    if not _ISO.fullmatch(text):
        raise ValueError(text)
    return text.upper()


def service_slug(text: str) -> str:
    """A service slug as rules store it (lower case); ValueError unless it reads as one."""
    slug = text.lower()
    if not _SLUG.fullmatch(slug):
        raise ValueError(text)
    return slug


def service_id(text: str) -> str:
    if not _SERVICE_ID.fullmatch(text):
        raise ValueError(text)
    return text


def display_name(text: str) -> str:
    """A new customer-facing name: one line, 1 to MAX_NAME characters once trimmed."""
    name = " ".join(text.split())
    if not name or len(name) > MAX_NAME:
        raise ValueError(text)
    return name


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One moment's rules, read by the catalogs' builds (no I/O; safe from a worker thread)."""

    hidden_countries: frozenset[str] = frozenset()
    hidden_services: frozenset[str] = frozenset()
    hidden_cells: frozenset[Cell] = frozenset()
    hidden_smm: frozenset[tuple[str, str]] = frozenset()  # (provider, service id)
    hidden_categories: frozenset[str] = frozenset()  # category_name_key()
    otp_fixed: Mapping[Cell, int] = field(default_factory=dict)
    smm_fixed: Mapping[tuple[str, str], int] = field(default_factory=dict)
    otp_min_profit: int | None = None
    smm_min_profit: int | None = None
    service_names: Mapping[str, str] = field(default_factory=dict)
    smm_names: Mapping[tuple[str, str], str] = field(default_factory=dict)
    category_names: Mapping[str, str] = field(default_factory=dict)  # name key -> new name
    rows: tuple[RuleRow, ...] = ()  # what it was made of, sorted (for /catalog)

    @classmethod
    def from_rows(cls, rows: Iterable[RuleRow]) -> RuleSet:
        hidden: dict[str, set[str]] = {COUNTRY: set(), SERVICE: set(), CATEGORY: set()}
        cells: set[Cell] = set()
        smm_hidden: set[tuple[str, str]] = set()
        fixed: dict[str, dict[tuple[str, str], int]] = {OTP_ITEM: {}, SMM_ITEM: {}}
        profits: dict[str, int] = {}
        names: dict[str, dict[str, str]] = {SERVICE: {}, CATEGORY: {}}
        smm_names: dict[tuple[str, str], str] = {}
        kept: list[RuleRow] = []
        for rule, scope, key, value in rows:
            try:
                pair = _pair(key)
                if rule == HIDE and scope in hidden:
                    hidden[scope].add(key)
                elif rule == HIDE and scope == OTP_ITEM:
                    cells.add(pair)
                elif rule == HIDE and scope == SMM_ITEM:
                    smm_hidden.add(pair)
                elif rule == PRICE and scope in fixed:
                    fixed[scope][pair] = _micro(value)
                elif rule == MIN_PROFIT and scope in (OTP_ITEM, SMM_ITEM):
                    profits[scope] = _micro(value, allow_zero=True)
                elif rule == RENAME and scope in names:
                    names[scope][key] = value
                elif rule == RENAME and scope == SMM_ITEM:
                    smm_names[pair] = value
                else:
                    continue  # a rule of a later version: ignored, not fatal
            except ValueError:
                continue
            kept.append((rule, scope, key, value))
        return cls(
            hidden_countries=frozenset(hidden[COUNTRY]),
            hidden_services=frozenset(hidden[SERVICE]),
            hidden_cells=frozenset(cells),
            hidden_smm=frozenset(smm_hidden),
            hidden_categories=frozenset(hidden[CATEGORY]),
            otp_fixed=fixed[OTP_ITEM],
            smm_fixed=fixed[SMM_ITEM],
            otp_min_profit=profits.get(OTP_ITEM),
            smm_min_profit=profits.get(SMM_ITEM),
            service_names=names[SERVICE],
            smm_names=smm_names,
            category_names=names[CATEGORY],
            rows=tuple(sorted(kept)),
        )

    @property
    def hides_otp(self) -> bool:
        return bool(self.hidden_countries or self.hidden_services or self.hidden_cells)

    def otp_hidden(self, country: str, service: str) -> bool:
        return (
            country in self.hidden_countries
            or service in self.hidden_services
            or (country, service) in self.hidden_cells
        )

    def smm_hidden(self, provider: str, service_id: str, category: str) -> bool:
        return (provider, service_id) in self.hidden_smm or (
            bool(self.hidden_categories) and category_name_key(category) in self.hidden_categories
        )

    def category_name(self, category: str) -> str:
        if not self.category_names:
            return category
        return self.category_names.get(category_name_key(category), category)


def _pair(key: str) -> tuple[str, str]:
    first, _, second = key.partition("|")
    return first, second


def _micro(value: str, *, allow_zero: bool = False) -> int:
    if not value.isascii() or not value.isdigit():
        raise ValueError(value)
    amount = int(value)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ValueError(value)
    return amount


class CatalogRules:
    """This process's copy of the rules (`current`), loaded from and written to the database."""

    def __init__(self) -> None:
        self.current = RuleSet()

    @staticmethod
    async def read(db: Database) -> tuple[RuleRow, ...]:
        async with db.read() as session:
            rows = await session.execute(
                select(CatalogRule.rule, CatalogRule.scope, CatalogRule.key, CatalogRule.value)
            )
            return tuple(sorted((r, s, k, v) for r, s, k, v in rows))

    def apply(self, rows: Iterable[RuleRow]) -> None:
        self.current = RuleSet.from_rows(rows)

    async def load(self, db: Database) -> None:
        self.apply(await self.read(db))

    async def set(
        self,
        db: Database,
        rule: str,
        scope: str,
        key: str,
        value: str | None,
        admin_id: int | None = None,
    ) -> None:
        """Store (or with None, remove) one rule and take the table's rules as they are now;
        the caller rebuilds the catalogs."""
        async with db.write() as session:
            if value is None:
                await session.execute(
                    delete(CatalogRule).where(
                        CatalogRule.rule == rule,
                        CatalogRule.scope == scope,
                        CatalogRule.key == key,
                    )
                )
            else:
                await upsert(
                    session,
                    CatalogRule,
                    {
                        "rule": rule,
                        "scope": scope,
                        "key": key,
                        "value": value,
                        "admin_id": admin_id,
                        "updated_at": utcnow(),
                    },
                    keys=["rule", "scope", "key"],
                    update=["value", "admin_id", "updated_at"],
                )
        await self.load(db)
