"""Wiring: Bot, Dispatcher, middlewares, routers, scheduler and the outbox worker.

Nothing is created at import time; `build_app(settings)` makes one application and
`run(app)` long-polls until SIGINT/SIGTERM (or `app.dp.stop_polling()` in tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram_i18n import I18nMiddleware
from aiogram_i18n.exceptions import KeyNotFoundError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.i18n import LANGUAGES, make_middleware
from bot.middlewares import ThrottlingMiddleware, UserMiddleware
from bot.settings import Settings
from bot.telegram import RetryAfterMiddleware, make_sender
from db.engine import Database
from db.migrate import upgrade
from handlers import get_routers
from handlers.broadcast import BroadcastPresenter
from handlers.otp_views import TelegramPresenter
from handlers.smm_views import SmmPresenter
from services.activations import ActivationService, OtpRules
from services.broadcast import BroadcastService
from services.catalog import MarkupRule, OtpCatalog
from services.catalog_store import SMM, load_snapshot, save_snapshot
from services.health import HEALTH, ProviderHealth
from services.markups import Markups
from services.money import ceil_micro, format_money
from services.notifier import NotificationWorker, Notifier, OtpGoods, Person, SmmGoods
from services.outbox import OutboxWorker
from services.provider_watch import ErrorBurstWatch, check_balances
from services.providers.base import OtpProvider, SmmProvider
from services.providers.registry import build_otp_providers, build_smm_providers
from services.redact import register_secret
from services.smm_catalog import SmmCatalog
from services.smm_orders import SmmOrderService, SmmRules
from services.text import escape, mention

log = logging.getLogger(__name__)

USER_COMMANDS = ("start", "balance", "history", "language", "help")
ADMIN_COMMANDS = (
    "topup",
    "deduct",
    "audit",
    "user",
    "stats",
    "providers",
    "provider",
    "markup",
    "ban",
    "unban",
    "refund",
    "adopt",
    "broadcast",
    "broadcast_cancel",
)
MONEY_FIELDS = frozenset({"amount", "price", "cost", "profit", "balance", "threshold"})


@dataclass
class App:
    settings: Settings
    bot: Bot
    dp: Dispatcher
    db: Database
    scheduler: AsyncIOScheduler
    outbox: OutboxWorker
    i18n: I18nMiddleware
    providers: dict[str, OtpProvider]
    catalog: OtpCatalog
    otp: ActivationService
    smm_providers: dict[str, SmmProvider]
    smm_catalog: SmmCatalog
    smm: SmmOrderService
    broadcasts: BroadcastService
    errors: list[int] = field(default_factory=list)  # update ids the error handler saw
    notifier: Notifier = field(default_factory=Notifier)
    notifications: NotificationWorker | None = None
    markups: Markups | None = None
    health: ProviderHealth = HEALTH
    disabled: set[str] = field(default_factory=set)  # providers an admin switched off
    error_watch: ErrorBurstWatch = field(default_factory=lambda: ErrorBurstWatch(HEALTH))

    async def set_provider_enabled(self, name: str, enabled: bool) -> None:
        from services.admin import set_provider_enabled

        await set_provider_enabled(self.db, name, enabled)
        (self.disabled.discard if enabled else self.disabled.add)(name)
        await self.reprice()

    async def reprice(self) -> None:
        """Markups or provider switches changed: rebuild both catalogs from what they hold."""
        self.catalog.excluded = set(self.disabled)
        self.smm_catalog.excluded = set(self.disabled)
        await self.catalog.rebuild()
        self.smm_catalog.rebuild()


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
    providers, catalog, otp = build_otp(settings, db, outbox)
    otp.presenter = TelegramPresenter(
        bot,
        i18n.core,
        catalog,
        settings.store_currency,
        otp.supports,
        otp.clock,
    )
    smm_providers, smm_catalog, smm = build_smm(settings, db, outbox)
    smm.presenter = SmmPresenter(i18n.core, settings.store_currency)
    broadcasts = BroadcastService(db, make_sender(bot), rate_per_s=settings.broadcast_rate_per_s)
    broadcasts.progress = BroadcastPresenter(bot, i18n.core, settings.default_language)

    notifier = make_notifier(settings, i18n, catalog)
    otp.notifier = notifier
    smm.notifier = notifier
    markups = Markups(
        env_default=settings.markup_percent,
        configured={
            p.name: p.markup_percent for p in settings.providers if p.markup_percent is not None
        },
    )
    catalog.set_price_rule(markups.otp_markup)
    smm_catalog.markup_for = markups.smm_markup

    dp = Dispatcher(
        settings=settings,
        db=db,
        scheduler=scheduler,
        outbox_worker=outbox,
        error_counter=errors,
        otp=otp,
        catalog=catalog,
        smm_orders=smm,
        notifier=notifier,
    )
    dp.update.outer_middleware(UserMiddleware(db, settings.default_language, notifier))
    dp.shutdown.register(stop_background)  # before i18n's own shutdown empties its locales
    i18n.setup(dispatcher=dp)
    dp.update.outer_middleware(ThrottlingMiddleware(settings.throttle_rate_per_s))
    dp.include_routers(*get_routers())

    app = App(
        settings,
        bot,
        dp,
        db,
        scheduler,
        outbox,
        i18n,
        providers,
        catalog,
        otp,
        smm_providers,
        smm_catalog,
        smm,
        broadcasts,
        errors,
        notifier=notifier,
        markups=markups,
    )
    if settings.notify_chat_id is not None:
        app.notifications = NotificationWorker(
            db, make_group_sender(bot, settings.notify_chat_id, settings.notify_thread_id)
        )
        notifier.wake = app.notifications.kick
    dp["app"] = app
    dp["broadcasts"] = broadcasts
    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    return app


def build_otp(
    settings: Settings, db: Database, outbox: OutboxWorker
) -> tuple[dict[str, OtpProvider], OtpCatalog, ActivationService]:
    configs = [p for p in settings.otp_providers if p.enabled]
    providers = build_otp_providers(configs, demo_code_delay_s=settings.demo_code_delay_s)
    markups = {p.name: p.markup_percent for p in configs if p.markup_percent is not None}
    catalog = OtpCatalog(
        providers.values(),
        rates={p.name: p.rate for p in configs},
        price_rule=MarkupRule(default=settings.markup_percent, providers=markups),
    )
    rules = OtpRules(
        activation_timeout_s=settings.activation_timeout_s,
        min_cancel_delay_s=settings.min_cancel_delay_s,
        provider_cancel_delay_s={
            p.name: p.min_cancel_delay_s for p in configs if p.min_cancel_delay_s is not None
        },
        max_active=settings.max_active_activations,
        reconcile_grace_s=settings.reconcile_grace_s,
        card_refresh_s=settings.card_refresh_s,
        poll_interval_s=settings.poll_interval_s,
        rate_limits={
            name: provider.http.rate_limit_per_min
            for name, provider in providers.items()
            if getattr(getattr(provider, "http", None), "rate_limit_per_min", None)
        },
    )
    otp = ActivationService(db, catalog, providers, rules, kick_outbox=outbox.kick)
    return providers, catalog, otp


def build_smm(
    settings: Settings, db: Database, outbox: OutboxWorker
) -> tuple[dict[str, SmmProvider], SmmCatalog, SmmOrderService]:
    configs = [p for p in settings.smm_providers if p.enabled]
    providers = build_smm_providers(configs, demo_step_s=settings.demo_smm_step_s)
    markups = {p.name: p.markup_percent for p in configs if p.markup_percent is not None}
    catalog = SmmCatalog(
        providers.values(),
        rates={p.name: p.rate for p in configs},
        markup_for=lambda provider, _category, _service: markups.get(
            provider, settings.markup_percent
        ),
    )
    rules = SmmRules(
        poll_interval_s=settings.poll_interval_s,
        reconcile_grace_s=settings.reconcile_grace_s,
        trouble_grace_s=settings.smm_trouble_grace_s,
        rate_limits={
            name: provider.http.rate_limit_per_min
            for name, provider in providers.items()
            if getattr(getattr(provider, "http", None), "rate_limit_per_min", None)
        },
    )
    smm = SmmOrderService(db, catalog, providers, rules, kick_outbox=outbox.kick)
    return providers, catalog, smm


def make_notifier(
    settings: Settings, i18n: I18nMiddleware, catalog: OtpCatalog | None = None
) -> Notifier:
    """Group lines for people, in the shop's default language: money in the store currency,
    people as mentions with their id, goods as the customer saw them, reasons and directions
    in words. Every value passes services.text.escape: names and reasons are data, not markup."""
    language, currency = settings.default_language, settings.store_currency

    def t(key: str, **values: object) -> str:
        return i18n.core.get(key, language, **values)

    def words(prefix: str, code: str, **values: object) -> str:
        """A code (`user_cancel`, `topup`) in words; an unknown one shown as it is."""
        try:
            return t(f"{prefix}-{code}", **values)
        except KeyNotFoundError:
            return escape(code)

    def reason(code: str, note: object) -> str:
        """`admin` + the admin's note -> "refunded by an admin: <note>"."""
        if not note:
            return words("notify-reason", code)
        try:
            return t(f"notify-reason-{code}-note", note=escape(note))
        except KeyNotFoundError:
            return f"{words('notify-reason', code)}: {escape(note)}"

    def value_of(key: str, value: object, fields: dict) -> object:
        if isinstance(value, Person):
            return mention(value.id, value.name)
        if isinstance(value, OtpGoods):
            country = catalog.country(value.country) if catalog else None
            return t(
                "notify-what-otp",
                service=escape(catalog.service_name(value.service) if catalog else value.service),
                flag=escape(country.flag if country else ""),
                country=escape(
                    catalog.country_name(value.country, language) if catalog else value.country
                ),
            )
        if isinstance(value, SmmGoods):
            return t("notify-what-smm", name=escape(value.name), quantity=value.quantity)
        if key in MONEY_FIELDS and isinstance(value, int):
            return escape(format_money(value, currency))
        if key == "reason":
            return reason(str(value), fields.get("note"))
        if key == "direction":
            return words("notify-direction", str(value))
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # a count: Fluent picks the plural form
        return escape(value)

    def render(event: str, fields: dict) -> str:
        values = {key: value_of(key, value, fields) for key, value in fields.items()}
        return t(f"notify-{event}", **values)

    return Notifier(render, enabled=settings.notify_chat_id is not None)


