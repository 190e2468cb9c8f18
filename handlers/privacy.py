"""/forget: a customer erases the phone numbers, SMS texts and codes of their own ended orders
(services/retention.py); the money records stay. Asked once more before anything is erased."""

from __future__ import annotations

from aiogram import F
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message
from aiogram_i18n import I18nContext

from db.models import User
from handlers.common import number
from handlers.menu import MenuAction, MenuCb, back_to_menu
from handlers.render import Keyboard, show
from handlers.routing import RouterTemplate
from services.retention import Retention

router = RouterTemplate(name=__name__)


class ForgetCb(CallbackData, prefix="fg"):
    action: str  # "yes"


@router.message(Command("forget"))
async def cmd_forget(message: Message, i18n: I18nContext) -> None:
    kb = Keyboard()
    kb.button(text=i18n.get("forget-button"), callback_data=ForgetCb(action="yes"))
    kb.button(text=i18n.get("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))
    kb.adjust(1)
    await message.answer(i18n.get("forget-ask"), reply_markup=kb.as_markup())


@router.callback_query(ForgetCb.filter(F.action == "yes"))
async def on_forget(
    query: CallbackQuery, user: User, i18n: I18nContext, retention: Retention
) -> None:
    erased = await retention.forget(user.id)
    await show(query, i18n.get("forget-done", count=number(erased.orders)), back_to_menu(i18n))
