"""Queries, in portable SQL (SQLite and PostgreSQL). Callers own the transaction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import after_commit
from db.models import LedgerEntry, OutboxMessage, User, utcnow
from db.upsert import insert_ignore

# After-commit topic of a unit of work that changed a user's ban, language or blocked flag:
# the process drops the user records it caches (bot/middlewares.py UserCache).
USERS_CHANGED = "users-changed"


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_users(session: AsyncSession, user_ids: Sequence[int]) -> list[User]:
    """The users of `user_ids` that exist, in one query."""
    if len(user_ids) == 1:
        user = await session.get(User, user_ids[0])
        return [user] if user is not None else []
    return list(await session.scalars(select(User).where(User.id.in_(user_ids))))


# A Telegram id as an admin types it: ASCII digits only (str.isdigit() also takes "²" and
# "١", which int() then rejects or reads as another number), within SQLite's 64-bit integers.
_USER_ID = re.compile(r"-?[0-9]{1,18}")


class AmbiguousUser(LookupError):
    """A username held by several users (one of them may still have a stale name): the caller
    must ask for the id instead of guessing."""

    def __init__(self, query: str, user_ids: list[int]) -> None:
        super().__init__(query, user_ids)
        self.query = query
        self.user_ids = user_ids


def parse_user_id(text: str) -> int | None:
    """ "12345" -> 12345; None for anything that is not plain ASCII digits of a sane length."""
    text = text.strip()
    return int(text) if _USER_ID.fullmatch(text) else None


async def find_user(session: AsyncSession, query: str) -> User | None:
    """By Telegram id ("12345") or username ("@name", case-insensitive). Raises AmbiguousUser
    when several users have that username."""
    query = query.strip()
    user_id = parse_user_id(query)
    if user_id is not None:
        return await session.get(User, user_id)
    name = query.removeprefix("@").lower()  # "²" or "--5" end here too: no such username
    if not name:
        return None
    result = await session.execute(
        select(User).where(func.lower(User.username) == name).order_by(User.id)
    )
    users = list(result.scalars())
    if len(users) > 1:
        raise AmbiguousUser(query, [user.id for user in users])
    return users[0] if users else None


async def create_user(
    session: AsyncSession,
    user_id: int,
    *,
    username: str | None,
    first_name: str | None,
    language: str,
) -> User:
    user = User(
        id=user_id,
        username=username,
        first_name=first_name,
        language=language,
        balance=0,
        banned=False,
        blocked_bot=False,
        created_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    return user


async def register_user(
    session: AsyncSession,
    user_id: int,
    *,
    username: str | None,
    first_name: str | None,
    language: str,
) -> tuple[User, bool]:
    """The user, created unless they exist: True when this call created them. Two first
    messages handled at once (or by two processes) create one row, and neither fails."""
    created = await insert_ignore(
        session,
        User,
        {
            "id": user_id,
            "username": username,
            "first_name": first_name,
            "language": language,
            "balance": 0,
            "banned": False,
            "blocked_bot": False,
            "created_at": utcnow(),
        },
        keys=["id"],
    )
    user = await session.get(User, user_id, populate_existing=True)
    if user is None:  # cannot happen: the row exists, ours or the other writer's
        raise LookupError(user_id)
    return user, created


async def update_profile(
    session: AsyncSession, user_id: int, *, username: str | None, first_name: str | None
) -> None:
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(username=username, first_name=first_name, blocked_bot=False)
    )


async def set_language(session: AsyncSession, user_id: int, language: str) -> None:
    await session.execute(update(User).where(User.id == user_id).values(language=language))
    after_commit(session, USERS_CHANGED)


async def set_blocked(session: AsyncSession, chat_id: int, blocked: bool = True) -> None:
    await session.execute(update(User).where(User.id == chat_id).values(blocked_bot=blocked))
    after_commit(session, USERS_CHANGED)


async def set_banned(session: AsyncSession, user_id: int, banned: bool) -> None:
    await session.execute(update(User).where(User.id == user_id).values(banned=banned))
    after_commit(session, USERS_CHANGED)


async def ledger_key_exists(session: AsyncSession, key: str) -> bool:
    result = await session.execute(
        select(LedgerEntry.id).where(LedgerEntry.idempotency_key == key)
    )
    return result.first() is not None


async def add_outbox(
    session: AsyncSession,
    chat_id: int,
    text: str,
    kind: str,
    *,
    not_before: datetime | None = None,
) -> None:
    session.add(
        OutboxMessage(
            chat_id=chat_id,
            text=text,
            kind=kind,
            attempts=0,
            not_before=not_before,
            created_at=utcnow(),
        )
    )
