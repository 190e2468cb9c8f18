from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-TOKEN-abcdefghijklmnop"

SECRET = "s" * 16  # the shortest webhook secret the bot takes


def settings(**values) -> Settings:
    return load_settings(_env_file=None, bot_token=TOKEN, **values)


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^#? ?([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_defaults_match_the_design_table(monkeypatch) -> None:
    for key in ("DATABASE_URL", "ADMIN_IDS", "PROVIDERS", "MARKUP_PERCENT", "POLL_INTERVAL_S"):
        monkeypatch.delenv(key, raising=False)
    s = settings()
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.database_url == "sqlite+aiosqlite:///data/bot.db"
    assert s.admin_ids == frozenset()
    assert s.notify_chat_id is None
    assert s.store_currency == "USD"
    assert s.markup_percent == Decimal(20)
    assert s.default_language == "en"
    assert (s.poll_interval_s, s.activation_timeout_s, s.min_cancel_delay_s) == (5, 1200, 120)
    assert s.providers == ()
    assert [p.kind for p in s.otp_providers] == ["demo"]


def test_admin_ids_comma_or_json(monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", "1, 2,3")
    assert settings().admin_ids == {1, 2, 3}
    monkeypatch.setenv("ADMIN_IDS", "[4, 5]")
    assert settings().admin_ids == {4, 5}
    monkeypatch.setenv("ADMIN_IDS", "")
    assert settings().admin_ids == frozenset()


def test_providers_parse_rates_as_decimals(monkeypatch) -> None:
    monkeypatch.setenv(
        "PROVIDERS",
        '[{"name": "a", "kind": "fivesim", "base_url": "http://x/v1", "api_key": "k1",'
        ' "currency": "rub", "rate": 0.011},'
        ' {"name": "b", "kind": "smsactivate", "base_url": "http://y", "rate": "1",'
        ' "markup_percent": 35, "min_cancel_delay_s": 300}]',
    )
    s = settings()
    a, b = s.providers
    assert a.rate == Decimal("0.011") and a.currency == "RUB"
    assert a.api_key.get_secret_value() == "k1" and "k1" not in repr(a)
    assert b.markup_percent == Decimal(35) and b.min_cancel_delay_s == 300
    assert [p.name for p in s.otp_providers] == ["a", "b"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ('[{"name": "a", "kind": "demo"}, {"name": "a", "kind": "demo"}]', "duplicate provider"),
        ('[{"name": "a", "kind": "demo", "rate": "0"}]', "positive"),
        ('[{"name": "a", "kind": "demo", "surprise": 1}]', "entry 0, surprise"),
        ('{"name": "a"}', "must be a JSON list"),
    ],
)
def test_bad_providers_name_the_problem(monkeypatch, env: str, message: str) -> None:
    monkeypatch.setenv("PROVIDERS", env)
    with pytest.raises(SettingsError) as info:
        settings()
    assert str(info.value).startswith("Invalid setting PROVIDERS")
    assert message in str(info.value)


NOT_SET = "BOT_TOKEN is not set: create a bot with @BotFather"


@pytest.mark.parametrize("line", ["BOT_TOKEN=", "BOT_TOKEN=   ", 'BOT_TOKEN=""', "BOT_TOKEN=' '"])
def test_an_empty_token_in_the_env_file_is_not_set(tmp_path, monkeypatch, line: str) -> None:
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text(f"{line}\nADMIN_IDS=\n")
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=env_file)
    assert str(info.value).startswith(NOT_SET), info.value


@pytest.mark.parametrize("value", ["", " ", "\t\n "])
def test_a_blank_token_in_the_environment_is_not_set(monkeypatch, value: str) -> None:
    monkeypatch.setenv("BOT_TOKEN", value)
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    assert str(info.value).startswith(NOT_SET), info.value


def test_a_malformed_token_is_still_invalid() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None, bot_token="nonsense")
    assert str(info.value).startswith("Invalid setting BOT_TOKEN: does not look like a bot token")


