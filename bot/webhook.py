"""Webhook mode (WEBHOOK_URL set): Telegram posts each update to WEBHOOK_URL, normally a reverse
proxy holding the TLS certificate, which passes it on to WEBHOOK_LISTEN; this process serves it
with aiogram's aiohttp integration (`SimpleRequestHandler`, `setup_application`).

Start-up: the listening socket is bound first (`listen()`, so a port already taken is one line
before anything starts), then the Dispatcher's start-up runs (migrations, jobs, workers), then
the server accepts and `setWebhook` registers the URL, the secret, the update types the routers
use and keeps what Telegram holds already (`drop_pending_updates=False`). A request whose
`X-Telegram-Bot-Api-Secret-Token` header is missing or wrong gets 401 and is never read.

Shutdown (SIGINT/SIGTERM, or `stop` set): the listener closes; requests being received finish
and later ones on open connections get 503 (Telegram delivers them again, to another process
or after the restart); updates being handled finish (`stop_background()` awaits them) and the
background work stops; the bot's session closes last. The webhook is never deleted: several
processes may serve one URL behind one proxy, and a deleteWebhook from the one stopping would
cut the others off, Telegram holding every update until a process sets it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiogram.exceptions import TelegramAPIError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.settings import listen_address
from services.redact import register_secret

if TYPE_CHECKING:  # not imported at run time: `listen()` comes before the app is loaded
    from bot.app import App

log = logging.getLogger(__name__)

RECEIVE_TIMEOUT_S = 10  # requests being received at shutdown: how long to let them finish
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebhookRefused(Exception):
    """setWebhook failed: Telegram refused it (its words) or could not be reached."""


def listen(address: str) -> socket.socket:
    """The listening socket for WEBHOOK_LISTEN (`host:port`); OSError when it cannot be had."""
    host, port = listen_address(address)
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=128)


def webhook_path(url: str) -> str:
    """The path Telegram posts to, as the proxy passes it on (`/` when the URL has none)."""
    return urlsplit(url).path or "/"


class RequestGate:
    """Counts the requests being received; once closed, answers 503 so that Telegram sends the
    update again later rather than to a process that is going away."""

    def __init__(self) -> None:
        self.closed = False
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if self.closed:
            return web.Response(status=503, text="shutting down")
        self._active += 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def close(self, *_: object) -> None:
        """aiohttp's on_shutdown: no new updates; the ones being received are handed over."""
        self.closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), RECEIVE_TIMEOUT_S)
        # Each accepted update is a task of its own: let them start, so that the in-flight
        # middleware knows them before stop_background() waits for it.
        for _turn in range(3):
            await asyncio.sleep(0)


def webhook_settings(app: App) -> tuple[str, str]:
    """WEBHOOK_URL and WEBHOOK_SECRET (the settings make sure the one comes with the other)."""
    url, secret = app.settings.webhook_url, app.settings.webhook_secret
    if not url or secret is None:
        raise ValueError("webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET")
    register_secret(secret.get_secret_value())
    return url, secret.get_secret_value()


def make_web_app(app: App, gate: RequestGate) -> web.Application:
    """The aiohttp application. on_shutdown runs in this order: the gate, the Dispatcher's
    shutdown (in-flight updates, background work, database), then the bot's session."""
    url, secret = webhook_settings(app)
    web_app = web.Application(middlewares=[gate.middleware])
    web_app.on_shutdown.append(gate.close)
    setup_application(web_app, app.dp, bot=app.bot)
    handler = SimpleRequestHandler(app.dp, app.bot, handle_in_background=True, secret_token=secret)
    handler.register(web_app, path=webhook_path(url))
    if app.cryptopay is not None and app.cryptopay.enabled:
        web_app.router.add_post(cryptopay_path(url), partial(cryptopay_webhook, app))
    return web_app


def cryptopay_path(url: str) -> str:
    """Where Crypto Pay posts its updates: WEBHOOK_URL's path + `/cryptopay` (README)."""
    return webhook_path(url).rstrip("/") + "/cryptopay"


async def cryptopay_webhook(app: App, request: web.Request) -> web.Response:
    """Crypto Pay's signed update: 401 for a bad signature (nothing changes), else credited."""
    from services.payments.cryptopay import SIGNATURE_HEADER  # imported late, as App is

    if app.cryptopay is None:
        return web.Response(status=404)
    body = await request.read()
    status = await app.cryptopay.webhook(body, request.headers.get(SIGNATURE_HEADER))
    return web.Response(status=status, text="ok" if status == 200 else "refused")


async def set_webhook(app: App) -> None:
    url, secret = webhook_settings(app)
    try:
        await app.bot.set_webhook(
            url,
            secret_token=secret,
            drop_pending_updates=False,
            allowed_updates=app.dp.resolve_used_update_types(),
        )
    except TelegramAPIError as exc:
        raise WebhookRefused(f"setWebhook failed: {exc.message}") from None
    log.info("webhook set", extra={"url": url})


@contextlib.contextmanager
def _signals(stop: asyncio.Event, enabled: bool) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    handled = (signal.SIGINT, signal.SIGTERM) if enabled else ()
    for sig in handled:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


async def run_webhook(
    app: App,
    listener: socket.socket,
    *,
    handle_signals: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve updates posted to WEBHOOK_URL on `listener` until SIGINT/SIGTERM or `stop`."""
    stop = stop or asyncio.Event()
    runner = web.AppRunner(make_web_app(app, RequestGate()), access_log=None)
    with _signals(stop, handle_signals):
        try:
            await runner.setup()  # the Dispatcher's start-up
        except BaseException:
            listener.close()
            raise
        try:
            await web.SockSite(runner, listener).start()
            await set_webhook(app)
            address = "{}:{}".format(*listener.getsockname()[:2])
            log.info("serving the webhook", extra={"listen": address})
            await stop.wait()
        finally:
            await runner.cleanup()
