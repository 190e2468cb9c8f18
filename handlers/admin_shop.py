"""The owner's shop-wide commands: /maintenance and /export. Admin-only at router level."""

from __future__ import annotations

import asyncio
import logging

from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.types import FSInputFile, Message
from aiogram_i18n import I18nContext

from handlers.admin import IsAdmin
from handlers.routing import RouterTemplate
from services import exports
from services.shop_state import ShopState
from services.text import escape

log = logging.getLogger(__name__)
router = RouterTemplate(name=__name__)
router.message.filter(IsAdmin())


@router.message(Command("maintenance"))
async def cmd_maintenance(
    message: Message, command: CommandObject, i18n: I18nContext, shop_state: ShopState
) -> None:
    word, _, text = (command.args or "").strip().partition(" ")
    admin_id = message.from_user.id if message.from_user else 0
    match word.lower():
        case "on":
            await shop_state.set_maintenance(text.strip(), admin_id)
            shown = escape(text.strip()) or i18n.get("maintenance-default")
            await message.answer(i18n.get("admin-maintenance-on", text=shown))
        case "off":
            await shop_state.set_maintenance(None, admin_id)
            await message.answer(i18n.get("admin-maintenance-off"))
        case "":
            current = await shop_state.maintenance()
            if current is None:
                await message.answer(i18n.get("admin-maintenance-is-off"))
            else:
                shown = escape(current) or i18n.get("maintenance-default")
                await message.answer(i18n.get("admin-maintenance-is-on", text=shown))
        case _:
            await message.answer(i18n.get("admin-maintenance-usage"))


@router.message(Command("export"))
async def cmd_export(
    message: Message, command: CommandObject, i18n: I18nContext, exporter: exports.Exporter
) -> None:
    words = (command.args or "").split()
    if not words or words[0].lower() not in exports.KINDS:
        await message.answer(i18n.get("admin-export-usage"))
        return
    kind = words[0].lower()
    try:
        period = exports.parse_period(words[1:])
    except exports.BadPeriod:
        await message.answer(i18n.get("admin-export-usage"))
        return
    try:
        path, count = await exporter.export(kind, period)
    except exports.ExportInterrupted:
        await message.answer(i18n.get("admin-export-interrupted"))
        return
    try:
        await message.answer_document(
            FSInputFile(path, filename=_filename(kind, words[1:])),
            caption=i18n.get("admin-export-done", kind=kind, rows=str(count)),
        )
    except TelegramAPIError as exc:
        log.warning("export not sent", extra={"kind": kind, "error": str(exc)})
        await message.answer(i18n.get("admin-export-failed"))
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


def _filename(kind: str, days: list[str]) -> str:
    return "-".join([kind, *days]) + ".csv"