@pytest.mark.parametrize("token", ["²:abcdefghijklmnop", "١٢٣:abcdefghijklmnop"])
def test_a_token_id_is_ascii_digits(token: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None, bot_token=token)
    assert str(info.value).startswith("Invalid setting BOT_TOKEN: does not look like a bot token")


def test_webhook_and_redis_are_off_unless_set(monkeypatch) -> None:
    for key in ("WEBHOOK_URL", "WEBHOOK_SECRET", "WEBHOOK_LISTEN", "REDIS_URL"):
        monkeypatch.delenv(key, raising=False)
    s = settings()
    assert (s.webhook_url, s.webhook_secret, s.redis_url) == (None, None, None)
    assert s.webhook_listen == "127.0.0.1:8080"
    blank = settings(webhook_url=" ", webhook_secret="", redis_url="")
    assert (blank.webhook_url, blank.webhook_secret, blank.redis_url) == (None, None, None)


def test_webhook_settings_that_are_accepted() -> None:
    s = settings(
        webhook_url="https://shop.example/tg/hook",
        webhook_secret="A-z_0-9" * 36,  # 252 characters of Telegram's alphabet
        webhook_listen="[::1]:8443",
        redis_url="rediss://:pw@redis.example:6380/2",
    )
    assert s.webhook_secret is not None and "A-z_0-9" not in repr(s)
    local = settings(webhook_url="http://localhost:8080/hook", webhook_secret="s" * 16)
    assert local.webhook_url == "http://localhost:8080/hook"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"webhook_url": "https://x.example/h"}, "WEBHOOK_SECRET: must be set when WEBHOOK_URL"),
        ({"webhook_url": "http://x.example/h", "webhook_secret": SECRET}, "WEBHOOK_URL: must be"),
        ({"webhook_url": "https://:80/h", "webhook_secret": SECRET}, "WEBHOOK_URL"),
        ({"webhook_url": "https://x.example/h", "webhook_secret": "a+b"}, "WEBHOOK_SECRET"),
        ({"webhook_url": "https://x.example/h", "webhook_secret": SECRET[1:]}, "WEBHOOK_SECRET"),
        ({"webhook_listen": "127.0.0.1:"}, "WEBHOOK_LISTEN: must be host:port"),
        ({"webhook_listen": ":8080"}, "WEBHOOK_LISTEN: must be host:port"),
        ({"redis_url": "127.0.0.1:6379"}, "REDIS_URL: must be a redis://"),
        ({"redis_url": "redis://:pw@127.0.0.1:port/0"}, "REDIS_URL"),
    ],
)
def test_bad_webhook_and_redis_settings_name_the_key(values, message) -> None:
    with pytest.raises(SettingsError) as info:
        settings(**values)
    assert str(info.value).startswith(f"Invalid setting {message}"), info.value
    assert "a+b" not in str(info.value) and ":pw@" not in str(info.value)


def test_the_env_example_with_a_token_starts_with_every_optional_feature_off(
    monkeypatch, tmp_path
) -> None:
    """Copying .env.example and setting BOT_TOKEN is all a new owner does: its empty lines
    (RETENTION_DAYS=, PROOFS_CHAT_ID=, METRICS_LISTEN=, BACKUP_DIR=) mean off, not an error."""
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    env = re.sub(r"(?m)^BOT_TOKEN=.*$", "BOT_TOKEN=123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabc", example)
    (tmp_path / ".env").write_text(env)
    monkeypatch.chdir(tmp_path)
    for key in ("BOT_TOKEN", "PROVIDERS", "DATABASE_URL", "RETENTION_DAYS", "PROOFS_CHAT_ID"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings()
    assert settings.retention_days is None and settings.proofs_chat_id is None
    assert settings.metrics_listen is None and settings.backup_dir is None
    assert settings.reseller_api_listen is None and settings.max_cancels_per_day == 10
