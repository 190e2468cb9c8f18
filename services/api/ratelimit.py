"""Requests per API key and endpoint: RESELLER_API_RATE_PER_MIN.

A moving window of the last minute per (key, endpoint), through the `limits` library: a request
over the limit is refused at once (no waiting, which a server needs), and each protocol answers
that its own way, with the seconds until the oldest request leaves the window.

Where the windows live: with REDIS_URL set, in Redis, so several API processes behind one
address share one limit per key; without it, in this process (one process: exact; several
without Redis: each allows the rate, docs/api.md says so). Redis out of reach lets the request
through with a warning: a rate limit is not worth refusing paying customers over.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

log = logging.getLogger(__name__)

KEY_PREFIX = "otp-storefront-api-rate"


def _async_uri(redis_url: str) -> str:
    """`limits` names its asyncio Redis storage `async+redis://` (`async+rediss://`, ...)."""
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"


class RateLimits:
    def __init__(self, per_minute: int, redis_url: str | None = None, namespace: str = "") -> None:
        """`namespace`: the shop's own (its bot id), so that two shops sharing one Redis
        never count each other's key ids."""
        self.per_minute = per_minute
        self._item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._pool: ConnectionPool | None = None
        storage: Storage = MemoryStorage()
        if redis_url:
            # Our own pool of redis-py's asyncio client (already a dependency, for aiogram's
            # RedisStorage), so that aclose() can let its connections go.
            self._pool = ConnectionPool.from_url(
                redis_url, socket_timeout=2, socket_connect_timeout=2
            )
            storage = RedisStorage(
                _async_uri(redis_url),
                implementation="redispy",
                key_prefix=f"{KEY_PREFIX}:{namespace}" if namespace else KEY_PREFIX,
                wrap_exceptions=True,
                connection_pool=self._pool,  # type: ignore[arg-type]  # documented; hint too narrow
            )
        self._limiter = MovingWindowRateLimiter(storage)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()

    async def check(self, key_id: int, endpoint: str) -> int | None:
        """None: go ahead (the request is counted). Else the whole seconds to wait."""
        if self._item is None:
            return None
        ids = (str(key_id), endpoint)
        try:
            if await self._limiter.hit(self._item, *ids):
                return None
            stats = await self._limiter.get_window_stats(self._item, *ids)
        except StorageError as exc:
            log.warning(
                "rate limit store out of reach, request let through",
                extra={"error": type(exc.storage_error).__name__},
            )
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))
