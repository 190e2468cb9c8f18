"""Crypto Pay's webhook signature and the Crypto Pay settings."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bot.settings import SettingsError, load_settings
from services.payments.cryptopay import signature_ok

TOKEN = "123456:TEST-TOKEN-abcdefghijklmnop"
APP_TOKEN = "7777:AAexampleCryptoPayToken"
BODY = b'{"update_id":1,"update_type":"invoice_paid","payload":{"invoice_id":5,"status":"paid"}}'


def settings(**values):
    return load_settings(_env_file=None, bot_token=TOKEN, **values)


def documented_signature(token: str, body: bytes) -> str:
    """As Crypto Pay's docs put it: HMAC-SHA-256 of the body, the key being SHA-256(token)."""
    secret = hashlib.sha256(token.encode()).digest()
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_a_signature_made_with_the_token_is_accepted() -> None:
    good = documented_signature(APP_TOKEN, BODY)
    assert signature_ok(APP_TOKEN, BODY, good)
    assert signature_ok(APP_TOKEN, BODY, good.upper())  # hex in either case


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "00" * 32,
        documented_signature("7777:AAanotherToken", BODY),  # another app's
        documented_signature(APP_TOKEN, BODY + b" "),  # another body
        hmac.new(APP_TOKEN.encode(), BODY, hashlib.sha256).hexdigest(),  # the token as the key
    ],
)
def test_anything_else_is_refused(signature) -> None:
    assert not signature_ok(APP_TOKEN, BODY, signature)


def test_cryptopay_is_off_by_default_and_on_mainnet() -> None:
    s = settings()
    assert s.cryptopay_token is None
    assert s.cryptopay_api_url == "https://pay.crypt.bot/api"
    assert (s.cryptopay_assets, s.cryptopay_invoice_ttl_s) == ("", 3600)
    assert settings(cryptopay_token="  ").cryptopay_token is None


def test_testnet_and_assets() -> None:
    s = settings(
        cryptopay_api_url="https://testnet-pay.crypt.bot/api/", cryptopay_assets=" usdt, TON ,"
    )
    assert s.cryptopay_api_url == "https://testnet-pay.crypt.bot/api"
    assert s.cryptopay_assets == "USDT,TON"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("cryptopay_api_url", "pay.crypt.bot", "CRYPTOPAY_API_URL: must be an https:// URL"),
        ("cryptopay_api_url", "http://pay.crypt.bot/api", "CRYPTOPAY_API_URL: must be https://"),
        ("cryptopay_assets", "USDT;TON", "CRYPTOPAY_ASSETS: must be asset codes"),
        ("cryptopay_invoice_ttl_s", "10", "CRYPTOPAY_INVOICE_TTL_S"),
    ],
)
def test_bad_cryptopay_settings_name_the_key(key, value, message) -> None:
    with pytest.raises(SettingsError, match=message):
        settings(**{key: value})
