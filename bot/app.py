"""Wiring: Bot, Dispatcher, middlewares, routers, scheduler and the outbox worker.

Nothing is created at import time; `build_app(settings)` makes one application (the services
themselves are built in bot/build.py, each with what it needs in its constructor) and
`run(app)` long-polls until SIGINT/SIGTERM (or `app.dp.stop_polling()` in tests); with WEBHOOK_URL,
bot/webhook.py `run_webhook()` serves the webhook instead.

Dependencies point one way: bot -> handlers -> services -> db (contracts in pyproject.toml,
checked by `lint-imports`). Handlers get what they use as typed workflow data (`settings`,
`accounts`, `otp`, `otp_catalog`, `smm_orders`, `admin_console`, ...), never the database or
the App below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from aiogram_i18n import I18nMiddleware
from aiogram_i18n.cores import BaseCore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.build import (
    build_console,
    build_cryptopay,
    build_otp,
    build_otp_catalog,
    build_smm,
    build_stars,
    build_switch,
    make_bot,
    make_markups,
)
from bot.group import make_group_sender, make_notifier, make_proof_line
from bot.i18n import LANGUAGES, make_core, make_middleware
from bot.jobs import schedule_jobs
from bot.metrics_server import MetricsServer
from bot.middlewares import (
    InFlightMiddleware,
    MaintenanceMiddleware,
    MetricsMiddleware,
    ThrottlingMiddleware,
    UserMiddleware,
)
from bot.reseller_api import ResellerApiServer, make_reseller_api
from bot.settings import Settings
from bot.storage import close_storage, make_storage
from bot.telegram import make_editor, make_sender
from db.engine import Database
from db.migrate import upgrade
from handlers import get_routers
from handlers.broadcast import BroadcastPresenter
from handlers.common import ShopSettings
from handlers.group_actions import alert_keyboard
from services.accounts import Accounts
from services.admin import Backoffice
from services.api.keys import ApiKeys
from services.auto_switch import AutoSwitch
from services.broadcast import BroadcastService
from services.catalog import OtpCatalog
from services.catalog_store import SMM, load_snapshot
from services.console import AdminConsole
from services.exports import Exporter
from services.group_actions import GroupActions
from services.health import HEALTH
from services.leases import Leases
from services.notifier import NotificationWorker, Notifier
from services.otp import ActivationService
from services.outbox import OutboxWorker, Pace, customer_messages_due
from services.payments import StarsPayments
from services.payments.cryptopay import CryptoPayPayments
from services.payments.records import PaymentsBook
from services.proofs import Proofs
from services.provider_watch import ErrorBurstWatch
from services.providers.base import OtpProvider, SmmProvider
from services.retention import Retention
from services.shop_state import ShopState
from services.smm import SmmOrderService
from services.smm_catalog import SmmCatalog
from services.worker import RunningTasks

log = logging.getLogger(__name__)

# SIGTERM to exit 0: every piece of work finishes or is parked within this (a service manager
# kills after its own stop timeout: systemd's TimeoutStopSec, Docker's stop_grace_period).
SHUTDOWN_BUDGET_S = 8.0
USER_COMMANDS = ("start", "balance", "history", "language", "help", "forget")
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
    "refund_stars",
    "payments",
    "api",
    "maintenance",
    "export",
    "catalog",
    "hide",
    "show",
    "price",
    "minprofit",
    "rename",
    "rate",
)


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
    leases: Leases | None = None  # the scheduled jobs' (schedule_jobs), released at shutdown
    running_jobs: RunningTasks = field(default_factory=RunningTasks)  # the scheduler's, now
    storage: BaseStorage = field(default_factory=MemoryStorage)  # the Dispatcher's FSM storage
    stars: StarsPayments | None = None  # Telegram Stars top-ups (off unless STARS_ENABLED)
    cryptopay: CryptoPayPayments | None = None  # Crypto Pay top-ups (off unless CRYPTOPAY_TOKEN)
    api_keys: ApiKeys | None = None  # the reseller API's keys (the 🔑 API screen, the server)
    reseller_api: ResellerApiServer | None = None  # off unless RESELLER_API_LISTEN
    metrics: MetricsServer | None = None  # off unless METRICS_LISTEN
    proofs: Proofs | None = None  # off unless PROOFS_CHAT_ID
    # Set first thing at shutdown: long work in a thread (a backup) stops between two steps.
    stopping: threading.Event = field(default_factory=threading.Event)
    shop_state: ShopState | None = None  # run-time switches: maintenance mode
    switch: AutoSwitch | None = None  # automatic provider switching


def build_app(settings: Settings) -> App:
    bot = make_bot(settings)
    db = Database(settings.database_url)
    accounts = Accounts(db)
    core = make_core(settings.default_language)
    i18n = make_middleware(settings.default_language, core, save=accounts.set_language)
    markups = make_markups(settings)
    catalog = build_otp_catalog(settings, markups)
    notifier = make_notifier(settings, i18n, catalog)
    switch = build_switch(settings, db, notifier)
    otp = build_otp(settings, db, catalog, bot=bot, core=core, notifier=notifier, switch=switch)
    smm = build_smm(settings, db, markups, core=core, notifier=notifier, switch=switch)
    storage = make_storage(settings.redis_url)
    app = App(
        settings=settings,
        bot=bot,
        dp=Dispatcher(storage=storage),
        storage=storage,
        db=db,
        scheduler=AsyncIOScheduler(timezone="UTC"),
        outbox=OutboxWorker(
            db,
            make_sender(bot),
            edit=make_editor(bot),
            interval_s=settings.outbox_interval_s,
            pace=Pace(settings.outbox_rate_per_s),
        ),
        i18n=i18n,
        providers=otp.providers,
        catalog=catalog,
        otp=otp,
        smm_providers=smm.providers,
        smm_catalog=smm.catalog,
        smm=smm,
        broadcasts=BroadcastService(
            db,
            make_sender(bot),
            rate_per_s=settings.broadcast_rate_per_s,
            progress=BroadcastPresenter(bot, core, settings.default_language),
            yield_to=partial(customer_messages_due, db),
        ),
        console=build_console(settings, db, markups, otp, smm),
        in_flight=InFlightMiddleware(),
        notifier=notifier,
        notifications=make_notifications(settings, bot, db, core),
        stars=build_stars(settings, db, core=core, notifier=notifier),
        cryptopay=build_cryptopay(settings, db, core=core, notifier=notifier),
    )
    app.switch = switch
    app.shop_state = ShopState(db, ttl_s=settings.poll_interval_s)
    app.api_keys = ApiKeys(db)
    app.reseller_api = make_reseller_api(
        settings, db, otp, app.api_keys, app.shop_state, smm=app.smm
    )
    if settings.metrics_listen:
        app.metrics = MetricsServer(db, settings.metrics_listen, settings.health_outbox_max)
    if settings.proofs_chat_id is not None:
        send = make_sender(bot)
        chat_id = settings.proofs_chat_id
        app.proofs = Proofs(db, partial(send, chat_id), make_proof_line(settings, i18n, catalog))
    wire_dispatcher(app, accounts)
    return app


def api_url(settings: Settings) -> str:
    """Where customers reach the reseller API: RESELLER_API_PUBLIC_URL, else the listening
    address itself."""
    if settings.reseller_api_public_url:
        return settings.reseller_api_public_url
    if settings.reseller_api_listen:
        return f"http://{settings.reseller_api_listen}"
    return ""


def make_notifications(
    settings: Settings, bot: Bot, db: Database, core: BaseCore[Any] | None = None
) -> NotificationWorker | None:
    if settings.notify_chat_id is None:
        return None
    # An alert that needs a decision goes with its buttons (handlers/group_actions.py).
    keyboard = None if core is None else partial(alert_keyboard, core, settings.default_language)
    send = make_group_sender(
        bot, settings.notify_chat_id, settings.notify_thread_id, keyboard=keyboard
    )
    return NotificationWorker(db, send)


def wire_dispatcher(app: App, accounts: Accounts) -> None:
    """Workflow data (what handlers, middlewares and filters may ask for by name and type),
    the middlewares in their order, the routers, start-up and shutdown."""
    settings, dp, db = app.settings, app.dp, app.db
    backoffice = Backoffice(db, app.notifier)
    dp.workflow_data.update(
        settings=ShopSettings(
            store_currency=settings.store_currency,
            admin_ids=settings.admin_ids,
            support_contact=settings.support_contact,
            min_cancel_delay_s=settings.min_cancel_delay_s,
            topup=any(m is not None and m.enabled for m in (app.stars, app.cryptopay)),
            api=app.reseller_api is not None,
            api_url=api_url(settings),
        ),
        api_keys=app.api_keys,
        stars=app.stars,
        cryptopay=app.cryptopay,
        payments_book=(
            PaymentsBook(db, app.stars, app.cryptopay)
            if app.stars is not None and app.cryptopay is not None
            else None
        ),
        accounts=accounts,
        backoffice=backoffice,
        group_actions=GroupActions(
            db, backoffice, app.console, adopt_otp=app.otp.adopt, adopt_smm=app.smm.adopt
        ),
        error_counter=app.errors,
        otp=app.otp,
        smm_orders=app.smm,
        otp_catalog=app.catalog,
        smm_catalog=app.smm_catalog,
        notifier=app.notifier,
        broadcasts=app.broadcasts,
        admin_console=app.console,
        shop_state=app.shop_state,
        exporter=Exporter(db, app.stopping),
        retention=Retention(db, settings.retention_days),
    )
    dp.update.outer_middleware(app.in_flight)
    # A user record is cached for one poll interval: another process's ban shows within it.
    users = UserMiddleware(
        db, settings.default_language, app.notifier, cache_ttl_s=settings.poll_interval_s
    )
    dp.update.outer_middleware(users)
    # before i18n's own shutdown empties its locales
    dp.shutdown.register(partial(stop_background, app))
    app.i18n.setup(dispatcher=dp)
    dp.update.outer_middleware(ThrottlingMiddleware(settings.throttle_rate_per_s))
    if app.shop_state is not None:
        maintenance = MaintenanceMiddleware(app.shop_state, settings.admin_ids)
        dp.message.middleware(maintenance)
        dp.callback_query.middleware(maintenance)
    if settings.metrics_listen:
        timed = MetricsMiddleware()
        for observer in (dp.message, dp.callback_query, dp.pre_checkout_query):
            observer.middleware(timed)
    dp.include_routers(*get_routers())
    dp.startup.register(partial(on_startup, app))
    dp.shutdown.register(partial(on_shutdown, app))


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
    if app.reseller_api is not None:
        await app.reseller_api.start()
    if app.metrics is not None:
        await app.metrics.start()
    log.info(
        "bot started",
        extra={"admins": len(app.settings.admin_ids), "providers": len(app.providers)},
    )


async def stop_background(app: App) -> None:
    """SIGTERM: what is being done finishes, or is parked where the next start resumes it,
    within SHUTDOWN_BUDGET_S in all: updates being handled, the jobs' runs (a poll round, a
    backup check), broadcasts (resumed from the next recipient), the outbox and the group
    (their rows wait). Whatever is still running at its step's end is cancelled: every piece of
    work is one transaction at a time, so a cancelled one leaves nothing half-written."""
    budget = ShutdownBudget(SHUTDOWN_BUDGET_S)
    app.stopping.set()
    if app.reseller_api is not None:
        await app.reseller_api.stop()  # no new API requests; the ones in flight finish
    if app.metrics is not None:
        await app.metrics.stop()
    # Updates still being handled (a buy waiting for its upstream) finish before anything
    # closes.
    await app.in_flight.wait(timeout=budget.left(reserve=4))
    if app.scheduler.running:
        app.scheduler.pause()  # no new runs; the running ones finish first
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(app.otp.stop(), app.smm.stop()), budget.left(reserve=3)
        )
    await app.running_jobs.wait(timeout=budget.left(reserve=3))
    await app.running_jobs.cancel()  # parked: the next run (here or elsewhere) resumes
    if app.scheduler.running:
        app.scheduler.shutdown(wait=False)
    if app.leases is not None:
        await app.leases.close()  # another process takes the jobs over at its next run
    await app.broadcasts.stop(timeout_s=budget.left(reserve=2))
    await app.outbox.stop(budget.left(reserve=1))
    if app.notifications is not None:
        await app.notifications.stop(budget.left())


class ShutdownBudget:
    """The time left of a shutdown, shared out between its steps."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self, reserve: float = 0.0) -> float:
        """What this step may take, keeping `reserve` seconds for the steps after it."""
        return max(0.1, self.deadline - time.monotonic() - reserve)


async def on_shutdown(app: App) -> None:
    for provider in app.providers.values():
        await provider.aclose()
    for smm_provider in app.smm_providers.values():
        await smm_provider.aclose()
    if app.cryptopay is not None:
        await app.cryptopay.close()
    await close_storage(app.storage)
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
