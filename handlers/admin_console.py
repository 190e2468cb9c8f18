"""The shop owner's console: /user, /stats, /providers, /provider, /markup, /ban, /unban,
/refund. Admin-only at router level, like handlers/admin.py."""

from __future__ import annotations

import logging
from decimal import Decimal

from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram_i18n import I18nContext

from db.models import Activation
from handlers.admin import IsAdmin, ambiguous_user_text
from handlers.common import ShopSettings, number
from handlers.payments import METHOD_KEYS, payment_row
from handlers.routing import RouterTemplate
from handlers.wallet import reason_text
from services import admin as console
from services import otp as activations
from services import smm
from services.admin import AmbiguousUser, Backoffice
from services.console import AdminConsole, ProviderBalance, ProviderRow
from services.markups import GLOBAL, OTP_ITEM, PROVIDER, SMM_ITEM, parse_percent
from services.money import format_money
from services.text import escape

log = logging.getLogger(__name__)
router = RouterTemplate(name=__name__)
router.message.filter(IsAdmin())


def _money(settings: ShopSettings, micro: int) -> str:
    return format_money(micro, settings.store_currency)


@router.message(Command("user"))
async def cmd_user(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    backoffice: Backoffice,
    settings: ShopSettings,
) -> None:
    query = (command.args or "").strip()
    if not query:
        await message.answer(i18n.get("admin-user-usage"))
        return
    try:
        report = await backoffice.user_report(query)
    except console.UnknownUser:
        await message.answer(i18n.get("admin-user-not-found", query=escape(query)))
        return
    except AmbiguousUser as exc:
        await message.answer(ambiguous_user_text(i18n, exc))
        return
    user = report.user
    lines = [
        i18n.get(
            "admin-user-card",
            id=str(user.id),
            username=escape(f"@{user.username}" if user.username else "—"),
            balance=_money(settings, user.balance),
            language=user.language,
            banned=i18n.get("admin-yes") if user.banned else i18n.get("admin-no"),
            blocked=i18n.get("admin-yes") if user.blocked_bot else i18n.get("admin-no"),
        )
    ]
    lines += _order_lines(report, i18n, settings)
    lines += _ledger_lines(report, i18n, settings)
    lines.append(i18n.get("admin-user-payments"))
    lines += [payment_row(p, i18n, settings.store_currency) for p in report.payments] or ["—"]
    await message.answer("\n".join(lines))


def _order_lines(
    report: console.UserReport, i18n: I18nContext, settings: ShopSettings
) -> list[str]:
    lines = [i18n.get("admin-user-orders")]
    for a in report.activations:
        lines.append(
            f"otp:{a.id} · {escape(a.service)} · {escape(a.country)} · "
            f"{_phone(a, i18n)} · {_money(settings, a.price)} · {a.status}"
        )
    for o in report.smm_orders:
        lines.append(
            f"smm:{o.id} · {escape(o.service_name[:30])} · {o.quantity} · "
            f"{_money(settings, o.price)} · {o.status}"
        )
    if not report.activations and not report.smm_orders:
        lines.append("—")
    return lines


def _ledger_lines(
    report: console.UserReport, i18n: I18nContext, settings: ShopSettings
) -> list[str]:
    lines = [i18n.get("admin-user-ledger")]
    for entry in report.ledger:
        parts = [
            f"{entry.created_at:%Y-%m-%d %H:%M}",
            _money(settings, entry.delta),
            reason_text(entry, i18n),
        ]
        if entry.admin_id:
            parts.append(i18n.get("admin-user-ledger-admin", admin=str(entry.admin_id)))
        if entry.comment:
            parts.append(i18n.get("admin-user-ledger-comment", comment=escape(entry.comment)))
        lines.append(" · ".join(parts))
    if not report.ledger:
        lines.append("—")
    return lines


@router.message(Command("ban", "unban"))
async def cmd_ban(
    message: Message, command: CommandObject, i18n: I18nContext, backoffice: Backoffice
) -> None:
    banned = command.command == "ban"
    query = (command.args or "").strip()
    if not query:
        await message.answer(i18n.get("admin-ban-usage"))
        return
    try:
        user = await backoffice.set_banned(query, banned)
    except console.UnknownUser:
        await message.answer(i18n.get("admin-user-not-found", query=escape(query)))
        return
    except AmbiguousUser as exc:
        await message.answer(ambiguous_user_text(i18n, exc))
        return
    key = "admin-banned" if banned else "admin-unbanned"
    await message.answer(i18n.get(key, user=str(user.id)))


