"""What the handler modules share and that is no feature of its own: the settings they read, the
languages the shop speaks, Fluent numbers, the banned-customer notice.

Handlers import nothing from `bot/`: the bot layer builds a `ShopSettings` from its `Settings`
and hands it to the Dispatcher as the workflow value `settings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram.types import CallbackQuery, Message
from fluent.runtime.types import FluentInt, FluentNumber

LANGUAGES = ("en", "ru")  # a folder each under locales/


# The flag of a handler that starts or makes a new purchase: in maintenance mode customers get
# the maintenance text instead (bot/middlewares.py MaintenanceMiddleware).
PURCHASE = "purchase"
PURCHASE_FLAG = {PURCHASE: True}


@dataclass(frozen=True, slots=True)
class ShopSettings:
    """The part of the settings handlers read (STORE_CURRENCY, ADMIN_IDS, SUPPORT_CONTACT,
    MIN_CANCEL_DELAY_S)."""

    store_currency: str = "USD"
    admin_ids: frozenset[int] = frozenset()
    support_contact: str = ""
    min_cancel_delay_s: int = 120
    topup: bool = False  # a top-up method is configured: the menus show 💳 Top up
    api: bool = False  # RESELLER_API_LISTEN is set: the menu shows 🔑 API
    api_url: str = ""  # RESELLER_API_PUBLIC_URL, the root the API's paths hang from

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admin_ids


def number(value: int) -> FluentNumber:
    """A count for a text: Fluent picks the noun's plural form by it (`1 заход`, `5 заходов`;
    a pre-formatted string always takes `*[other]`), and prints it as plain digits, like str()
    (`10000`, not `10,000`)."""
    return FluentInt(value, useGrouping=False)


async def notify_banned(event: Message | CallbackQuery, i18n: Any) -> None:
    text = i18n.get("banned-notice")
    if isinstance(event, CallbackQuery):
        await event.answer(text, show_alert=True)
    else:
        await event.answer(text)
