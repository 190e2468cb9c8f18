"""The shop owner's catalog controls: /hide, /show, /price, /minprofit, /rename, /catalog and
/rate. Admin-only at router level, like handlers/admin.py: anyone else gets the unknown-command
answer. The rules and rates are rows (services/catalog_rules.py, `provider_settings.rate`);
each change re-prices both catalogs at once, and every other process within a poll interval."""

from __future__ import annotations

import re
from decimal import Decimal

from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram_i18n import I18nContext

from handlers.admin import IsAdmin
from handlers.common import ShopSettings
from handlers.routing import RouterTemplate
from services.catalog_rules import (
    CATEGORY,
    COUNTRY,
    HIDE,
    MIN_PROFIT,
    OTP_ITEM,
    PRICE,
    RENAME,
    SERVICE,
    SMM_ITEM,
    category_name_key,
    country_code,
    display_name,
    otp_key,
    service_id,
    service_slug,
    smm_key,
)
from services.console import AdminConsole, RateError, parse_rate
from services.money import AmountError, format_money, parse_amount
from services.text import escape

router = RouterTemplate(name=__name__)
router.message.filter(IsAdmin())

RESET = frozenset({"reset", "off"})
_ZERO = re.compile(r"0(?:\.0{1,6})?")
_SCOPES = {
    HIDE: (COUNTRY, SERVICE, OTP_ITEM, SMM_ITEM, CATEGORY),
    PRICE: (OTP_ITEM, SMM_ITEM),
    RENAME: (SERVICE, SMM_ITEM, CATEGORY),
}


def _target(rule: str, words: list[str], console: AdminConsole) -> tuple[str, str]:
    """(scope, key) of `country KZ`, `service telegram`, `otp RU telegram`, `smm <provider>
    <service id>`, `category <name...>`, as far as `rule` has that scope; ValueError else."""
    if not words or words[0].lower() not in _SCOPES[rule]:
        raise ValueError(words)
    scope, rest = words[0].lower(), words[1:]
    if scope == COUNTRY and len(rest) == 1:
        return scope, country_code(rest[0])
    if scope == SERVICE and len(rest) == 1:
        return scope, service_slug(rest[0])
    if scope == OTP_ITEM and len(rest) == 2:
        return scope, otp_key(country_code(rest[0]), service_slug(rest[1]))
    if scope == SMM_ITEM and len(rest) == 2 and rest[0] in console.smm_providers:
        return scope, smm_key(rest[0], service_id(rest[1]))
    if scope == CATEGORY and rest:
        key = category_name_key(" ".join(rest))
        if len(key) <= 200:
            return scope, key
    raise ValueError(words)


def _label(scope: str, key: str) -> str:
    """A rule's item as the admin types it: `otp RU telegram`, `category instagram`."""
    return escape(f"{scope} {key.replace('|', ' ')}")


def _admin_id(message: Message) -> int | None:
    return message.from_user.id if message.from_user else None


@router.message(Command("hide", "show"))
async def cmd_hide(
    message: Message, command: CommandObject, i18n: I18nContext, admin_console: AdminConsole
) -> None:
    """`/hide <what>` / `/show <what>`: gone from every customer's screen (and not sold) or
    back."""
    hide = command.command == "hide"
    words = (command.args or "").split()
    try:
        scope, key = _target(HIDE, words, admin_console)
    except ValueError:
        await message.answer(i18n.get("admin-hide-usage"))
        return
    # The name as typed, for /catalog (a category's key is casefolded).
    value = " ".join(words[1:])[:200] if hide else None
    await admin_console.set_rule(HIDE, scope, key, value, _admin_id(message))
    key_text = "admin-hidden" if hide else "admin-shown"
    text = i18n.get(key_text, what=_label(scope, key))
    await message.answer(_unlisted_note(text, i18n, admin_console, scope, key, hide))


