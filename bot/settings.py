"""Settings from the environment and `.env`. Key names are a public contract (see .env.example)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from db.engine import parse_url

# PROVIDERS entries are the providers package's own configuration; re-exported for bot/.
from services.providers.config import OTP_KINDS, SMM_KINDS, ProviderConfig, ProviderKind

__all__ = [
    "OTP_KINDS",
    "SMM_KINDS",
    "TOKEN_NOT_SET",
    "ProviderConfig",
    "ProviderKind",
    "Settings",
    "SettingsError",
    "describe_validation_error",
    "listen_address",
    "load_settings",
]

TOKEN_NOT_SET = "token_not_set"  # noqa: S105 - the error type of an empty BOT_TOKEN, no secret
# Telegram's alphabet for a webhook's secret_token (setWebhook). Telegram takes 1-256 characters;
# we ask for 16 at least: the secret is all that tells Telegram's posts from anyone else's.
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
REDIS_SCHEMES = ("redis", "rediss", "unix")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    bot_token: SecretStr
    telegram_api_url: str = "https://api.telegram.org"
    database_url: str = "sqlite+aiosqlite:///data/bot.db"
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    notify_chat_id: int | None = None
    store_currency: str = "USD"
    markup_percent: Decimal = Decimal(20)
    default_language: Literal["en", "ru"] = "en"
    poll_interval_s: float = Field(default=5, gt=0, le=3600)
    # While orders wait, a provider with an order list is read this share of its rate limit.
    poll_rate_share: float = Field(default=0.5, ge=0, le=1)
    activation_timeout_s: int = Field(default=1200, ge=10)
    min_cancel_delay_s: int = Field(default=120, ge=0)
    providers: Annotated[tuple[ProviderConfig, ...], NoDecode] = ()

    # Beyond the basic settings above; each is in .env.example.
    throttle_rate_per_s: float = Field(default=4, ge=0)  # 0 turns throttling off
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    outbox_interval_s: float = Field(default=1.0, gt=0)
    outbox_rate_per_s: int = Field(default=30, ge=1, le=1000)  # Telegram: ~30 a second
    catalog_refresh_s: int = Field(default=600, ge=10)
    max_active_activations: int = Field(default=10, ge=1, le=1000)
    max_cancels_per_day: int = Field(default=10, ge=0, le=100_000)
    reconcile_grace_s: float = Field(default=30, ge=0)
    smm_trouble_grace_s: float = Field(default=600, ge=0)
    card_refresh_s: float = Field(default=30, ge=1)
    demo_code_delay_s: float = Field(default=10, ge=0)
    notify_thread_id: int | None = None
    provider_low_balance: Decimal = Field(default=Decimal(5), ge=0)
    # A provider failing AUTO_OFF_FAILURES of its last AUTO_OFF_WINDOW calls stops selling by
    # itself (services/auto_switch.py); 0 in either turns that off (NO_BALANCE still does).
    auto_off_failures: int = Field(default=8, ge=0, le=1000)
    auto_off_window: int = Field(default=10, ge=0, le=1000)
    support_contact: str = Field(default="", max_length=100)
    demo_smm_step_s: float = Field(default=5, ge=0)
    broadcast_rate_per_s: float = Field(default=25, gt=0, le=1000)

    # Several processes (docs/deployment.md): webhook mode and shared conversation state.
    webhook_url: str | None = None  # unset = long polling
    webhook_listen: str = "127.0.0.1:8080"
    # validate_default: the check that it is set when WEBHOOK_URL is runs even when it is not
    webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    redis_url: str | None = None  # unset = conversation state in memory

    # Customers' own top-ups (services/payments/, README "Payments"); off unless set.
    stars_enabled: bool = False
    stars_rate: Decimal | None = None  # store-currency value of one Star, required with Stars
    topup_min: Decimal = Decimal(1)  # store-currency units, per top-up
    topup_max: Decimal = Decimal(1000)
    cryptopay_token: SecretStr | None = None  # Crypto Pay (@CryptoBot) app token; unset = off
    # Crypto Pay's API root; the testnet's is https://testnet-pay.crypt.bot/api
    cryptopay_api_url: str = "https://pay.crypt.bot/api"
    cryptopay_assets: str = ""  # accepted assets, comma-separated (USDT,TON); empty = all
    cryptopay_invoice_ttl_s: int = Field(default=3600, ge=60, le=2_678_400)

    # The reseller API (docs/api.md): unset RESELLER_API_LISTEN = off.
    reseller_api_listen: str | None = None  # host:port
    reseller_api_public_url: str | None = None  # how customers reach it, for the 🔑 API screen
    reseller_api_rate_per_min: int = Field(default=60, ge=0, le=100_000)  # per key and endpoint
    reseller_api_markup_percent: Decimal = Decimal(0)  # on top of the shop's prices

    # Scheduled backups of the SQLite database (README "Backup and restore"); unset = off.
    backup_dir: Path | None = None
    backup_every_h: float = Field(default=24, gt=0, le=24 * 365)
    backup_keep: int = Field(default=7, ge=1, le=100_000)
    # Privacy: ended orders' numbers, SMS texts and codes erased after this many days
    # (services/retention.py, a daily job); unset = kept forever.
    retention_days: int | None = Field(default=None, ge=1, le=36_500)

    # A channel shown delivered codes as masked lines, one post a minute (services/proofs.py).
    proofs_chat_id: int | None = None
    # /metrics and /health on their own port (bot/metrics_server.py); unset = off.
    metrics_listen: str | None = None  # host:port
    health_outbox_max: int = Field(default=1000, ge=1)  # /health fails at this many waiting

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not token:
            # `BOT_TOKEN=` as .env.example ships it (or only blanks): not set, not malformed.
            raise PydanticCustomError(TOKEN_NOT_SET, "BOT_TOKEN is empty")
        bot_id, _, secret = token.partition(":")
        if not (bot_id.isascii() and bot_id.isdigit()) or len(secret) < 10:
            raise ValueError("does not look like a bot token (expected 123456:ABC...)")
        return SecretStr(token)

    @field_validator("telegram_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        parse_url(value)  # ValueError names the problem, never the URL (it may hold a password)
        return value

    @field_validator(
        "webhook_url",
        "redis_url",
        "reseller_api_listen",
        "reseller_api_public_url",
        "metrics_listen",
        "retention_days",
        "proofs_chat_id",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = _split(value)
        if parts is None or parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ValueError("must be an https:// URL (where Telegram posts the updates)")
        if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
            raise ValueError("must be https:// (http:// only for 127.0.0.1 or localhost)")
        if parts.fragment:
            raise ValueError("must not have a #fragment")
        return value

    @field_validator("webhook_listen")
    @classmethod
    def _webhook_listen(cls, value: str) -> str:
        listen_address(value)  # ValueError says what is wrong
        return value.strip()

    @field_validator("backup_dir", mode="before")
    @classmethod
    def _backup_dir(cls, value: object, info: ValidationInfo) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        url = str(info.data.get("database_url") or "")
        if not url.startswith("sqlite"):
            raise ValueError(
                "works with SQLite only; with PostgreSQL, back up with pg_dump "
                "(docs/deployment.md, Backups) and leave BACKUP_DIR unset"
            )
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        secret = value.get_secret_value() if value is not None else ""
        if not secret:
            if info.data.get("webhook_url"):
                raise ValueError(
                    "must be set when WEBHOOK_URL is (Telegram sends it with every update, "
                    "so only Telegram's posts are served)"
                )
            return None
        # Never echo the value: it is a secret.
        if not _WEBHOOK_SECRET.fullmatch(secret):
            raise ValueError("must be 16-256 characters, only A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = _split(value)
        if parts is None or parts.scheme not in REDIS_SCHEMES:
            raise ValueError("must be a redis://host:port/db URL (rediss:// or unix:// too)")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("must name a host (redis://host:port/db)")
        return value

    @field_validator("reseller_api_listen", "metrics_listen")
    @classmethod
    def _optional_listen(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None:
            listen_address(value)  # ValueError says what is wrong
        return value

    @field_validator("reseller_api_public_url")
    @classmethod
    def _reseller_api_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = _split(value)
        if parts is None or parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ValueError("must be an http(s):// URL, e.g. https://api.example.com")
        if parts.query or parts.fragment:
            raise ValueError("must not have a ?query or #fragment")
        return value.rstrip("/")

    @field_validator("reseller_api_markup_percent", mode="before")
    @classmethod
    def _reseller_markup_text(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("must be written as text, not a float")
        if isinstance(value, str) and not value.strip():
            return Decimal(0)
        return value

    @field_validator("reseller_api_markup_percent")
    @classmethod
    def _reseller_markup_range(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value < 0 or value > 1000:
            raise ValueError("must be between 0 and 1000")
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admin_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return frozenset()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("store_currency")
    @classmethod
    def _store_currency(cls, value: str) -> str:
        if not value.isalpha() or len(value) != 3:
            raise ValueError("must be a 3-letter currency code")
        return value.upper()

    @field_validator("markup_percent", mode="before")
    @classmethod
    def _markup_text(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("must be written as text, not a float")
        return value

    @field_validator("markup_percent")
    @classmethod
    def _markup_range(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value < 0 or value > 10000:
            raise ValueError("must be between 0 and 10000")
        return value

    @field_validator("cryptopay_token", mode="before")
    @classmethod
    def _cryptopay_token(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("cryptopay_api_url")
    @classmethod
    def _cryptopay_api_url(cls, value: str) -> str:
        parts = _split(value.strip())
        if parts is None or parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ValueError("must be an https:// URL ending in /api")
        if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
            raise ValueError("must be https:// (http:// only for 127.0.0.1 or localhost)")
        return value.strip().rstrip("/")

    @field_validator("cryptopay_assets")
    @classmethod
    def _cryptopay_assets(cls, value: str) -> str:
        assets = [part.strip().upper() for part in value.split(",") if part.strip()]
        if not all(asset.isascii() and asset.isalnum() for asset in assets):
            raise ValueError("must be asset codes separated by commas, e.g. USDT,TON")
        return ",".join(assets)

    @field_validator("stars_rate", "topup_min", "topup_max", mode="before")
    @classmethod
    def _payment_amounts_text(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("must be written as text, not a float")
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("stars_rate")
    @classmethod
    def _stars_rate(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if value is None:
            if info.data.get("stars_enabled"):
                raise ValueError("must be set when STARS_ENABLED is (the value of one Star)")
            return None
        if not value.is_finite() or value <= 0 or value > 1000:
            raise ValueError("must be a positive number up to 1000")
        return value

    @field_validator("topup_min", "topup_max")
    @classmethod
    def _topup_bounds(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        if not value.is_finite() or value <= 0 or value > 1_000_000:
            raise ValueError("must be a positive amount up to 1000000")
        low = info.data.get("topup_min")
        if info.field_name == "topup_max" and low is not None and value < low:
            raise ValueError("must not be below TOPUP_MIN")
        return value

    @field_validator("providers", mode="before")
    @classmethod
    def _providers(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return ()
            try:
                value = json.loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                raise ValueError(f"is not valid JSON ({exc.msg} at char {exc.pos})") from None
        if not isinstance(value, list | tuple):
            raise ValueError("must be a JSON list of provider objects")
        names = [item.get("name") for item in value if isinstance(item, dict)]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            listed = ", ".join(sorted(map(str, duplicates)))
            raise ValueError(f"duplicate provider name(s): {listed}")
        return value

    @property
    def otp_providers(self) -> tuple[ProviderConfig, ...]:
        """Enabled OTP accounts; the demo provider when none are configured."""
        configured = tuple(p for p in self.providers if p.kind in OTP_KINDS)
        if not configured:
            return (ProviderConfig(name="demo", kind="demo"),)
        return configured

    @property
    def smm_providers(self) -> tuple[ProviderConfig, ...]:
        """SMM accounts (smmpanel, smmpanel_json, toolvico, demo); the demo provider when none
        are configured. Toolvico entries differ per OTP `server_type` but share one SMM account:
        only the first entry of each account (base URL + key) sells SMM."""
        configured: list[ProviderConfig] = []
        toolvico_accounts: set[tuple[str, str]] = set()
        for entry in self.providers:
            if entry.kind not in SMM_KINDS:
                continue
            if entry.kind == "toolvico":
                account = (entry.base_url.rstrip("/"), entry.api_key.get_secret_value())
                if account in toolvico_accounts:
                    continue
                toolvico_accounts.add(account)
            configured.append(entry)
        if not configured:
            return (ProviderConfig(name="demo", kind="demo"),)
        return tuple(configured)

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admin_ids


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parts


def listen_address(value: str) -> tuple[str, int]:
    """WEBHOOK_LISTEN as (host, port): `127.0.0.1:8080`, `0.0.0.0:8080`, `[::1]:8080`."""
    host, colon, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8080")
    return host, int(port)


class SettingsError(Exception):
    """One line naming the key and the problem, for the start-up message."""


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error.get("loc", ())]
    key = loc[0].upper() if loc else "settings"
    where = ""
    if key == "PROVIDERS" and len(loc) > 1:
        where = f" (entry {loc[1]}, {'.'.join(loc[2:])})"
    if error.get("type") in {"missing", TOKEN_NOT_SET} and key == "BOT_TOKEN":
        return (
            "BOT_TOKEN is not set: create a bot with @BotFather in Telegram, then put "
            "BOT_TOKEN=<token> in .env (see .env.example)."
        )
    message = error.get("msg", "invalid value").removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"Invalid setting {key}{where}: {message}{more}"
