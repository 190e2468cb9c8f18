"""Last router: anything no feature claimed gets a clear, harmless answer."""

from __future__ import annotations

from aiogram import F
from aiogram.types import CallbackQuery, Message
from aiogram_i18n import I18nContext

from handlers.routing import RouterTemplate

router = RouterTemplate(name=__name__)


@router.message(F.chat.type == "private", F.text.startswith("/"))
async def on_unknown_command(message: Message, i18n: I18nContext) -> None:
    await message.answer(i18n.get("unknown-command"))


@router.message(F.chat.type == "private")
async def on_other_message(message: Message, i18n: I18nContext) -> None:
    await message.answer(i18n.get("unknown-text"))


@router.callback_query()
async def on_unknown_callback(query: CallbackQuery, i18n: I18nContext) -> None:
    await query.answer(i18n.get("callback-stale"), show_alert=True)
