"""The reseller API's HTTP server (RESELLER_API_LISTEN): aiohttp, in the bot process or alone
(`python -m bot api`, `run_standalone()`), against the shop's one database.

This module is only the web part: each protocol (services/api/handler_api.py, ...) is served at
its own paths; a request becomes an `ApiRequest` (query and form merged) and the protocol's
`Reply` becomes the response. Limits: bodies up to 64 KB (413 above, nothing read or charged),
a body not sent within BODY_TIMEOUT_S is 408, any failure inside is logged and answered with
the protocol's generic error (never a stack trace). No access log and no log line carries a
request's query or body: API keys travel there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from aiohttp import web

from bot.settings import Settings, listen_address
from db.engine import Database
from services.api.handler_api import HandlerApi
from services.api.keys import ApiKeys
from services.api.protocol import ApiProtocol, ApiRequest, Reply
from services.api.ratelimit import RateLimits
from services.api.shop import ResellerShop
from services.api.smm import ResellerSmm
from services.api.smm_v2 import SmmV2
from services.api.toolvico import Toolvico
from services.otp import ActivationService
from services.shop_state import ShopState
from services.smm import SmmOrderService

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
BODY_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 4.0  # requests being answered finish (a buy cut short is reconciled)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class ResellerApiServer:
    def __init__(
        self, protocols: Sequence[ApiProtocol], listen: str, limits: RateLimits | None = None
    ) -> None:
        self.protocols = tuple(protocols)
        self.listen = listen
        self.limits = limits
        self._runner: web.AppRunner | None = None

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        for protocol in self.protocols:
            for path in protocol.paths:
                app.router.add_route("GET", path, partial(serve, protocol))
                app.router.add_route("POST", path, partial(serve, protocol))
        return app

    async def start(self) -> None:
        host, port = listen_address(self.listen)
        self._runner = web.AppRunner(
            self.web_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        log.info("reseller API listening", extra={"listen": self.listen})

    async def stop(self) -> None:
        """No new requests; the ones being answered finish."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self.limits is not None:
            await self.limits.aclose()


async def serve(protocol: ApiProtocol, request: web.Request) -> web.Response:
    try:
        api_request = await read_request(request)
    except web.HTTPRequestEntityTooLarge:
        return response(protocol.too_large())
    except TimeoutError:
        return response(protocol.too_slow())
    try:
        return response(await protocol.handle(api_request))
    except Exception:
        # The path and the action only: the query and the body hold the API key.
        log.exception(
            "reseller API request failed",
            extra={"path": request.path, "action": api_request.params.get("action", "")[:40]},
        )
        return response(protocol.failure())


async def read_request(request: web.Request) -> ApiRequest:
    """Query and form fields (a form field wins), the headers and the raw body."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    params = dict(request.query)
    body = b""
    if request.method == "POST" and request.can_read_body:
        body = await asyncio.wait_for(request.read(), BODY_TIMEOUT_S)
        if request.content_type in FORM_TYPES:
            if request.content_type == FORM_TYPES[0]:
                form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            else:
                form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
            params.update(form)
    headers = {name.lower(): value for name, value in request.headers.items()}
    return ApiRequest(request.method, request.path, params, headers, body)


def response(reply: Reply) -> web.Response:
    return web.Response(
        status=reply.status,
        text=reply.body,
        content_type=reply.content_type,
        headers=dict(reply.headers),
    )


def make_reseller_api(
    settings: Settings,
    db: Database,
    otp: ActivationService,
    keys: ApiKeys,
    shop_state: ShopState | None = None,
    smm: SmmOrderService | None = None,
) -> ResellerApiServer | None:
    """The server with every protocol, or None when RESELLER_API_LISTEN is unset."""
    if not settings.reseller_api_listen:
        return None
    markup = Decimal(settings.reseller_api_markup_percent)
    reseller_smm = (
        ResellerSmm(db, smm, markup_percent=markup, shop_state=shop_state)
        if smm is not None
        else None
    )
    shop = ResellerShop(db, otp, markup_percent=markup, smm=reseller_smm, shop_state=shop_state)
    bot_id = settings.bot_token.get_secret_value().partition(":")[0]
    limits = RateLimits(settings.reseller_api_rate_per_min, settings.redis_url, namespace=bot_id)
    currency = settings.store_currency
    protocols: list[ApiProtocol] = [
        HandlerApi(shop, keys, limits, currency),
        Toolvico(shop, keys, limits, currency),  # /api/v1/otp, and /api/v1/smm with `smm`
    ]
    if reseller_smm is not None:
        protocols.append(SmmV2(reseller_smm, keys, limits, currency))
    return ResellerApiServer(protocols, settings.reseller_api_listen, limits)


# --- `python -m bot api` ---------------------------------------------------------------------


async def run_standalone(app: App, stop: asyncio.Event | None = None) -> None:
    """The API alone, against the bot's database: migrations, the catalogs from their
    snapshots (followed as the bot process refreshes them), the server; until SIGINT/SIGTERM.
    The bot process (or processes) poll the orders and send the codes."""
    from bot.jobs import CATALOG_SYNC_S, sync_catalogs
    from db.migrate import upgrade
    from services.catalog_store import OTP, SMM, SnapshotSync, load_snapshot

    if app.reseller_api is None:
        raise ValueError("RESELLER_API_LISTEN is not set")
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await upgrade(app.db)
    await app.console.load()
    await load_snapshot(app.db, app.catalog)
    await load_snapshot(app.db, app.smm_catalog, SMM)
    snapshots = (
        SnapshotSync(app.db, app.catalog, OTP),
        SnapshotSync(app.db, app.smm_catalog, SMM),
    )
    await app.reseller_api.start()
    try:
        # Catalog snapshots, and the admins' markups, rules, rates and switches: another
        # process's change shows here within one poll interval, as in every bot process.
        every_s = min(CATALOG_SYNC_S, app.settings.poll_interval_s)
        while not stop.is_set():
            await sync_catalogs(*snapshots)
            await app.console.sync()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await app.reseller_api.stop()
        await app.otp.stop()
        for provider in app.providers.values():
            await provider.aclose()
        for smm_provider in app.smm_providers.values():
            await smm_provider.aclose()
        await app.bot.session.close()
        await app.db.dispose()
        log.info("reseller API stopped")
