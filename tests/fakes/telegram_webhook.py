"""The webhook half of the fake Bot API (tests/fakes/telegram.py): setWebhook, deleteWebhook,
getWebhookInfo, and delivery the way Telegram does it.

With a webhook set, updates are no longer handed to getUpdates (which fails with 409, as
Telegram's does): each one is POSTed as JSON to the registered URL with the secret in the
`X-Telegram-Bot-Api-Secret-Token` header, in order, one at a time; an answer other than 2xx (or
no answer) keeps it pending and it is posted again after `webhook_retry_s`. Updates of a type
left out of `allowed_updates` are dropped, as Telegram drops them.

`post_webhook()` lets a test post anything to the registered URL with any header (or none),
like someone who is not Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class Delivery:
    update_id: int
    status: int | None  # the HTTP status, None when nothing answered
    secret_sent: str | None
    at: float = field(default_factory=time.monotonic)


class WebhookApi:
    """Mixed into FakeTelegram; uses its update queue, its condition and its `_notify()`
    (FakeTelegram's own)."""

    _updates: list[dict]
    _changed: asyncio.Condition
    _closing: bool

    def _init_webhook(self) -> None:
        self.webhook: Webhook | None = None
        self.deliveries: list[Delivery] = []
        self.webhook_retry_s = 0.2
        self._client: aiohttp.ClientSession | None = None
        self._delivery_task: asyncio.Task[None] | None = None

    async def _close_webhook(self) -> None:
        if self._delivery_task is not None:
            self._delivery_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery_task
        if self._client is not None:
            await self._client.close()

    # --- the Bot API ---------------------------------------------------------------------

    async def api_setwebhook(self, params: dict) -> bool:
        from tests.fakes.telegram import TelegramError

        url = params.get("url", "")
        if not url:  # Telegram: an empty URL removes the webhook
            return await self.api_deletewebhook(params)
        parts = urlsplit(url)
        local = parts.hostname in {"127.0.0.1", "localhost"}
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise TelegramError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(secret):
            raise TelegramError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if _true(params.get("drop_pending_updates")):
            self._updates.clear()
        self.webhook = Webhook(
            url=url,
            secret_token=secret,
            allowed_updates=json.loads(allowed) if allowed else None,
            max_connections=int(params.get("max_connections", 40) or 40),
        )
        if self._delivery_task is None:
            self._delivery_task = asyncio.create_task(self._deliver())
        return True

    async def api_deletewebhook(self, params: dict) -> bool:
        self.webhook = None
        if _true(params.get("drop_pending_updates")):
            self._updates.clear()
        return True

    async def api_getwebhookinfo(self, params: dict) -> dict:
        hook = self.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    def _refuse_get_updates(self) -> None:
        from tests.fakes.telegram import TelegramError

        if self.webhook is not None:
            raise TelegramError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )

    # --- what tests use ------------------------------------------------------------------

    async def post_webhook(
        self, payload: dict, *, secret: str | None, url: str | None = None
    ) -> tuple[int, str]:
        """POST `payload` to the registered webhook (or `url`) with `secret` in the header
        (None: no header); the status and body. Not an update Telegram knows of."""
        target = url or (self.webhook.url if self.webhook else None)
        assert target, "no webhook is set"
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with (
            aiohttp.ClientSession() as client,
            client.post(target, json=payload, headers=headers) as response,
        ):
            return response.status, await response.text()

    def delivered(self, update_id: int) -> bool:
        return any(d.update_id == update_id and _ok(d.status) for d in self.deliveries)

    # --- delivery --------------------------------------------------------------------------

    async def _next(self) -> tuple[Webhook, dict] | None:
        async with self._changed:
            while not (self.webhook and self._updates) and not self._closing:
                await self._changed.wait()
        if self._closing or self.webhook is None or not self._updates:
            return None
        return self.webhook, self._updates[0]

    async def _deliver(self) -> None:
        while not self._closing:
            item = await self._next()
            if item is None:
                continue
            hook, update = item
            kinds = [key for key in update if key != "update_id"]
            if hook.allowed_updates is not None and not set(kinds) & set(hook.allowed_updates):
                self._updates.remove(update)  # Telegram never sends what was not asked for
                continue
            status = await self._post(hook, update)
            self.deliveries.append(Delivery(update["update_id"], status, hook.secret_token))
            if _ok(status):
                with contextlib.suppress(ValueError):
                    self._updates.remove(update)
            else:
                hook.last_error_date = int(time.time())
                hook.last_error_message = (
                    f"Wrong response from the webhook: {status}"
                    if status is not None
                    else "Connection refused"
                )
            await self._notify()
            if not _ok(status):
                await asyncio.sleep(self.webhook_retry_s)

    async def _post(self, hook: Webhook, update: dict) -> int | None:
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {SECRET_HEADER: hook.secret_token} if hook.secret_token else {}
        try:
            async with self._client.post(hook.url, json=update, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def _true(value: Any) -> bool:
    return str(value).lower() in {"true", "1"}