def make_group_sender(bot: Bot, chat_id: int, thread_id: int | None):
    send = make_sender(bot, message_thread_id=thread_id)

    async def send_to_group(text: str):
        return await send(chat_id, text)

    return send_to_group


async def on_startup(app: App) -> None:
    await upgrade(app.db)
    await set_commands(app)
    await load_admin_settings(app)
    await load_snapshot(app.db, app.catalog)
    await load_snapshot(app.db, app.smm_catalog, SMM)
    await app.otp.load_popularity()
    schedule_jobs(app)
    app.scheduler.start()
    app.outbox.start()
    if app.notifications is not None:
        app.notifications.start()
    await app.broadcasts.resume()
    log.info(
        "bot started",
        extra={"admins": len(app.settings.admin_ids), "providers": len(app.providers)},
    )


def schedule_jobs(app: App) -> None:
    """Every job: no overlapping runs, a late run is merged into the next one."""
    poll = app.settings.poll_interval_s
    reconcile = max(5, poll)
    catalogs = app.settings.catalog_refresh_s
    # (job id, coroutine function, args, interval in seconds, run once at start-up)
    jobs: list[tuple[str, Callable[..., Awaitable[None]], list, float, bool]] = [
        ("catalog", refresh_catalog, [app], catalogs, True),
        ("otp-poll", app.otp.poll, [], poll, True),
        ("otp-reconcile", app.otp.reconcile, [], reconcile, True),
        ("smm-catalog", refresh_smm_catalog, [app], catalogs, True),
        ("smm-poll", app.smm.poll, [], poll, True),
        ("smm-reconcile", app.smm.reconcile, [], reconcile, True),
    ]
    if app.notifications is not None:
        jobs += [
            ("watch-balances", watch_balances, [app], 600, True),
            ("watch-errors", watch_errors, [app], 60, False),
        ]
    for job_id, func, args, seconds, at_start in jobs:
        # APScheduler: next_run_time=None would add the job paused, so leave it out instead.
        first = {"next_run_time": _now()} if at_start else {}
        app.scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            args=args,
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **first,
        )


