"""Telegram-side plumbing: flood-limit waiting for every request, and the workers' sender."""

from __future__ import annotations

import asyncio
import logging
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

from services.outbox import SendResult, SendStatus

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


def make_sender(bot: Bot, *, message_thread_id: int | None = None) -> Any:
    """The workers' `send` (outbox, group, broadcasts): Telegram errors become SendResults,
    never exceptions, and a flood limit is reported at once rather than waited out here (the
    worker stops all its sending for that long). `message_thread_id` posts into a forum topic
    (the notification group's NOTIFY_THREAD_ID)."""

    async def send(chat_id: int, text: str) -> SendResult:
        worker_send = _WORKER_SEND.set(True)
        try:
            await bot.send_message(chat_id, text, message_thread_id=message_thread_id)
        except TelegramRetryAfter as exc:
            return SendResult(SendStatus.RETRY_AFTER, retry_after_s=exc.retry_after)
        except (TelegramForbiddenError, TelegramNotFound) as exc:
            return SendResult(SendStatus.BLOCKED, detail=exc.message)
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

    return send
