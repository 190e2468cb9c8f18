"""The SMM order form: link -> quantity (and the type's extra fields) -> confirm -> place.

handlers/smm.py opens the form (a service's Order button, `start_form`) and closes it (its Close
button); this module asks the steps, shows the confirmation and places the order when pressed.
"""

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
from handlers.common import PURCHASE_FLAG, ShopSettings, notify_banned
from handlers.render import show
from handlers.routing import RouterTemplate
from services import smm
from services.accounts import Accounts
from services.money import format_money
from services.providers.base import SmmServiceType
from services.smm_catalog import SmmCatalog, SmmItem

router = RouterTemplate(name=__name__)


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


@dataclass(frozen=True, slots=True)
class FormCtx:
    """What the form's steps work with during one update, gathered once by its handler."""

    state: FSMContext
    user: User
    accounts: Accounts
    i18n: I18nContext
    smm_orders: smm.SmmOrderService
    catalog: SmmCatalog
    currency: str
    topup: bool  # a top-up method is configured: "not enough balance" offers 💳 Top up


def form_ctx(
    state: FSMContext,
    user: User,
    accounts: Accounts,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    catalog: SmmCatalog,
    settings: ShopSettings,
) -> FormCtx:
    currency, topup = settings.store_currency, settings.topup
    return FormCtx(state, user, accounts, i18n, smm_orders, catalog, currency, topup)


# --- opening and leaving -----------------------------------------------------------------------


async def leave_form(state: FSMContext) -> None:
    current = await state.get_state()
    if current is not None and current.startswith(SmmForm.__name__):
        await state.clear()


async def form_id(state: FSMContext) -> str:
    return str((await state.get_data()).get("form") or "")


def open_form(data: dict[str, Any], form: str) -> bool:
    """Is `form` (a form id) the form still open (not left, not replaced, not being paid for)?

    Each form gets an id of its own when it starts, carried by its buttons; it is forgotten when
    the form ends (placed, closed, left), so an old message's button can tell it is outdated."""
    return bool(form) and data.get("form") == form and not data.get("placing")


async def start_form(
    query: CallbackQuery, state: FSMContext, item: SmmItem, i18n: I18nContext, currency: str
) -> None:
    """A new form for `item`, replacing any other, at its first step."""
    await state.clear()
    await state.set_state(SmmForm.link)
    new_id = smm.new_token()
    await state.set_data({**smm.SmmDraft(service=item.key).to_data(), "form": new_id})
    await show(query, *view.prompt_view("link", item, i18n.get, currency, new_id))


async def service_gone(
    query: CallbackQuery, i18n: I18nContext, catalog: SmmCatalog, currency: str
) -> None:
    await query.answer(i18n.get("smm-service-gone"), show_alert=True)
    await show(query, *view.categories_view(catalog, 0, i18n.get, currency))


async def _form_gone(message: Message, ctx: FormCtx) -> None:
    """The service left the catalog mid-form: the form ends, with a way on."""
    await ctx.state.clear()
    text, markup = view.gone_view(ctx.i18n.get)
    await message.answer(text, reply_markup=markup)


# --- the steps ---------------------------------------------------------------------------------


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


async def read_form(state: FSMContext) -> tuple[smm.SmmDraft, dict[str, Any]]:
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
    ctx: FormCtx, draft: smm.SmmDraft, item: SmmItem, exc: smm.BadInput
) -> tuple[str, InlineKeyboardMarkup]:
    """The draft no longer passes (the catalog changed under it): the form goes back to the step
    that answer came from, forgets it and the later ones (it only moves forward), and asks it
    again with the error and the form's buttons. A confirmation shown before is void."""
    step = ERROR_STEPS.get(exc.code, "link")
    for later in STEP_ORDER[STEP_ORDER.index(step) :]:
        draft = replace(draft, **STEP_FIELDS[later])
    await ctx.state.set_state(STEP_STATES[step])
    await ctx.state.update_data(**draft.to_data(), token=None, price=None, placing=None)
    error = view.input_error(exc, ctx.i18n.get)
    current = await form_id(ctx.state)
    return view.prompt_view(step, item, ctx.i18n.get, ctx.currency, current, draft, error=error)


async def _advance(
    message: Message, ctx: FormCtx, draft: smm.SmmDraft, item: SmmItem, step: str | None
) -> None:
    """Store the draft and ask for `step`, or show the confirmation when it is None."""
    await ctx.state.update_data(**draft.to_data())
    if step is not None:
        await ctx.state.set_state(STEP_STATES[step])
        current = await form_id(ctx.state)
        text, markup = view.prompt_view(step, item, ctx.i18n.get, ctx.currency, current, draft)
        await message.answer(text, reply_markup=markup)
        return
    await _confirm(message, ctx, draft)


