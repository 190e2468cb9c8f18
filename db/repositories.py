"""Queries, in portable SQL (SQLite today, PostgreSQL tomorrow). Callers own the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import LedgerEntry, OutboxMessage, User, utcnow


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def find_user(session: AsyncSession, query: str) -> User | None:
    """By Telegram id ("12345") or username ("@name", case-insensitive)."""
    query = query.strip()
    if query.lstrip("-").isdigit() and len(query) <= 20:
        return await session.get(User, int(query))
    name = query.removeprefix("@").lower()
    if not name:
        return None
    result = await session.execute(select(User).where(func.lower(User.username) == name))
    return result.scalars().first()


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


async def set_blocked(session: AsyncSession, chat_id: int, blocked: bool = True) -> None:
    await session.execute(update(User).where(User.id == chat_id).values(blocked_bot=blocked))


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