async def watch_balances(app: App) -> None:
    providers = {**app.providers, **app.smm_providers}
    rates = {p.name: p.rate for p in app.settings.providers}
    threshold = ceil_micro(app.settings.provider_low_balance)
    await check_balances(app.db, app.notifier, providers, rates, threshold)


async def watch_errors(app: App) -> None:
    await app.error_watch.check(app.db, app.notifier, [*app.providers, *app.smm_providers])


async def load_admin_settings(app: App) -> None:
    from services.admin import provider_switches

    assert app.markups is not None
    await app.markups.load(app.db)
    switches = await provider_switches(app.db)
    app.disabled = {name for name, enabled in switches.items() if not enabled}
    app.catalog.excluded = set(app.disabled)
    app.smm_catalog.excluded = set(app.disabled)


async def refresh_catalog(app: App) -> None:
    report = await app.catalog.refresh()
    if report.ok:
        await save_snapshot(app.db, app.catalog)
    log.info("catalog refreshed", extra={"offers": report.offers, "failed": len(report.failed)})


async def refresh_smm_catalog(app: App) -> None:
    report = await app.smm_catalog.refresh()
    if report.ok:
        await save_snapshot(app.db, app.smm_catalog, SMM)
    log.info(
        "smm catalog refreshed", extra={"services": report.offers, "failed": len(report.failed)}
    )


def _now() -> datetime:
    return datetime.now(UTC)


async def stop_background(app: App) -> None:
    # Updates still being handled (a buy waiting for its upstream) finish before anything
    # closes; aiogram keeps their tasks in a private set, hence the getattr.
    in_flight = set(getattr(app.dp, "_handle_update_tasks", ()))
    if in_flight:
        await asyncio.wait(in_flight, timeout=60)
    if app.scheduler.running:
        app.scheduler.pause()  # no new rounds; the running ones finish in stop() below
    await app.otp.stop()
    await app.smm.stop()
    if app.scheduler.running:
        app.scheduler.shutdown(wait=False)
    await app.broadcasts.stop()
    await app.outbox.stop()
    if app.notifications is not None:
        await app.notifications.stop()


async def on_shutdown(app: App) -> None:
    for provider in app.providers.values():
        await provider.aclose()
    for smm_provider in app.smm_providers.values():
        await smm_provider.aclose()
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
