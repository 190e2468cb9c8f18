"""/broadcast and its cancel button, for ADMIN_IDS only (anyone else falls through to the
unknown-command answer). The sending itself is services/broadcast.py."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder
from aiogram_i18n import I18nContext
from aiogram_i18n.cores import FluentRuntimeCore

from handlers.common import ShopSettings
from handlers.routing import RouterTemplate
from services import broadcast as bc
from services.broadcast import BroadcastBusy, BroadcastService, BroadcastView

log = logging.getLogger(__name__)
router = RouterTemplate(name=__name__)
Translate = Callable[..., str]

_COMMAND = re.compile(r"^/\S+\s*")
TITLE_KEYS = {
    bc.RUNNING: "broadcast-progress-running",
    bc.DONE: "broadcast-progress-done",
    bc.CANCELLED: "broadcast-progress-cancelled",
}


class FromAdmin(Filter):
    async def __call__(self, event: Message | CallbackQuery, settings: ShopSettings) -> bool:
        return event.from_user is not None and settings.is_admin(event.from_user.id)


router.message.filter(FromAdmin())
router.callback_query.filter(FromAdmin())


class BroadcastCb(CallbackData, prefix="bc"):
    a: str  # c = cancel
    i: int


def render(view: BroadcastView, translate: Translate) -> str:
    title = translate(
        TITLE_KEYS.get(view.status, "broadcast-progress-running"),
        id=str(view.id),
        done=view.done,
        total=view.total,
        percent=view.percent,
    )
    counts = translate(
        "broadcast-progress-counts", sent=view.sent, blocked=view.blocked, failed=view.failed
    )
    return f"{title}\n{counts}"


def keyboard(view: BroadcastView, translate: Translate) -> InlineKeyboardMarkup | None:
    if view.status != bc.RUNNING:
        return None
    kb = InlineKeyboardBuilder()
    kb.button(
        text=translate("broadcast-button-cancel"), callback_data=BroadcastCb(a="c", i=view.id)
    )
    return kb.as_markup()


class BroadcastPresenter:
    """The service's `progress`: edits the one progress message, in the admin's language."""

    def __init__(self, bot: Bot, core: FluentRuntimeCore, default_language: str) -> None:
        self.bot = bot
        self.core = core
        self.default_language = default_language

    async def __call__(self, view: BroadcastView) -> None:
        if view.chat_id is None or view.message_id is None:
            return
        language = view.language or self.default_language

        def translate(key: str, **values: object) -> str:
            return self.core.get(key, language, **values)

        try:
            await self.bot.edit_message_text(
                text=render(view, translate),
                chat_id=view.chat_id,
                message_id=view.message_id,
                reply_markup=keyboard(view, translate),
            )
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message:
                log.info("broadcast progress not shown", extra={"detail": exc.message})
        except TelegramAPIError as exc:
            log.info("broadcast progress not shown", extra={"detail": str(exc)})


def broadcast_text(message: Message, command: CommandObject) -> str:
    """The HTML to send: what follows the command, else the replied-to message's text."""
    if command.args and command.args.strip():
        return _COMMAND.sub("", message.html_text, count=1).strip()
    replied = message.reply_to_message
    if replied is not None and replied.text:
        return replied.html_text.strip()
    return ""


@router.message(Command("broadcast"))
async def cmd_broadcast(
    message: Message, command: CommandObject, i18n: I18nContext, broadcasts: BroadcastService
) -> None:
    text = broadcast_text(message, command)
    if not text or message.from_user is None:
        await message.answer(i18n.get("broadcast-usage"))
        return
    try:
        view = await broadcasts.create(message.from_user.id, text)
    except BroadcastBusy as exc:
        await message.answer(i18n.get("broadcast-busy", id=str(exc.broadcast_id)))
        return
    log.info(
        "admin broadcast",
        extra={"admin_id": message.from_user.id, "broadcast_id": view.id, "total": view.total},
    )
    shown: Message | None = None
    try:
        shown = await message.answer(render(view, i18n.get), reply_markup=keyboard(view, i18n.get))
    finally:  # without its progress message, it still goes out
        if shown is not None:
            await broadcasts.start(view.id, shown.chat.id, shown.message_id)
        else:
            await broadcasts.start(view.id)


@router.message(Command("broadcast_cancel"))
async def cmd_broadcast_cancel(
    message: Message, command: CommandObject, i18n: I18nContext, broadcasts: BroadcastService
) -> None:
    args = (command.args or "").strip().removeprefix("#")
    if args and not re.fullmatch(r"[0-9]{1,18}", args):  # ASCII digits: "²".isdigit() is True
        await message.answer(i18n.get("broadcast-cancel-usage"))
        return
    view = await broadcasts.cancel(int(args) if args else None)
    if view is None:
        await message.answer(i18n.get("broadcast-not-running"))
        return
    await message.answer(render(view, i18n.get))


@router.callback_query(BroadcastCb.filter())
async def on_broadcast_cancel(
    query: CallbackQuery,
    callback_data: BroadcastCb,
    i18n: I18nContext,
    broadcasts: BroadcastService,
) -> None:
    view = await broadcasts.cancel(callback_data.i)
    if view is None:
        await query.answer(i18n.get("broadcast-not-running"))
        return
    await query.answer(i18n.get("broadcast-cancelled", id=str(view.id)))
