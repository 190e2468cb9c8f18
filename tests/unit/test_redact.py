from __future__ import annotations

import logging
from urllib.parse import quote, quote_plus

import httpx
import pytest

from services import redact as redact_module
from services.redact import MASK, RedactingFilter, redact, register_secret

KEY = "k3y+with/slash=eq&amp 01"


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    monkeypatch.setattr(redact_module, "_registered", redact_module._Secrets())


@pytest.mark.parametrize(
    "encoded",
    [KEY, quote(KEY, safe=""), quote_plus(KEY), quote(KEY)],
    ids=["raw", "percent", "form", "percent-default-safe"],
)
def test_every_encoding_of_a_secret_is_masked(encoded: str) -> None:
    register_secret(KEY)
    assert redact(f"GET http://h/?api_key={encoded}&action=x") == (
        f"GET http://h/?api_key={MASK}&action=x"
    )


def test_the_url_httpx_logs_is_masked() -> None:
    register_secret(KEY)
    url = str(httpx.URL("http://h/stubs/handler_api.php", params={"api_key": KEY, "a": "b"}))
    assert KEY not in url  # httpx encodes it, so the raw form alone would miss it
    assert redact(url) == f"http://h/stubs/handler_api.php?api_key={MASK}&a=b"


def test_the_logging_filter_masks_an_encoded_secret() -> None:
    register_secret(KEY)
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s", ("GET", quote_plus(KEY)), None
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"HTTP Request: GET {MASK}"


def test_short_or_empty_values_are_not_secrets() -> None:
    register_secret("")
    register_secret(None)
    register_secret("abc")
    assert redact("abc abc") == "abc abc"


def test_a_secret_inside_a_json_log_line_is_masked() -> None:
    from bot.logging_setup import JsonFormatter

    key = 'k"ey\\with+quote'
    register_secret(key)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "upstream said", (), None)
    record.answer = f"bad key {key}"  # an extra field: JSON-escaped, never seen by the filter
    line = JsonFormatter().format(record)
    assert '"answer": "bad key ***"' in line, line
