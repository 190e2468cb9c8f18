"""Wiring: Bot, Dispatcher, middlewares, routers, scheduler and the outbox worker.

Nothing is created at import time; `build_app(settings)` makes one application and
`run(app)` long-polls until SIGINT/SIGTERM (or `app.dp.stop_polling()` in tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram_i18n import I18nMiddleware
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.i18n import LANGUAGES, make_middleware
from bot.middlewares import ThrottlingMiddleware, UserMiddleware
from bot.settings import Settings
from bot.telegram import RetryAfterMiddleware, make_sender
from db.engine import Database
from db.migrate import upgrade
from handlers import get_routers
from services.outbox import OutboxWorker
from services.redact import register_secret

log = logging.getLogger(__name__)

USER_COMMANDS = ("start", "balance", "language", "help")
ADMIN_COMMANDS = ("topup", "deduct", "audit")


@dataclass
class App:
    settings: Settings
    bot: Bot
    dp: Dispatcher
    db: Database
    scheduler: AsyncIOScheduler
    outbox: OutboxWorker
    i18n: I18nMiddleware
    errors: list[int] = field(default_factory=list)  # update ids the error handler saw


def build_app(settings: Settings) -> App:
    token = settings.bot_token.get_secret_value()
    register_secret(token)
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    bot.session.middleware(RetryAfterMiddleware())

    db = Database(settings.database_url)
    scheduler = AsyncIOScheduler(timezone="UTC")
    outbox = OutboxWorker(db, make_sender(bot), interval_s=settings.outbox_interval_s)
    i18n = make_middleware(settings.default_language)
    errors: list[int] = []

    dp = Dispatcher(
        settings=settings,
        db=db,
        scheduler=scheduler,
        outbox_worker=outbox,
        error_counter=errors,
    )
    dp.update.outer_middleware(UserMiddleware(db, settings.default_language))
    i18n.setup(dispatcher=dp)
    dp.update.outer_middleware(ThrottlingMiddleware(settings.throttle_rate_per_s))
    dp.include_routers(*get_routers())

    app = App(settings, bot, dp, db, scheduler, outbox, i18n, errors)
    dp["app"] = app
    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    return app


async def on_startup(app: App) -> None:
    await upgrade(app.db)
    await set_commands(app)
    app.scheduler.start()
    app.outbox.start()
    log.info("bot started", extra={"admins": len(app.settings.admin_ids)})


async def on_shutdown(app: App) -> None:
    await app.outbox.stop()
    if app.scheduler.running:
        app.scheduler.shutdown(wait=False)
    await app.db.dispose()
    log.info("bot stopped")


async def set_commands(app: App) -> None:
    core = app.i18n.core
    for language in LANGUAGES:
        user_commands = [
            BotCommand(command=name, description=core.get(f"command-{name}", language))
            for name in USER_COMMANDS
        ]
        admin_commands = user_commands + [
            BotCommand(command=name, description=core.get(f"command-{name}", language))
            for name in ADMIN_COMMANDS
        ]
        code = None if language == app.settings.default_language else language
        await app.bot.set_my_commands(user_commands, BotCommandScopeDefault(), code)
        for admin_id in app.settings.admin_ids:
            await app.bot.set_my_commands(
                admin_commands, BotCommandScopeChat(chat_id=admin_id), code
            )


async def run(app: App, *, handle_signals: bool = True, polling_timeout: int = 10) -> None:
    await app.bot.delete_webhook(drop_pending_updates=False)
    await app.dp.start_polling(
        app.bot,
        handle_signals=handle_signals,
        polling_timeout=polling_timeout,
        close_bot_session=True,
        allowed_updates=app.dp.resolve_used_update_types(),
    )
