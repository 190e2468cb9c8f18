"""🔑 API: the customer's reseller API key (create, shown once; roll; delete), whether codes of
API orders are pushed to this chat, and the base URL. Only with RESELLER_API_LISTEN set."""

from __future__ import annotations

from enum import StrEnum

from aiogram import F
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup
from aiogram_i18n import I18nContext

from db.models import User
from handlers.common import ShopSettings
from handlers.menu import MenuAction, MenuCb
from handlers.render import Keyboard, show
from handlers.routing import RouterTemplate
from services.api.keys import ApiKeys, ApiOff, KeyInfo
from services.text import escape

router = RouterTemplate(name=__name__)


def _api_on(_: CallbackQuery, settings: ShopSettings) -> bool:
    """Without RESELLER_API_LISTEN the screen does not exist (a forged press falls through)."""
    return settings.api


router.callback_query.filter(_api_on)

HANDLER_API_PATH = "/stubs/handler_api.php"
TOOLVICO_PATH = "/api/v1"  # + /otp, /smm
SMM_V2_PATH = "/api/v2"


class ApiAction(StrEnum):
    SHOW = "show"
    CREATE = "new"
    ROLL = "roll"  # asks first: the old key stops working at once
    ROLL_OK = "rollok"
    DELETE = "del"
    DELETE_OK = "delok"
    PUSH = "push"  # push codes of API orders to this chat: on <-> off


class ApiCb(CallbackData, prefix="ak"):
    action: ApiAction


def _button(kb: Keyboard, i18n: I18nContext, key: str, action: ApiAction) -> None:
    kb.button(text=i18n.get(key), callback_data=ApiCb(action=action))


def _menu_button(kb: Keyboard, i18n: I18nContext) -> None:
    kb.button(text=i18n.get("button-menu"), callback_data=MenuCb(action=MenuAction.MAIN))


def _keyboard(i18n: I18nContext, info: KeyInfo | None, allowed: bool) -> InlineKeyboardMarkup:
    kb = Keyboard()
    if allowed and info is None:
        _button(kb, i18n, "api-button-create", ApiAction.CREATE)
    elif allowed and info is not None:
        _button(kb, i18n, "api-button-roll", ApiAction.ROLL)
        _button(kb, i18n, "api-button-delete", ApiAction.DELETE)
        push = "api-button-push-on" if info.push_codes else "api-button-push-off"
        _button(kb, i18n, push, ApiAction.PUSH)
    _menu_button(kb, i18n)
    kb.adjust(*((2, 1, 1) if allowed and info is not None else (1, 1)))
    return kb.as_markup()


def _screen(i18n: I18nContext, settings: ShopSettings, info: KeyInfo | None, allowed: bool) -> str:
    lines = [i18n.get("api-title"), ""]
    if not allowed:
        lines.append(i18n.get("api-off"))
        return "\n".join(lines)
    if info is None:
        lines.append(i18n.get("api-no-key"))
    else:
        used = info.last_used_at.strftime("%Y-%m-%d %H:%M") if info.last_used_at else "—"
        lines.append(
            i18n.get("api-key-info", created=info.created_at.strftime("%Y-%m-%d"), used=used)
        )
        lines.append(i18n.get("api-push-on" if info.push_codes else "api-push-off"))
    base = settings.api_url
    lines += [
        "",
        i18n.get(
            "api-urls",
            handler_api=escape(base + HANDLER_API_PATH),
            toolvico=escape(base + TOOLVICO_PATH),
            smm_v2=escape(base + SMM_V2_PATH),
        ),
    ]
    return "\n".join(lines)


async def _show(
    query: CallbackQuery,
    user: User,
    i18n: I18nContext,
    settings: ShopSettings,
    api_keys: ApiKeys,
    new_key: str | None = None,
) -> None:
    info = await api_keys.info(user.id)
    allowed = await api_keys.allowed(user.id)
    text = _screen(i18n, settings, info, allowed)
    if new_key is not None:
        text = i18n.get("api-key-new", key=escape(new_key)) + "\n\n" + text
    await show(query, text, _keyboard(i18n, info, allowed))


@router.callback_query(MenuCb.filter(F.action == MenuAction.API))
async def on_api_menu(
    query: CallbackQuery, user: User, i18n: I18nContext, settings: ShopSettings, api_keys: ApiKeys
) -> None:
    await _show(query, user, i18n, settings, api_keys)


@router.callback_query(ApiCb.filter(F.action == ApiAction.SHOW))
async def on_api_show(
    query: CallbackQuery, user: User, i18n: I18nContext, settings: ShopSettings, api_keys: ApiKeys
) -> None:
    await _show(query, user, i18n, settings, api_keys)


@router.callback_query(ApiCb.filter(F.action.in_({ApiAction.CREATE, ApiAction.ROLL_OK})))
async def on_api_create(
    query: CallbackQuery, user: User, i18n: I18nContext, settings: ShopSettings, api_keys: ApiKeys
) -> None:
    """A new key, shown in this message only: the shop keeps its hash, never the key."""
    try:
        key = await api_keys.create(user.id)
    except ApiOff:
        await query.answer(i18n.get("api-off-error"), show_alert=True)
        return
    await _show(query, user, i18n, settings, api_keys, new_key=key)


@router.callback_query(ApiCb.filter(F.action.in_({ApiAction.ROLL, ApiAction.DELETE})))
async def on_api_confirm(query: CallbackQuery, callback_data: ApiCb, i18n: I18nContext) -> None:
    rolling = callback_data.action == ApiAction.ROLL
    kb = Keyboard()
    if rolling:
        _button(kb, i18n, "api-button-roll-confirm", ApiAction.ROLL_OK)
    else:
        _button(kb, i18n, "api-button-delete-confirm", ApiAction.DELETE_OK)
    _button(kb, i18n, "button-back", ApiAction.SHOW)
    kb.adjust(1, 1)
    await show(query, i18n.get("api-roll-ask" if rolling else "api-delete-ask"), kb.as_markup())


@router.callback_query(ApiCb.filter(F.action == ApiAction.DELETE_OK))
async def on_api_delete(
    query: CallbackQuery, user: User, i18n: I18nContext, settings: ShopSettings, api_keys: ApiKeys
) -> None:
    await api_keys.delete(user.id)
    await query.answer(i18n.get("api-deleted"))
    await _show(query, user, i18n, settings, api_keys)


@router.callback_query(ApiCb.filter(F.action == ApiAction.PUSH))
async def on_api_push(
    query: CallbackQuery, user: User, i18n: I18nContext, settings: ShopSettings, api_keys: ApiKeys
) -> None:
    info = await api_keys.info(user.id)
    if info is not None:
        await api_keys.set_push_codes(user.id, not info.push_codes)
    await _show(query, user, i18n, settings, api_keys)
