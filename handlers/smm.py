"""The SMM section: browsing categories and services, and "My SMM orders" with refill and cancel
where the service allows them. The order form itself (link -> quantity and the type's extra
fields -> confirm -> place) is handlers/smm_form.py."""

from __future__ import annotations

from aiogram import F
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery
from aiogram_i18n import I18nContext

from db.models import User
from handlers import smm_views as view
from handlers.common import PURCHASE_FLAG, ShopSettings, notify_banned
from handlers.menu import MenuAction, MenuCb, main_menu
from handlers.render import show
from handlers.routing import RouterTemplate
from handlers.smm_form import leave_form, open_form, service_gone, start_form
from services import smm
from services.accounts import Accounts
from services.money import format_money
from services.smm_catalog import SmmCatalog

router = RouterTemplate(name=__name__)
ORDERS_PER_PAGE = 5


# --- browsing ----------------------------------------------------------------------------------


@router.callback_query(MenuCb.filter(F.action == MenuAction.SMM), flags=PURCHASE_FLAG)
async def on_smm_section(
    query: CallbackQuery,
    user: User,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    smm_catalog: SmmCatalog,
    settings: ShopSettings,
    state: FSMContext,
) -> None:
    await leave_form(state)
    if user.banned:
        # Cannot order, but can still see (and cancel) what they already have.
        await notify_banned(query, i18n)
        await _show_orders(query, user, 0, i18n, smm_orders, settings.store_currency)
        return
    text, markup = view.categories_view(smm_catalog, 0, i18n.get, settings.store_currency)
    await show(query, text, markup)


@router.callback_query(view.SmmNav.filter())
async def on_nav(
    query: CallbackQuery,
    callback_data: view.SmmNav,
    user: User,
    accounts: Accounts,
    i18n: I18nContext,
    smm_catalog: SmmCatalog,
    settings: ShopSettings,
    state: FSMContext,
) -> None:
    catalog, currency, nav = smm_catalog, settings.store_currency, callback_data
    page = max(0, min(nav.p, 10_000))
    if nav.v == "x":
        if not open_form(await state.get_data(), nav.k):
            # Maybe placed and paid for since: never claim that nothing was charged.
            await query.answer(i18n.get("smm-form-closed"), show_alert=True)
            return
        await state.clear()
        balance = format_money(await accounts.balance(user.id), currency)
        text = i18n.get("smm-form-cancelled") + "\n\n" + i18n.get("menu-title", balance=balance)
        await show(query, text, main_menu(i18n, settings))
        return
    if nav.v == "c":
        await leave_form(state)
        await show(query, *view.categories_view(catalog, page, i18n.get, currency))
        return
    if nav.v == "s":
        screen = view.services_view(catalog, nav.k, page, i18n.get, currency)
        if screen is None:
            await service_gone(query, i18n, catalog, currency)
            return
        await show(query, *screen)
        return
    item = catalog.item(nav.k)
    if nav.v not in {"i", "o"} or item is None:
        await service_gone(query, i18n, catalog, currency)
        return
    if nav.v == "i":
        await show(query, *view.service_card(item, i18n.get, currency))
        return
    if user.banned:
        await notify_banned(query, i18n)
        return
    await start_form(query, state, item, i18n, currency)


# --- my orders ---------------------------------------------------------------------------------


async def _show_orders(
    query: CallbackQuery,
    user: User,
    page: int,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    currency: str,
) -> None:
    page = max(0, min(page, 10_000))
    rows, total = await smm_orders.history(user.id, page * ORDERS_PER_PAGE, ORDERS_PER_PAGE)
    if not rows and total and page:
        page = (total - 1) // ORDERS_PER_PAGE
        rows, total = await smm_orders.history(user.id, page * ORDERS_PER_PAGE, ORDERS_PER_PAGE)
    text, markup = view.orders_view(
        rows,
        total,
        page,
        ORDERS_PER_PAGE,
        i18n.get,
        currency,
        can_refill=smm_orders.can_refill,
        can_cancel=smm_orders.can_cancel,
        is_demo=smm_orders.is_demo,
    )
    await show(query, text, markup)


@router.callback_query(view.SmmOrders.filter())
async def on_orders(
    query: CallbackQuery,
    callback_data: view.SmmOrders,
    user: User,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    settings: ShopSettings,
    state: FSMContext,
) -> None:
    await leave_form(state)
    await _show_orders(query, user, callback_data.p, i18n, smm_orders, settings.store_currency)


@router.callback_query(view.SmmAct.filter())
async def on_order_action(
    query: CallbackQuery,
    callback_data: view.SmmAct,
    user: User,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    settings: ShopSettings,
) -> None:
    action, order_id = callback_data.a, callback_data.i
    try:
        if action == "r":
            await smm_orders.refill(user.id, order_id)
            done = "smm-refill-requested"
        elif action == "c":
            await smm_orders.cancel(user.id, order_id)
            done = "smm-cancel-requested"
        else:
            await query.answer(i18n.get("callback-stale"), show_alert=True)
            return
    except smm.NotFound:
        await query.answer(i18n.get("smm-not-found"), show_alert=True)
        return
    except smm.SmmError as exc:
        key = {
            smm.NotOffered: "smm-not-offered",
            smm.WrongState: "smm-wrong-state",
            smm.RefillInProgress: "smm-refill-running",
            smm.Refused: "smm-refused",
        }.get(type(exc), "smm-try-later")
        await query.answer(i18n.get(key), show_alert=True)
        await _show_orders(query, user, callback_data.p, i18n, smm_orders, settings.store_currency)
        return
    await query.answer(i18n.get(done), show_alert=True)
    await _show_orders(query, user, callback_data.p, i18n, smm_orders, settings.store_currency)
