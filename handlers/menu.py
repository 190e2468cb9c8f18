"""/start, the main menu, language and help."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from aiogram import F
from aiogram.filters import Command, CommandStart
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n import I18nContext

from db.models import User
from handlers.common import LANGUAGES, ShopSettings
from handlers.render import Keyboard, show
from handlers.routing import RouterTemplate
from services.accounts import Accounts
from services.money import format_money
from services.text import escape

router = RouterTemplate(name=__name__)


class MenuAction(StrEnum):
    MAIN = "main"
    BUY = "buy"
    SMM = "smm"
    BALANCE = "bal"
    HISTORY = "hist"
    API = "api"  # 🔑 API (handlers/api_keys.py), only with RESELLER_API_LISTEN
    LANGUAGE = "lang"
    HELP = "help"


class MenuCb(CallbackData, prefix="m"):
    action: MenuAction


class LanguageCb(CallbackData, prefix="lang"):
    code: str


class TopupCb(CallbackData, prefix="tu"):
    """💳 Top up's screens (handlers/payments.py): menu, amt, custom, stars."""

    action: str
    amount: int = 0  # micro-units


def topup_button(kb: Keyboard, i18n: I18nContext) -> None:
    kb.button(text=i18n.get("topup-button"), callback_data=TopupCb(action="menu"))


def topup_missing_button(
    kb: Keyboard | InlineKeyboardBuilder, t: Callable[..., str], missing: int, currency: str
) -> None:
    """💳 Top up <missing>, under a "not enough balance" answer: straight to the ways to pay
    it (raised to the smallest top-up there, if below it)."""
    kb.button(
        text=t("topup-button-amount", amount=format_money(missing, currency)),
        callback_data=TopupCb(action="amt", amount=missing),
    )


def back_to_menu(i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = Keyboard()
    kb.button(text=i18n.get("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    return kb.as_markup()


def main_menu(i18n: I18nContext, settings: ShopSettings) -> InlineKeyboardMarkup:
    """The whole menu: 💳 Top up when a payment method is on, 🔑 API when the reseller API
    is (both read from `settings`, so no caller can leave one out)."""
    topup, api = settings.topup, settings.api
    kb = Keyboard()
    for action, key in (
        (MenuAction.BUY, "menu-buy"),
        (MenuAction.SMM, "menu-smm"),
        (MenuAction.BALANCE, "menu-balance"),
        (MenuAction.HISTORY, "menu-history"),
        (MenuAction.LANGUAGE, "menu-language"),
        (MenuAction.HELP, "menu-help"),
    ):
        kb.button(text=i18n.get(key), callback_data=MenuCb(action=action))
        if topup and action == MenuAction.SMM:
            topup_button(kb, i18n)
        if api and action == MenuAction.HISTORY:
            kb.button(text=i18n.get("menu-api"), callback_data=MenuCb(action=MenuAction.API))
    kb.adjust(1, 1, *((1,) if topup else ()), 2, *((1,) if api else ()), 2)
    return kb.as_markup()


# The balance shown comes from `accounts`, never from `user`: the user middleware may hand over
# a record read a few seconds ago (bot/middlewares.py UserCache), and money moves meanwhile.


@router.message(CommandStart())
async def cmd_start(
    message: Message, user: User, i18n: I18nContext, settings: ShopSettings, accounts: Accounts
) -> None:
    name = escape(user.first_name or user.username or str(user.id))
    balance = format_money(await accounts.balance(user.id), settings.store_currency)
    await message.answer(
        i18n.get("welcome", name=name, balance=balance),
        reply_markup=main_menu(i18n, settings),
    )


@router.callback_query(MenuCb.filter(F.action == MenuAction.MAIN))
async def on_main_menu(
    query: CallbackQuery, user: User, i18n: I18nContext, settings: ShopSettings, accounts: Accounts
) -> None:
    balance = format_money(await accounts.balance(user.id), settings.store_currency)
    await show(query, i18n.get("menu-title", balance=balance), main_menu(i18n, settings))


def language_keyboard(i18n: I18nContext) -> InlineKeyboardMarkup:
    kb = Keyboard()
    for code in LANGUAGES:
        kb.button(text=i18n.get(f"language-name-{code}"), callback_data=LanguageCb(code=code))
    kb.button(text=i18n.get("button-back"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(len(LANGUAGES), 1)
    return kb.as_markup()


@router.callback_query(MenuCb.filter(F.action == MenuAction.LANGUAGE))
async def on_language_menu(query: CallbackQuery, i18n: I18nContext) -> None:
    await show(query, i18n.get("language-choose"), language_keyboard(i18n))


@router.message(Command("language"))
async def cmd_language(message: Message, i18n: I18nContext) -> None:
    await message.answer(i18n.get("language-choose"), reply_markup=language_keyboard(i18n))


@router.callback_query(LanguageCb.filter(F.code.in_(LANGUAGES)))
async def on_language_set(
    query: CallbackQuery,
    callback_data: LanguageCb,
    user: User,
    i18n: I18nContext,
    settings: ShopSettings,
    accounts: Accounts,
) -> None:
    await i18n.set_locale(callback_data.code)
    user.language = callback_data.code
    balance = format_money(await accounts.balance(user.id), settings.store_currency)
    text = i18n.get("language-set") + "\n\n" + i18n.get("menu-title", balance=balance)
    await show(query, text, main_menu(i18n, settings))


def help_text(i18n: I18nContext, settings: ShopSettings) -> str:
    support = escape(settings.support_contact) or i18n.get("help-no-support")
    delay = str(max(1, round(settings.min_cancel_delay_s / 60)))
    return i18n.get("help-text", support=support, delay=delay)


@router.callback_query(MenuCb.filter(F.action == MenuAction.HELP))
async def on_help(query: CallbackQuery, i18n: I18nContext, settings: ShopSettings) -> None:
    await show(query, help_text(i18n, settings), back_to_menu(i18n))


@router.message(Command("help"))
async def cmd_help(message: Message, i18n: I18nContext, settings: ShopSettings) -> None:
    await message.answer(help_text(i18n, settings), reply_markup=back_to_menu(i18n))
