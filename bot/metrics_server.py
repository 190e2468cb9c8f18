"""METRICS_LISTEN: `/metrics` (Prometheus, services/metrics.py) and `/health` (200, or 503
with a JSON reason) on their own port, for a scraper and a load balancer; each process serves
its own."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.settings import listen_address
from db.engine import Database
from services.metrics import ShopFigures, health

log = logging.getLogger(__name__)


class MetricsServer:
    def __init__(self, db: Database, listen: str, outbox_max: int) -> None:
        self.db = db
        self.listen = listen
        self.outbox_max = outbox_max
        self.figures = ShopFigures(db)
        self._runner: web.AppRunner | None = None

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/health", self.health)
        return app

    async def metrics(self, request: web.Request) -> web.Response:
        body = await self.figures.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(self, request: web.Request) -> web.Response:
        found = await health(self.db, self.outbox_max)
        body = {"status": "ok" if found.ok else "fail", "outbox_backlog": found.outbox_backlog}
        if not found.ok:
            body["reason"] = found.reason
        return web.json_response(body, status=200 if found.ok else 503)

    async def start(self) -> None:
        host, port = listen_address(self.listen)
        self._runner = web.AppRunner(self.web_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        log.info("metrics listening", extra={"listen": self.listen})

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