@router.message(Command("refund"))
async def cmd_refund(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    backoffice: Backoffice,
    settings: ShopSettings,
) -> None:
    parts = (command.args or "").split(maxsplit=1)
    try:
        kind, order_id = console.parse_order_ref(parts[0] if parts else "")
    except console.UnknownOrder:
        await message.answer(i18n.get("admin-refund-usage"))
        return
    reason = parts[1][:200] if len(parts) > 1 else None
    core, currency = i18n.core, settings.store_currency

    def notice(language: str, amount: int) -> str:
        return core.get("refund-by-shop", language, amount=format_money(amount, currency))

    if message.from_user is None:  # past the admin filter, there always is one
        return
    try:
        outcome = await backoffice.refund_order(
            kind, order_id, admin_id=message.from_user.id, reason=reason, notice=notice
        )
    except console.UnknownOrder:
        await message.answer(i18n.get("admin-order-not-found", order=f"{kind}:{order_id}"))
        return
    except console.OrderBusy:
        await message.answer(i18n.get("admin-refund-busy", order=f"{kind}:{order_id}"))
        return
    if not outcome.applied:
        await message.answer(i18n.get("admin-already-refunded", order=f"{kind}:{order_id}"))
        return
    log.info(
        "manual refund",
        extra={
            "admin_id": message.from_user.id,
            "order": f"{kind}:{order_id}",
            "amount": outcome.amount,
        },
    )
    await message.answer(
        i18n.get(
            "admin-refunded",
            order=f"{kind}:{order_id}",
            amount=_money(settings, outcome.amount),
            user=str(outcome.user_id),
        )
    )


@router.message(Command("stats"))
async def cmd_stats(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    backoffice: Backoffice,
    settings: ShopSettings,
    otp: activations.ActivationService,
) -> None:
    period = (command.args or "today").strip().lower()
    if period not in console.PERIODS:
        await message.answer(i18n.get("admin-stats-usage"))
        return
    since = console.period_start(period, otp.clock())
    stats = await backoffice.stats(since)
    lines = [i18n.get("admin-stats-title", period=period, since=f"{since:%Y-%m-%d %H:%M}")]
    lines.append(i18n.get("admin-stats-otp", statuses=_statuses(stats.otp_by_status)))
    lines.append(i18n.get("admin-stats-smm", statuses=_statuses(stats.smm_by_status)))
    lines.append(
        i18n.get(
            "admin-stats-money",
            revenue=_money(settings, stats.revenue),
            cost=_money(settings, stats.cost),
            profit=_money(settings, stats.profit),
            refunds=_money(settings, stats.refunds),
        )
    )
    lines.append(i18n.get("admin-stats-users", count=str(stats.new_users)))
    if stats.topups:
        lines.append(i18n.get("admin-stats-topups", methods=_topups(stats, i18n, settings)))
    if stats.top_services:
        lines.append(i18n.get("admin-stats-top"))
        lines += [f"{escape(name)} · {count}" for name, count in stats.top_services]
    for name, row in sorted(stats.providers.items()):
        lines.append(
            i18n.get(
                "admin-stats-provider",
                provider=escape(name),
                orders=number(row["orders"]),
                revenue=_money(settings, row["revenue"]),
                cost=_money(settings, row["cost"]),
            )
        )
    await message.answer("\n".join(lines))


def _phone(activation: Activation, i18n: I18nContext) -> str:
    if activation.erased_at is not None:
        return i18n.get("history-erased")
    return escape(activation.phone or "—")


def _topups(stats: console.Stats, i18n: I18nContext, settings: ShopSettings) -> str:
    return " · ".join(
        f"{i18n.get(METHOD_KEYS.get(method, 'payment-method-other'))} {count}: "
        f"{_money(settings, total)}"
        for method, (count, total) in sorted(stats.topups.items())
    )


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{status} {count}" for status, count in sorted(counts.items())) or "—"


@router.message(Command("providers"))
async def cmd_providers(
    message: Message, i18n: I18nContext, settings: ShopSettings, admin_console: AdminConsole
) -> None:
    await message.answer(await providers_text(i18n, settings, admin_console))


async def providers_text(
    i18n: I18nContext, settings: ShopSettings, admin_console: AdminConsole
) -> str:
    """What /providers shows (also the group's "Show providers" button)."""
    lines = [i18n.get("admin-providers-title")]
    for row in await admin_console.provider_rows():
        health = row.health
        lines.append(
            i18n.get(
                "admin-provider-row",
                name=escape(row.name),
                kind=row.kind,
                balance=escape(_balance_text(row.balance, settings)),
                enabled=_switch_text(row, i18n),
                requests=number(health.requests),
                errors=number(health.errors),
                rate=f"{health.error_rate:.0%}",
                last=escape(health.last_error or "—"),
            )
        )
    return "\n".join(lines)


def _switch_text(row: ProviderRow, i18n: I18nContext) -> str:
    if row.auto_off is not None:
        since = f"{row.auto_off_at:%Y-%m-%d %H:%M} UTC" if row.auto_off_at else "—"
        return i18n.get("admin-off-auto", why=row.auto_off, since=since)
    return i18n.get("admin-on") if row.enabled else i18n.get("admin-off")


