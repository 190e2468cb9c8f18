"""The buttons on the notification group's alerts (services/group_actions.py does the work):
Refund / Adopt on an unknown order, Switch off on a provider's error burst, Show providers on
a low balance. Only ADMIN_IDS may press them: anyone else is told so and nothing changes. The
alert is edited to say who did what; a later press says what was done and by whom."""

from __future__ import annotations

import logging
from typing import Any

from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram_i18n import I18nContext
from aiogram_i18n.cores import BaseCore

from handlers.admin_console import providers_text
from handlers.common import ShopSettings
from handlers.routing import RouterTemplate
from services.console import AdminConsole
from services.group_actions import ActionError, Done, GroupActions
from services.money import format_money
from services.notifier import GroupAlert
from services.text import escape, mention

log = logging.getLogger(__name__)
router = RouterTemplate(name=__name__)


class GroupActionCb(CallbackData, prefix="ga"):
    """`ga:r:123`: a verb's letter and the alert's notification id (well within 64 bytes)."""

    v: str
    n: int


VERBS = {"r": "refund", "a": "adopt", "o": "off", "p": "show"}
LETTERS = {verb: letter for letter, verb in VERBS.items()}
BUTTONS = {"order": ("refund", "adopt"), "provider": ("off",), "balance": ("show",)}
BUTTON_KEYS = {
    "refund": "group-button-refund",
    "adopt": "group-button-adopt",
    "off": "group-button-off",
    "show": "group-button-show",
}
REFUSAL_KEYS = {  # services.group_actions.ActionError codes
    "unknown": "group-action-unknown",
    "gone": "group-action-gone",
    "busy": "group-action-busy",
    "needs-id": "group-action-needs-id",
}
OUTCOME_KEYS = {  # what services.group_actions records
    "refunded": "group-action-what-refunded",
    "already-refunded": "group-action-what-already-refunded",
    "adopted": "group-action-what-adopted",
    "settled": "group-action-what-settled",
    "switched-off": "group-action-what-switched-off",
}


def alert_keyboard(core: BaseCore[Any], language: str, alert: GroupAlert) -> InlineKeyboardMarkup:
    """The buttons of an alert, in the group's language (bot/group.py make_group_sender)."""
    row = [
        InlineKeyboardButton(
            text=core.get(BUTTON_KEYS[verb], language),
            callback_data=GroupActionCb(v=LETTERS[verb], n=alert.notification_id).pack(),
        )
        for verb in BUTTONS.get(alert.action, ())
    ]
    return InlineKeyboardMarkup(inline_keyboard=[row])


@router.callback_query(GroupActionCb.filter())
async def on_group_action(
    callback: CallbackQuery,
    callback_data: GroupActionCb,
    i18n: I18nContext,
    settings: ShopSettings,
    group_actions: GroupActions,
    admin_console: AdminConsole,
) -> None:
    if not settings.is_admin(callback.from_user.id):
        await callback.answer(i18n.get("group-action-admins-only"), show_alert=True)
        return
    verb = VERBS.get(callback_data.v, "")
    message = callback.message if isinstance(callback.message, Message) else None
    try:
        if verb == "show":
            await group_actions.alert(callback_data.n, verb)
            if message is not None:
                await message.reply(await providers_text(i18n, settings, admin_console))
            await callback.answer()
            return
        outcome = await group_actions.perform(
            callback_data.n, verb, callback.from_user.id, notice=_notice(i18n, settings)
        )
    except ActionError as exc:
        key = REFUSAL_KEYS.get(exc.code, "group-action-unknown")
        await callback.answer(i18n.get(key, order=exc.target), show_alert=True)
        return
    line = _done_line(outcome.done, i18n, settings)
    # A later press heals an alert still showing its buttons (the first press's edit was
    # lost), but never with an action still being done: the one doing it edits it then.
    done = outcome.done.outcome is not None
    if message is not None and (outcome.mine or (done and message.reply_markup is not None)):
        try:
            await message.edit_text(f"{outcome.alert.text}\n\n{line}", reply_markup=None)
        except TelegramBadRequest as exc:  # gone, or already shows it
            log.info("group alert not edited", extra={"detail": exc.message})
    if outcome.mine:
        await callback.answer()
        return
    await callback.answer(_plain_done(outcome.done, i18n, settings), show_alert=True)


def _notice(i18n: I18nContext, settings: ShopSettings) -> Any:
    """The customer's message about a refund, in their language (as /refund sends it)."""
    core, currency = i18n.core, settings.store_currency

    def notice(language: str, amount: int) -> str:
        return core.get("refund-by-shop", language, amount=format_money(amount, currency))

    return notice


def _what(done: Done, i18n: I18nContext, settings: ShopSettings) -> str:
    """What was done, in words (plain values: the callers escape for HTML)."""
    if done.outcome is None:
        return i18n.get("group-action-what-running", verb=done.verb)
    detail = done.detail or ""
    if done.outcome == "refunded":
        amount = format_money(int(detail), settings.store_currency) if detail.isdigit() else "?"
        return i18n.get("group-action-what-refunded", order=done.target, amount=amount)
    key = OUTCOME_KEYS.get(done.outcome, "group-action-what-settled")
    return i18n.get(key, order=done.target, provider=done.target, what=detail)


def _done_line(done: Done, i18n: I18nContext, settings: ShopSettings) -> str:
    """The line the alert gets: what was done, by whom (a mention), when."""
    return i18n.get(
        "group-action-done",
        what=escape(_what(done, i18n, settings)),
        admin=mention(done.admin_id, done.admin_name),
        at=f"{done.at:%Y-%m-%d %H:%M} UTC",
    )


def _plain_done(done: Done, i18n: I18nContext, settings: ShopSettings) -> str:
    """A later press's answer (a popup: plain text, at most 200 characters)."""
    who = f"{done.admin_name} ({done.admin_id})" if done.admin_name else str(done.admin_id)
    text = i18n.get(
        "group-action-already",
        what=_what(done, i18n, settings),
        admin=who,
        at=f"{done.at:%Y-%m-%d %H:%M} UTC",
    )
    return text[:200]
