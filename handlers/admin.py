"""Admin commands. The router only sees ADMIN_IDS; anyone else falls through to the
unknown-command answer, so the commands do not even reveal that they exist."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message
from aiogram_i18n import I18nContext

from handlers.common import ShopSettings, number
from handlers.routing import RouterTemplate
from services import wallet
from services.accounts import Accounts, Adjustment, AmbiguousUser, Direction, NoticeRenderer
from services.money import AmountError, format_money, parse_amount
from services.notifier import Notifier
from services.text import escape

log = logging.getLogger(__name__)
router = RouterTemplate(name=__name__)


class IsAdmin(Filter):
    async def __call__(self, message: Message, settings: ShopSettings) -> bool:
        return message.from_user is not None and settings.is_admin(message.from_user.id)


router.message.filter(IsAdmin())


def ambiguous_user_text(i18n: I18nContext, exc: AmbiguousUser) -> str:
    """"@name matches several users: 1001, 1002 — use the id." """
    ids = ", ".join(str(user_id) for user_id in exc.user_ids)
    return i18n.get("admin-user-ambiguous", query=escape(exc.query), ids=ids)


def _user_label(user_id: int, username: str | None) -> str:
    return f"@{escape(username)} ({user_id})" if username else f"<code>{user_id}</code>"


@dataclass(frozen=True, slots=True)
class _AdjustRequest:
    """`/topup <@name | id> <amount> [comment]`, parsed."""

    target: str
    amount: int
    comment: str | None


def _parse_adjust(args: str | None) -> _AdjustRequest | None:
    """None when the arguments do not read as a target and an amount."""
    parts = (args or "").split(maxsplit=2)
    if len(parts) < 2:
        return None
    try:
        amount = parse_amount(parts[1])
    except AmountError:
        return None
    return _AdjustRequest(parts[0], amount, parts[2] if len(parts) > 2 else None)


def _notice_renderer(
    direction: Direction, amount: int, i18n: I18nContext, currency: str
) -> NoticeRenderer:
    """The user's notice in the user's own language, not the admin's."""
    key = "topup-received" if direction == "topup" else "deduct-received"

    def notice(language: str, new_balance: int) -> str:
        return i18n.core.get(
            key,
            language,
            amount=format_money(amount, currency),
            balance=format_money(new_balance, currency),
        )

    return notice


def _adjust_error_text(
    exc: Exception, request: _AdjustRequest, i18n: I18nContext, currency: str
) -> str:
    """What the admin reads when the adjustment was refused."""
    if isinstance(exc, AmbiguousUser):
        return ambiguous_user_text(i18n, exc)
    if isinstance(exc, wallet.InsufficientFunds):
        return i18n.get(
            "admin-deduct-insufficient-error",
            user=escape(request.target),
            balance=format_money(exc.balance, currency),
        )
    if isinstance(exc, wallet.DuplicateOperation):
        return i18n.get("admin-duplicate")
    return i18n.get("admin-user-not-found", query=escape(request.target))


async def _adjust(
    direction: Direction,
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    accounts: Accounts,
    settings: ShopSettings,
    notifier: Notifier,
) -> None:
    request = _parse_adjust(command.args)
    if request is None:
        await message.answer(i18n.get(f"admin-{direction}-usage"))
        return
    if message.from_user is None:  # past the admin filter, there always is one
        return
    currency = settings.store_currency
    try:
        done = await accounts.adjust(
            direction=direction,
            target=request.target,
            amount=request.amount,
            admin_id=message.from_user.id,
            key=f"admin:{message.chat.id}:{message.message_id}",
            comment=request.comment,
            notice=_notice_renderer(direction, request.amount, i18n, currency),
            notifier=notifier,
        )
    except (
        wallet.UserNotFound,
        AmbiguousUser,
        wallet.InsufficientFunds,
        wallet.DuplicateOperation,
    ) as exc:
        await message.answer(_adjust_error_text(exc, request, i18n, currency))
        return
    _log_adjustment(message.from_user.id, direction, done)
    await message.answer(
        i18n.get(
            f"admin-{direction}-done",
            user=_user_label(done.user_id, done.username),
            amount=format_money(done.amount, currency),
            balance=format_money(done.balance, currency),
        )
    )


def _log_adjustment(admin_id: int, direction: Direction, done: Adjustment) -> None:
    log.info(
        "admin wallet adjustment",
        extra={
            "admin_id": admin_id,
            "user_id": done.user_id,
            "direction": direction,
            "amount": done.amount,
        },
    )


@router.message(Command("topup"))
async def cmd_topup(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    accounts: Accounts,
    settings: ShopSettings,
    notifier: Notifier,
) -> None:
    await _adjust("topup", message, command, i18n, accounts, settings, notifier)


@router.message(Command("deduct"))
async def cmd_deduct(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    accounts: Accounts,
    settings: ShopSettings,
    notifier: Notifier,
) -> None:
    await _adjust("deduct", message, command, i18n, accounts, settings, notifier)


@router.message(Command("audit"))
async def cmd_audit(
    message: Message, i18n: I18nContext, accounts: Accounts, settings: ShopSettings
) -> None:
    report = await accounts.audit()
    if report.ok:
        await message.answer(i18n.get("admin-audit-ok", users=number(report.users_checked)))
        return
    currency = settings.store_currency
    lines = [
        i18n.get(
            "admin-audit-mismatch",
            users=number(report.users_checked),
            count=number(len(report.mismatches)),
        )
    ]
    for user_id, balance, total in report.mismatches[:30]:
        lines.append(
            i18n.get(
                "admin-audit-row",
                user=str(user_id),
                balance=format_money(balance, currency),
                ledger=format_money(total, currency),
            )
        )
    await message.answer("\n".join(lines))