def _balance_text(balance: ProviderBalance, settings: ShopSettings) -> str:
    """`1,000.00 RUB ≈ $11.00`: the provider's own figure, and what it is worth in the store
    currency (what the low-balance alert compares); the first alone when they are the same."""
    if balance.value is None:
        return f"⚠️ {balance.error}"
    own = f"{balance.value:,.2f} {balance.currency}"
    if balance.in_store is None:
        return own
    return f"{own} ≈ {_money(settings, balance.in_store)}"


@router.message(Command("provider"))
async def cmd_provider(
    message: Message, command: CommandObject, i18n: I18nContext, admin_console: AdminConsole
) -> None:
    parts = (command.args or "").split()
    names = admin_console.providers
    if len(parts) != 2 or parts[1].lower() not in {"on", "off"} or parts[0] not in names:
        await message.answer(i18n.get("admin-provider-usage", names=", ".join(names) or "—"))
        return
    name, enabled = parts[0], parts[1].lower() == "on"
    await admin_console.set_provider_enabled(name, enabled)
    await message.answer(
        i18n.get(
            "admin-provider-set",
            name=escape(name),
            state=i18n.get("admin-on") if enabled else i18n.get("admin-off"),
        )
    )


@router.message(Command("markup"))
async def cmd_markup(
    message: Message, command: CommandObject, i18n: I18nContext, admin_console: AdminConsole
) -> None:
    parts = (command.args or "").split()
    markups = admin_console.markups
    if not parts:
        lines = [
            i18n.get(
                "admin-markup-title", default=str(markups.default), env=str(markups.env_default)
            )
        ]
        for name in admin_console.providers:
            lines.append(
                i18n.get(
                    "admin-markup-provider",
                    name=escape(name),
                    percent=str(markups.provider_markup(name)),
                )
            )
        for (country, service), percent in sorted(markups.otp_items.items()):
            lines.append(f"otp {escape(country)} {escape(service)}: {percent}%")
        for (provider, service_id), percent in sorted(markups.smm_items.items()):
            lines.append(f"smm {escape(provider)} {escape(service_id)}: {percent}%")
        lines.append(i18n.get("admin-markup-usage"))
        await message.answer("\n".join(lines))
        return
    try:
        scope, key, value = _markup_args(parts, admin_console)
    except ValueError:
        await message.answer(i18n.get("admin-markup-usage"))
        return
    await admin_console.set_markup(scope, key, value)
    shown = f"{value}%" if value is not None else i18n.get("admin-markup-reset")
    await message.answer(
        i18n.get("admin-markup-set", what=escape(" ".join(parts[:-1])), value=shown)
    )


def _markup_args(parts: list[str], admin_console: AdminConsole) -> tuple[str, str, Decimal | None]:
    """`global 25` | `provider <name> 30` | `otp <ISO> <service> 15` | `smm <provider> <id> 40`,
    with `reset` instead of a number to remove an override."""
    scope = parts[0].lower()
    value = None if parts[-1].lower() == "reset" else parse_percent(parts[-1])
    if scope == GLOBAL and len(parts) == 2:
        return GLOBAL, "", value
    if scope == PROVIDER and len(parts) == 3 and parts[1] in admin_console.providers:
        return PROVIDER, parts[1], value
    if scope == OTP_ITEM and len(parts) == 4 and len(parts[1]) <= 48 and len(parts[2]) <= 64:
        return OTP_ITEM, f"{parts[1].upper()}|{parts[2].lower()}", value
    if scope == SMM_ITEM and len(parts) == 4 and parts[1] in admin_console.smm_providers:
        return SMM_ITEM, f"{parts[1]}|{parts[2]}", value
    raise ValueError(parts)


@router.message(Command("adopt"))
async def cmd_adopt(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    otp: activations.ActivationService,
    smm_orders: smm.SmmOrderService,
) -> None:
    """`/adopt <otp:12 | smm:7> <upstream order id> [phone]`: an order whose outcome was lost
    exists upstream after all; the bot takes it over (the other answer is /refund)."""
    parts = (command.args or "").split()
    try:
        kind, order_id = console.parse_order_ref(parts[0] if parts else "")
        if len(parts) not in (2, 3) or len(parts[1]) > 64:
            raise console.UnknownOrder(parts)
    except console.UnknownOrder:
        await message.answer(i18n.get("admin-adopt-usage"))
        return
    upstream_id, phone = parts[1], parts[2] if len(parts) == 3 else None
    try:
        if kind == "otp":
            await otp.adopt(order_id, upstream_id, phone)
        else:
            await smm_orders.adopt(order_id, upstream_id)
    except (activations.NotFound, smm.NotFound):
        await message.answer(i18n.get("admin-order-not-found", order=f"{kind}:{order_id}"))
        return
    except (activations.WrongState, smm.WrongState):
        await message.answer(i18n.get("admin-adopt-not-unknown", order=f"{kind}:{order_id}"))
        return
    await message.answer(
        i18n.get("admin-adopted", order=f"{kind}:{order_id}", upstream=escape(upstream_id))
    )
