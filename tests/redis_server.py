"""The Redis server the conversation-state tests run on (REDIS_URL, bot/storage.py).

TEST_REDIS_URL names it, `redis://127.0.0.1:6379/15` when unset. When it does not answer, the
tests that ask for the `redis_url` fixture are left out and the run says why in one line at the
end (tests/conftest.py), as for the PostgreSQL half. A test keeps to keys of its own: every
key the bot writes starts with `fsm:<bot id>:`, and each test's fake Bot API has a token with a
bot id of its own (`unique_token()`); `delete_keys()` removes them after the test.
"""

from __future__ import annotations

import os
import secrets

from tests.databases import run_async

ENV = "TEST_REDIS_URL"
DEFAULT_URL = "redis://127.0.0.1:6379/15"


def probe() -> tuple[str | None, str]:
    """The URL of a Redis server that answers PING, or None and why not (one line)."""
    from bot.storage import RedisUnavailable, check_redis

    url = os.environ.get(ENV, "").strip() or DEFAULT_URL
    try:
        run_async(lambda: check_redis(url))
    except RedisUnavailable as exc:
        return None, f"{ENV}: {exc}"
    return url, ""


def unique_token() -> str:
    """A bot token whose bot id no other test (or run) uses, so its Redis keys are its own."""
    bot_id = 9_000_000_000 + secrets.randbelow(1_000_000_000)
    return f"{bot_id}:TEST-TOKEN-abcdefghijklmnop"


def keys(url: str, bot_id: int) -> list[str]:
    async def scan() -> list[str]:
        from redis.asyncio import Redis

        client = Redis.from_url(url, decode_responses=True)
        try:
            return [key async for key in client.scan_iter(match=f"fsm:{bot_id}:*")]
        finally:
            await client.aclose()

    return run_async(scan)


def delete_keys(url: str, bot_id: int) -> None:
    async def delete() -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(url)
        try:
            found = [key async for key in client.scan_iter(match=f"fsm:{bot_id}:*")]
            if found:
                await client.delete(*found)
        finally:
            await client.aclose()

    run_async(delete)
