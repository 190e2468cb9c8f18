"""The catch-all error handler: log with the update id, tell the user, never stay silent."""

from __future__ import annotations

import contextlib
import logging

from aiogram.exceptions import TelegramAPIError, TelegramForbiddenError
from aiogram.types import ErrorEvent

from handlers.routing import RouterTemplate

log = logging.getLogger(__name__)
router = RouterTemplate(name=__name__)


@router.errors()
async def on_error(event: ErrorEvent, **data) -> bool:
    update = event.update
    if isinstance(event.exception, TelegramForbiddenError):
        # The user blocked the bot while being answered: nothing broke, and nobody to tell.
        log.info("the chat is closed to the bot", extra={"update_id": update.update_id})
        return True
    log.error(
        "unhandled error in a handler",
        exc_info=event.exception,
        extra={"update_id": update.update_id},
    )
    errors_seen = data.get("error_counter")
    if errors_seen is not None:
        errors_seen.append(update.update_id)
    i18n = data.get("i18n")
    text = i18n.get("error-unexpected") if i18n is not None else "Sorry, something went wrong."
    with contextlib.suppress(TelegramAPIError):
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        elif update.message is not None and update.message.chat.type == "private":
            await update.message.answer(text)
    return True
