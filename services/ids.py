"""Ids that come from outside (callback data, admin commands), checked before any query.

`is_id()` is for row ids: the `Integer` primary keys of orders, broadcasts and the like, which
are 32-bit on PostgreSQL (INTEGER) and 64-bit on SQLite. A bigger one does not merely match
nothing: the driver refuses to bind it (asyncpg: "value out of int32 range"; sqlite3:
OverflowError beyond 64 bits), so an id out of range must be answered "not found" before it
reaches a query. Telegram user ids are 64-bit `BigInteger` columns and are checked where they are
parsed (`db.repositories.parse_user_id`).
"""

from __future__ import annotations

MAX_ID = 2**31 - 1  # the largest row id both databases can hold: PostgreSQL's INTEGER


def is_id(value: object) -> bool:
    """A positive integer a row id can be on either database (bool refused)."""
    return type(value) is int and 0 < value <= MAX_ID
