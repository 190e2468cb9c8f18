"""Where the Dispatcher keeps conversation state (the SMM order form, a search in progress).

Without REDIS_URL: aiogram's MemoryStorage, as before (lost on restart, one process only). With
it: aiogram's RedisStorage, so a half-filled form survives a restart and any process behind one
webhook carries on the conversation another one began. Keys are `fsm:<bot id>:<chat>:<user>:...`
(the bot's id included, so two bots may share one Redis database).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import cast
from urllib.parse import urlsplit, urlunsplit

from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from services.redact import register_secret

CONNECT_TIMEOUT_S = 5
FORM_TTL = timedelta(days=1)


class RedisUnavailable(Exception):
    """One line: the URL (password masked) and why it cannot be used."""


class ShopRedisStorage(RedisStorage):
    """RedisStorage closed at the very end of shutdown. The Dispatcher closes its storage first
    thing when it shuts down (it registers that before any handler of ours), while updates
    still being handled, awaited by `stop_background()`, may read or clear their state."""

    async def close(self) -> None:
        """Called by the Dispatcher at the start of shutdown: too early, see the class."""

    async def close_now(self) -> None:
        await super().close()


def make_storage(redis_url: str | None) -> BaseStorage:
    if not redis_url:
        return MemoryStorage()
    register_secret(urlsplit(redis_url).password)
    return ShopRedisStorage.from_url(
        redis_url,
        key_builder=DefaultKeyBuilder(with_bot_id=True),
        state_ttl=FORM_TTL,  # an abandoned form does not stay in Redis for ever
        data_ttl=FORM_TTL,
    )


async def close_storage(storage: BaseStorage) -> None:
    if isinstance(storage, ShopRedisStorage):
        await storage.close_now()
    else:
        await storage.close()


def masked(url: str) -> str:
    """The URL as it may be shown: a password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


async def check_redis(url: str) -> None:
    """Connect once and PING; RedisUnavailable, one line, if that fails (nothing listens, a
    wrong password, a database number the server does not have)."""
    where = masked(url)
    client = Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=CONNECT_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),  # one try: the answer now, not after redis-py's backoff
    )
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + 5):
            await cast(Awaitable[bool], client.ping())  # redis-py types it sync or async
    except TimeoutError:
        raise RedisUnavailable(f"cannot connect to {where}: timed out") from None
    except (OSError, RedisError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise RedisUnavailable(f"cannot connect to {where}: {reason[:300]}") from None
    finally:
        await client.aclose()