@router.message(Command("price"))
async def cmd_price(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    admin_console: AdminConsole,
    settings: ShopSettings,
) -> None:
    """`/price otp <ISO> <service> <amount>` (one number, rounded up to the cent) or `/price smm
    <provider> <service id> <amount>` (per 1000; a Package: the package); `reset`: the
    markup again."""
    words = (command.args or "").split()
    try:
        scope, key = _target(PRICE, words[:-1], admin_console)
        amount = None if words[-1].lower() in RESET else parse_amount(words[-1])
    except (ValueError, AmountError):
        await message.answer(i18n.get("admin-price-usage"))
        return
    if amount is not None and scope == OTP_ITEM:
        step = admin_console.otp_catalog.price_step
        amount = -(-amount // step) * step  # what a customer pays: a whole cent
    value = None if amount is None else str(amount)
    await admin_console.set_rule(PRICE, scope, key, value, _admin_id(message))
    shown = (
        i18n.get("admin-markup-reset")
        if amount is None
        else format_money(amount, settings.store_currency)
    )
    text = i18n.get("admin-price-set", what=_label(scope, key), value=shown)
    await message.answer(_unlisted_note(text, i18n, admin_console, scope, key, amount is not None))


def _unlisted_note(
    text: str, i18n: I18nContext, console: AdminConsole, scope: str, key: str, setting: bool
) -> str:
    """A rule is kept even for an item no provider lists now (it may come), but the admin is
    told: most often it is a typo."""
    if not setting or console.lists(scope, key):
        return text
    return f"{text}\n{i18n.get('admin-rule-unlisted')}"


@router.message(Command("minprofit"))
async def cmd_minprofit(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    admin_console: AdminConsole,
    settings: ShopSettings,
) -> None:
    """`/minprofit otp <amount>` (per number) or `/minprofit smm <amount>` (per order); `0`
    means never below cost; `reset` removes it."""
    words = (command.args or "").split()
    if not words:
        await message.answer(_min_profit_text(i18n, admin_console, settings))
        return
    try:
        if len(words) != 2 or words[0].lower() not in (OTP_ITEM, SMM_ITEM):
            raise ValueError(words)
        scope, text = words[0].lower(), words[1].lower()
        amount = None if text in RESET else _profit(text)
    except (ValueError, AmountError):
        await message.answer(i18n.get("admin-minprofit-usage"))
        return
    value = None if amount is None else str(amount)
    await admin_console.set_rule(MIN_PROFIT, scope, "", value, _admin_id(message))
    shown = (
        i18n.get("admin-markup-reset")
        if amount is None
        else format_money(amount, settings.store_currency)
    )
    await message.answer(i18n.get("admin-minprofit-set", what=scope, value=shown))


def _profit(text: str) -> int:
    """An amount like /topup's, or zero (`0`, `0.00`: never below cost)."""
    if _ZERO.fullmatch(text):
        return 0
    return parse_amount(text)


def _min_profit_text(i18n: I18nContext, console: AdminConsole, settings: ShopSettings) -> str:
    rules = console.rules.current
    lines = [i18n.get("admin-catalog-minprofit")]
    for scope, amount in ((OTP_ITEM, rules.otp_min_profit), (SMM_ITEM, rules.smm_min_profit)):
        shown = "—" if amount is None else format_money(amount, settings.store_currency)
        lines.append(f"{scope}: {shown}")
    lines.append(i18n.get("admin-minprofit-usage"))
    return "\n".join(lines)


@router.message(Command("rename"))
async def cmd_rename(
    message: Message, command: CommandObject, i18n: I18nContext, admin_console: AdminConsole
) -> None:
    """`/rename service <slug> <new name>`, `/rename smm <provider> <service id> <new name>`,
    `/rename category <name> = <new name>`; `reset` as the new name: the provider's again."""
    args = (command.args or "").strip()
    try:
        words, new_name = _rename_args(args)
        scope, key = _target(RENAME, words, admin_console)
        value = None if new_name.lower() in RESET else display_name(new_name)
    except ValueError:
        await message.answer(i18n.get("admin-rename-usage"))
        return
    await admin_console.set_rule(RENAME, scope, key, value, _admin_id(message))
    shown = escape(value) if value is not None else i18n.get("admin-markup-reset")
    text = i18n.get("admin-rename-set", what=_label(scope, key), value=shown)
    await message.answer(_unlisted_note(text, i18n, admin_console, scope, key, value is not None))


def _rename_args(args: str) -> tuple[list[str], str]:
    """The item's words and the new name: a category's name is everything before ` = `; a
    service's slug is one word, an SMM service's provider and id two."""
    words = args.split()
    if not words:
        raise ValueError(args)
    scope = words[0].lower()
    if scope == CATEGORY:
        before, sep, after = args.partition("=")
        if not sep:
            raise ValueError(args)
        return before.split(), after.strip()
    size = {SERVICE: 2, SMM_ITEM: 3}.get(scope)
    if size is None or len(words) <= size:
        raise ValueError(args)
    return words[:size], " ".join(words[size:])


@router.message(Command("catalog"))
async def cmd_catalog(
    message: Message, i18n: I18nContext, admin_console: AdminConsole, settings: ShopSettings
) -> None:
    """Everything hidden, fixed, floored, renamed, and the rates an admin set."""
    rules = admin_console.rules.current
    currency = settings.store_currency
    hidden, fixed, names = [], [], []
    for rule, scope, key, value in rules.rows:
        label = _label(scope, key)
        if rule == HIDE:
            hidden.append(_label(scope, value) if scope == CATEGORY and value else label)
        elif rule == PRICE:
            fixed.append(f"{label}: {format_money(int(value), currency)}")
        elif rule == RENAME:
            names.append(f"{label} → {escape(value)}")
    rates = [
        f"{escape(name)}: {rate} (.env {admin_console.env_rates.get(name, '—')})"
        for name, rate in sorted(admin_console.rate_overrides.items())
    ]
    profits = [
        f"{scope}: {format_money(amount, currency)}"
        for scope, amount in ((OTP_ITEM, rules.otp_min_profit), (SMM_ITEM, rules.smm_min_profit))
        if amount is not None
    ]
    lines = [i18n.get("admin-catalog-title")]
    sections = (
        ("admin-catalog-hidden", hidden),
        ("admin-catalog-fixed", fixed),
        ("admin-catalog-minprofit", profits),
        ("admin-catalog-names", names),
        ("admin-catalog-rates", rates),
    )
    for title, rows in sections:
        if rows:
            lines.append(i18n.get(title))
            lines += [f"· {row}" for row in rows]
    if len(lines) == 1:
        lines.append(i18n.get("admin-catalog-none"))
    lines.append(i18n.get("admin-catalog-usage"))
    await message.answer("\n".join(lines))


@router.message(Command("rate"))
async def cmd_rate(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    admin_console: AdminConsole,
    settings: ShopSettings,
) -> None:
    """`/rate <provider>` shows it, `/rate <provider> <value>` sets it over PROVIDERS (one unit
    of the provider's currency in the store currency), `/rate <provider> reset` goes back."""
    words = (command.args or "").split()
    providers = admin_console.providers
    currency = settings.store_currency
    if not 1 <= len(words) <= 2 or words[0] not in providers:
        names = ", ".join(providers) or "—"
        await message.answer(i18n.get("admin-rate-usage", names=escape(names), currency=currency))
        return
    name = words[0]
    unit = providers[name].currency
    if len(words) == 1:
        await message.answer(_rate_text(i18n, admin_console, name, unit, currency))
        return
    rate: Decimal | None = None
    if words[1].lower() not in RESET:
        try:
            rate = parse_rate(words[1])
        except RateError:
            names = ", ".join(providers)
            await message.answer(
                i18n.get("admin-rate-usage", names=escape(names), currency=currency)
            )
            return
    await admin_console.set_rate(name, rate)
    now = admin_console.rates[name]
    key = "admin-rate-set" if rate is not None else "admin-rate-reset"
    await message.answer(
        i18n.get(key, name=escape(name), unit=unit, rate=str(now), currency=currency)
    )


def _rate_text(
    i18n: I18nContext, console: AdminConsole, name: str, unit: str, currency: str
) -> str:
    env = console.env_rates[name]
    override = console.rate_overrides.get(name)
    source = (
        i18n.get("admin-rate-source-env")
        if override is None
        else i18n.get("admin-rate-source-admin", env=str(env))
    )
    rate = override if override is not None else env
    return i18n.get(
        "admin-rate-show",
        name=escape(name),
        unit=unit,
        rate=str(rate),
        currency=currency,
        source=source,
    )
