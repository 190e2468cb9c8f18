"""Ordering SMM services: category -> service -> link -> quantity (and the type's extra fields)
-> confirm -> place; "My SMM orders" with refill and cancel where the service allows them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aiogram import F
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram_i18n import I18nContext

from db.models import SmmOrder, User
from handlers import smm_views as view
from handlers.common import ShopSettings, notify_banned
from handlers.menu import MenuAction, MenuCb, main_menu
from handlers.render import show
from handlers.routing import RouterTemplate
from services import smm
from services.accounts import Accounts
from services.money import format_money
from services.providers.base import SmmServiceType
from services.smm_catalog import SmmItem

router = RouterTemplate(name=__name__)
ORDERS_PER_PAGE = 5


class SmmForm(StatesGroup):
    link = State()
    quantity = State()
    comments = State()
    answer = State()
    usernames = State()
    runs = State()
    interval = State()


STEP_STATES = {
    "link": SmmForm.link,
    "quantity": SmmForm.quantity,
    "comments": SmmForm.comments,
    "answer": SmmForm.answer,
    "usernames": SmmForm.usernames,
    "runs": SmmForm.runs,
    "interval": SmmForm.interval,
}


async def _leave_form(state: FSMContext) -> None:
    current = await state.get_state()
    if current is not None and current.startswith(SmmForm.__name__):
        await state.clear()


async def _form_id(state: FSMContext) -> str:
    return str((await state.get_data()).get("form") or "")


def _open_form(data: dict[str, Any], form_id: str) -> bool:
    """Is `form_id` the form still open (not left, not replaced, not being paid for)?

    Each form gets an id of its own when it starts, carried by its buttons; it is forgotten when
    the form ends (placed, closed, left), so an old message's button can tell it is outdated."""
    return bool(form_id) and data.get("form") == form_id and not data.get("placing")


# --- browsing ----------------------------------------------------------------------------------


@router.callback_query(MenuCb.filter(F.action == MenuAction.SMM))
async def on_smm_section(
    query: CallbackQuery,
    user: User,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    settings: ShopSettings,
    state: FSMContext,
) -> None:
    await _leave_form(state)
    if user.banned:
        # Cannot order, but can still see (and cancel) what they already have.
        await notify_banned(query, i18n)
        await _show_orders(query, user, 0, i18n, smm_orders, settings.store_currency)
        return
    text, markup = view.categories_view(smm_orders.catalog, 0, i18n.get, settings.store_currency)
    await show(query, text, markup)


@router.callback_query(view.SmmNav.filter())
async def on_nav(
    query: CallbackQuery,
    callback_data: view.SmmNav,
    user: User,
    accounts: Accounts,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    settings: ShopSettings,
    state: FSMContext,
) -> None:
    catalog, currency, nav = smm_orders.catalog, settings.store_currency, callback_data
    page = max(0, min(nav.p, 10_000))
    if nav.v == "x":
        if not _open_form(await state.get_data(), nav.k):
            # Maybe placed and paid for since: never claim that nothing was charged.
            await query.answer(i18n.get("smm-form-closed"), show_alert=True)
            return
        await state.clear()
        balance = format_money(await accounts.balance(user.id), currency)
        text = i18n.get("smm-form-cancelled") + "\n\n" + i18n.get("menu-title", balance=balance)
        await show(query, text, main_menu(i18n))
        return
    if nav.v == "c":
        await _leave_form(state)
        await show(query, *view.categories_view(catalog, page, i18n.get, currency))
        return
    if nav.v == "s":
        screen = view.services_view(catalog, nav.k, page, i18n.get, currency)
        if screen is None:
            await _gone(query, i18n, smm_orders, currency)
            return
        await show(query, *screen)
        return
    item = catalog.item(nav.k)
    if nav.v not in {"i", "o"} or item is None:
        await _gone(query, i18n, smm_orders, currency)
        return
    if nav.v == "i":
        await show(query, *view.service_card(item, i18n.get, currency))
        return
    if user.banned:
        await notify_banned(query, i18n)
        return
    await state.clear()
    await state.set_state(SmmForm.link)
    form_id = smm.new_token()
    await state.set_data({**smm.SmmDraft(service=item.key).to_data(), "form": form_id})
    await show(query, *view.prompt_view("link", item, i18n.get, currency, form_id))


async def _gone(
    query: CallbackQuery, i18n: I18nContext, smm_orders: smm.SmmOrderService, currency: str
) -> None:
    await query.answer(i18n.get("smm-service-gone"), show_alert=True)
    await show(query, *view.categories_view(smm_orders.catalog, 0, i18n.get, currency))


