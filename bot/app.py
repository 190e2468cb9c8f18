"""Wiring: Bot, Dispatcher, middlewares, routers, scheduler and the outbox worker.

Nothing is created at import time; `build_app(settings)` makes one application and
`run(app)` long-polls until SIGINT/SIGTERM (or `app.dp.stop_polling()` in tests).

Dependencies point one way: bot -> handlers -> services -> db (contracts in pyproject.toml,
checked by `lint-imports`). Handlers get what they use as typed workflow data (`settings`,
`db`, `otp`, `smm_orders`, `admin_console`, ...), never the App below.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram_i18n import I18nMiddleware
from aiogram_i18n.cores import BaseCore
from aiogram_i18n.exceptions import KeyNotFoundError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.i18n import LANGUAGES, make_core, make_middleware
from bot.middlewares import InFlightMiddleware, ThrottlingMiddleware, UserMiddleware
from bot.settings import Settings
from bot.telegram import RetryAfterMiddleware, make_sender
from db.engine import Database
from db.migrate import upgrade
from handlers import get_routers
from handlers.broadcast import BroadcastPresenter
from handlers.common import ShopSettings
from handlers.otp_views import TelegramPresenter
from handlers.smm_views import SmmPresenter
from services.accounts import Accounts
from services.broadcast import BroadcastService
from services.catalog import OtpCatalog
from services.catalog_store import SMM, load_snapshot, save_snapshot
from services.console import AdminConsole
from services.health import HEALTH
from services.markups import Markups
from services.money import ceil_micro, format_money
from services.notifier import NotificationWorker, Notifier, OtpGoods, Person, SmmGoods
from services.otp import ActivationService, OtpRules
from services.outbox import OutboxWorker
from services.provider_watch import ErrorBurstWatch, check_balances
from services.providers.base import OtpProvider, ProviderBase, SmmProvider
from services.providers.http import ProviderHttp
from services.providers.registry import build_otp_providers, build_smm_providers
from services.redact import register_secret
from services.smm import SmmOrderService, SmmRules
from services.smm_catalog import SmmCatalog
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
    """What build_app() made: for start-up, the scheduled jobs, shutdown, and tests. Handlers
    never see it (they get typed services as workflow data)."""

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
    console: AdminConsole
    in_flight: InFlightMiddleware
    errors: list[int] = field(default_factory=list)  # update ids the error handler saw
    notifier: Notifier = field(default_factory=Notifier)
    notifications: NotificationWorker | None = None
    error_watch: ErrorBurstWatch = field(default_factory=lambda: ErrorBurstWatch(HEALTH))


def build_app(settings: Settings) -> App:
    token = settings.bot_token.get_secret_value()
    register_secret(token)
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    bot.session.middleware(RetryAfterMiddleware())

    db = Database(settings.database_url)
    scheduler = AsyncIOScheduler(timezone="UTC")
    outbox = OutboxWorker(db, make_sender(bot), interval_s=settings.outbox_interval_s)
    core = make_core(settings.default_language)
    i18n = make_middleware(settings.default_language, core)
    errors: list[int] = []
    markups = Markups(
        env_default=settings.markup_percent,
        configured={
            p.name: p.markup_percent for p in settings.providers if p.markup_percent is not None
        },
    )
    providers, catalog, otp = build_otp(settings, db, markups)
    smm_providers, smm_catalog, smm = build_smm(settings, db, markups)
    # ActivationService and SmmOrderService take these as attributes, not constructor arguments
    # (and the OTP presenter needs the service's own `supports` and `clock`).
    otp.presenter = TelegramPresenter(
        bot,
        core,
        catalog,
        settings.store_currency,
        otp.supports,
        otp.clock,
    )
    smm.presenter = SmmPresenter(core, settings.store_currency)
    broadcasts = BroadcastService(
        db,
        make_sender(bot),
        rate_per_s=settings.broadcast_rate_per_s,
        progress=BroadcastPresenter(bot, core, settings.default_language),
    )
    notifications = None
    if settings.notify_chat_id is not None:
        notifications = NotificationWorker(
            db, make_group_sender(bot, settings.notify_chat_id, settings.notify_thread_id)
        )
    notifier = make_notifier(
        settings, i18n, catalog
    )
    otp.notifier = notifier
    smm.notifier = notifier
    console = AdminConsole(
        db,
        otp_providers=providers,
        smm_providers=smm_providers,
        otp_catalog=catalog,
        smm_catalog=smm_catalog,
        markups=markups,
        rates={p.name: p.rate for p in settings.providers},
        store_currency=settings.store_currency,
        health=HEALTH,
    )

    # Workflow data: what handlers (and middlewares, filters) may ask for by name and type.
    dp = Dispatcher(
        settings=ShopSettings(
            store_currency=settings.store_currency,
            admin_ids=settings.admin_ids,
            support_contact=settings.support_contact,
            min_cancel_delay_s=settings.min_cancel_delay_s,
        ),
        db=db,
        accounts=Accounts(db),
        error_counter=errors,
        otp=otp,
        smm_orders=smm,
        notifier=notifier,
        broadcasts=broadcasts,
        admin_console=console,
    )
    in_flight = InFlightMiddleware()
    dp.update.outer_middleware(in_flight)
    dp.update.outer_middleware(UserMiddleware(db, settings.default_language, notifier))
    app = App(
        settings=settings,
        bot=bot,
        dp=dp,
        db=db,
        scheduler=scheduler,
        outbox=outbox,
        i18n=i18n,
        providers=providers,
        catalog=catalog,
        otp=otp,
        smm_providers=smm_providers,
        smm_catalog=smm_catalog,
        smm=smm,
        broadcasts=broadcasts,
        console=console,
        in_flight=in_flight,
        errors=errors,
        notifier=notifier,
        notifications=notifications,
    )
    # before i18n's own shutdown empties its locales
    dp.shutdown.register(partial(stop_background, app))
    i18n.setup(dispatcher=dp)
    dp.update.outer_middleware(ThrottlingMiddleware(settings.throttle_rate_per_s))
    dp.include_routers(*get_routers())
    dp.startup.register(partial(on_startup, app))
    dp.shutdown.register(partial(on_shutdown, app))
    return app


def build_otp(
    settings: Settings, db: Database, markups: Markups
) -> tuple[dict[str, OtpProvider], OtpCatalog, ActivationService]:
    configs = [p for p in settings.otp_providers if p.enabled]
    providers = build_otp_providers(configs, demo_code_delay_s=settings.demo_code_delay_s)
    catalog = OtpCatalog(
        providers.values(),
        rates={p.name: p.rate for p in configs},
        price_rule=markups.otp_markup,
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
        rate_limits=_rate_limits(providers),
        # A buy asks the providers in turn, each within its timeout (and rate limit).
        buy_lease_s=30 + 3 * sum(float(p.timeout_s) for p in configs),
    )
    otp = ActivationService(db, catalog, providers, rules)
    return providers, catalog, otp


def build_smm(
    settings: Settings, db: Database, markups: Markups
) -> tuple[dict[str, SmmProvider], SmmCatalog, SmmOrderService]:
    configs = [p for p in settings.smm_providers if p.enabled]
    providers = build_smm_providers(configs, demo_step_s=settings.demo_smm_step_s)
    catalog = SmmCatalog(
        providers.values(),
        rates={p.name: p.rate for p in configs},
        markup_for=markups.smm_markup,
    )
    rules = SmmRules(
        poll_interval_s=settings.poll_interval_s,
        reconcile_grace_s=settings.reconcile_grace_s,
        trouble_grace_s=settings.smm_trouble_grace_s,
        rate_limits=_rate_limits(providers),
        # One request to one panel, within its timeout (and rate limit).
        request_lease_s=30 + 3 * max((float(p.timeout_s) for p in configs), default=30.0),
    )
    smm = SmmOrderService(db, catalog, providers, rules)
    return providers, catalog, smm


def _rate_limits(providers: Mapping[str, ProviderBase]) -> dict[str, int]:
    """Each provider's requests-per-minute limit, where its HTTP client has one."""
    limits: dict[str, int] = {}
    for name, provider in providers.items():
        http = getattr(provider, "http", None)  # adapters without an upstream have none
        if isinstance(http, ProviderHttp) and http.rate_limit_per_min:
            limits[name] = http.rate_limit_per_min
    return limits


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


def make_group_sender(bot: Bot, chat_id: int, thread_id: int | None):
    send = make_sender(bot, message_thread_id=thread_id)

    async def send_to_group(text: str):
        return await send(chat_id, text)

    return send_to_group


async def on_startup(app: App) -> None:
    await upgrade(app.db)
    await set_commands(app)
    await app.console.load()
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
    # closes.
    await app.in_flight.wait(timeout=60)
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
