"""The notification group: its lines rendered for people, and the sender that posts them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup
from aiogram_i18n import I18nMiddleware
from aiogram_i18n.cores import BaseCore
from aiogram_i18n.exceptions import KeyNotFoundError

from bot.settings import Settings
from bot.telegram import make_markup_sender, make_sender
from services.catalog import OtpCatalog
from services.money import format_money
from services.notifier import GroupAlert, Notifier, OtpGoods, Person, SmmGoods
from services.proofs import Line as ProofLine
from services.proofs import Proof
from services.text import escape, mention

MONEY_FIELDS = frozenset({"amount", "price", "cost", "profit", "balance", "threshold"})


@dataclass(frozen=True, slots=True)
class GroupLines:
    """Group lines for people, in the shop's default language: money in the store currency,
    people as mentions with their id, goods as the customer saw them, reasons and directions
    in words. Every value passes services.text.escape: names and reasons are data, not markup."""

    core: BaseCore[Any]
    language: str
    currency: str
    catalog: OtpCatalog | None = None

    def render(self, event: str, fields: dict[str, Any]) -> str:
        values = {key: self._value_of(key, value, fields) for key, value in fields.items()}
        return self._t(f"notify-{event}", **values)

    def _t(self, key: str, **values: object) -> str:
        return self.core.get(key, self.language, **values)

    def _words(self, prefix: str, code: str, **values: object) -> str:
        """A code (`user_cancel`, `topup`) in words; an unknown one shown as it is."""
        try:
            return self._t(f"{prefix}-{code}", **values)
        except KeyNotFoundError:
            return escape(code)

    def _reason(self, code: str, note: object) -> str:
        """`admin` + the admin's note -> "refunded by an admin: <note>"."""
        if not note:
            return self._words("notify-reason", code)
        try:
            return self._t(f"notify-reason-{code}-note", note=escape(note))
        except KeyNotFoundError:
            return f"{self._words('notify-reason', code)}: {escape(note)}"

    def _otp_goods(self, goods: OtpGoods) -> str:
        catalog = self.catalog
        if catalog is None:
            return self._t(
                "notify-what-otp",
                service=escape(goods.service),
                flag="",
                country=escape(goods.country),
            )
        country = catalog.country(goods.country)
        return self._t(
            "notify-what-otp",
            service=escape(catalog.service_name(goods.service)),
            flag=escape(country.flag if country else ""),
            country=escape(catalog.country_name(goods.country, self.language)),
        )

    def _value_of(self, key: str, value: object, fields: dict[str, Any]) -> object:
        if isinstance(value, Person):
            return mention(value.id, value.name)
        if isinstance(value, OtpGoods):
            return self._otp_goods(value)
        if isinstance(value, SmmGoods):
            return self._t("notify-what-smm", name=escape(value.name), quantity=value.quantity)
        if key in MONEY_FIELDS and isinstance(value, int):
            return escape(format_money(value, self.currency))
        if key == "reason":
            return self._reason(str(value), fields.get("note"))
        if key == "direction":
            return self._words("notify-direction", str(value))
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # a count: Fluent picks the plural form
        return escape(value)


def make_notifier(
    settings: Settings,
    i18n: I18nMiddleware,
    catalog: OtpCatalog | None = None,
) -> Notifier:
    lines = GroupLines(i18n.core, settings.default_language, settings.store_currency, catalog)
    return Notifier(lines.render, enabled=settings.notify_chat_id is not None)


def make_group_sender(
    bot: Bot,
    chat_id: int,
    thread_id: int | None,
    *,
    keyboard: Callable[[GroupAlert], InlineKeyboardMarkup | None] | None = None,
) -> Callable[..., Awaitable[Any]]:
    """The notification worker's `send(text)`; `send(text, alert)` for an alert that needs a
    decision: alone, with its buttons (`keyboard`, handlers/group_actions.py)."""
    send = make_sender(bot, message_thread_id=thread_id)
    send_with_buttons = make_markup_sender(bot, message_thread_id=thread_id)

    async def send_to_group(text: str, alert: GroupAlert | None = None) -> Any:
        markup = keyboard(alert) if alert is not None and keyboard is not None else None
        if markup is None:
            return await send(chat_id, text)
        return await send_with_buttons(chat_id, text, markup)

    return send_to_group


def make_proof_line(settings: Settings, i18n: I18nMiddleware, catalog: OtpCatalog) -> ProofLine:
    """One delivered code for the proofs channel, in the shop's language (services/proofs.py)."""
    language = settings.default_language

    def line(proof: Proof) -> str:
        country = catalog.country(proof.country)
        return i18n.core.get(
            "proof-line",
            language,
            flag=escape(country.flag if country else ""),
            service=escape(catalog.service_name(proof.service)),
            phone=escape(proof.phone),
            seconds=str(proof.seconds),
        )

    return line
