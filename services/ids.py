"""Ids that come from outside (callback data, admin commands), checked before any query.

Row ids and Telegram user ids are positive signed 64-bit integers (SQLite INTEGER, PostgreSQL
BIGINT). A bigger one does not merely match nothing: the driver refuses to bind it
(OverflowError), so an id out of range must be answered "not found" before it reaches a query.
"""

from __future__ import annotations

MAX_ID = 2**63 - 1


def is_id(value: object) -> bool:
    """A positive signed 64-bit integer (bool refused): the only id a row or a user can have."""
    return type(value) is int and 0 < value <= MAX_ID