async def _form_gone(message: Message, state: FSMContext, i18n: I18nContext) -> None:
    """The service left the catalog mid-form: the form ends, with a way on."""
    await state.clear()
    text, markup = view.gone_view(i18n.get)
    await message.answer(text, reply_markup=markup)


# --- the order form ----------------------------------------------------------------------------


def _next_step(item: SmmItem, draft: smm.SmmDraft) -> str | None:
    """The first field the draft still lacks; None when it is ready to confirm."""
    if not draft.link:
        return "link"
    if item.type is SmmServiceType.PACKAGE:
        return None
    if item.type is SmmServiceType.CUSTOM_COMMENTS:
        return None if draft.comments else "comments"
    if draft.quantity is None:
        return "quantity"
    if item.type is SmmServiceType.POLL and draft.answer_number is None:
        return "answer"
    if item.type is SmmServiceType.MENTIONS and not draft.usernames:
        return "usernames"
    return None


async def _form(state: FSMContext) -> tuple[smm.SmmDraft, dict[str, Any]]:
    data = await state.get_data()
    return smm.SmmDraft.from_data(data), data


# The steps in the order the form asks them, and the draft fields each one fills.
STEP_ORDER = ("link", "quantity", "comments", "answer", "usernames", "runs", "interval")
STEP_FIELDS: dict[str, dict[str, Any]] = {
    "link": {"link": ""},
    "quantity": {"quantity": None},
    "comments": {"comments": (), "quantity": None},
    "answer": {"answer_number": None},
    "usernames": {"usernames": ()},
    "runs": {"runs": None},
    "interval": {"interval": None},
}
# The step whose answer a check of the whole draft refused (the catalog may have changed since
# it was answered). A service that dropped drip-feed asks the quantity again: to order it once.
ERROR_STEPS = {
    "link_empty": "link",
    "link_too_long": "link",
    "link_not_url": "link",
    "quantity_not_number": "quantity",
    "quantity_range": "quantity",
    "dripfeed_off": "quantity",
    "comments_empty": "comments",
    "comments_count": "comments",
    "comment_too_long": "comments",
    "answer_range": "answer",
    "usernames_empty": "usernames",
    "usernames_bad": "usernames",
    "runs_range": "runs",
    "interval_range": "interval",
}


async def _reask(
    state: FSMContext,
    draft: smm.SmmDraft,
    item: SmmItem,
    exc: smm.BadInput,
    i18n: I18nContext,
    currency: str,
) -> tuple[str, InlineKeyboardMarkup]:
    """The draft no longer passes (the catalog changed under it): the form goes back to the step
    that answer came from, forgets it and the later ones (it only moves forward), and asks it
    again with the error and the form's buttons. A confirmation shown before is void."""
    step = ERROR_STEPS.get(exc.code, "link")
    for later in STEP_ORDER[STEP_ORDER.index(step) :]:
        draft = replace(draft, **STEP_FIELDS[later])
    await state.set_state(STEP_STATES[step])
    await state.update_data(**draft.to_data(), token=None, price=None, placing=None)
    error = view.input_error(exc, i18n.get)
    form_id = await _form_id(state)
    return view.prompt_view(step, item, i18n.get, currency, form_id, draft, error=error)


async def _advance(
    message: Message,
    state: FSMContext,
    draft: smm.SmmDraft,
    item: SmmItem,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    user: User,
    currency: str,
    step: str | None,
    accounts: Accounts,
) -> None:
    """Store the draft and ask for `step`, or show the confirmation when it is None."""
    await state.update_data(**draft.to_data())
    if step is not None:
        await state.set_state(STEP_STATES[step])
        form_id = await _form_id(state)
        text, markup = view.prompt_view(step, item, i18n.get, currency, form_id, draft)
        await message.answer(text, reply_markup=markup)
        return
    await _confirm(message, state, draft, i18n, smm_orders, user, currency, accounts)


async def _confirm(
    message: Message,
    state: FSMContext,
    draft: smm.SmmDraft,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    user: User,
    currency: str,
    accounts: Accounts,
) -> None:
    try:
        quote = smm_orders.quote(draft)
    except smm.ServiceGone:
        await _form_gone(message, state, i18n)
        return
    except smm.BadInput as exc:
        item = smm_orders.catalog.item(draft.service)
        if item is None:
            await _form_gone(message, state, i18n)
            return
        text, markup = await _reask(state, draft, item, exc, i18n, currency)
        await message.answer(text, reply_markup=markup)
        return
    token = smm.new_token()
    await state.set_state(None)
    await state.update_data(token=token, price=quote.total)
    form_id = await _form_id(state)
    balance = await accounts.balance(user.id)
    text, markup = view.confirm_view(quote, balance, i18n.get, currency, token, form_id)
    await message.answer(text, reply_markup=markup)


