"""Secrets (API keys, the bot token) must never reach a log line or a user-facing error."""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, quote_plus

MASK = "***"


def encodings(value: str) -> set[str]:
    """Every form a secret takes on its way out: as written, percent-encoded (a query value or
    a path segment) and form-encoded (`+` for a space), as httpx and aiohttp write URLs, and
    inside a JSON string (a log line is one JSON object)."""
    url_forms = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    return url_forms | {json.dumps(form, ensure_ascii=False)[1:-1] for form in url_forms}


class _Secrets:
    """Every form of every registered secret, and one pattern matching them all (swapped in
    whole, so a reader in another thread sees the old pattern or the new one)."""

    def __init__(self) -> None:
        self.forms: set[str] = set()
        self.pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        new = encodings(value) - self.forms
        if new:
            self.forms.update(new)
            ordered = sorted(self.forms, key=len, reverse=True)  # the longest form wins an overlap
            self.pattern = re.compile("|".join(re.escape(s) for s in ordered))


_registered = _Secrets()


def register_secret(value: str | None) -> None:
    if not value or len(value) < 4:
        return
    _registered.add(value)


def redact(text: str) -> str:
    pattern = _registered.pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with every registered secret masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _registered.pattern is None:
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
