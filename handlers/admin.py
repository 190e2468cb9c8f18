"""Admin commands. The router only sees ADMIN_IDS; anyone else falls through to the
unknown-command answer, so the commands do not even reveal that they exist."""

from __future__ import annotations

import logging
from typing import Literal

from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message
from aiogram_i18n import I18nContext

from db.engine import Database
from db.repositories import AmbiguousUser
from handlers.common import ShopSettings, number
from handlers.routing import RouterTemplate
from services import accounts, wallet
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


async def _adjust(
    direction: Literal["topup", "deduct"],
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    db: Database,
    settings: ShopSettings,
    notifier: Notifier,
) -> None:
    usage = i18n.get(f"admin-{direction}-usage")
    parts = (command.args or "").split(maxsplit=2)
    if len(parts) < 2:
        await message.answer(usage)
        return
    target, amount_text = parts[0], parts[1]
    comment = parts[2] if len(parts) > 2 else None
    try:
        amount = parse_amount(amount_text)
    except AmountError:
        await message.answer(usage)
        return
    currency = settings.store_currency
    notice_key = "topup-received" if direction == "topup" else "deduct-received"

    def notice(language: str, new_balance: int) -> str:
        return i18n.core.get(
            notice_key,
            language,
            amount=format_money(amount, currency),
            balance=format_money(new_balance, currency),
        )

    if message.from_user is None:  # past the admin filter, there always is one
        return
    try:
        done = await accounts.admin_adjust(
            db,
            direction=direction,
            target=target,
            amount=amount,
            admin_id=message.from_user.id,
            key=f"admin:{message.chat.id}:{message.message_id}",
            comment=comment,
            notice=notice,
            notifier=notifier,
        )
    except wallet.UserNotFound:
        await message.answer(i18n.get("admin-user-not-found", query=escape(target)))
        return
    except AmbiguousUser as exc:
        await message.answer(ambiguous_user_text(i18n, exc))
        return
    except wallet.InsufficientFunds as exc:
        await message.answer(
            i18n.get(
                "admin-deduct-insufficient-error",
                user=escape(target),
                balance=format_money(exc.balance, currency),
            )
        )
        return
    except wallet.DuplicateOperation:
        await message.answer(i18n.get("admin-duplicate"))
        return
    log.info(
        "admin wallet adjustment",
        extra={
            "admin_id": message.from_user.id,
            "user_id": done.user_id,
            "direction": direction,
            "amount": amount,
        },
    )
    await message.answer(
        i18n.get(
            f"admin-{direction}-done",
            user=_user_label(done.user_id, done.username),
            amount=format_money(done.amount, currency),
            balance=format_money(done.balance, currency),
        )
    )


@router.message(Command("topup"))
async def cmd_topup(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    db: Database,
    settings: ShopSettings,
    notifier: Notifier,
) -> None:
    await _adjust("topup", message, command, i18n, db, settings, notifier)


@router.message(Command("deduct"))
async def cmd_deduct(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    db: Database,
    settings: ShopSettings,
    notifier: Notifier,
) -> None:
    await _adjust("deduct", message, command, i18n, db, settings, notifier)


@router.message(Command("audit"))
async def cmd_audit(
    message: Message, i18n: I18nContext, db: Database, settings: ShopSettings
) -> None:
    report = await accounts.audit(db)
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