async def _form_item(
    message: Message, state: FSMContext, i18n: I18nContext, smm_orders: smm.SmmOrderService
) -> tuple[smm.SmmDraft, SmmItem] | None:
    draft, _ = await _form(state)
    item = smm_orders.catalog.item(draft.service)
    if item is None:
        await _form_gone(message, state, i18n)
        return None
    return draft, item


async def _retry(
    message: Message,
    state: FSMContext,
    step: str,
    draft: smm.SmmDraft,
    item: SmmItem,
    exc: smm.BadInput,
    i18n: I18nContext,
    currency: str,
) -> None:
    form_id = await _form_id(state)
    error = view.input_error(exc, i18n.get)
    text, markup = view.prompt_view(step, item, i18n.get, currency, form_id, draft, error=error)
    await message.answer(text, reply_markup=markup)


def _after_quantity(item: SmmItem, draft: smm.SmmDraft) -> str | None:
    """Drip-feed (runs, then interval) is offered once the order needs nothing else."""
    step = _next_step(item, draft)
    return "runs" if step is None and item.dripfeed else step


@dataclass(frozen=True, slots=True)
class _Step:
    """How one form step reads the user's text into the draft, and which step comes next.

    The form only moves forward, so the fields after a step are still empty when it is answered.
    """

    parse: Callable[[str, SmmItem], Any]
    fill: Callable[[smm.SmmDraft, Any], smm.SmmDraft]
    then: Callable[[SmmItem, smm.SmmDraft], str | None] = _next_step


FORM_STEPS: dict[str, _Step] = {
    "link": _Step(lambda text, _: smm.check_link(text), lambda d, v: replace(d, link=v)),
    "quantity": _Step(smm.parse_quantity, lambda d, v: replace(d, quantity=v), _after_quantity),
    "comments": _Step(smm.parse_comments, lambda d, v: replace(d, quantity=len(v), comments=v)),
    "answer": _Step(
        lambda text, _: smm.parse_answer(text), lambda d, v: replace(d, answer_number=v)
    ),
    "usernames": _Step(
        lambda text, _: smm.parse_usernames(text), lambda d, v: replace(d, usernames=v)
    ),
    "runs": _Step(
        lambda text, _: smm.parse_runs(text),
        lambda d, v: replace(d, runs=v),
        lambda _item, _draft: "interval",
    ),
    "interval": _Step(
        lambda text, _: smm.parse_interval(text),
        lambda d, v: replace(d, interval=v),
        lambda _item, _draft: None,
    ),
}
_STEP_OF_STATE = {form_state.state: step for step, form_state in STEP_STATES.items()}


@router.message(StateFilter(*STEP_STATES.values()), F.text)
async def on_form_text(
    message: Message,
    state: FSMContext,
    raw_state: str,
    user: User,
    accounts: Accounts,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    settings: ShopSettings,
) -> None:
    """The user's answer to the step the form is at: re-ask with the error, or move on."""
    found = await _form_item(message, state, i18n, smm_orders)
    if found is None:
        return
    draft, item = found
    step, currency = _STEP_OF_STATE[raw_state], settings.store_currency
    form_step = FORM_STEPS[step]
    try:
        value = form_step.parse(message.text or "", item)
    except smm.BadInput as exc:
        await _retry(message, state, step, draft, item, exc, i18n, currency)
        return
    draft = form_step.fill(draft, value)
    next_step = form_step.then(item, draft)
    await _advance(
        message, state, draft, item, i18n, smm_orders, user, currency, next_step, accounts
    )


@router.callback_query(view.SmmSkip.filter(), SmmForm.runs)
async def on_skip_dripfeed(
    query: CallbackQuery,
    callback_data: view.SmmSkip,
    state: FSMContext,
    user: User,
    accounts: Accounts,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    settings: ShopSettings,
) -> None:
    draft, data = await _form(state)
    if not _open_form(data, callback_data.f):
        await query.answer(i18n.get("smm-form-closed"), show_alert=True)
        return
    message = query.message
    if not isinstance(message, Message):
        await query.answer(i18n.get("callback-stale"), show_alert=True)
        return
    with contextlib.suppress(TelegramBadRequest):
        await query.answer()
    await _confirm(
        message, state, draft, i18n, smm_orders, user, settings.store_currency, accounts
    )


