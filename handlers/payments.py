"""💳 Top up: amount, method, the Stars invoice, pre-checkout, the paid update, and the admin's
/refund_stars. The money is services/payments/'s; this module parses and renders."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
    PreCheckoutQuery,
    TransactionPartnerUser,
)
from aiogram_i18n import I18nContext
from aiogram_i18n.cores import BaseCore

from db.models import User
from handlers.admin import IsAdmin, ambiguous_user_text
from handlers.common import ShopSettings, notify_banned, number
from handlers.menu import MenuAction, MenuCb, TopupCb
from handlers.render import Keyboard, show
from handlers.routing import ObserverTemplate, RouterTemplate
from services import wallet
from services.accounts import AmbiguousUser
from services.ids import is_id
from services.money import MICRO, AmountError, format_money, parse_amount
from services.payments import (
    ChargeNotFound,
    OutOfRange,
    RefundRefused,
    Refusal,
    StarsApiError,
    StarsDisabled,
    StarsPayments,
    StarTransaction,
    TopupNotice,
)
from services.payments.cryptopay import CryptoPayDisabled, CryptoPayError, CryptoPayPayments
from services.payments.cryptopay import OutOfRange as CryptoOutOfRange
from services.payments.records import PaymentLine, PaymentsBook
from services.text import escape

log = logging.getLogger(__name__)
PRESETS = (5, 10, 25, 50, 100)  # amount buttons, in store-currency units, within the range
REFUSALS: dict[Refusal, str] = {
    "disabled": "topup-refused-disabled",
    "banned": "topup-refused-banned",
    "range": "topup-refused-range",
    "unknown": "topup-refused-unknown",
}


class PaymentsRouterTemplate(RouterTemplate):
    """A router template that also takes pre_checkout_query handlers."""

    def __init__(self, *, name: str) -> None:
        super().__init__(name=name)
        self.pre_checkout_query = ObserverTemplate()

    def build(self) -> Router:
        router = super().build()
        observer = router.observers["pre_checkout_query"]
        for callback, filters, kwargs in self.pre_checkout_query.handlers:
            observer.register(callback, *filters, **kwargs)
        return router


router = PaymentsRouterTemplate(name=__name__)


class TopupForm(StatesGroup):
    amount = State()


def _presets(stars: StarsPayments) -> list[int]:
    low, high = stars.rules.min_amount, stars.rules.max_amount
    return sorted({max(low, units * MICRO) for units in PRESETS if units * MICRO <= high})


def _no_methods(i18n: I18nContext, settings: ShopSettings) -> str:
    support = escape(settings.support_contact) or i18n.get("help-no-support")
    return i18n.get("topup-none", support=support)


def _back(kb: Keyboard, i18n: I18nContext) -> None:
    kb.button(text=i18n.get("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))


def amounts_screen(
    i18n: I18nContext, settings: ShopSettings, stars: StarsPayments, crypto: CryptoPayPayments
) -> tuple[str, InlineKeyboardMarkup]:
    kb = Keyboard()
    if not (stars.enabled or crypto.enabled):
        _back(kb, i18n)
        return _no_methods(i18n, settings), kb.as_markup()
    currency = settings.store_currency
    presets = _presets(stars)
    for amount in presets:
        kb.button(
            text=format_money(amount, currency), callback_data=TopupCb(action="amt", amount=amount)
        )
    kb.button(text=i18n.get("topup-custom"), callback_data=TopupCb(action="custom"))
    _back(kb, i18n)
    kb.adjust(*([len(presets)] if presets else []), 1)
    text = i18n.get(
        "topup-choose-amount",
        min=format_money(stars.rules.min_amount, currency),
        max=format_money(stars.rules.max_amount, currency),
    )
    return text, kb.as_markup()


def methods_screen(
    amount: int,
    i18n: I18nContext,
    settings: ShopSettings,
    stars: StarsPayments,
    crypto: CryptoPayPayments,
) -> tuple[str, InlineKeyboardMarkup]:
    """The ways to pay `amount` (micro-units); the amounts again when none can take it."""
    kb = Keyboard()
    with contextlib.suppress(StarsDisabled, OutOfRange):
        offer = stars.quote(amount)
        kb.button(
            text=i18n.get("topup-stars-button", stars=number(offer.stars)),
            callback_data=TopupCb(action="stars", amount=amount),
        )
    if crypto.enabled and crypto.in_range(amount):
        kb.button(
            text=i18n.get("topup-crypto-button"),
            callback_data=TopupCb(action="crypto", amount=amount),
        )
    if not kb.as_markup().inline_keyboard:
        text, markup = amounts_screen(i18n, settings, stars, crypto)
        if stars.enabled or crypto.enabled:
            text = i18n.get("topup-out-of-range") + "\n\n" + text
        return text, markup
    kb.button(text=i18n.get("button-back"), callback_data=TopupCb(action="menu"))
    kb.adjust(1)
    text = i18n.get("topup-choose-method", amount=format_money(amount, settings.store_currency))
    return text, kb.as_markup()


@router.callback_query(TopupCb.filter(F.action == "menu"))
async def on_topup(
    query: CallbackQuery,
    i18n: I18nContext,
    settings: ShopSettings,
    stars: StarsPayments,
    cryptopay: CryptoPayPayments,
    state: FSMContext,
) -> None:
    await state.clear()
    await show(query, *amounts_screen(i18n, settings, stars, cryptopay))


@router.callback_query(TopupCb.filter(F.action == "amt"))
async def on_amount(
    query: CallbackQuery,
    callback_data: TopupCb,
    i18n: I18nContext,
    settings: ShopSettings,
    stars: StarsPayments,
    cryptopay: CryptoPayPayments,
) -> None:
    # "Not enough balance" offers the missing amount, which may be below the smallest top-up.
    amount = max(callback_data.amount, stars.rules.min_amount)
    await show(query, *methods_screen(amount, i18n, settings, stars, cryptopay))


@router.callback_query(TopupCb.filter(F.action == "custom"))
async def on_custom(
    query: CallbackQuery,
    i18n: I18nContext,
    settings: ShopSettings,
    stars: StarsPayments,
    state: FSMContext,
) -> None:
    await state.set_state(TopupForm.amount)
    kb = Keyboard()
    kb.button(text=i18n.get("button-back"), callback_data=TopupCb(action="menu"))
    currency = settings.store_currency
    text = i18n.get(
        "topup-custom-prompt",
        min=format_money(stars.rules.min_amount, currency),
        max=format_money(stars.rules.max_amount, currency),
    )
    await show(query, text, kb.as_markup())


@router.message(TopupForm.amount, F.text)
async def on_custom_amount(
    message: Message,
    i18n: I18nContext,
    settings: ShopSettings,
    stars: StarsPayments,
    cryptopay: CryptoPayPayments,
    state: FSMContext,
) -> None:
    try:
        amount = parse_amount((message.text or "").replace(",", ".").lstrip("$"))
    except AmountError:
        await message.answer(i18n.get("topup-custom-invalid"))
        return
    if not stars.in_range(amount):
        await message.answer(
            i18n.get(
                "topup-custom-range",
                min=format_money(stars.rules.min_amount, settings.store_currency),
                max=format_money(stars.rules.max_amount, settings.store_currency),
            )
        )
        return
    await state.clear()
    text, markup = methods_screen(amount, i18n, settings, stars, cryptopay)
    await message.answer(text, reply_markup=markup)


@router.callback_query(TopupCb.filter(F.action == "stars"))
async def on_pay_stars(
    query: CallbackQuery,
    callback_data: TopupCb,
    user: User,
    i18n: I18nContext,
    settings: ShopSettings,
    stars: StarsPayments,
    cryptopay: CryptoPayPayments,
    bot: Bot,
) -> None:
    if user.banned:
        await notify_banned(query, i18n)
        return
    try:
        invoice = await stars.create_invoice(user.id, callback_data.amount)
    except (StarsDisabled, OutOfRange):
        await show(query, *methods_screen(callback_data.amount, i18n, settings, stars, cryptopay))
        return
    amount = format_money(invoice.quote.amount, settings.store_currency)
    await bot.send_invoice(
        chat_id=user.id,
        title=i18n.get("topup-invoice-title"),
        description=i18n.get("topup-invoice-description", amount=amount),
        payload=invoice.payload,
        currency="XTR",
        prices=[LabeledPrice(label=i18n.get("topup-invoice-label"), amount=invoice.quote.stars)],
    )
    await query.answer()


@router.callback_query(TopupCb.filter(F.action == "crypto"))
async def on_pay_crypto(
    query: CallbackQuery,
    callback_data: TopupCb,
    user: User,
    i18n: I18nContext,
    settings: ShopSettings,
    stars: StarsPayments,
    cryptopay: CryptoPayPayments,
) -> None:
    if user.banned:
        await notify_banned(query, i18n)
        return
    amount = callback_data.amount
    try:
        invoice = await cryptopay.create_invoice(
            user.id,
            amount,
            i18n.get(
                "topup-invoice-description", amount=format_money(amount, settings.store_currency)
            ),
        )
    except (CryptoPayDisabled, CryptoOutOfRange):
        await show(query, *methods_screen(amount, i18n, settings, stars, cryptopay))
        return
    except CryptoPayError as exc:
        log.warning("cryptopay invoice failed", extra={"error": str(exc)})
        await query.answer(i18n.get("topup-crypto-unavailable"), show_alert=True)
        return
    money = format_money(invoice.amount, settings.store_currency)
    markup = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=i18n.get("topup-crypto-pay", amount=money), url=invoice.pay_url
                )
            ],
            [
                InlineKeyboardButton(
                    text=i18n.get("button-menu"),
                    callback_data=MenuCb(action=MenuAction.MAIN).pack(),
                )
            ],
        ]
    )
    await show(query, i18n.get("topup-crypto-invoice", amount=money), markup)


@router.pre_checkout_query()
async def on_pre_checkout(
    query: PreCheckoutQuery, user: User, i18n: I18nContext, stars: StarsPayments
) -> None:
    """Answered at once (Telegram waits 10 s): one read, no upstream call."""
    refusal = await stars.check(
        user_id=query.from_user.id,
        banned=user.banned,
        payload=query.invoice_payload,
        currency=query.currency,
        total=query.total_amount,
    )
    if refusal is None:
        await query.answer(ok=True)
    else:
        await query.answer(ok=False, error_message=i18n.get(REFUSALS[refusal]))


@router.message(F.successful_payment)
async def on_paid(message: Message, stars: StarsPayments) -> None:
    """The customer hears the new balance through the outbox, written with the credit."""
    paid = message.successful_payment
    if paid is None or message.from_user is None or paid.currency != "XTR":
        return
    done = await stars.credit(
        user_id=message.from_user.id,
        charge_id=paid.telegram_payment_charge_id,
        stars=paid.total_amount,
        payload=paid.invoice_payload,
    )
    log.info(
        "stars payment",
        extra={"user_id": message.from_user.id, "applied": done.applied, "amount": done.amount},
    )


@router.message(Command("refund_stars"), IsAdmin())
async def cmd_refund_stars(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    settings: ShopSettings,
    stars: StarsPayments,
    bot: Bot,
) -> None:
    charge_id = (command.args or "").strip()
    if not charge_id or " " in charge_id or len(charge_id) > 100 or message.from_user is None:
        await message.answer(i18n.get("admin-refund-stars-usage"))
        return
    currency = settings.store_currency
    try:
        done = await stars.refund(
            charge_id, admin_id=message.from_user.id, api=TelegramStarsApi(bot)
        )
    except ChargeNotFound:
        text = i18n.get("admin-refund-stars-not-found", charge=escape(charge_id))
    except wallet.DuplicateOperation:
        text = i18n.get("admin-refund-stars-already", charge=escape(charge_id))
    except wallet.InsufficientFunds as exc:
        text = i18n.get(
            "admin-refund-stars-insufficient", balance=format_money(exc.balance, currency)
        )
    except RefundRefused as exc:
        text = i18n.get("admin-refund-stars-refused", error=escape(exc.description))
    else:
        text = i18n.get(
            "admin-refund-stars-done",
            amount=format_money(done.amount, currency),
            stars=number(done.stars),
            user=str(done.user_id),
            balance=format_money(done.balance, currency),
        )
    await message.answer(text)


class PaymentCheckCb(CallbackData, prefix="pchk"):
    id: int


STATUS_KEYS = {
    "pending": "payment-status-pending",
    "paid": "payment-status-paid",
    "expired": "payment-status-expired",
    "refunding": "payment-status-refunding",
    "refunded": "payment-status-refunded",
}
METHOD_KEYS = {
    "stars": "payment-method-stars",
    "cryptopay": "payment-method-cryptopay",
    "admin": "payment-method-admin",
}


def payment_row(line: PaymentLine, i18n: I18nContext, currency: str) -> str:
    return i18n.get(
        "admin-payments-row",
        id=str(line.id),
        date=line.created_at.strftime("%Y-%m-%d %H:%M"),
        user=str(line.user_id),
        method=i18n.get(METHOD_KEYS.get(line.method, "payment-method-other")),
        amount=format_money(line.amount, currency),
        status=i18n.get(STATUS_KEYS.get(line.status, "payment-status-other")),
        external=escape(line.external_id or "—"),
    )


def payments_view(
    lines: list[PaymentLine], i18n: I18nContext, currency: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    if not lines:
        return i18n.get("admin-payments-empty"), None
    text = "\n".join(
        [i18n.get("admin-payments-title"), *(payment_row(line, i18n, currency) for line in lines)]
    )
    kb = Keyboard()
    for line in lines:
        if line.status == "pending":
            kb.button(
                text=i18n.get("admin-payments-check", id=str(line.id)),
                callback_data=PaymentCheckCb(id=line.id),
            )
    kb.adjust(2)
    markup = kb.as_markup()
    return text, markup if markup.inline_keyboard else None


@router.message(Command("payments"), IsAdmin())
async def cmd_payments(
    message: Message,
    command: CommandObject,
    i18n: I18nContext,
    settings: ShopSettings,
    payments_book: PaymentsBook,
) -> None:
    target = (command.args or "").strip() or None
    try:
        lines = await payments_book.recent(target)
    except wallet.UserNotFound:
        await message.answer(i18n.get("admin-user-not-found", query=escape(target or "")))
        return
    except AmbiguousUser as exc:
        await message.answer(ambiguous_user_text(i18n, exc))
        return
    text, markup = payments_view(lines, i18n, settings.store_currency)
    await message.answer(text, reply_markup=markup)


@router.callback_query(PaymentCheckCb.filter())
async def on_check_payment(
    query: CallbackQuery,
    callback_data: PaymentCheckCb,
    i18n: I18nContext,
    settings: ShopSettings,
    payments_book: PaymentsBook,
    bot: Bot,
) -> None:
    """ "Check now": the payment system asked again; admins only."""
    if not settings.is_admin(query.from_user.id) or not is_id(callback_data.id):
        await query.answer(i18n.get("callback-stale"), show_alert=True)
        return
    try:
        line = await payments_book.check(callback_data.id, TelegramStarsApi(bot))
    except (StarsApiError, CryptoPayError) as exc:
        log.warning("payment check failed", extra={"error": str(exc)})
        await query.answer(i18n.get("admin-payments-check-failed"), show_alert=True)
        return
    if line is None:
        await query.answer(i18n.get("callback-stale"), show_alert=True)
        return
    status = i18n.get(STATUS_KEYS.get(line.status, "payment-status-other"))
    await query.answer(
        i18n.get("admin-payments-checked", id=str(line.id), status=status), show_alert=True
    )


class TelegramStarsApi:
    """services.payments.StarsApi over the Bot API."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def refund(self, user_id: int, charge_id: str) -> None:
        try:
            await self.bot.refund_star_payment(
                user_id=user_id, telegram_payment_charge_id=charge_id
            )
        except TelegramAPIError as exc:
            raise StarsApiError(exc.message) from None

    async def transactions(self, offset: int, limit: int) -> Sequence[StarTransaction]:
        try:
            answer = await self.bot.get_star_transactions(offset=offset, limit=limit)
        except TelegramAPIError as exc:
            raise StarsApiError(exc.message) from None
        found: list[StarTransaction] = []
        for tx in answer.transactions:  # all of them: the caller pages by their count
            source = tx.source
            if (
                isinstance(source, TransactionPartnerUser)
                and source.transaction_type == "invoice_payment"
            ):
                payload = source.invoice_payload or ""
                found.append(StarTransaction(tx.id, tx.amount, source.user.id, payload))
            else:
                found.append(StarTransaction(tx.id, tx.amount, 0, ""))
        return found


def topup_notice(core: BaseCore, currency: str) -> TopupNotice:
    """The customer's "paid" notice, in the customer's language."""

    def notice(language: str, amount: int, balance: int) -> str:
        return core.get(
            "topup-paid",
            language,
            amount=format_money(amount, currency),
            balance=format_money(balance, currency),
        )

    return notice
