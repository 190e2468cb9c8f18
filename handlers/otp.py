"""Buying a number: country -> service -> confirm -> buy, the activation card, history."""

from __future__ import annotations

import contextlib

from aiogram import F
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram_i18n import I18nContext

from db.models import Activation, User
from handlers import otp_views as view
from handlers.common import PURCHASE_FLAG, ShopSettings, notify_banned, number
from handlers.menu import MenuAction, MenuCb
from handlers.render import show
from handlers.routing import RouterTemplate
from services import otp as act
from services.accounts import Accounts
from services.catalog import OtpCatalog
from services.money import format_money
from services.text import countdown, countdown_hours

router = RouterTemplate(name=__name__)
HISTORY_PER_PAGE = 5


class OtpSearch(StatesGroup):
    country = State()


# --- browsing ----------------------------------------------------------------------------------


@router.callback_query(MenuCb.filter(F.action == MenuAction.BUY), flags=PURCHASE_FLAG)
async def on_buy_menu(
    query: CallbackQuery,
    user: User,
    i18n: I18nContext,
    otp: act.ActivationService,
    otp_catalog: OtpCatalog,
    settings: ShopSettings,
) -> None:
    if user.banned:
        await notify_banned(query, i18n)
        return
    text, markup = view.countries_view(
        otp_catalog, otp.popular, 0, i18n.locale, i18n.get, settings.store_currency, otp.has_demo
    )
    await show(query, text, markup)


@router.callback_query(view.OtpNav.filter())
async def on_browse(
    query: CallbackQuery,
    callback_data: view.OtpNav,
    user: User,
    i18n: I18nContext,
    otp: act.ActivationService,
    otp_catalog: OtpCatalog,
    settings: ShopSettings,
    accounts: Accounts,
    state: FSMContext,
) -> None:
    catalog, lang, currency = otp_catalog, i18n.locale, settings.store_currency
    nav = callback_data
    if nav.v == "c":
        text, markup = view.countries_view(
            catalog, otp.popular, nav.p, lang, i18n.get, currency, otp.has_demo
        )
    elif nav.v == "f":
        await state.set_state(OtpSearch.country)
        kb_text, markup = i18n.get("otp-search-prompt"), None
        await show(query, kb_text, markup)
        return
    elif nav.v == "a":
        text, markup = view.all_services_view(catalog, nav.p, i18n.get)
    elif nav.v in {"s", "k", "q"}:
        country = view.decode_country(catalog, nav.c) if nav.c else None
        service = view.decode_service(catalog, nav.s, country) if nav.s else None
        if nav.v == "s" and country and catalog.services(country):
            text, markup = view.services_view(catalog, country, nav.p, lang, i18n.get, currency)
        elif nav.v == "k" and service and catalog.countries_for_service(service):
            text, markup = view.service_countries_view(
                catalog, service, nav.p, lang, i18n.get, currency
            )
        elif nav.v == "q" and country and service:
            await _confirm(query, otp, catalog, accounts, user, country, service, i18n, settings)
            return
        else:
            await query.answer(i18n.get("otp-out-of-stock"), show_alert=True)
            return
    else:
        await query.answer(i18n.get("callback-stale"), show_alert=True)
        return
    await show(query, text, markup)


async def _confirm(
    query: CallbackQuery,
    otp: act.ActivationService,
    catalog: OtpCatalog,
    accounts: Accounts,
    user: User,
    country: str,
    service: str,
    i18n: I18nContext,
    settings: ShopSettings,
    *,
    alert: str | None = None,
) -> None:
    """The confirmation screen; `alert` (why it is shown again) is the query's one answer,
    unless there is nothing to confirm any more."""
    if user.banned:
        await notify_banned(query, i18n)
        return
    quote = otp.quote(country, service)
    if quote is None:
        await query.answer(i18n.get("otp-out-of-stock"), show_alert=True)
        return
    if alert is not None:
        await query.answer(alert, show_alert=True)
    balance = await accounts.balance(user.id)
    # The Buy button's token stands for this quote, kept server-side: a press is charged it.
    token = await otp.remember_quote(user.id, quote) if balance >= quote.price else ""
    text, markup = view.confirm_view(
        catalog,
        quote,
        balance,
        i18n.locale,
        i18n.get,
        settings.store_currency,
        token,
        topup=settings.topup,
    )
    await show(query, text, markup)


