"""Secrets (API keys, the bot token) must never reach a log line or a user-facing error."""

from __future__ import annotations

import logging
import re

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
MASK = "***"


def register_secret(value: str | None) -> None:
    global _pattern
    if value and len(value) >= 4 and value not in _secrets:
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
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
