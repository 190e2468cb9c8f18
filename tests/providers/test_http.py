"""ProviderHttp.read_parsed: one place that retries reads, against a scripted aiohttp server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web

from services.providers.errors import BadResponse, Unavailable
from services.providers.http import ProviderHttp, body_text, retry_after

KEY = "http-test-key-0123456789"


@dataclass
class Reply:
    status: int = 200
    body: str = "OK"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection after reading the request


class Script:
    """A server answering each request with the next scripted reply (the last one repeats)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [Reply()]
        self.hits = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    def play(self, *replies: Reply) -> None:
        self.replies = list(replies)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        reply = self.replies[min(self.hits, len(self.replies) - 1)]
        self.hits += 1
        if reply.drop:
            if request.transport is not None:
                request.transport.close()
            return web.Response(body=b"")
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api", self._answer)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Script]:
    script = Script()
    await script.start()
    try:
        yield script
    finally:
        await script.close()


@pytest.fixture
async def http(server: Script) -> AsyncIterator[ProviderHttp]:
    client = ProviderHttp(
        provider="scripted", base_url=server.url, api_key=KEY, timeout_s=2.0, backoff_s=0.001
    )
    try:
        yield client
    finally:
        await client.aclose()


def parse(response: httpx.Response) -> str:
    """A typical adapter parser: OK bodies pass, 5xx/ERROR_SQL are Unavailable."""
    text = body_text(response)
    if response.status_code == 429 or text == "ERROR_SQL" or response.status_code >= 500:
        raise Unavailable(
            f"HTTP {response.status_code}",
            provider="scripted",
            raw=text,
            retry_after_s=retry_after(response),
        )
    if text != "OK":
        raise BadResponse("unreadable", provider="scripted", raw=text)
    return text.lower()


async def read(http: ProviderHttp, **kwargs: object) -> str:
    return await http.read_parsed("GET", "/api", parse, endpoint="api", **kwargs)  # type: ignore[arg-type]


async def test_unavailable_answers_are_retried_until_one_parses(
    server: Script, http: ProviderHttp
) -> None:
    server.play(Reply(500, "oops"), Reply(200, "ERROR_SQL"), Reply(200, "OK"))
    assert await read(http) == "ok"
    assert server.hits == 3


async def test_retries_stop_after_read_attempts_with_the_last_error(
    server: Script, http: ProviderHttp
) -> None:
    server.play(Reply(502, "first"), Reply(502, "second"), Reply(502, "third"))
    with pytest.raises(Unavailable) as info:
        await read(http)
    assert server.hits == http.read_attempts == 3
    assert info.value.raw == "third"


async def test_transport_errors_and_bad_answers_share_one_budget(
    server: Script, http: ProviderHttp
) -> None:
    server.play(Reply(500, "down"), Reply(drop=True), Reply(500, "down"), Reply(200, "OK"))
    with pytest.raises(Unavailable):
        await read(http)
    assert server.hits == 3
    server.hits = 0
    server.play(Reply(drop=True), Reply(drop=True), Reply(drop=True))
    with pytest.raises(Unavailable) as info:
        await read(http)
    assert server.hits == 3
    assert "scripted" in str(info.value) and info.value.raw is None


@pytest.mark.parametrize(
    "reply",
    [
        Reply(429, "slow down"),  # a rate limit, even without Retry-After
        Reply(503, "busy", {"Retry-After": "5"}),
        Reply(200, "ERROR_SQL", {"Retry-After": "2"}),
    ],
)
async def test_rate_limits_are_not_retried(
    server: Script, http: ProviderHttp, reply: Reply
) -> None:
    server.play(reply, Reply(200, "OK"))
    with pytest.raises(Unavailable) as info:
        await read(http)
    assert server.hits == 1
    assert info.value.retry_after_s == retry_after(
        httpx.Response(reply.status, headers=reply.headers)
    )


async def test_retry_if_decides_which_answers_deserve_another_try(
    server: Script, http: ProviderHttp
) -> None:
    server.play(Reply(503, "busy"), Reply(200, "OK"))
    with pytest.raises(Unavailable):
        await read(http, retry_if=lambda response: response.status_code != 503)
    assert server.hits == 1
    server.hits = 0
    assert await read(http, retry_if=lambda response: response.status_code == 503) == "ok"
    assert server.hits == 2


async def test_other_parse_errors_are_final(server: Script, http: ProviderHttp) -> None:
    server.play(Reply(200, "<html>bad</html>"), Reply(200, "OK"))
    with pytest.raises(BadResponse):
        await read(http)
    assert server.hits == 1


async def test_backoff_grows_exponentially(server: Script, http: ProviderHttp) -> None:
    http.backoff_s = 0.05
    server.play(Reply(500, "down"))
    start = time.perf_counter()
    with pytest.raises(Unavailable):
        await read(http)
    assert time.perf_counter() - start >= 0.05 + 0.1 - 0.01  # two waits: 1x then 2x


async def test_read_returns_any_answer_without_retrying_it(
    server: Script, http: ProviderHttp
) -> None:
    server.play(Reply(drop=True), Reply(500, "down"))
    response = await http.read("GET", "/api")
    assert (response.status_code, response.text, server.hits) == (500, "down", 2)
