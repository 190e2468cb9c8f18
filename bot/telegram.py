"""Telegram-side plumbing: flood-limit waiting for every request, and the workers' sender."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InlineKeyboardMarkup

from services.outbox import Editor, Sender, SendResult, SendStatus

log = logging.getLogger(__name__)

# Set while a worker's sender (make_sender) calls Telegram: the worker handles a flood limit
# itself (it pauses all its sending, not one request), so the middleware must not wait it out.
_WORKER_SEND: ContextVar[bool] = ContextVar("worker_send", default=False)


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Waits out Telegram's 429 `retry_after` and repeats the request, a few times at most
    (not for the workers' sends: they pause everything they send, see make_sender)."""

    def __init__(self, max_retries: int = 3, max_wait_s: float = 60.0) -> None:
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        attempt = 0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                attempt += 1
                if (
                    _WORKER_SEND.get()
                    or attempt > self.max_retries
                    or exc.retry_after > self.max_wait_s
                ):
                    raise
                log.warning(
                    "telegram flood limit, waiting",
                    extra={"method": type(method).__name__, "retry_after": exc.retry_after},
                )
                await asyncio.sleep(exc.retry_after)


class KeepResponseTypes(BaseRequestMiddleware):
    """aiogram reads every answer through `Response[<what the method returns>]`, a generic
    pydantic model made on each call; pydantic keeps the classes it made only weakly, so after
    a garbage collection the next call builds the class again (5-10 ms of CPU each time, a
    sixth of an update's CPU in bench/dispatch.py's profile). One strong reference per method
    keeps them built."""

    def __init__(self) -> None:
        self._kept: dict[type[TelegramMethod[Any]], type[Response[Any]]] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        kind = type(method)
        if kind not in self._kept:
            self._kept[kind] = Response[method.__returning__]  # type: ignore[name-defined]
        return await make_request(bot, method)


def make_sender(bot: Bot, *, message_thread_id: int | None = None) -> Sender:
    """The workers' `send` (outbox, group, broadcasts): Telegram errors become SendResults,
    never exceptions, and a flood limit is reported at once rather than waited out here (the
    worker stops all its sending for that long). `message_thread_id` posts into a forum topic
    (the notification group's NOTIFY_THREAD_ID)."""

    async def send(chat_id: int, text: str) -> SendResult:
        return await _attempt(bot.send_message(chat_id, text, message_thread_id=message_thread_id))

    return send


def make_markup_sender(
    bot: Bot, *, message_thread_id: int | None = None
) -> Callable[[int, str, InlineKeyboardMarkup | None], Awaitable[SendResult]]:
    """make_sender's with inline buttons: the notification group's alerts that need a
    decision (handlers/group_actions.py)."""

    async def send(chat_id: int, text: str, markup: InlineKeyboardMarkup | None) -> SendResult:
        request = bot.send_message(
            chat_id, text, message_thread_id=message_thread_id, reply_markup=markup
        )
        return await _attempt(request)

    return send


def make_editor(bot: Bot) -> Editor:
    """The outbox's `edit` (the activation cards): like make_sender's, for editMessageText;
    "message is not modified" is done (it shows that already), a message gone or no longer
    editable is refused (never retried), and neither marks the user as having blocked the bot."""

    async def edit(chat_id: int, message_id: int, text: str, markup: str | None) -> SendResult:
        reply_markup = None if markup is None else InlineKeyboardMarkup.model_validate_json(markup)
        request = bot.edit_message_text(
            text=text, chat_id=chat_id, message_id=message_id, reply_markup=reply_markup
        )
        result = await _attempt(request, edit=True)
        if result.status is SendStatus.REJECTED and "not modified" in result.detail:
            return SendResult(SendStatus.SENT, detail=result.detail)
        return result

    return edit


async def _attempt(request: Awaitable[Any], *, edit: bool = False) -> SendResult:
    """One worker's call to Telegram, its error as a SendResult. A flood limit is reported at
    once (the worker stops all its sending for that long), not waited out per request."""
    worker_send = _WORKER_SEND.set(True)
    try:
        await request
    except TelegramRetryAfter as exc:
        return SendResult(SendStatus.RETRY_AFTER, retry_after_s=exc.retry_after)
    except TelegramForbiddenError as exc:
        return SendResult(SendStatus.BLOCKED, detail=exc.message)
    except TelegramNotFound as exc:
        return SendResult(SendStatus.REJECTED if edit else SendStatus.BLOCKED, detail=exc.message)
    except TelegramBadRequest as exc:
        # A chat or forum topic that is gone is the place's fault, not the text's: such a
        # message is not "rejected" (the notification group drops rejected lines).
        if any(gone in exc.message.lower() for gone in ("chat not found", "thread not found")):
            return SendResult(SendStatus.BLOCKED, detail=exc.message)
        return SendResult(SendStatus.REJECTED, detail=exc.message)
    except (TelegramNetworkError, TelegramServerError) as exc:
        return SendResult(SendStatus.FAILED, detail=str(exc))
    finally:
        _WORKER_SEND.reset(worker_send)
    return SendResult(SendStatus.SENT)
