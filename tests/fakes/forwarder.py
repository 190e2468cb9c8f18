"""A round-robin forwarder: the load balancer in front of several bot processes serving one
webhook (WEBHOOK_URL points here, each process listens on a WEBHOOK_LISTEN of its own).

Every POST, its body and its `X-Telegram-Bot-Api-Secret-Token` header, goes to the next backend
in turn; a backend that does not answer (connection refused: the process is dead or not yet
listening; or the connection dropped before an answer) is skipped for the next one, and the
status of the first that answers is passed back as it is. When none answers: 502, and the fake
Bot API posts the update again later, as Telegram does.

A backend can also be taken out of the rotation and put back (`down()`, `up()`): the health
check of a real load balancer, which sends nothing to a process that is restarting until it
serves again. (A restarting bot binds its port before its start-up is done: without that, a
request would wait in the port's backlog for the whole start-up.)
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections import Counter

import aiohttp
from aiohttp import web

from tests.fakes.telegram_webhook import SECRET_HEADER

PATH = "/telegram/webhook"
_PASSED_ON = (SECRET_HEADER, "Content-Type")


class RoundRobinForwarder:
    def __init__(self, path: str = PATH, *, timeout_s: float = 8.0) -> None:
        self.path = path
        self.backends: list[str] = []  # base URLs, http://host:port
        self.out: set[int] = set()  # backends taken out of the rotation
        self.answered: Counter[int] = Counter()  # 2xx answers, by backend
        self.statuses: Counter[int] = Counter()  # the statuses passed back (502: none answered)
        self.skipped: Counter[int] = Counter()  # tries that got no answer, by backend
        self.taken_by: dict[int, int] = {}  # update_id -> the backend that answered 2xx
        self.url = ""
        self._turn = itertools.count()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=2)
        self._client: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> RoundRobinForwarder:
        app = web.Application()
        app.router.add_post(self.path, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}{self.path}"
        # A connection of its own for every request: a dead backend is a refused connection,
        # never a kept-alive one that breaks halfway.
        self._client = aiohttp.ClientSession(
            timeout=self._timeout, connector=aiohttp.TCPConnector(force_close=True)
        )
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    async def __aenter__(self) -> RoundRobinForwarder:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add(self, base_url: str) -> int:
        """A backend (`http://127.0.0.1:port`), out of the rotation until `up()`; its index."""
        self.backends.append(base_url)
        self.out.add(len(self.backends) - 1)
        return len(self.backends) - 1

    def up(self, index: int) -> None:
        self.out.discard(index)

    def down(self, index: int) -> None:
        self.out.add(index)

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._client is not None
        body = await request.read()
        headers = {k: request.headers[k] for k in _PASSED_ON if k in request.headers}
        count = len(self.backends)
        first = next(self._turn)
        for offset in range(count):
            index = (first + offset) % count
            if index in self.out:
                continue
            target = self.backends[index] + request.path_qs
            try:
                async with self._client.post(target, data=body, headers=headers) as response:
                    answer = await response.read()
                    status = response.status
                    kind = response.headers.get("Content-Type", "text/plain")
            except (aiohttp.ClientError, OSError, TimeoutError):
                self.skipped[index] += 1
                continue
            if 200 <= status < 300:
                self.answered[index] += 1
                self._note(body, index)
            self.statuses[status] += 1
            return web.Response(status=status, body=answer, headers={"Content-Type": kind})
        self.statuses[502] += 1
        return web.Response(status=502, text="no backend answered")

    def _note(self, body: bytes, index: int) -> None:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            self.taken_by[int(json.loads(body)["update_id"])] = index
