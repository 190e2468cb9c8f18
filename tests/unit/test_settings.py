from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-TOKEN-abcdefghijklmnop"


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
