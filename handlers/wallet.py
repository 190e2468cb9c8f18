"""The balance screen: balance and the last ledger rows."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram_i18n import I18nContext

from db.models import LedgerEntry, User
from handlers.common import ShopSettings
from handlers.menu import MenuAction, MenuCb, back_to_menu, topup_button
from handlers.render import Keyboard, show
from handlers.routing import RouterTemplate
from services.accounts import Accounts
from services.money import format_money
from services.text import escape

router = RouterTemplate(name=__name__)

REASON_KEYS = {
    "topup": "reason-topup",
    "deduct": "reason-deduct",
    "purchase": "reason-purchase",
    "refund": "reason-refund",
    "stars_refund": "reason-stars_refund",
    "stars_refund_failed": "reason-stars_refund_failed",
}


def reason_text(entry: LedgerEntry, i18n: I18nContext) -> str:
    """Why the balance moved, in words (`top-up`, `refund`)."""
    key = REASON_KEYS.get(entry.reason)
    return i18n.get(key) if key else i18n.get("reason-other", reason=escape(entry.reason))


async def balance_text(
    accounts: Accounts, user: User, i18n: I18nContext, currency: str, topup: bool = False
) -> str:
    current, rows = await accounts.statement(user.id, limit=10)
    lines = [i18n.get("balance-title", balance=format_money(current, currency)), ""]
    if rows:
        lines.append(i18n.get("balance-history-title"))
        for entry in rows:
            delta = format_money(entry.delta, currency)
            lines.append(
                i18n.get(
                    "balance-row",
                    date=entry.created_at.strftime("%Y-%m-%d %H:%M"),
                    delta=("+" if entry.delta > 0 else "") + delta,
                    reason=reason_text(entry, i18n),
                )
            )
    else:
        lines.append(i18n.get("balance-history-empty"))
    if not topup:
        lines += ["", i18n.get("balance-topup-hint")]
    return "\n".join(lines)


def balance_keyboard(i18n: I18nContext, topup: bool) -> InlineKeyboardMarkup:
    if not topup:
        return back_to_menu(i18n)
    kb = Keyboard()
    topup_button(kb, i18n)
    kb.button(text=i18n.get("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(1)
    return kb.as_markup()


@router.callback_query(MenuCb.filter(F.action == MenuAction.BALANCE))
async def on_balance(
    query: CallbackQuery, user: User, accounts: Accounts, i18n: I18nContext, settings: ShopSettings
) -> None:
    text = await balance_text(accounts, user, i18n, settings.store_currency, settings.topup)
    await show(query, text, balance_keyboard(i18n, settings.topup))


@router.message(Command("balance"))
async def cmd_balance(
    message: Message, user: User, accounts: Accounts, i18n: I18nContext, settings: ShopSettings
) -> None:
    text = await balance_text(accounts, user, i18n, settings.store_currency, settings.topup)
    await message.answer(text, reply_markup=balance_keyboard(i18n, settings.topup))