async def _confirm(message: Message, ctx: FormCtx, draft: smm.SmmDraft) -> None:
    try:
        quote = ctx.smm_orders.quote(draft)
    except smm.ServiceGone:
        await _form_gone(message, ctx)
        return
    except smm.BadInput as exc:
        item = ctx.catalog.item(draft.service)
        if item is None:
            await _form_gone(message, ctx)
            return
        text, markup = await _reask(ctx, draft, item, exc)
        await message.answer(text, reply_markup=markup)
        return
    token = smm.new_token()
    await ctx.state.set_state(None)
    await ctx.state.update_data(token=token, price=quote.total)
    current = await form_id(ctx.state)
    balance = await ctx.accounts.balance(ctx.user.id)
    text, markup = view.confirm_view(
        quote, balance, ctx.i18n.get, ctx.currency, token, current, topup=ctx.topup
    )
    await message.answer(text, reply_markup=markup)


async def _retry(
    message: Message,
    ctx: FormCtx,
    step: str,
    draft: smm.SmmDraft,
    item: SmmItem,
    exc: smm.BadInput,
) -> None:
    current = await form_id(ctx.state)
    error = view.input_error(exc, ctx.i18n.get)
    t, currency = ctx.i18n.get, ctx.currency
    text, markup = view.prompt_view(step, item, t, currency, current, draft, error=error)
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
    smm_catalog: SmmCatalog,
    settings: ShopSettings,
) -> None:
    """The user's answer to the step the form is at: re-ask with the error, or move on."""
    ctx = form_ctx(state, user, accounts, i18n, smm_orders, smm_catalog, settings)
    draft, _ = await read_form(state)
    item = smm_catalog.item(draft.service)
    if item is None:
        await _form_gone(message, ctx)
        return
    step = _STEP_OF_STATE[raw_state]
    form_step = FORM_STEPS[step]
    try:
        value = form_step.parse(message.text or "", item)
    except smm.BadInput as exc:
        await _retry(message, ctx, step, draft, item, exc)
        return
    draft = form_step.fill(draft, value)
    await _advance(message, ctx, draft, item, form_step.then(item, draft))


@router.callback_query(view.SmmSkip.filter(), SmmForm.runs)
async def on_skip_dripfeed(
    query: CallbackQuery,
    callback_data: view.SmmSkip,
    state: FSMContext,
    user: User,
    accounts: Accounts,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    smm_catalog: SmmCatalog,
    settings: ShopSettings,
) -> None:
    draft, data = await read_form(state)
    if not open_form(data, callback_data.f):
        await query.answer(i18n.get("smm-form-closed"), show_alert=True)
        return
    message = query.message
    if not isinstance(message, Message):
        await query.answer(i18n.get("callback-stale"), show_alert=True)
        return
    with contextlib.suppress(TelegramBadRequest):
        await query.answer()
    ctx = form_ctx(state, user, accounts, i18n, smm_orders, smm_catalog, settings)
    await _confirm(message, ctx, draft)


@router.callback_query(view.SmmSkip.filter())
async def on_skip_stale(
    query: CallbackQuery, callback_data: view.SmmSkip, i18n: I18nContext, state: FSMContext
) -> None:
    """Not at the runs step: an earlier form's button, or this form's, already past it."""
    still_open = open_form(await state.get_data(), callback_data.f)
    key = "callback-stale" if still_open else "smm-form-closed"
    await query.answer(i18n.get(key), show_alert=True)


# --- placing -----------------------------------------------------------------------------------

# What `SmmOrderService.create` refuses with, the order not made (or made by an earlier press).
_REFUSALS = (
    smm.Banned,
    smm.AlreadyConfirmed,
    smm.ServiceGone,
    smm.BadInput,
    smm.PriceChanged,
    smm.NotEnoughMoney,
)


@router.callback_query(view.SmmConfirm.filter(), flags=PURCHASE_FLAG)
async def on_confirm(
    query: CallbackQuery,
    callback_data: view.SmmConfirm,
    user: User,
    accounts: Accounts,
    i18n: I18nContext,
    smm_orders: smm.SmmOrderService,
    smm_catalog: SmmCatalog,
    settings: ShopSettings,
    state: FSMContext,
) -> None:
    ctx = form_ctx(state, user, accounts, i18n, smm_orders, smm_catalog, settings)
    token = callback_data.t
    draft, data = await read_form(state)
    if data.get("token") != token:
        await _pressed_again(query, ctx, token)
        return
    try:
        order = await _create(ctx, draft, data, token)
    except _REFUSALS as exc:
        await _not_placed(query, ctx, draft, exc)
        return
    await state.clear()
    await _place(query, ctx, order)