@router.message(OtpSearch.country, F.text)
async def on_search_text(
    message: Message,
    state: FSMContext,
    i18n: I18nContext,
    otp: act.ActivationService,
    otp_catalog: OtpCatalog,
    settings: ShopSettings,
) -> None:
    await state.clear()
    text, markup = view.search_results_view(
        otp_catalog, message.text or "", i18n.locale, i18n.get, settings.store_currency
    )
    await message.answer(text, reply_markup=markup)


# --- buying -----------------------------------------------------------------------------------


@router.callback_query(view.OtpBuy.filter(), flags=PURCHASE_FLAG)
async def on_buy(
    query: CallbackQuery,
    callback_data: view.OtpBuy,
    user: User,
    i18n: I18nContext,
    otp: act.ActivationService,
    otp_catalog: OtpCatalog,
    settings: ShopSettings,
    accounts: Accounts,
) -> None:
    currency = settings.store_currency
    country = view.decode_country(otp_catalog, callback_data.c)
    service = view.decode_service(otp_catalog, callback_data.s, country)
    if country is None or service is None:
        await query.answer(i18n.get("otp-out-of-stock"), show_alert=True)
        return
    try:
        activation = await otp.create(
            user.id, country, service, callback_data.price, callback_data.t
        )
    except act.Banned:
        await notify_banned(query, i18n)
        return
    except act.AlreadyConfirmed as exc:
        await query.answer(i18n.get("otp-already-bought"))
        await _show_card(
            query, otp, otp_catalog, exc.activation_id, user, i18n, currency, answer=False
        )
        return
    except act.OutOfStock:
        await query.answer(i18n.get("otp-out-of-stock"), show_alert=True)
        return
    except act.ConfirmAgain:
        alert = i18n.get("otp-confirm-again")
        await _confirm(
            query, otp, otp_catalog, accounts, user, country, service, i18n, settings, alert=alert
        )
        return
    except act.PriceChanged as exc:
        alert = i18n.get("otp-price-changed", price=format_money(exc.price, currency))
        await _confirm(
            query, otp, otp_catalog, accounts, user, country, service, i18n, settings, alert=alert
        )
        return
    except act.TooManyActive as exc:
        await query.answer(i18n.get("otp-too-many", limit=number(exc.limit)), show_alert=True)
        return
    except act.TooManyCancels as exc:
        text = i18n.get(
            "otp-too-many-cancels",
            limit=number(exc.limit),
            time=f"{exc.until:%H:%M}",
            wait=countdown_hours(exc.until),
        )
        await query.answer(text, show_alert=True)
        return
    except act.NotEnoughMoney:
        await _confirm(query, otp, otp_catalog, accounts, user, country, service, i18n, settings)
        return
    await _buy_number(query, otp, otp_catalog, activation, i18n, currency)


async def _buy_number(
    query: CallbackQuery,
    otp: act.ActivationService,
    catalog: OtpCatalog,
    activation: Activation,
    i18n: I18nContext,
    currency: str,
) -> None:
    """Paid for: the purchase goes ahead whatever the chat says (blocked, flood limit...)."""
    with contextlib.suppress(TelegramAPIError):
        await query.answer(i18n.get("otp-buying"))
    message = query.message
    if isinstance(message, Message):
        with contextlib.suppress(TelegramAPIError):
            await message.edit_text(i18n.get("otp-buying"))
        await otp.attach_card(activation.id, message.chat.id, message.message_id)
    activation = await otp.execute(activation.id)
    await _render_card(query, otp, catalog, activation, i18n, currency)


async def _render_card(
    query: CallbackQuery,
    otp: act.ActivationService,
    catalog: OtpCatalog,
    activation: Activation,
    i18n: I18nContext,
    currency: str,
) -> None:
    text, markup = view.card_view(
        activation,
        catalog,
        i18n.locale,
        i18n.get,
        currency,
        otp.clock(),
        can_another=otp.supports(activation, "another_sms"),
        can_finish=otp.supports(activation, "finish"),
    )
    message = query.message
    if isinstance(message, Message):
        # A scheduler's edit of this card still in the outbox would put an older state back.
        await otp.card_rendered(message.chat.id, message.message_id)
        try:
            await message.edit_text(text, reply_markup=markup)
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message:
                raise
        if isinstance(otp.presenter, view.TelegramPresenter):  # its refreshes skip this view
            otp.presenter.shown.remember(message.chat.id, message.message_id, text, markup)
        if activation.card_message_id != message.message_id:
            await otp.attach_card(activation.id, message.chat.id, message.message_id)


