"""Reseller API keys: 32 random bytes, URL-safe, shown once; only their SHA-256 is stored.

One key per customer (rolling it replaces the hash and keeps the key's id). A key works while
its owner is not banned and the admins have not turned the API off for them (`/api <user>
off`): both are read from the database at every request, so a ban stops the key at once, in
every process. Nothing here logs a key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from db import repositories as repo
from db.engine import Database
from db.models import ApiKey, User, utcnow
from db.upsert import upsert

KEY_BYTES = 32
MAX_KEY_LENGTH = 128  # anything longer is not one of ours: refused before hashing
LAST_USED_EVERY = timedelta(minutes=1)  # `last_used_at` is written at most this often


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the key screen shows (never the key: it is not kept)."""

    id: int
    push_codes: bool
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Client:
    """An authenticated caller: the key's id (its orders' ledger keys) and its owner."""

    key_id: int
    user_id: int
    push_codes: bool


class ApiOff(Exception):
    """The admins turned the API off for this customer, or the customer is banned."""


class ApiKeys:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    async def info(self, user_id: int) -> KeyInfo | None:
        async with self.db.read() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.user_id == user_id))
        if row is None:
            return None
        return KeyInfo(row.id, row.push_codes, row.created_at, row.last_used_at)

    async def allowed(self, user_id: int) -> bool:
        async with self.db.read() as session:
            user = await session.get(User, user_id)
        return user is not None and user.api_allowed and not user.banned

    async def create(self, user_id: int) -> str:
        """A new key for the customer, replacing the one they had (roll); the key itself is
        returned once and never kept."""
        key = new_key()
        now = self.clock()
        async with self.db.write() as session:
            user = await session.get(User, user_id)
            if user is None or user.banned or not user.api_allowed:
                raise ApiOff()
            await upsert(
                session,
                ApiKey,
                {"user_id": user_id, "key_hash": hash_key(key), "created_at": now},
                keys=["user_id"],
                update=["key_hash", "created_at"],
            )
            await session.execute(
                update(ApiKey).where(ApiKey.user_id == user_id).values(last_used_at=None)
            )
        return key

    roll = create

    async def delete(self, user_id: int) -> bool:
        async with self.db.write() as session:
            result = await session.execute(
                delete(ApiKey).where(ApiKey.user_id == user_id).returning(ApiKey.id)
            )
            return result.first() is not None

    async def set_push_codes(self, user_id: int, on: bool) -> KeyInfo | None:
        async with self.db.write() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.user_id == user_id).values(push_codes=on)
            )
        return await self.info(user_id)

    async def set_allowed(self, query: str, on: bool) -> User:
        """The admin's `/api <user> on|off`. LookupError: no such user;
        repo.AmbiguousUser: an @username several users share."""
        async with self.db.write() as session:
            user = await repo.find_user(session, query)
            if user is None:
                raise LookupError(query)
            await session.execute(update(User).where(User.id == user.id).values(api_allowed=on))
            user.api_allowed = on
            return user

    async def authenticate(self, key: str | None) -> Client | None:
        """The caller a key belongs to, or None: no such key, or its owner is banned or has the
        API turned off. The stored hash is looked up, then compared in constant time."""
        if not key or len(key) > MAX_KEY_LENGTH or not key.isascii():
            return None
        digest = hash_key(key)
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(ApiKey, User.banned, User.api_allowed)
                    .join(User, User.id == ApiKey.user_id)
                    .where(ApiKey.key_hash == digest)
                )
            ).first()
        if row is None:
            return None
        api_key, banned, allowed = row
        if not hmac.compare_digest(api_key.key_hash, digest) or banned or not allowed:
            return None
        await self._touch(api_key)
        return Client(api_key.id, api_key.user_id, api_key.push_codes)

    async def _touch(self, api_key: ApiKey) -> None:
        now = self.clock()
        if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_EVERY:
            return
        async with self.db.write() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=now)
            )
