"""Admin `/api <user> on|off`: whether a customer may use the reseller API. Off stops their
key at once (it is checked at every request) and hides key creation on their 🔑 API screen."""

from __future__ import annotations

from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram_i18n import I18nContext

from handlers.admin import IsAdmin, ambiguous_user_text
from handlers.routing import RouterTemplate
from services.accounts import AmbiguousUser
from services.api.keys import ApiKeys
from services.text import escape

router = RouterTemplate(name=__name__)
router.message.filter(IsAdmin())

SWITCH = {"on": True, "off": False}


@router.message(Command("api"))
async def cmd_api(
    message: Message, command: CommandObject, i18n: I18nContext, api_keys: ApiKeys
) -> None:
    parts = (command.args or "").split()
    if len(parts) != 2 or parts[1].lower() not in SWITCH:
        await message.answer(i18n.get("admin-api-usage"))
        return
    query, on = parts[0], SWITCH[parts[1].lower()]
    try:
        user = await api_keys.set_allowed(query, on)
    except AmbiguousUser as exc:
        await message.answer(ambiguous_user_text(i18n, exc))
        return
    except LookupError:
        await message.answer(i18n.get("admin-user-not-found", query=escape(query)))
        return
    key = "admin-api-on" if on else "admin-api-off"
    await message.answer(i18n.get(key, user=str(user.id)))
