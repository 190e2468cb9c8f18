"""Fluent translations through aiogram-i18n; the user's language lives in the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiogram.types import User as TgUser
from aiogram_i18n import I18nMiddleware
from aiogram_i18n.cores import FluentRuntimeCore
from aiogram_i18n.managers import BaseManager

from db.models import User
from handlers.common import LANGUAGES, number

__all__ = ["LANGUAGES", "LOCALES_DIR", "make_core", "make_middleware", "number", "pick_language"]

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


def pick_language(telegram_code: str | None, default: str) -> str:
    """Telegram's language_code ("ru", "pt-br") to one we translate, else the default."""
    code = (telegram_code or "").split("-")[0].lower()
    return code if code in LANGUAGES else default


class DatabaseLocaleManager(BaseManager):
    """Reads the language from the user record the user middleware loaded; `save` keeps a
    choice (none: the choice lasts for this update only)."""

    def __init__(
        self,
        default_locale: str | None = None,
        save: Callable[[int, str], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(default_locale)
        self.save = save

    async def get_locale(self, user: User | None = None, **_: Any) -> str:
        if user is not None and user.language in LANGUAGES:
            return user.language
        return self.default_locale or "en"

    async def set_locale(
        self, locale: str, event_from_user: TgUser | None = None, **_: Any
    ) -> None:
        if event_from_user is not None and self.save is not None:
            await self.save(event_from_user.id, locale)


def make_core(default_language: str) -> FluentRuntimeCore:
    return FluentRuntimeCore(path=LOCALES_DIR / "{locale}", default_locale=default_language)


def make_middleware(
    default_language: str,
    core: FluentRuntimeCore | None = None,
    save: Callable[[int, str], Awaitable[None]] | None = None,
) -> I18nMiddleware:
    return I18nMiddleware(
        core=core or make_core(default_language),
        manager=DatabaseLocaleManager(default_locale=default_language, save=save),
        default_locale=default_language,
    )
