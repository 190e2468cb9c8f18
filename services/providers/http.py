"""The HTTP side every adapter shares: one httpx.AsyncClient per provider, explicit timeouts,
a per-endpoint rate limit (aiolimiter), retries with backoff for reads only (tenacity), and errors
that never carry the API key.

Adapters call `read()` or `read_parsed()` for idempotent requests (the latter also retries an
answer its parser calls Unavailable) and `send_once()` for anything that buys: a buy whose answer
is lost raises OutcomeUnknown instead of being sent again.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from services import metrics
from services.health import HEALTH
from services.providers.errors import OutcomeUnknown, Unavailable
from services.redact import redact, register_secret

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_AGENT = "otp-storefront/0.1 (+https://github.com/; httpx)"
# Errors raised before a single byte of the request went out: safe to say "not sent".
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _as_is(response: httpx.Response) -> httpx.Response:
    return response


@cache
def _ssl_context() -> ssl.SSLContext:
    """One shared context: loading the CA bundle per client costs ~50 ms."""
    return ssl.create_default_context()


def strict_limiter(per_minute: int) -> AsyncLimiter:
    """A leaky bucket that never lets more than `per_minute` through in ANY 60-second window.

    A bucket of capacity c leaking r per second admits up to c + 60r in a minute, so the plain
    AsyncLimiter(n, 60) allows nearly 2n. Here c + 60r = n: a small burst, then a steady pace.
    """
    if per_minute <= 1:
        return AsyncLimiter(1, 60)
    burst = max(1, per_minute // 6)
    return AsyncLimiter(burst, 60 * burst / (per_minute - burst))


class ProviderHttp:
    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        api_key: str = "",
        timeout_s: float = 15.0,
        rate_limit_per_min: int | None = None,
        headers: Mapping[str, str] | None = None,
        read_attempts: int = 3,
        backoff_s: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        register_secret(api_key)
        self.provider = provider
        self.rate_limit_per_min = rate_limit_per_min
        self.read_attempts = max(1, read_attempts)
        self.backoff_s = backoff_s
        self._limiters: dict[str, AsyncLimiter] = {}
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            transport=transport,
            verify=_ssl_context(),
            follow_redirects=False,
        )
        self.requests = 0  # counters for /providers health and the benches
        self.errors = 0

    async def aclose(self) -> None:
        await self.client.aclose()

    def _limiter(self, endpoint: str) -> AsyncLimiter | None:
        if not self.rate_limit_per_min:
            return None
        limiter = self._limiters.get(endpoint)
        if limiter is None:
            limiter = strict_limiter(self.rate_limit_per_min)
            self._limiters[endpoint] = limiter
        return limiter

    async def _send(self, method: str, url: str, endpoint: str, **kwargs: Any) -> httpx.Response:
        limiter = self._limiter(endpoint)
        if limiter is not None:
            await limiter.acquire()
        self.requests += 1
        started = time.perf_counter()
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.errors += 1
            HEALTH.record(self.provider, False, type(exc).__name__)
            metrics.observe_provider(self.provider, endpoint, False, time.perf_counter() - started)
            raise
        ok = response.status_code < 500 and response.status_code != 429
        HEALTH.record(self.provider, ok, None if ok else f"HTTP {response.status_code}")
        metrics.observe_provider(self.provider, endpoint, ok, time.perf_counter() - started)
        return response

    async def read(
        self, method: str, url: str, *, endpoint: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """An idempotent request: transport errors are retried with backoff, then Unavailable."""
        return await self.read_parsed(method, url, _as_is, endpoint=endpoint, **kwargs)

    async def read_parsed(
        self,
        method: str,
        url: str,
        parse: Callable[[httpx.Response], T],
        *,
        endpoint: str | None = None,
        retry_if: Callable[[httpx.Response], bool] | None = None,
        **kwargs: Any,
    ) -> T:
        """An idempotent request whose answer `parse` reads, tried up to `read_attempts` times
        with exponential backoff in all.

        Retried: transport errors (the last one becomes Unavailable) and Unavailable raised by
        `parse` (5xx, ERROR_SQL...). Never retried: an Unavailable carrying `retry_after_s` or
        read from a 429 (a rate limit: the caller decides when to come back), or one whose
        response `retry_if` rejects. Anything else `parse` raises is final at once.
        """
        endpoint = endpoint or url
        response: httpx.Response | None = None

        def worth_another_try(exc: BaseException) -> bool:
            if isinstance(exc, httpx.TransportError):
                return True
            if not isinstance(exc, Unavailable) or exc.retry_after_s is not None:
                return False
            if response is None or response.status_code == 429:
                return False
            return retry_if is None or retry_if(response)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.read_attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.backoff_s * 8),
            retry=retry_if_exception(worth_another_try),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = None
                    response = await self._send(method, url, endpoint, **kwargs)
                    return parse(response)
        except httpx.TransportError as exc:
            raise Unavailable(
                f"{type(exc).__name__} talking to {self.provider}", provider=self.provider
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def send_once(
        self, method: str, url: str, *, endpoint: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A request that must never be repeated (buy, add)."""
        try:
            return await self._send(method, url, endpoint or url, **kwargs)
        except _NOT_SENT as exc:
            raise Unavailable(
                f"{type(exc).__name__} connecting to {self.provider}", provider=self.provider
            ) from None
        except httpx.TransportError as exc:
            raise OutcomeUnknown(
                f"{type(exc).__name__} after sending to {self.provider}", provider=self.provider
            ) from None


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def body_text(response: httpx.Response) -> str:
    """The body as text with BOM and whitespace stripped, secrets masked."""
    return redact(response.text.lstrip("\ufeff").strip())
