"""The shop's services built from the settings: each gets what it needs in its constructor."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram_i18n.cores import FluentRuntimeCore

from bot.settings import Settings
from bot.telegram import KeepResponseTypes, RetryAfterMiddleware
from db.engine import Database
from db.models import utcnow
from handlers.otp_views import TelegramPresenter
from handlers.payments import topup_notice
from handlers.smm_views import SmmPresenter
from services.auto_switch import AutoSwitch
from services.catalog import OtpCatalog
from services.console import AdminConsole
from services.health import HEALTH
from services.markups import Markups
from services.money import ceil_micro
from services.notifier import Notifier
from services.otp import ActivationService, OtpRules, supports
from services.payments import StarsPayments, StarsRules
from services.payments.cryptopay import CryptoPayPayments, CryptoPayRules
from services.payments.cryptopay_client import AiosendCryptoPay
from services.providers.base import ProviderBase
from services.providers.http import ProviderHttp
from services.providers.registry import build_otp_providers, build_smm_providers
from services.redact import register_secret
from services.smm import SmmOrderService, SmmRules
from services.smm_catalog import SmmCatalog


def make_bot(settings: Settings) -> Bot:
    token = settings.bot_token.get_secret_value()
    register_secret(token)
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    bot.session.middleware(KeepResponseTypes())
    bot.session.middleware(RetryAfterMiddleware())
    return bot


def make_markups(settings: Settings) -> Markups:
    return Markups(
        env_default=settings.markup_percent,
        configured={
            p.name: p.markup_percent for p in settings.providers if p.markup_percent is not None
        },
    )


def build_otp_catalog(settings: Settings, markups: Markups) -> OtpCatalog:
    configs = [p for p in settings.otp_providers if p.enabled]
    providers = build_otp_providers(configs, demo_code_delay_s=settings.demo_code_delay_s)
    return OtpCatalog(
        providers.values(),
        rates={p.name: p.rate for p in configs},
        price_rule=markups.otp_markup,
    )


def build_otp(
    settings: Settings,
    db: Database,
    catalog: OtpCatalog,
    *,
    bot: Bot,
    core: FluentRuntimeCore,
    notifier: Notifier,
    switch: AutoSwitch | None = None,
) -> ActivationService:
    configs = [p for p in settings.otp_providers if p.enabled]
    providers = catalog.providers
    rules = OtpRules(
        activation_timeout_s=settings.activation_timeout_s,
        min_cancel_delay_s=settings.min_cancel_delay_s,
        provider_cancel_delay_s={
            p.name: p.min_cancel_delay_s for p in configs if p.min_cancel_delay_s is not None
        },
        max_active=settings.max_active_activations,
        max_cancels_per_day=settings.max_cancels_per_day,
        reconcile_grace_s=settings.reconcile_grace_s,
        card_refresh_s=settings.card_refresh_s,
        poll_interval_s=settings.poll_interval_s,
        rate_limits=_rate_limits(providers),
        poll_rate_share=settings.poll_rate_share,
        # A buy asks the providers in turn, each within its timeout (and rate limit).
        buy_lease_s=30 + 3 * sum(float(p.timeout_s) for p in configs),
    )
    currency = settings.store_currency
    can = partial(supports, providers)
    presenter = TelegramPresenter(bot, core, catalog, currency, can, utcnow)
    return ActivationService(
        db,
        catalog,
        providers,
        rules,
        clock=utcnow,
        presenter=presenter,
        notifier=notifier,
        switch=switch,
    )


def build_smm(
    settings: Settings,
    db: Database,
    markups: Markups,
    *,
    core: FluentRuntimeCore,
    notifier: Notifier,
    switch: AutoSwitch | None = None,
) -> SmmOrderService:
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
    presenter = SmmPresenter(core, settings.store_currency)
    return SmmOrderService(
        db, catalog, providers, rules, presenter=presenter, notifier=notifier, switch=switch
    )


def build_stars(
    settings: Settings, db: Database, *, core: FluentRuntimeCore, notifier: Notifier
) -> StarsPayments:
    """Always built: with Stars off it refuses a pre-checkout for an invoice sent before."""
    rules = StarsRules(
        enabled=settings.stars_enabled,
        rate=settings.stars_rate,
        min_amount=ceil_micro(settings.topup_min),
        max_amount=ceil_micro(settings.topup_max),
    )
    notice = topup_notice(core, settings.store_currency)
    return StarsPayments(db, rules, notice=notice, notifier=notifier)


def build_cryptopay(
    settings: Settings, db: Database, *, core: FluentRuntimeCore, notifier: Notifier
) -> CryptoPayPayments:
    """Off (no rules, no client) without CRYPTOPAY_TOKEN."""
    notice = topup_notice(core, settings.store_currency)
    if settings.cryptopay_token is None:
        return CryptoPayPayments(db, None, None, notice=notice, notifier=notifier)
    token = settings.cryptopay_token.get_secret_value()
    register_secret(token)
    rules = CryptoPayRules(
        token=token,
        currency=settings.store_currency,
        assets=tuple(a for a in settings.cryptopay_assets.split(",") if a),
        invoice_ttl_s=settings.cryptopay_invoice_ttl_s,
        min_amount=ceil_micro(settings.topup_min),
        max_amount=ceil_micro(settings.topup_max),
    )
    api = AiosendCryptoPay(token, settings.cryptopay_api_url)
    return CryptoPayPayments(db, rules, api, notice=notice, notifier=notifier)


def build_switch(settings: Settings, db: Database, notifier: Notifier) -> AutoSwitch:
    return AutoSwitch(
        db,
        notifier,
        failures=settings.auto_off_failures,
        window=settings.auto_off_window,
    )


def build_console(
    settings: Settings,
    db: Database,
    markups: Markups,
    otp: ActivationService,
    smm: SmmOrderService,
) -> AdminConsole:
    return AdminConsole(
        db,
        otp_providers=otp.providers,
        smm_providers=smm.providers,
        otp_catalog=otp.catalog,
        smm_catalog=smm.catalog,
        markups=markups,
        rates={p.name: p.rate for p in settings.providers},
        store_currency=settings.store_currency,
        health=HEALTH,
    )


def _rate_limits(providers: Mapping[str, ProviderBase]) -> dict[str, int]:
    """Each provider's requests-per-minute limit, where its HTTP client has one."""
    limits: dict[str, int] = {}
    for name, provider in providers.items():
        http = getattr(provider, "http", None)  # adapters without an upstream have none
        if isinstance(http, ProviderHttp) and http.rate_limit_per_min:
            limits[name] = http.rate_limit_per_min
    return limits
