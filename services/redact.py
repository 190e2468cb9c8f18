"""Secrets (API keys, the bot token) must never reach a log line or a user-facing error."""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, quote_plus

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
MASK = "***"


def encodings(value: str) -> set[str]:
    """Every form a secret takes on its way out: as written, percent-encoded (a query value or
    a path segment) and form-encoded (`+` for a space), as httpx and aiohttp write URLs, and
    inside a JSON string (a log line is one JSON object)."""
    url_forms = {value, quote(value, safe=""), quote_plus(value), quote(value)}
    return url_forms | {json.dumps(form, ensure_ascii=False)[1:-1] for form in url_forms}


def register_secret(value: str | None) -> None:
    global _pattern
    if not value or len(value) < 4:
        return
    new = encodings(value) - _secrets
    if new:
        _secrets.update(new)
        ordered = sorted(_secrets, key=len, reverse=True)  # the longest form wins an overlap
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    if _pattern is None or not text:
        return text
    return _pattern.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's final message with every registered secret masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None:
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