async def _pressed_again(query: CallbackQuery, ctx: FormCtx, token: str) -> None:
    """Not the form's current confirmation: the order it placed already, or outdated."""
    existing = await ctx.smm_orders.by_token(ctx.user.id, token)
    if existing is None:
        await query.answer(ctx.i18n.get("callback-stale"), show_alert=True)
        return
    await query.answer(ctx.i18n.get("smm-already-placed"))
    await _render_placed(query, ctx, existing, again=True)


async def _create(ctx: FormCtx, draft: smm.SmmDraft, data: dict[str, Any], token: str) -> SmmOrder:
    """Debit and record the order. Meanwhile the form counts as closed: its Close button, pressed
    now, must not say that nothing was charged. It reopens if the order was not made."""
    await ctx.state.update_data(placing=token)
    try:
        return await ctx.smm_orders.create(ctx.user.id, draft, int(data.get("price") or 0), token)
    except smm.AlreadyConfirmed:
        raise
    except BaseException:
        await ctx.state.update_data(placing=None)
        raise


async def _not_placed(
    query: CallbackQuery, ctx: FormCtx, draft: smm.SmmDraft, exc: Exception
) -> None:
    """The press made no new order (one of `_REFUSALS`): say why, and show what comes next."""
    match exc:
        case smm.Banned():
            await notify_banned(query, ctx.i18n)
        case smm.AlreadyConfirmed():
            await query.answer(ctx.i18n.get("smm-already-placed"))
            await _render_placed(query, ctx, exc.order_id, again=True)
        case smm.ServiceGone():
            await ctx.state.clear()
            await service_gone(query, ctx.i18n, ctx.catalog, ctx.currency)
        case smm.BadInput():
            await _back_to_step(query, ctx, draft, exc)
        case smm.PriceChanged():
            price = format_money(exc.price, ctx.currency)
            await query.answer(ctx.i18n.get("smm-price-changed", price=price), show_alert=True)
            await _reconfirm(query, ctx, draft)
        case smm.NotEnoughMoney():
            await _reconfirm(query, ctx, draft)
        case _:
            raise exc


async def _place(query: CallbackQuery, ctx: FormCtx, order: SmmOrder) -> None:
    """Paid for: the purchase goes ahead whatever the chat says (blocked, flood limit...)."""
    placing = ctx.i18n.get("smm-placing")
    with contextlib.suppress(TelegramAPIError):
        await query.answer(placing)
    message = query.message
    if isinstance(message, Message):
        with contextlib.suppress(TelegramAPIError):
            await message.edit_text(placing)
    placed = await ctx.smm_orders.execute(order.id)
    await _render_placed(query, ctx, placed.id)


async def _back_to_step(
    query: CallbackQuery, ctx: FormCtx, draft: smm.SmmDraft, exc: smm.BadInput
) -> None:
    """The draft no longer passes: ask its step again, or end the form if the service left."""
    item = ctx.catalog.item(draft.service)
    if item is None:
        await ctx.state.clear()
        await service_gone(query, ctx.i18n, ctx.catalog, ctx.currency)
        return
    await show(query, *await _reask(ctx, draft, item, exc))


async def _reconfirm(query: CallbackQuery, ctx: FormCtx, draft: smm.SmmDraft) -> None:
    """Show the confirmation again (new price, or what is missing), with a fresh token."""
    try:
        quote = ctx.smm_orders.quote(draft)
    except smm.BadInput as exc:
        await _back_to_step(query, ctx, draft, exc)
        return
    except smm.ServiceGone:
        await ctx.state.clear()
        await service_gone(query, ctx.i18n, ctx.catalog, ctx.currency)
        return
    token = smm.new_token()
    await ctx.state.update_data(token=token, price=quote.total)
    current = await form_id(ctx.state)
    balance = await ctx.accounts.balance(ctx.user.id)
    t, currency = ctx.i18n.get, ctx.currency
    await show(
        query, *view.confirm_view(quote, balance, t, currency, token, current, topup=ctx.topup)
    )


async def _render_placed(
    query: CallbackQuery, ctx: FormCtx, order_id: int, *, again: bool = False
) -> None:
    """`again`: a repeated press of a Confirm button. While the order is still being placed,
    the press that placed it shows the outcome; an edit from here could land after that one
    and put "placing" back over it."""
    order = await ctx.smm_orders.get(order_id)
    if again and order.status == smm.PLACING:
        return
    demo = ctx.smm_orders.is_demo(order)
    await show(query, *view.placed_view(order, ctx.i18n.get, ctx.currency, demo))