@router.callback_query(view.SmmSkip.filter())
async def on_skip_stale(
    query: CallbackQuery, callback_data: view.SmmSkip, i18n: I18nContext, state: FSMContext
) -> None:
    """Not at the runs step: an earlier form's button, or this form's, already past it."""
    still_open = _open_form(await state.get_data(), callback_data.f)
    key = "callback-stale" if still_open else "smm-form-closed"
    await query.answer(i18n.get(key), show_alert=True)


# --- placing -----------------------------------------------------------------------------------


@router.callback_query(view.SmmConfirm.filter())
async def on_confirm(
    query: CallbackQuery,
    callback_data: view.SmmConfirm,
    user: User,
    accounts: Accounts,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    settings: ShopSettings,
    state: FSMContext,
) -> None:
    currency, token = settings.store_currency, callback_data.t
    draft, data = await _form(state)
    if data.get("token") != token:
        existing = await smm_orders.by_token(user.id, token)
        if existing is None:
            await query.answer(i18n.get("callback-stale"), show_alert=True)
            return
        await query.answer(i18n.get("smm-already-placed"))
        await _render_placed(query, smm_orders, existing, i18n, currency)
        return
    try:
        order = await _create(state, smm_orders, user, draft, data, token)
    except smm.Banned:
        await notify_banned(query, i18n)
        return
    except smm.AlreadyConfirmed as exc:
        await query.answer(i18n.get("smm-already-placed"))
        await _render_placed(query, smm_orders, exc.order_id, i18n, currency)
        return
    except smm.ServiceGone:
        await state.clear()
        await _gone(query, i18n, smm_orders, currency)
        return
    except smm.BadInput as exc:
        item = smm_orders.catalog.item(draft.service)
        if item is None:
            await state.clear()
            await _gone(query, i18n, smm_orders, currency)
            return
        await show(query, *await _reask(state, draft, item, exc, i18n, currency))
        return
    except smm.PriceChanged as exc:
        await query.answer(
            i18n.get("smm-price-changed", price=format_money(exc.price, currency)),
            show_alert=True,
        )
        await _reconfirm(query, state, draft, i18n, smm_orders, user, currency, accounts)
        return
    except smm.NotEnoughMoney:
        await _reconfirm(query, state, draft, i18n, smm_orders, user, currency, accounts)
        return
    await state.clear()
    # Paid for: the purchase goes ahead whatever the chat says (blocked, flood limit...).
    with contextlib.suppress(TelegramAPIError):
        await query.answer(i18n.get("smm-placing"))
    message = query.message
    if isinstance(message, Message):
        with contextlib.suppress(TelegramAPIError):
            await message.edit_text(i18n.get("smm-placing"))
    placed = await smm_orders.execute(order.id)
    await _render_placed(query, smm_orders, placed.id, i18n, currency)


async def _create(
    state: FSMContext,
    smm_orders: smm.SmmOrderService,
    user: User,
    draft: smm.SmmDraft,
    data: dict[str, Any],
    token: str,
) -> SmmOrder:
    """Debit and record the order. Meanwhile the form counts as closed: its Close button, pressed
    now, must not say that nothing was charged. It reopens if the order was not made."""
    await state.update_data(placing=token)
    try:
        return await smm_orders.create(user.id, draft, int(data.get("price") or 0), token)
    except smm.AlreadyConfirmed:
        raise
    except BaseException:
        await state.update_data(placing=None)
        raise


async def _reconfirm(
    query: CallbackQuery,
    state: FSMContext,
    draft: smm.SmmDraft,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    user: User,
    currency: str,
    accounts: Accounts,
) -> None:
    """Show the confirmation again (new price, or what is missing), with a fresh token."""
    item = smm_orders.catalog.item(draft.service)
    try:
        quote = smm_orders.quote(draft)
    except smm.BadInput as exc:
        if item is not None:
            await show(query, *await _reask(state, draft, item, exc, i18n, currency))
            return
        await state.clear()
        await _gone(query, i18n, smm_orders, currency)
        return
    except smm.ServiceGone:
        await state.clear()
        await _gone(query, i18n, smm_orders, currency)
        return
    token = smm.new_token()
    await state.update_data(token=token, price=quote.total)
    form_id = await _form_id(state)
    balance = await accounts.balance(user.id)
    await show(query, *view.confirm_view(quote, balance, i18n.get, currency, token, form_id))


async def _render_placed(
    query: CallbackQuery,
    smm_orders: smm.SmmOrderService,
    order_id: int,
    i18n: I18nContext,
    currency: str,
) -> None:
    order = await smm_orders.get(order_id)
    await show(query, *view.placed_view(order, i18n.get, currency, smm_orders.is_demo(order)))


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
    await _leave_form(state)
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