async def _show_card(
    query: CallbackQuery,
    otp: act.ActivationService,
    catalog: OtpCatalog,
    activation_id: int,
    user: User,
    i18n: I18nContext,
    currency: str,
    *,
    answer: bool = True,
) -> None:
    try:
        activation = await otp.get_own(user.id, activation_id)
    except act.NotFound:
        await query.answer(i18n.get("otp-not-found"), show_alert=True)
        return
    await _render_card(query, otp, catalog, activation, i18n, currency)
    if answer:
        with contextlib.suppress(TelegramBadRequest):
            await query.answer()


# --- the activation card ----------------------------------------------------------------------


@router.callback_query(view.OtpAction.filter())
async def on_activation_action(
    query: CallbackQuery,
    callback_data: view.OtpAction,
    user: User,
    i18n: I18nContext,
    otp: act.ActivationService,
    otp_catalog: OtpCatalog,
    settings: ShopSettings,
) -> None:
    currency = settings.store_currency
    action, activation_id = callback_data.a, callback_data.i
    try:
        if action == "refresh":
            await _show_card(query, otp, otp_catalog, activation_id, user, i18n, currency)
            return
        if action == "sms":
            activation = await otp.get_own(user.id, activation_id)
            text = activation.sms_text or ""
            key = "otp-full-sms" if text else "otp-no-full-sms"
            await query.answer(i18n.get(key, text=text[:190]), show_alert=True)
            return
        if action == "cancel":
            activation = await otp.cancel(user.id, activation_id)
        elif action == "finish":
            activation = await otp.finish(user.id, activation_id)
        elif action == "again":
            activation = await otp.another_sms(user.id, activation_id)
            await query.answer(i18n.get("otp-another-requested"))
            await _render_card(query, otp, otp_catalog, activation, i18n, currency)
            return
        else:
            await query.answer(i18n.get("callback-stale"), show_alert=True)
            return
    except act.NotFound:
        await query.answer(i18n.get("otp-not-found"), show_alert=True)
        return
    except act.TooEarly as exc:
        await query.answer(
            i18n.get("otp-cancel-too-early", time=countdown(exc.seconds)), show_alert=True
        )
        return
    except act.TryLater:
        await query.answer(i18n.get("otp-try-later"), show_alert=True)
        return
    except act.WrongState:
        await query.answer(i18n.get("otp-wrong-state"), show_alert=True)
        await _show_card(
            query, otp, otp_catalog, activation_id, user, i18n, currency, answer=False
        )
        return
    await _render_card(query, otp, otp_catalog, activation, i18n, currency)
    with contextlib.suppress(TelegramBadRequest):
        await query.answer()


# --- history ------------------------------------------------------------------------------------


async def _history(
    user: User,
    page: int,
    i18n: I18nContext,
    otp: act.ActivationService,
    catalog: OtpCatalog,
    currency: str,
) -> tuple[str, InlineKeyboardMarkup]:
    rows, total = await otp.history(user.id, page * HISTORY_PER_PAGE, HISTORY_PER_PAGE)
    return view.history_view(rows, total, page, HISTORY_PER_PAGE, catalog, i18n.get, currency)


@router.callback_query(MenuCb.filter(F.action == MenuAction.HISTORY))
async def on_history(
    query: CallbackQuery,
    user: User,
    i18n: I18nContext,
    otp: act.ActivationService,
    otp_catalog: OtpCatalog,
    settings: ShopSettings,
) -> None:
    text, markup = await _history(user, 0, i18n, otp, otp_catalog, settings.store_currency)
    await show(query, text, markup)


@router.callback_query(view.HistoryCb.filter())
async def on_history_page(
    query: CallbackQuery,
    callback_data: view.HistoryCb,
    user: User,
    i18n: I18nContext,
    otp: act.ActivationService,
    otp_catalog: OtpCatalog,
    settings: ShopSettings,
) -> None:
    page = max(0, min(callback_data.p, 10_000))
    text, markup = await _history(user, page, i18n, otp, otp_catalog, settings.store_currency)
    await show(query, text, markup)


@router.message(Command("history"))
async def cmd_history(
    message: Message,
    user: User,
    i18n: I18nContext,
    otp: act.ActivationService,
    otp_catalog: OtpCatalog,
    settings: ShopSettings,
) -> None:
    text, markup = await _history(user, 0, i18n, otp, otp_catalog, settings.store_currency)
    await message.answer(text, reply_markup=markup)
