"""The one way a value enters a Telegram message: every message is sent in HTML parse mode, so
every value (a name from an upstream, an admin's reason, a user's name) is escaped here and is
shown as text, never read as markup. No aiogram here: services and handlers both use it."""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime


def escape(value: object) -> str:
    """`value` as text that is safe anywhere in an HTML message, also inside a quoted
    attribute. None is the empty string."""
    if value is None:
        return ""
    return html.escape(str(value), quote=False).replace('"', "&quot;")


def mention(user_id: int, name: str | None = None) -> str:
    """A person in a message: their name as a link to their profile, then their id
    (`Alice (1001)`); only the id when the name is not known."""
    user_id = int(user_id)
    link = f'<a href="tg://user?id={user_id}">'
    if not name or not name.strip():
        return f"{link}{user_id}</a>"
    return f"{link}{escape(name.strip()[:64])}</a> ({user_id})"


def countdown_hours(until: datetime, now: datetime | None = None) -> str:
    """A longer wait as h:mm (`3:05`), rounded up to the minute."""
    seconds = (until - (now or datetime.now(UTC))).total_seconds()
    hours, minutes = divmod(max(0, math.ceil(seconds / 60)), 60)
    return f"{hours}:{minutes:02d}"


def countdown(seconds: float) -> str:
    """Time left as m:ss (`1:54`), rounded up: a wait never looks shorter than it is."""
    total = max(0, math.ceil(seconds))
    minutes, rest = divmod(total, 60)
    return f"{minutes}:{rest:02d}"
